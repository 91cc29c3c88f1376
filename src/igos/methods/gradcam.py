"""Grad-CAM (Selvaraju et al. 2017) at a convolutional layer.

``cam = ReLU(Σ_k w_k A_k)`` with ``w_k`` the spatial mean of ``∂y_c/∂A_k``, ``A`` the layer's
activation and ``y_c`` the target's logit (``score="probability"`` uses the softmax probability).
The map has the layer's resolution (7×7 for EfficientNet-Lite0 and ResNet-50, 14×14 for VGG19
at its last convolutional block); ``resolution`` is ignored. The layer is named by dotted string
or module; by default the model preset's, else the last spatial layer found automatically.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from ..models import frozen
from .common import Attribution, ImageCounter, check_finite, check_images, resolve_targets
from .layers import capture, last_spatial_layer, resolve_layer

__all__ = ["gradcam"]


def gradcam(
    model: nn.Module,
    images: Tensor,
    target: int | Sequence[int] | Tensor | None = None,
    *,
    layer: str | nn.Module | None = None,
    score: str = "logit",
    batch_size: int = 16,
) -> Attribution:
    """Grad-CAM saliency ``[B, h, w]`` at ``layer``'s resolution (higher = more important)."""
    if score not in ("logit", "probability"):
        raise ValueError(f"score must be 'logit' or 'probability', got {score!r}")
    images = check_images(images)
    counter = ImageCounter()
    with frozen(model), counter.watch(model):
        targets = resolve_targets(model, images, target, batch_size)
        module = resolve_layer(model, layer if layer is not None else last_spatial_layer(model, images))
        maps = []
        for x, t in zip(images.split(batch_size), targets.split(batch_size)):
            x = x.detach().clone().requires_grad_(True)  # so the activations are in a graph
            with torch.enable_grad(), capture(module) as acts:
                out = check_finite(model(x))
                if not acts or not isinstance(acts[-1], Tensor) or acts[-1].dim() != 4:
                    raise ValueError(f"layer {layer!r} did not produce a [N, C, h, w] activation")
                y = out.softmax(1) if score == "probability" else out
                a = acts[-1]
                (g,) = torch.autograd.grad(y.gather(1, t.view(-1, 1)).sum(), a)
            weights = g.mean(dim=(2, 3), keepdim=True)
            maps.append(torch.relu((weights * a).sum(1)).detach())
    return Attribution(torch.cat(maps), target=targets, forward_images=counter.forward_images,
                       backward_images=counter.backward_images)
