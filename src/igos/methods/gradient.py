"""Gradient saliency (Simonyan, Vedaldi, Zisserman 2014): ``max_c |∂p_c/∂x|`` at input resolution.

The map is the absolute gradient of the target's softmax probability with respect to the
``[0, 1]`` pixels, maximised over colour channels: ``[B, H, W]``. ``resolution`` is ignored:
the method only produces input-resolution maps.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from .common import Attribution, class_probability
from .options import MethodOptions
from .registry import MethodSpec

__all__ = ["gradient", "SPEC"]


def _gradient(model: nn.Module, images: Tensor, targets: Tensor, *, baseline: None, size: None, seed: int,
              options: MethodOptions) -> Attribution:
    maps = []
    for x, t in zip(images.split(options.batch_size), targets.split(options.batch_size)):
        x = x.detach().clone().requires_grad_(True)
        with torch.enable_grad():
            (g,) = torch.autograd.grad(class_probability(model, x, t).sum(), x)
        maps.append(g.abs().amax(dim=1))
    return Attribution(torch.cat(maps))


SPEC = MethodSpec("gradient", _gradient, "Gradient", "input", MethodOptions,
                  reference="gradient (Simonyan et al. 2014)", cost="0 / 1")


def gradient(model: nn.Module, images: Tensor, target: int | Sequence[int] | Tensor | None = None,
             **options: Any) -> Attribution:
    """Plain gradient saliency ``[B, H, W]`` (higher = more important); ``options``: ``batch_size``."""
    return SPEC(model, images, target, **options)
