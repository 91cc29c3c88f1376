"""Deletion and insertion (Petsiuk et al. 2018), exactly as docs/evaluation.md states the protocol.

* Cells of the saliency map are ranked at the map's own resolution, highest first, ties in
  row-major order (stable sort).
* ``chunk = max(1, n // 50)`` cells per step; curve points after 0, chunk, 2·chunk, … cells and
  after all ``n`` cells (``n // chunk + 1`` points).
* A cell covers its block of pixels under nearest-neighbour upsampling to the input size.
* Deletion moves cells from the image to the baseline, insertion from the baseline to the image;
  the score is the softmax probability of the target class; AUC by the trapezoid rule over the
  fraction of cells moved. **Deletion: lower is better. Insertion: higher is better.**
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .core import check_images, class_probability, frozen, resolve_targets
from .perturb import blurred_baseline
from .targets import target_labels

__all__ = ["Scores", "deletion_insertion", "curve_steps", "cell_ranks", "auc", "check_saliency", "DIRECTIONS"]

DIRECTIONS = {"deletion": "lower is better", "insertion": "higher is better"}


@dataclass
class Scores:
    """Deletion/insertion results for ``B`` images.

    Attributes:
        deletion: ``[B]`` AUC of the deletion curve (lower is better).
        insertion: ``[B]`` AUC of the insertion curve (higher is better).
        x: ``[P]`` fraction of cells moved at each curve point.
        deletion_curve, insertion_curve: ``[B, P]`` the target's score at each point (a class's probability).
        target: ``[B]`` the class scored (``-1`` for a set or a callable target).
        bound: the bound target scored (:class:`igos.targets.Bound`).
    """

    deletion: Tensor
    insertion: Tensor
    x: Tensor
    deletion_curve: Tensor
    insertion_curve: Tensor
    target: Tensor
    bound: Any = None


def curve_steps(n: int) -> list[int]:
    """Cells moved at each curve point: 0, chunk, 2·chunk, …, then n (both ends included).

    ``n // chunk + 1`` points: the last step takes the remainder with it (784 cells give 53
    points, 50,176 give 51, as the protocol states).
    """
    chunk = max(1, n // 50)
    return list(range(0, (n // chunk) * chunk, chunk)) + [n]


def auc(x: Tensor, y: Tensor) -> Tensor:
    """Trapezoid rule along the last axis."""
    return torch.trapezoid(y, x, dim=-1)


def cell_ranks(saliency: Tensor) -> Tensor:
    """``[B, h, w] -> [B, h·w]`` rank of every cell (0 = most salient), stable in row-major order."""
    flat = saliency.flatten(1)
    order = torch.argsort(-flat, dim=1, stable=True)
    ranks = torch.empty_like(order)
    ranks.scatter_(1, order, torch.arange(flat.shape[1], device=flat.device).expand_as(order))
    return ranks


def check_saliency(saliency: Tensor, images: Tensor) -> Tensor:
    """``[B, h, w]`` float64 maps on the images' device; ``ValueError`` for a wrong shape, size or NaN."""
    b, _, h, w = images.shape
    if not isinstance(saliency, Tensor):
        saliency = torch.as_tensor(saliency)
    if saliency.dim() == 2:
        saliency = saliency.unsqueeze(0)
    if saliency.dim() == 4 and saliency.shape[1] == 1:
        saliency = saliency[:, 0]
    if saliency.dim() != 3 or saliency.shape[0] != b:
        raise ValueError(f"saliency must have shape [{b}, h, w] for {b} images, got {tuple(saliency.shape)}")
    sh, sw = saliency.shape[-2:]
    if sh > h or sw > w or sh < 1 or sw < 1:
        raise ValueError(f"saliency resolution {sh}x{sw} is impossible for {h}x{w} images")
    if not torch.isfinite(saliency).all():
        raise ValueError("saliency contains NaN or infinite values")
    return saliency.to(device=images.device, dtype=torch.float64)


def deletion_insertion(
    model: nn.Module,
    images: Tensor,
    saliency: Tensor,
    target: int | Sequence[int] | Tensor | None = None,
    *,
    baseline: Tensor | None = None,
    batch_size: int = 32,
) -> Scores:
    """Score saliency maps with the deletion and insertion metrics.

    Args:
        model: pixel-space classifier returning logits.
        images: ``[B, 3, H, W]`` in ``[0, 1]``.
        saliency: ``[B, h, w]`` (or ``[h, w]`` for one image), any resolution up to ``H × W``;
            higher = more important.
        target: what is scored: a class per image, one for all, ``None`` (the model's top-1 on the clean image)
            or any :mod:`igos.targets` target (a set, a box, a region, a callable); the curves plot its score.
        baseline: ``[B, 3, H, W]``; default the reference blur of ``images``.
        batch_size: perturbed images per model call (no gradients).
    """
    images = check_images(images)
    b, _, h, w = images.shape
    saliency = check_saliency(saliency, images)
    sh, sw = saliency.shape[-2:]
    n = sh * sw
    counts = torch.tensor(curve_steps(n), device=images.device)
    p = counts.numel()
    with frozen(model), torch.no_grad():
        scored, rows = resolve_targets(model, images, target, batch_size)
        if baseline is None:
            baseline = blurred_baseline(images)
        ranks = cell_ranks(saliency).view(b, 1, sh, sw)
        # moved[b, k] = 1 where the cell is among the first counts[k] cells: [B, P, sh, sw]
        moved = (ranks < counts.view(1, p, 1, 1)).to(images.dtype)
        jobs = [(i, k) for i in range(b) for k in range(p)]
        del_scores = torch.empty(b * p, device=images.device, dtype=images.dtype)
        ins_scores = torch.empty_like(del_scores)
        for start in range(0, len(jobs), max(1, batch_size // 2)):
            chunk = jobs[start : start + max(1, batch_size // 2)]
            ib = torch.tensor([j[0] for j in chunk], device=images.device)
            kb = torch.tensor([j[1] for j in chunk], device=images.device)
            m = F.interpolate(moved[ib, kb].unsqueeze(1), size=(h, w), mode="nearest")
            x, x0 = images[ib], baseline[ib]
            deleted = x + (x0 - x) * m
            inserted = x0 + (x - x0) * m
            probs = class_probability(scored, torch.cat([deleted, inserted]), rows[ib].repeat(2))
            del_scores[start : start + len(chunk)] = probs[: len(chunk)]
            ins_scores[start : start + len(chunk)] = probs[len(chunk) :]
    x_axis = counts.to(torch.float64) / n
    del_curve = del_scores.view(b, p).double()
    ins_curve = ins_scores.view(b, p).double()
    return Scores(
        deletion=auc(x_axis, del_curve),
        insertion=auc(x_axis, ins_curve),
        x=x_axis,
        deletion_curve=del_curve,
        insertion_curve=ins_curve,
        target=target_labels(scored.bound, images.device),
        bound=scored.bound,
    )
