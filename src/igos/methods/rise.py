"""RISE (Petsiuk, Das, Saenko 2018): randomized input sampling.

``N`` random binary ``s × s`` grids (each cell kept with probability ``p``) are upsampled
bilinearly to ``(s + 1)·⌈H/s⌉`` and cropped at a random shift, giving smooth masks ``m_i``
(1 = keep). Each masked image ``Φ(I, I0, m_i)`` (the same blurred baseline as every method) is
scored, and ``saliency = Σ_i p_c(Φ(I, I0, m_i)) · m_i / (N · p)`` at input resolution
(``resolution`` is ignored). ``N = 4000`` by default (the I-GOS paper: 4000 for VGG19, 8000 for
ResNet-50). Masks come from ``seed`` on the images' device and are shared by all images, so a
batch gives the same maps as one-by-one runs.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..perturb import composite
from .common import Attribution, scores_in_batches
from .options import Checks, MethodOptions
from .registry import MethodSpec

__all__ = ["rise", "rise_masks", "RISEOptions", "SPEC"]


@dataclass(frozen=True)
class RISEOptions(MethodOptions):
    """RISE's options.

    Attributes:
        masks: ``N``, random masks (4000).
        grid: ``s``, the side of the random binary grids (7).
        p: the probability that a grid cell is kept (0.5).
        mask_chunk: masks made at once (memory stays bounded for any ``masks``).
        batch_size: masked images per model call.
    """

    masks: int = 4000
    grid: int = 7
    p: float = 0.5
    mask_chunk: int = 500

    def check(self, checks: Checks) -> None:
        super().check(checks)
        checks.at_least(1, "masks", "grid", "mask_chunk")
        checks.within("p", 0, 1, open_lo=True, open_hi=True)


def rise_masks(
    count: int, size: tuple[int, int], grid: int = 7, p: float = 0.5, *, seed: int = 0,
    device: torch.device | str = "cpu", chunk: int = 500,
) -> Iterator[Tensor]:
    """RISE masks ``[n, 1, H, W]`` in ``[0, 1]`` (1 = keep), ``chunk`` at a time, from ``seed``.

    The random grids and shifts are drawn up front (small), the upsampled masks per chunk, so
    memory stays bounded for any ``count``.
    """
    g = torch.Generator().manual_seed(int(seed))  # drawn on the CPU (small): the same masks on every device
    h, w = size
    cell_h, cell_w = math.ceil(h / grid), math.ceil(w / grid)
    grids = (torch.rand(count, 1, grid, grid, generator=g) < p).float().to(device)
    shift_y = torch.randint(0, cell_h, (count,), generator=g).to(device)
    shift_x = torch.randint(0, cell_w, (count,), generator=g).to(device)
    rows0 = torch.arange(h, device=device).view(1, -1, 1)
    cols0 = torch.arange(w, device=device).view(1, 1, -1)
    for i in range(0, count, chunk):
        up = F.interpolate(grids[i : i + chunk], size=((grid + 1) * cell_h, (grid + 1) * cell_w),
                           mode="bilinear", align_corners=False)[:, 0]
        n = up.shape[0]
        idx = torch.arange(n, device=device).view(-1, 1, 1)
        rows = shift_y[i : i + n].view(-1, 1, 1) + rows0
        cols = shift_x[i : i + n].view(-1, 1, 1) + cols0
        yield up[idx, rows, cols].unsqueeze(1)


def _rise(model: nn.Module, images: Tensor, targets: Tensor, *, baseline: Tensor, size: None, seed: int,
          options: RISEOptions) -> Attribution:
    o, (b, _, h, w) = options, images.shape
    saliency = torch.zeros(b, h, w, device=images.device, dtype=images.dtype)
    for chunk in rise_masks(o.masks, (h, w), o.grid, o.p, seed=seed, device=images.device, chunk=o.mask_chunk):
        chunk = chunk.to(images.dtype)  # float64 images get float64 masks (no-op in float32)
        for i in range(b):
            for m in chunk.split(o.batch_size):  # composite per model batch: small tensors stay in cache
                x = composite(images[i : i + 1], baseline[i : i + 1], m)
                scores = scores_in_batches(model, x, targets[i].expand(m.shape[0]), o.batch_size)
                saliency[i] += torch.einsum("n,nhw->hw", scores, m[:, 0])
    return Attribution(saliency / (o.masks * o.p))


SPEC = MethodSpec("rise", _rise, "RISE", "input", RISEOptions, reference="RISE (Petsiuk et al. 2018)",
                  cost="4000 / 0", baseline=True)


def rise(model: nn.Module, images: Tensor, target: int | Sequence[int] | Tensor | None = None, *,
         baseline: Tensor | None = None, seed: int = 0, **options: Any) -> Attribution:
    """RISE saliency ``[B, H, W]`` (higher = more important); ``options``: :class:`RISEOptions`' fields."""
    return SPEC(model, images, target, baseline=baseline, seed=seed, **options)
