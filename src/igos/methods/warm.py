"""The warm start of I-GOS and iGOS++ (``init``): another method's map of the same image and target seeds the
deletion mask, instead of a mask that starts equal everywhere.

``M_0 = start · (1 − depth · m̂)``, ``m̂ = max(m, 0) / max m`` at the mask's size: the most salient cell starts
``depth · start`` lower, cells of no salience at ``start``. A map with no positive value (or a constant one) gives
the plain start. The map is resampled to the mask's size by the mean over each cell (coarser) or bilinear interpolation
(finer), so a 7×7 GradCAM seeds a 28×28 mask and a pixel map a 7×7 one.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..perturb import cell_pool
from .common import FLAT_TOLERANCE
from .options import Size
from .registry import get_method, method_names

__all__ = ["warm_start_methods", "warm_start", "resample"]


def warm_start_methods() -> list[str]:
    """The methods ``init`` may name: every registered method (it runs at its own defaults, so with no warm start
    of its own: no recursion)."""
    return method_names()


def resample(maps: Tensor, size: Size) -> Tensor:
    """``[B, h, w]`` maps at ``size``: the mean over each of the metric's cells where coarser
    (:func:`~igos.perturb.cell_pool`), bilinear (``align_corners=False``) where finer, unchanged where equal."""
    if tuple(maps.shape[-2:]) == tuple(size):
        return maps
    if maps.shape[-2] >= size[0] and maps.shape[-1] >= size[1]:
        return cell_pool(maps, tuple(size), "mean")
    return F.interpolate(maps.unsqueeze(1), size=size, mode="bilinear", align_corners=False)[:, 0]


def warm_start(method: str, depth: float, start: float, model: nn.Module, images: Tensor, targets: Tensor,
               baseline: Tensor, size: Size, seed: int, batch_size: int) -> Tensor:
    """The starting masks ``[B, 1, s_h, s_w]`` from ``method``'s maps (at its defaults, the same ``seed`` and the
    caller's batch size) of ``images`` for ``targets`` (the rows of the scored ``model``)."""
    spec = get_method(method)
    run_size = spec.mask_size(size, tuple(images.shape[-2:]))
    options = spec.make_options({"batch_size": batch_size}).resolved(run_size)
    result = spec.fn(model, images, targets, baseline=baseline if spec.baseline else None, size=run_size, seed=seed,
                     options=options)
    maps = resample(result.saliency.detach().to(images.dtype), size).clamp_min(0)
    top, low = maps.flatten(1).amax(1).view(-1, 1, 1), maps.flatten(1).amin(1).view(-1, 1, 1)
    ordered = (top - low) > FLAT_TOLERANCE * top.clamp_min(1.0)  # a constant map orders nothing: the plain start
    scaled = torch.where(ordered, maps / top.clamp_min(torch.finfo(maps.dtype).tiny), torch.zeros_like(maps))
    return (start * (1.0 - depth * scaled)).unsqueeze(1)
