"""ROAD, Remove And Debias (Rong et al., ICML 2022): curves whose removed pixels are imputed from their
neighbours instead of blurred, so that a map is not graded on the blur game I-GOS, iGOS++ and Mask optimise.

Exactly (docs/evaluation.md, "ROAD"):

1. The map is upsampled bilinearly (``align_corners=False``) to the input's size, min-max scaled to
   ``[0, 1]``, a seeded ``1e-4 · N(0, 1)`` tie-breaker is added per pixel, and the pixels are ranked highest first.
2. For ``p`` in 0.1, 0.2, …, 0.9: MoRF(p) imputes the top ``⌊p · H · W⌋`` pixels; LeRF(p) imputes all but them.
3. Imputation on the ``[0, 1]`` pixels (before the model's normalisation): every imputed pixel is the weighted mean
   of its 8 neighbours inside the image (1/6 for the sides, 1/12 for the diagonals), one linear system for all
   imputed pixels and channels, solved by preconditioned conjugate gradients on the images' device; then
   ``N(0, 0.01²)`` noise on each imputed value (seeded by the photo and ``seed``: the same in any batch).
4. Score: the target's softmax probability (or any :mod:`igos.targets` target's score); MoRF and LeRF are the
   means over the 9 fractions (MoRF lower is better, LeRF higher is better); ``combined = (LeRF − MoRF) / 2``
   (higher is better).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .core import check_images, class_probability, frozen, photo_seed, resolve_targets
from .metrics import cell_ranks, check_saliency
from .targets import target_labels

__all__ = ["RoadScores", "road", "road_order", "impute", "FRACTIONS", "NEIGHBOURS", "SOLVERS"]

FRACTIONS = tuple(round(0.1 * k, 1) for k in range(1, 10))
#: the imputation's neighbour weights: 1/6 for the 4 sides, 1/12 for the 4 diagonals (they sum to 1)
NEIGHBOURS = ((1 / 12, 1 / 6, 1 / 12), (1 / 6, 0.0, 1 / 6), (1 / 12, 1 / 6, 1 / 12))


@dataclass
class RoadScores:
    """ROAD for ``B`` images: ``morf`` (lower is better), ``lerf`` (higher is better), ``combined``
    ``(lerf − morf) / 2`` (higher is better), all ``[B]``; the curves ``[B, 9]`` over ``fractions``."""

    morf: Tensor
    lerf: Tensor
    combined: Tensor
    fractions: Tensor
    morf_curve: Tensor
    lerf_curve: Tensor
    target: Tensor


def road_order(saliency: Tensor, size: tuple[int, int], seed: int = 0) -> Tensor:
    """Each pixel's rank (0 = most relevant) ``[B, H·W]``: the map upsampled bilinearly to ``size``, min-max
    scaled, plus a seeded ``1e-4 · N(0, 1)`` tie-breaker (the same for every image of a size)."""
    up = F.interpolate(saliency.unsqueeze(1).double(), size=size, mode="bilinear", align_corners=False)[:, 0]
    flat = up.flatten(1)
    lo, hi = flat.amin(1, keepdim=True), flat.amax(1, keepdim=True)
    scaled = (flat - lo) / (hi - lo).clamp_min(1e-12)
    tie = torch.randn(flat.shape[1], generator=torch.Generator().manual_seed(int(seed)), dtype=torch.float64)
    return cell_ranks(scaled + 1e-4 * tie.to(flat.device))  # the metric's ranking, highest first, stable


def _neighbour_sum(x: Tensor) -> Tensor:
    """``Σ_n w_n x_n`` over the 8 neighbours inside the image (zero padding drops the outside ones): the
    :data:`NEIGHBOURS` stencil as shifted sums (twice as fast as a float64 convolution on the CPU)."""
    h, w = x.shape[-2:]
    p = F.pad(x, (1, 1, 1, 1))
    sides = p[..., 0:h, 1:w + 1] + p[..., 2:h + 2, 1:w + 1] + p[..., 1:h + 1, 0:w] + p[..., 1:h + 1, 2:w + 2]
    corners = p[..., 0:h, 0:w] + p[..., 0:h, 2:w + 2] + p[..., 2:h + 2, 0:w] + p[..., 2:h + 2, 2:w + 2]
    return sides * NEIGHBOURS[0][1] + corners * NEIGHBOURS[0][0]


def _coarse_guess(x: Tensor, unknown: Tensor) -> Tensor | None:
    """A start for the solve: the same problem on a grid half as fine (a 2×2 block is unknown when any of its
    pixels is), solved the same way, upsampled. Holes of hundreds of pixels converge in far fewer iterations
    from it (cascadic multigrid). ``None`` below 32 pixels a side."""
    h, w = x.shape[-2:]
    if min(h, w) < 32:
        return None
    size = ((h + 1) // 2, (w + 1) // 2)
    coarse_x = F.interpolate(x, size=size, mode="area") if h % 2 == 0 and w % 2 == 0 else \
        F.interpolate(x, size=size, mode="bilinear", align_corners=False)
    coarse_u = F.max_pool2d(unknown.to(x.dtype), 2, ceil_mode=True) > 0
    solved = _impute_cg(coarse_x, coarse_u, 1e-4, 10000)
    return F.interpolate(solved, size=(h, w), mode="bilinear", align_corners=False)


#: how ``impute`` solves: ``direct`` (a sparse LU factorisation per mask, SciPy's SuperLU, on the CPU), ``cg``
#: (conjugate gradients in torch on the images' device), ``auto`` (direct on the CPU where SciPy imports, else cg)
SOLVERS = ("auto", "direct", "cg")


def impute(images: Tensor, unknown: Tensor, *, tol: float = 1e-7, max_iterations: int = 10000,
           solver: str = "auto") -> Tensor:
    """Every ``unknown`` pixel (``[B, 1, H, W]``, true = impute) set to the weighted mean of its neighbours: the
    linear system ``S_i x_i − Σ_{n unknown} w_n x_n = Σ_{n known} w_n x_n`` (``S_i`` the weights inside the
    image), in float64. ``solver`` (:data:`SOLVERS`): ``direct`` factorises each mask's sparse system once and
    solves the three channels exactly; ``cg`` solves all images and channels at once by conjugate gradients with
    a Jacobi preconditioner, to a relative residual of ``tol``, from the coarse grid's solution. Known pixels are
    returned as they are; no noise is added."""
    if solver not in SOLVERS:
        raise ValueError(f"solver must be one of {', '.join(SOLVERS)}, got {solver!r}")
    if solver == "auto":
        solver = "direct" if images.device.type == "cpu" and _scipy() else "cg"
    if solver == "direct":
        return _impute_direct(images, unknown)
    return _impute_cg(images, unknown, tol, max_iterations)


def _scipy() -> bool:
    try:
        import scipy.sparse.linalg  # noqa: F401
    except ImportError:
        return False
    return True


def _impute_direct(images: Tensor, unknown: Tensor) -> Tensor:
    """The system of each mask as a sparse matrix (symmetric: the stencil is), factorised by SuperLU with a
    minimum-degree ordering, solved for the three channels; about 0.1 s for 45,000 unknown pixels on one core."""
    import numpy as np
    import scipy.sparse as sparse
    import scipy.sparse.linalg as linalg

    x = images.detach().double().cpu().numpy()
    masks = unknown.expand(images.shape[0], 1, *images.shape[-2:]).cpu().numpy()[:, 0]
    out = x.copy()
    h, w = masks.shape[-2:]
    for i, m in enumerate(masks):
        ys, xs = np.nonzero(m)
        n = len(ys)
        if n == 0:
            continue
        if n == h * w:
            raise ValueError("impute: every pixel is unknown, so there is nothing to impute from")
        index = np.full((h, w), -1, dtype=np.int64)
        index[ys, xs] = np.arange(n)
        rows, cols, vals = [np.arange(n)], [np.arange(n)], []
        diagonal = np.zeros(n)
        b = np.zeros((n, x.shape[1]))
        for dy in (-1, 0, 1):
            for dx in (-1, 0, 1):
                weight = NEIGHBOURS[dy + 1][dx + 1]
                if weight == 0:
                    continue
                ny, nx = ys + dy, xs + dx
                k = np.nonzero((ny >= 0) & (ny < h) & (nx >= 0) & (nx < w))[0]
                diagonal[k] += weight
                j = index[ny[k], nx[k]]
                inner = j >= 0
                rows.append(k[inner])
                cols.append(j[inner])
                vals.append(np.full(int(inner.sum()), -weight))
                known = k[~inner]
                b[known] += weight * x[i][:, ny[known], nx[known]].T
        a = sparse.csc_matrix((np.concatenate([diagonal, *vals]), (np.concatenate(rows), np.concatenate(cols))),
                              shape=(n, n))
        lu = linalg.splu(a, permc_spec="MMD_AT_PLUS_A", diag_pivot_thresh=0.0, options={"SymmetricMode": True})
        out[i][:, ys, xs] = lu.solve(b).T
    return torch.from_numpy(out).to(device=images.device, dtype=images.dtype)


def _impute_cg(images: Tensor, unknown: Tensor, tol: float, max_iterations: int) -> Tensor:
    x = images.double()
    u = unknown.to(x.dtype).expand_as(x)
    weight = _neighbour_sum(torch.ones_like(x[:, :1])).expand_as(x)  # S_i

    def apply(v: Tensor) -> Tensor:  # A v on the unknown pixels (v is 0 elsewhere)
        return u * (weight * v - _neighbour_sum(v))

    b = u * _neighbour_sum(x * (1 - u))
    guess = _coarse_guess(x, unknown)
    v = u * (x if guess is None else guess)  # any start converges; the coarse solution is close
    r = b - apply(v)
    z = r / weight
    p = z.clone()
    rz = (r * z).sum((2, 3), keepdim=True)
    tiny = torch.finfo(x.dtype).tiny
    norm_b = b.pow(2).sum((2, 3), keepdim=True).sqrt().clamp_min(tiny)
    for k in range(max_iterations):
        if k % 10 == 0 and bool((r.pow(2).sum((2, 3), keepdim=True).sqrt() <= tol * norm_b).all()):
            break
        ap = apply(p)
        alpha = rz / (p * ap).sum((2, 3), keepdim=True).clamp_min(tiny)
        v = v + alpha * p
        r = r - alpha * ap
        z = r / weight
        rz_new = (r * z).sum((2, 3), keepdim=True)
        p = z + (rz_new / rz.clamp_min(tiny)) * p
        rz = rz_new
    return (x * (1 - u) + v * u).to(images.dtype)


def road(
    model: nn.Module,
    images: Tensor,
    saliency: Tensor,
    target: int | Sequence[int] | Tensor | None = None,
    *,
    fractions: Sequence[float] = FRACTIONS,
    noise: float = 0.01,
    seed: int = 0,
    batch_size: int = 32,
    tol: float = 1e-5,
    solver: str = "auto",
) -> RoadScores:
    """ROAD's MoRF and LeRF of saliency maps ``[B, h, w]`` (any resolution) for ``images`` ``[B, 3, H, W]`` in
    ``[0, 1]`` (see the module docstring). ``seed`` draws the tie-breaker and the imputation noise. ``solver``
    (:data:`SOLVERS`): the imputation's, by default a direct sparse factorisation on the CPU (exact), conjugate
    gradients on a GPU. ``tol``: conjugate gradients' relative residual; at 1e-5 the imputed values lie within
    about 2e-4 of the exact solution on a 224×224 photo with 90 % removed, a fiftieth of the noise's σ."""
    images = check_images(images)
    b, _, h, w = images.shape
    saliency = check_saliency(saliency, images)
    fr = torch.tensor(list(fractions), dtype=torch.float64)
    ranks = road_order(saliency, (h, w), seed).view(b, 1, h, w)
    counts = (fr * h * w).floor().long().to(images.device)
    n = len(fr)
    with frozen(model), torch.no_grad():
        scored, rows = resolve_targets(model, images, target, batch_size)
        curves = torch.empty(2, b, n, dtype=torch.float64, device=images.device)
        for i in range(b):  # one photo at a time: its 9 MoRF and 9 LeRF images are imputed together
            top = ranks[i] < counts.view(-1, 1, 1)  # [P, H, W]: the top ⌊p·H·W⌋ pixels
            mask = torch.cat([top, ~top]).unsqueeze(1)  # MoRF imputes them, LeRF all but them
            filled = impute(images[i].expand(2 * n, 3, h, w), mask, tol=tol, solver=solver)
            g = torch.Generator().manual_seed(photo_seed(images[i], seed))  # batch- and device-independent
            eps = torch.randn(filled.shape, generator=g, dtype=filled.dtype).to(images.device)
            filled = filled + noise * eps * mask
            t = rows[i].expand(2 * n)
            probs = torch.cat([class_probability(scored, filled[k : k + batch_size], t[k : k + batch_size])
                               for k in range(0, 2 * n, batch_size)])
            curves[:, i] = probs.view(2, n).double()
    morf, lerf = curves[0].mean(1), curves[1].mean(1)
    return RoadScores(morf, lerf, (lerf - morf) / 2, fr, curves[0], curves[1], target_labels(scored.bound,
                                                                                                images.device))
