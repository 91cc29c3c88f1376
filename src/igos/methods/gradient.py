"""Gradient saliency (Simonyan, Vedaldi, Zisserman 2014): ``max_c |∂p_c/∂x|`` at input resolution.

The map is the absolute gradient of the target's softmax probability with respect to the
``[0, 1]`` pixels, maximised over colour channels: ``[B, H, W]``. ``resolution`` is ignored:
the method only produces input-resolution maps.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from ..models import frozen
from .common import Attribution, ImageCounter, check_images, class_probability, resolve_targets

__all__ = ["gradient"]


def gradient(
    model: nn.Module,
    images: Tensor,
    target: int | Sequence[int] | Tensor | None = None,
    *,
    batch_size: int = 16,
) -> Attribution:
    """Plain gradient saliency ``[B, H, W]`` (higher = more important)."""
    images = check_images(images)
    counter = ImageCounter()
    with frozen(model), counter.watch(model):
        targets = resolve_targets(model, images, target, batch_size)
        maps = []
        for x, t in zip(images.split(batch_size), targets.split(batch_size)):
            x = x.detach().clone().requires_grad_(True)
            with torch.enable_grad():
                (g,) = torch.autograd.grad(class_probability(model, x, t).sum(), x)
            maps.append(g.abs().amax(dim=1))
    return Attribution(torch.cat(maps), target=targets, forward_images=counter.forward_images,
                       backward_images=counter.backward_images)
