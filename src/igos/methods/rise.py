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

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..models import frozen
from ..perturb import blurred_baseline, composite
from .common import Attribution, ImageCounter, check_images, resolve_targets, scores_in_batches

__all__ = ["rise", "rise_masks"]


def rise_masks(
    count: int, size: tuple[int, int], grid: int = 7, p: float = 0.5, *, seed: int = 0,
    device: torch.device | str = "cpu", chunk: int = 500,
) -> Iterator[Tensor]:
    """RISE masks ``[n, 1, H, W]`` in ``[0, 1]`` (1 = keep), ``chunk`` at a time, from ``seed``.

    The random grids and shifts are drawn up front (small), the upsampled masks per chunk, so
    memory stays bounded for any ``count``.
    """
    g = torch.Generator(device=device).manual_seed(int(seed))
    h, w = size
    cell_h, cell_w = math.ceil(h / grid), math.ceil(w / grid)
    grids = (torch.rand(count, 1, grid, grid, generator=g, device=device) < p).float()
    shift_y = torch.randint(0, cell_h, (count,), generator=g, device=device)
    shift_x = torch.randint(0, cell_w, (count,), generator=g, device=device)
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


def rise(
    model: nn.Module,
    images: Tensor,
    target: int | Sequence[int] | Tensor | None = None,
    *,
    baseline: Tensor | None = None,
    masks: int = 4000,
    grid: int = 7,
    p: float = 0.5,
    seed: int = 0,
    batch_size: int = 16,
    mask_chunk: int = 500,
) -> Attribution:
    """RISE saliency ``[B, H, W]`` (higher = more important)."""
    if masks < 1 or not 0 < p < 1 or grid < 1:
        raise ValueError(f"need masks ≥ 1, 0 < p < 1 and grid ≥ 1; got masks={masks}, p={p}, grid={grid}")
    images = check_images(images)
    b, _, h, w = images.shape
    if baseline is None:
        baseline = blurred_baseline(images)
    counter = ImageCounter()
    with frozen(model), counter.watch(model):
        targets = resolve_targets(model, images, target, batch_size)
        saliency = torch.zeros(b, h, w, device=images.device, dtype=images.dtype)
        for chunk in rise_masks(masks, (h, w), grid, p, seed=seed, device=images.device, chunk=mask_chunk):
            chunk = chunk.to(images.dtype)  # float64 images get float64 masks (no-op in float32)
            for i in range(b):
                for m in chunk.split(batch_size):  # composite per model batch: small tensors stay in cache
                    x = composite(images[i : i + 1], baseline[i : i + 1], m)
                    scores = scores_in_batches(model, x, targets[i].expand(m.shape[0]), batch_size)
                    saliency[i] += torch.einsum("n,nhw->hw", scores, m[:, 0])
        saliency /= masks * p
    return Attribution(saliency, target=targets, forward_images=counter.forward_images,
                       backward_images=counter.backward_images)
