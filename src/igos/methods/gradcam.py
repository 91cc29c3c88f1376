"""Grad-CAM (Selvaraju et al. 2017) at a convolutional layer.

``cam = ReLU(Σ_k w_k A_k)`` with ``w_k`` the spatial mean of ``∂y_c/∂A_k``, ``A`` the layer's
activation and ``y_c`` the target's logit (``score="probability"`` uses the target's score: a class's softmax
probability). For other targets (:mod:`igos.targets`) "logit" is their pre-normalisation score: a set's summed
logits, a region's mean logit of its class; a box's or a callable's score itself.
The map has the layer's resolution (7×7 for EfficientNet-Lite0 and ResNet-50, 14×14 for VGG19
at its last convolutional block); ``resolution`` is ignored. The layer is named by dotted string
or module; by default the model preset's, else the last spatial layer found automatically.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from .common import Attribution
from .layers import capture, last_spatial_layer, resolve_layer
from .options import Checks, MethodOptions
from .registry import MethodSpec

__all__ = ["gradcam", "GradCAMOptions", "SPEC"]


@dataclass(frozen=True)
class GradCAMOptions(MethodOptions):
    """Grad-CAM's options.

    Attributes:
        layer: the layer, a dotted name relative to the model or a module; ``None``: the model preset's, else the
            last spatial layer found automatically.
        score: what is differentiated: the target's ``"logit"`` (the paper's) or its softmax ``"probability"``.
        batch_size: images per model call.
    """

    layer: str | nn.Module | None = None
    score: str = "logit"

    def check(self, checks: Checks) -> None:
        super().check(checks)
        checks.one_of("score", ("logit", "probability"))


def _gradcam(model: nn.Module, images: Tensor, targets: Tensor, *, baseline: None, size: None, seed: int,
             options: GradCAMOptions) -> Attribution:
    layer = options.layer
    module = resolve_layer(model, layer if layer is not None else last_spatial_layer(model, images))
    maps = []
    for x, t in zip(images.split(options.batch_size), targets.split(options.batch_size)):
        x = x.detach().clone().requires_grad_(True)  # so the activations are in a graph
        with torch.enable_grad(), capture(module) as acts:
            out = model(x)
            if not acts or not isinstance(acts[-1], Tensor) or acts[-1].dim() != 4:
                raise ValueError(f"layer {layer!r} did not produce a [N, C, h, w] activation")
            y = model.score_output(out, t, "logit" if options.score == "logit" else "probability")
            a = acts[-1]
            (g,) = torch.autograd.grad(y.sum(), a)
        weights = g.mean(dim=(2, 3), keepdim=True)
        maps.append(torch.relu((weights * a).sum(1)).detach())
    return Attribution(torch.cat(maps))


SPEC = MethodSpec("gradcam", _gradcam, "GradCAM", "layer", GradCAMOptions,
                  reference="Grad-CAM (Selvaraju et al. 2017)", cost="0 / 1",
                  resolution_note="7×7 on EfficientNet-Lite0 and ResNet-50, 14×14 on VGG19",
                  preset_options={"layer": "gradcam_layer"})


def gradcam(model: nn.Module, images: Tensor, target: int | Sequence[int] | Tensor | None = None,
            **options: Any) -> Attribution:
    """Grad-CAM saliency ``[B, h, w]`` at the layer's resolution (higher = more important); ``options``:
    :class:`GradCAMOptions`' fields."""
    return SPEC(model, images, target, **options)
