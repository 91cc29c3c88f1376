"""Controls: maps that ignore the model, registered as methods so that they go through every table, report
and check the real methods go through. A method that does not beat them on a metric has shown nothing there.

* ``random``: uniform noise, seeded per photo (the same photo gets the same map in any batch);
* ``center``: a centred Gaussian blob, σ a quarter of each side (photographers centre their subject);
* ``edges``: the photo's Sobel edge magnitude, the mean per cell (a map an edge detector draws).

Each works at any resolution; the cells are the metric's blocks (:func:`igos.perturb.cell_pool`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..core import photo_seed
from ..perturb import cell_pool
from .common import Attribution
from .options import MethodOptions, Size
from .registry import MethodSpec

__all__ = ["random_map", "center_map", "edges_map", "RANDOM", "CENTER", "EDGES"]


def _random(model: nn.Module, images: Tensor, targets: Tensor, *, baseline: None, size: Size, seed: int,
            options: MethodOptions) -> Attribution:
    maps = [torch.rand(size, generator=torch.Generator().manual_seed(photo_seed(x, seed)), dtype=torch.float64)
            for x in images]
    return Attribution(torch.stack(maps).to(images.device, images.dtype))


def _center(model: nn.Module, images: Tensor, targets: Tensor, *, baseline: None, size: Size, seed: int,
            options: MethodOptions) -> Attribution:
    (s_h, s_w), kw = size, {"device": images.device, "dtype": images.dtype}
    y = (torch.arange(s_h, **kw) + 0.5 - s_h / 2) / (s_h / 4)  # cell centres, in units of σ = side / 4
    x = (torch.arange(s_w, **kw) + 0.5 - s_w / 2) / (s_w / 4)
    blob = torch.exp(-0.5 * (y.view(-1, 1) ** 2 + x.view(1, -1) ** 2))
    return Attribution(blob.expand(images.shape[0], s_h, s_w).clone())


#: Sobel's kernels (x: left to right, y: top to bottom)
_SOBEL_X = ((-1.0, 0.0, 1.0), (-2.0, 0.0, 2.0), (-1.0, 0.0, 1.0))


def sobel_magnitude(images: Tensor) -> Tensor:
    """``sqrt(gx² + gy²)`` of the photos' grey level (the channels' mean), replicated borders: ``[B, H, W]``."""
    grey = images.mean(1, keepdim=True)
    kx = torch.tensor(_SOBEL_X, device=images.device, dtype=images.dtype).view(1, 1, 3, 3)
    padded = F.pad(grey, (1, 1, 1, 1), mode="replicate")
    gx, gy = F.conv2d(padded, kx), F.conv2d(padded, kx.transpose(-1, -2))
    return (gx.pow(2) + gy.pow(2)).sqrt()[:, 0]


def _edges(model: nn.Module, images: Tensor, targets: Tensor, *, baseline: None, size: Size, seed: int,
           options: MethodOptions) -> Attribution:
    return Attribution(cell_pool(sobel_magnitude(images), size, reduce="mean"))


_KIND = dict(resolutions="any", schema=MethodOptions, cost="0 / 0 (ignores the model)", default_resolution=28)
RANDOM = MethodSpec("random", _random, "Random (control)", reference="control: uniform noise, seeded per photo",
                    **_KIND)
CENTER = MethodSpec("center", _center, "Center (control)",
                    reference="control: a centred Gaussian, σ a quarter of the side", **_KIND)
EDGES = MethodSpec("edges", _edges, "Edges (control)", reference="control: the photo's Sobel edge magnitude",
                   **_KIND)


def random_map(model: nn.Module, images: Tensor, target: int | Sequence[int] | Tensor | None = None, *,
               resolution: int | tuple[int, int] = 28, seed: int = 0, **options: Any) -> Attribution:
    """The ``random`` control: uniform noise ``[B, s_h, s_w]``, seeded per photo."""
    return RANDOM(model, images, target, resolution=resolution, seed=seed, **options)


def center_map(model: nn.Module, images: Tensor, target: int | Sequence[int] | Tensor | None = None, *,
               resolution: int | tuple[int, int] = 28, **options: Any) -> Attribution:
    """The ``center`` control: a centred Gaussian blob ``[B, s_h, s_w]``."""
    return CENTER(model, images, target, resolution=resolution, **options)


def edges_map(model: nn.Module, images: Tensor, target: int | Sequence[int] | Tensor | None = None, *,
              resolution: int | tuple[int, int] = 28, **options: Any) -> Attribution:
    """The ``edges`` control: the photo's Sobel edge magnitude per cell ``[B, s_h, s_w]``."""
    return EDGES(model, images, target, resolution=resolution, **options)
