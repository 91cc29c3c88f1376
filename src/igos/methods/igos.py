"""I-GOS: Integrated-Gradients Optimized Saliency (Qi, Khorram, Li, AAAI 2020).

Finds a mask ``M`` (``s × s``, 1 = keep) minimising

    F(M) = p_c(Φ(I, I0, U(M))) + λ1 · mean|1 − M| + λ2 · TV(M)

where ``I0`` is the blurred image, ``U`` bilinear upsampling and ``p_c`` the softmax
probability of the target class. The descent direction replaces the gradient of the first term
by the integrated gradient along the path ``α·U(M)``, ``α = 1/K … 1``, with Gaussian noise
added to every path point; the step size comes from a backtracking line search with the
revised Armijo condition and projection to ``[0, 1]``. Saliency = ``1 − M``.

Two defaults differ from the paper, measured on photos held out from the bench tables
(docs/results/igos-start.md): at mask sides up to 14 the mask starts at 0.5 instead of 1 (from 1 it
often never moves: a flat map), and a mask that still ends with no order is ordered by its
integrated gradient (``tie_break``). ``start=1, tie_break=0`` is the paper's method.

Differences from the authors' code, all deliberate (see docs/ALGORITHM.md of the project):
the line search scores the plain masked image (the paper's condition (8)), not a freshly noised
path; it starts from the last accepted step / η instead of ``a_max``; several trial steps are
scored in one batch; the base value ``F(M)`` comes from the previous accepted trial.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

import torch
from torch import Tensor, nn

from ..models import frozen
from ..perturb import blurred_baseline, check_resolution, l1_loss, tv_loss, upsample
from .common import SCORES, Attribution, ImageCounter, check_images, resolve_targets, scores_in_batches
from .descent import DescentSettings, Objective, descend, new_traces
from .optim import path_gradient, path_scores, project_direction, upsample_adjoint

__all__ = ["igos", "IGOSSettings", "default_regularisation", "resolve_regularisation", "REGULARISATION",
           "default_start", "START", "STALL_TOLERANCE", "FLAT_TOLERANCE", "order_ties"]

#: (λ1, λ2) per mask resolution, tuned on 10 development photos held out from the bench tables
#: (benchmarks/tune_regularisation.py; docs/results/igos-lambda-tuning.md): 28 is the authors'
#: (1, 20), confirmed on the development photos; 7, 14, 112 and 224 are the best ins − del of a grid
#: (the authors' 112 was (3, 60)); 56 lies between its neighbours, untuned; other resolutions
#: interpolate in log scale.
REGULARISATION: dict[int, tuple[float, float]] = {
    7: (1.0, 1.0),
    14: (1.0, 2.0),
    28: (1.0, 20.0),
    56: (1.0, 40.0),
    112: (1.0, 60.0),
    224: (1.0, 160.0),
}


def _interpolate(table: dict[int, tuple[float, ...]], resolution: int) -> tuple[float, ...]:
    """``table``'s values at a mask side: log-linear between its sides, its ends outside them."""
    keys = sorted(table)
    if resolution <= keys[0]:
        return table[keys[0]]
    if resolution >= keys[-1]:
        return table[keys[-1]]
    for lo, hi in zip(keys, keys[1:]):
        if lo <= resolution <= hi:
            t = (math.log(resolution) - math.log(lo)) / (math.log(hi) - math.log(lo))
            return tuple(a + t * (b - a) for a, b in zip(table[lo], table[hi]))
    raise AssertionError("unreachable")


def default_regularisation(resolution: int) -> tuple[float, float]:
    """Default ``(λ1, λ2)`` for a mask side (log-linear interpolation of ``REGULARISATION``)."""
    l1, tv = _interpolate(REGULARISATION, resolution)
    return l1, tv


#: the mask's start value per mask side. From M = 1 (the paper's) the softmax is saturated on confident
#: photos and at coarse masks no step lowers F: the mask never moves and the map is flat (2 of 10 tuning
#: photos at 7). From M = 0.5 the score's gradient is alive and the L1 term pulls the cells that do not
#: matter back up to 1: better deletion and insertion at 7 and 14 on the tuning photos. At 28 it won on
#: the tuning photos but lost on the 25 reference photos (9 / 11 of 25), and at 112 and 224 it lost
#: insertion: there the paper's start stays (docs/results/igos-start.md).
START: dict[int, tuple[float]] = {14: (0.5,), 28: (1.0,)}


def default_start(resolution: int) -> float:
    """Default start value of the mask for a mask side (``START``: 0.5 up to 14, 1 from 28, log-linear
    between)."""
    return _interpolate(START, resolution)[0]


def resolve_regularisation(resolution: int, l1: float | None = None, tv: float | None = None) -> tuple[float, float]:
    """``(λ1, λ2)`` an I-GOS run at mask side ``resolution`` uses: the given values, the per-resolution
    default (``default_regularisation``) for those that are ``None``."""
    if l1 is None or tv is None:
        d1, d2 = default_regularisation(resolution)
        l1 = d1 if l1 is None else l1
        tv = d2 if tv is None else tv
    return l1, tv


def regulariser(mask: Tensor, l1: float, tv: float) -> Tensor:
    """``λ1 · mean|1 − M| + λ2 · TV(M)`` per image ``[B]``."""
    return l1 * l1_loss(mask) + tv * tv_loss(mask)


def regulariser_gradient(mask: Tensor, l1: float, tv: float) -> tuple[Tensor, Tensor]:
    """Value ``[B]`` and gradient ``[B, 1, s_h, s_w]`` of the regulariser."""
    leaf = mask.detach().requires_grad_(True)
    with torch.enable_grad():
        value = regulariser(leaf, l1, tv)
        (grad,) = torch.autograd.grad(value.sum(), leaf)
    return value.detach(), grad


def search_point_indices(steps: int, count: int) -> Tensor | None:
    """Indices of ``count`` evenly spaced path points out of ``steps``, the last one included."""
    if count <= 0:
        return None
    count = min(count, steps)
    return torch.unique(torch.round(torch.linspace(steps / count, steps, count)).long() - 1)


#: the smallest score drop s(I) − s(I0) that ``normalise`` divides by, per score kind
NORMALISE_FLOOR = {"probability": 0.05, "log-odds": 1.0}

#: a mask whose cells all stay within this of its start did not move (``stalled``)
STALL_TOLERANCE = 1e-3
#: a map whose values all lie within this of each other has no order: it says nothing (``flat``)
FLAT_TOLERANCE = 1e-6

#: the descent direction's form: the paper's (each path point's gradient carries its α) or textbook
#: integrated gradients (the quadrature weights dα alone; they sum to p(M) − p(I0))
DIRECTIONS = ("paper", "ig")
#: where the K gradient points lie on α ∈ (0, 1]: k/K, or placed by where p changes along the path
GRIDS = ("uniform", "adaptive")


def adaptive_grid(p_sweep: Tensor, k: int) -> tuple[Tensor, Tensor]:
    """``k`` path points per image placed where ``p`` changes, and their quadrature weights ``dα``.

    ``p_sweep`` ``[N, J + 1]`` is ``p`` at ``α = j / J``, ``j = 0 … J``. Each interval gets half of its
    probability mass uniformly and half in proportion to ``|Δp|`` over it; ``[0, 1]`` is cut into ``k``
    slices of equal mass, each represented by the point at its middle mass and weighted by its width,
    so a sharp rise of ``p`` (common on confident photos, e.g. between α = 0.1 and 0.2) gets most of
    the points. Returns ``(alphas, weights)``, both ``[N, k]``; the weights sum to 1.
    """
    n, j = p_sweep.shape[0], p_sweep.shape[1] - 1
    dp = (p_sweep[:, 1:] - p_sweep[:, :-1]).abs()
    mass = 0.5 * dp / dp.sum(1, keepdim=True).clamp_min(1e-12) + 0.5 / j  # [N, J], rows sum to 1
    cdf = torch.cat([torch.zeros(n, 1, dtype=mass.dtype, device=mass.device), mass.cumsum(1)], dim=1)

    def inverse(u: Tensor) -> Tensor:  # α where the cumulative mass reaches u (piecewise linear)
        cell = torch.searchsorted(cdf[:, 1:].contiguous(), u.expand(n, -1).contiguous()).clamp(max=j - 1)
        return ((cell + (u - cdf.gather(1, cell)) / mass.gather(1, cell)) / j).clamp(0.0, 1.0)

    steps = torch.arange(k + 1, dtype=mass.dtype, device=mass.device)
    edges = inverse(steps / k)
    return inverse((steps[:-1] + 0.5) / k), edges[:, 1:] - edges[:, :-1]


@dataclass(frozen=True)
class IGOSSettings(DescentSettings):
    """Everything an I-GOS run uses besides the images: the descent settings plus λ1 (``l1``), λ2
    (``tv``), the line-search objective (``search_points``, ``search_noise``) and the stall retries.
    A retry is ``dataclasses.replace`` of these with smaller λ; see :func:`igos` for each field."""

    l1: float = 1.0
    tv: float = 20.0
    search_points: int = 3
    search_noise: bool = False
    stall_retries: int = 0
    stall_relax: float = 0.3
    direction: str = "paper"
    grid: str = "uniform"
    sweep: int = 10
    score: str = "probability"
    normalise: bool = False
    tie_break: float = 0.0

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.tie_break < 0:
            raise ValueError(f"tie_break must be ≥ 0, got {self.tie_break}")
        if self.score not in SCORES:
            raise ValueError(f"score must be one of {', '.join(SCORES)}, got {self.score!r}")
        if self.direction not in DIRECTIONS or self.grid not in GRIDS or self.sweep < 1:
            raise ValueError(f"direction must be one of {', '.join(DIRECTIONS)}, grid one of {', '.join(GRIDS)} and "
                             f"sweep ≥ 1; got direction={self.direction!r}, grid={self.grid!r}, sweep={self.sweep}")
        if self.stall_retries < 0 or not 0 < self.stall_relax < 1:
            raise ValueError(f"stall_retries must be ≥ 0 and stall_relax in (0, 1), got "
                             f"stall_retries={self.stall_retries}, stall_relax={self.stall_relax}")
        if self.l1 < 0 or self.tv < 0 or self.search_points < 0:
            raise ValueError(f"l1, tv and search_points must be ≥ 0, got l1={self.l1}, tv={self.tv}, "
                             f"search_points={self.search_points}")

    def relaxed(self) -> IGOSSettings:
        """The settings of a stall retry: λ1, λ2 × ``stall_relax``, one retry fewer."""
        return replace(self, l1=self.l1 * self.stall_relax, tv=self.tv * self.stall_relax,
                       stall_retries=self.stall_retries - 1)


class _DeletionProblem:
    """I-GOS's objective and direction for the descent driver (images, baseline, targets fixed)."""

    def __init__(self, model: nn.Module, images: Tensor, baseline: Tensor, targets: Tensor, settings: IGOSSettings):
        self.model, self.images, self.baseline, self.targets, self.s = model, images, baseline, targets, settings
        device, dtype = images.device, images.dtype
        self.alphas = torch.arange(1, settings.steps + 1, device=device, dtype=dtype) / settings.steps
        self.points = search_point_indices(settings.steps, settings.search_points)
        self.one = torch.ones(1, device=device, dtype=dtype)
        self.search_alphas = self.one if self.points is None else self.alphas[self.points]
        self.noisy_search = settings.search_noise and settings.noise > 0 and self.points is not None
        kind, bs = settings.score, settings.batch_size
        self.p_start = scores_in_batches(model, baseline, targets, bs, kind)  # s(I0): paths start there
        # the score term's weight per image: 1, or 1 / (s(I) − s(I0)) so that it falls from 1 to about 0
        if settings.normalise:
            drop = scores_in_batches(model, images, targets, bs, kind) - self.p_start
            self.weight = 1.0 / drop.clamp_min(NORMALISE_FLOOR[kind])
        else:
            self.weight = torch.ones_like(self.p_start)
        # Σ over iterations of each image's integrated gradient: orders the cells the mask leaves tied
        self.evidence: Tensor | None = None

    def score(self, masks: Tensor, idx: Tensor, noise: Tensor | None = None, alphas: Tensor | None = None
              ) -> tuple[Tensor, Tensor]:
        """``F`` on the path points ``alphas`` (default: the search points): ``(mean p + reg, p at the last)``."""
        alphas = self.search_alphas if alphas is None else alphas
        size = tuple(self.images.shape[-2:])
        pr = path_scores(self.model, self.baseline[idx], self.images[idx], upsample(masks, size), self.targets[idx],
                         alphas, noise, self.s.batch_size, self.s.score)
        return self.weight[idx] * pr.mean(1) + regulariser(masks, self.s.l1, self.s.tv), self.probability(pr[:, -1])

    def probability(self, score: Tensor) -> Tensor:
        """The class probability from the score (the log-odds' sigmoid)."""
        return score if self.s.score == "probability" else torch.sigmoid(score)

    def plain(self, masks: Tensor, idx: Tensor) -> tuple[Tensor, Tensor]:
        """The paper's ``F``: the plain masked score (α = 1, no noise) + regulariser."""
        return self.score(masks, idx, None, self.one)

    def grid(self, up: Tensor, idx: Tensor) -> tuple[Tensor, Tensor | None, Tensor | None]:
        """The gradient points ``α`` (``[K]`` or ``[n, K]``), their weights (``None``: the paper's α/K)
        and, for the adaptive grid, ``p`` along a noise-free forward sweep ``[n, J + 1]``."""
        s = self.s
        if s.grid == "uniform":
            weights = None if s.direction == "paper" else torch.full_like(self.alphas, 1.0 / s.steps)
            return self.alphas, weights, None
        sweep = torch.arange(1, s.sweep + 1, device=up.device, dtype=up.dtype) / s.sweep
        p = path_scores(self.model, self.baseline[idx], self.images[idx], up, self.targets[idx], sweep, None,
                        s.batch_size, s.score)
        p = torch.cat([self.p_start[idx].view(-1, 1), p], dim=1)
        alphas, weights = adaptive_grid(p, s.steps)
        return alphas, (alphas * weights if s.direction == "paper" else weights), p

    def iteration(self, mask: Tensor, idx: Tensor, noise: Tensor | None, value: Tensor
                  ) -> tuple[Tensor, Tensor, Objective, dict[str, Tensor]]:
        size = tuple(self.images.shape[-2:])
        up = upsample(mask, size)
        alphas, weights, sweep = self.grid(up, idx)
        grad_up, path_probs = path_gradient(self.model, self.baseline[idx], self.images[idx], up, self.targets[idx],
                                            alphas, noise, self.s.batch_size, weights, self.s.score)
        ig = upsample_adjoint(mask, grad_up)
        weighted = self.weight[idx].view(-1, 1, 1, 1) * ig
        if self.s.tie_break > 0:  # the tie order's evidence; not kept when the tie order is off
            self.evidence = add_evidence(self.evidence, self.images.shape[0], idx, weighted)
        reg_value, reg_grad = regulariser_gradient(mask, self.s.l1, self.s.tv)
        direction = project_direction(mask, weighted + reg_grad)
        p_end = path_probs[:, -1] if sweep is None else sweep[:, -1]
        info = {"ig_sum": (mask * ig).flatten(1).sum(1), "path_delta": p_end - self.p_start[idx]}
        if self.noisy_search:  # this iteration's noisy path points: the base value comes from the IG pass
            search_noise = noise[self.points]
            value = self.weight[idx] * path_probs[:, self.points].mean(1) + reg_value
        else:  # a deterministic objective: the base value is the last accepted trial's
            search_noise = None

        def objective(masks: Tensor, rows: Tensor) -> tuple[Tensor, Tensor]:
            return self.score(masks, idx[rows], search_noise)

        return direction, value, objective, info


def igos(
    model: nn.Module,
    images: Tensor,
    target: int | Sequence[int] | Tensor | None = None,
    *,
    baseline: Tensor | None = None,
    resolution: int | tuple[int, int] = 28,
    iterations: int = 15,
    steps: int = 10,
    l1: float | None = None,
    tv: float | None = None,
    noise: float = 0.045,
    first_step: float = 1000.0,
    step_decay: float = 0.2,
    armijo: float = 1e-4,
    min_step: float = 1e-5,
    fixed_step: float | None = None,
    trials_per_batch: int = 2,
    search_points: int = 3,
    search_noise: bool = False,
    early_stop: float | None = 1e-3,
    patience: int = 2,
    grow_only_on_first: bool = False,
    max_trials: int | None = None,
    stop_on_failure: bool = False,
    stall_retries: int = 0,
    stall_relax: float = 0.3,
    direction: str = "paper",
    grid: str = "uniform",
    sweep: int = 10,
    score: str = "probability",
    normalise: bool = False,
    start: float | None = None,
    tie_break: float = 1e-3,
    batch_size: int = 16,
    seed: int = 0,
) -> Attribution:
    """Explain ``model``'s decision for ``target`` on ``images`` with I-GOS.

    Args:
        model: maps ``[N, 3, H, W]`` images in ``[0, 1]`` to logits (e.g. ``preset.model``).
        images: ``[B, 3, H, W]`` in ``[0, 1]``.
        target: class per image; ``None`` = top-1 on the clean image.
        baseline: ``I0``, ``[B, 3, H, W]``; default the reference blur of ``images``.
        resolution: mask side ``s`` (or ``(s_h, s_w)``), 1 … input size.
        iterations: maximum descent iterations.
        steps: ``K``, integration points ``α = 1/K … 1`` (10: at 20, the paper's, the quality on
            the development photos was no better, at twice the cost; docs/results/igos-28-tuning.md).
        l1, tv: ``λ1`` and ``λ2`` (defaults per resolution: ``default_regularisation``).
        noise: σ of the Gaussian noise on every path point, in ``[0, 1]`` pixel units (0: none).
        first_step: ``a_max``, the first trial step; later searches start at the last accepted
            step / ``step_decay`` (capped by ``a_max``).
        step_decay, armijo, min_step: η, β and ``a_min`` of the line search.
        fixed_step: use this constant step instead of the line search (ablation).
        trials_per_batch: trial steps scored per model call in the line search.
        search_points: the line search scores ``F`` with the mean probability over this many
            of the path points (evenly spaced, α = 1 included); 0 scores the plain masked image
            ``p_c(Φ(I, I0, U(M)))`` instead (the paper's condition (8), which stalls on confident
            images: the softmax is flat near ``M = 1``).
        search_noise: add the iteration's path noise to the line-search points too (the base
            value then comes from the IG pass); by default the line-search objective is
            noise-free, so it is deterministic and comparable across iterations.
        early_stop: stop an image after ``patience`` iterations improving ``F`` by less than
            this (absolute); ``None`` runs every iteration.
        stall_retries, stall_relax: an image whose mask never left its start (``stalled``) is
            optimised again from the start with ``λ1, λ2`` multiplied by ``stall_relax``, up to
            ``stall_retries`` times (0: off, the paper's method). Its trace then gives the λ
            used and ``retries``; its ``final_objective`` is under that λ.
        direction: ``"paper"``: ``(1/K) Σ_k ∂p(Φ(I, I0, α_k M))/∂M`` (each point's gradient carries a
            factor α_k: the paper's formula (4)); ``"ig"``: textbook integrated gradients in mask space,
            ``Σ_k dα_k ∂p/∂(αM)`` at the points, whose sum ``Σ M ⊙ g`` is ``p(M) − p(I0)``.
        grid: ``"uniform"``: ``α_k = k/K``; ``"adaptive"``: a noise-free forward sweep of ``sweep``
            points per iteration, then the ``K`` gradient points placed where ``p`` changes
            (:func:`adaptive_grid`).
        sweep: points of the adaptive grid's forward sweep.
        score: what ``F`` measures of the class: ``"probability"`` (the paper's) or ``"log-odds"``
            (``log p − log(1 − p)``, unsaturated; λ must then be larger, see docs/results/igos-start.md).
        normalise: divide the score term by its drop ``s(I) − s(I0)`` (at least 0.05 for the probability,
            1 for the log-odds), so that it falls from about 1 to 0 on every photo.
        start: the mask's value at the start, ``M = start`` everywhere; ``None`` = the per-resolution
            default (:func:`default_start`: 0.5 up to 14×14, 1 from 28×28). The paper starts at 1, where
            on confident photos no step lowers ``F`` at coarse masks (the map stays flat); from 0.5 the
            score's gradient is alive and the L1 term lifts the cells that do not matter back to 1.
        tie_break: a mask that ends with no order (every cell equal, e.g. a mask that never left 1) gets
            the order of the sum of the integrated gradients over the iterations, scaled to at most
            ``tie_break`` (0: off), instead of a flat map. A mask with any order is returned as it is
            (ordering every tie by it, not only flat masks, lowered insertion on some photos: coffee
            at 28×28, 0.325 → 0.240).
        batch_size: images per model call (path points and trials are chunked by it).
        seed: seeds the path noise; equal seeds give equal results.

    Returns:
        :class:`Attribution` with ``saliency = 1 − M`` ``[B, s_h, s_w]``, the mask, and per image a
        trace: ``objective``, ``probability``, ``step``, ``trials``, ``accepted`` and ``tried`` (every
        trial's ``(step, F)``) per iteration, ``ig_sum`` (``Σ M ⊙ g_IG``, the direction's sum) against
        ``path_delta`` (``p`` at the path's end − ``p(I0)``) per iteration, ``stopped`` (why the run
        ended), ``iterations``, ``armijo`` records ``(F_before, F_after, step, ‖g‖²)``, ``stalled``:
        true when no cell of the mask left its start by more than ``STALL_TOLERANCE`` (the line search
        found no step that lowers ``F``), and ``flat``: true when the returned map has no order (all its
        values within ``FLAT_TOLERANCE``): it says nothing.
    """
    images = check_images(images)
    size = check_resolution(resolution, tuple(images.shape[-2:]))
    l1, tv = resolve_regularisation(max(size), l1, tv)
    start = default_start(max(size)) if start is None else start
    settings = IGOSSettings(iterations=iterations, steps=steps, noise=noise, first_step=first_step,
                            step_decay=step_decay, armijo=armijo, min_step=min_step, fixed_step=fixed_step,
                            trials_per_batch=trials_per_batch, early_stop=early_stop, patience=patience,
                            grow_only_on_first=grow_only_on_first, max_trials=max_trials,
                            stop_on_failure=stop_on_failure, batch_size=batch_size, l1=l1, tv=tv,
                            search_points=search_points,
                            search_noise=search_noise, stall_retries=stall_retries, stall_relax=stall_relax,
                            direction=direction, grid=grid, sweep=sweep, score=score, normalise=normalise,
                            tie_break=tie_break, start=start)
    return optimise(model, images, target, baseline, size, settings, seed)


def optimise(model: nn.Module, images: Tensor, target: int | Sequence[int] | Tensor | None, baseline: Tensor | None,
             size: tuple[int, int], settings: IGOSSettings, seed: int = 0) -> Attribution:
    """I-GOS with validated settings at mask size ``size``, stall retries included (see :func:`igos`)."""
    if baseline is None:
        baseline = blurred_baseline(images)
    elif baseline.shape != images.shape:
        raise ValueError(f"baseline shape {tuple(baseline.shape)} differs from images {tuple(images.shape)}")
    result = _optimise_once(model, images, target, baseline, size, settings, seed)
    stalled = [i for i, t in enumerate(result.trace) if t["stalled"]]
    if settings.stall_retries == 0 or not stalled:
        return result
    sub = torch.tensor(stalled, device=images.device)
    again = optimise(model, images[sub], result.target[sub], baseline[sub], size, settings.relaxed(), seed)
    result.mask[sub] = again.mask
    result.saliency[sub] = again.saliency
    for j, i in enumerate(stalled):
        result.trace[i] = {**again.trace[j], "retries": again.trace[j]["retries"] + 1}
    result.forward_images += again.forward_images
    result.backward_images += again.backward_images
    return result


def add_evidence(evidence: Tensor | None, total: int, idx: Tensor, grad: Tensor) -> Tensor:
    """The tie order's evidence with ``grad`` (``[n, 1, s_h, s_w]``, one iteration's direction without the
    regulariser) added at rows ``idx``; made as zeros (``[total, 1, s_h, s_w]``) on first use."""
    if evidence is None:
        evidence = grad.new_zeros(total, *grad.shape[1:])
    evidence[idx] += grad
    return evidence


def order_ties(final: Tensor, evidence: Tensor | None, tie_break: float, traces: list[dict]) -> Tensor:
    """The saliency ``1 − final`` (``[B, s_h, s_w]``); a map with no order (all cells within ``FLAT_TOLERANCE``)
    gets the order of ``evidence`` (``[B, 1, s_h, s_w]``, the directions' sum), scaled to at most ``tie_break``.
    Each trace gets ``flat``: whether the returned map still has no order."""
    saliency = 1.0 - final
    no_order = (final.flatten(1).amax(1) - final.flatten(1).amin(1)) < FLAT_TOLERANCE  # [B]
    if tie_break > 0 and evidence is not None and bool(no_order.any()):
        ev = evidence[:, 0]
        order = tie_break * ev / ev.flatten(1).abs().amax(1).clamp_min(1e-30).view(-1, 1, 1)
        saliency = saliency + order * no_order.view(-1, 1, 1).to(order.dtype)
    for i, tr in enumerate(traces):
        tr["flat"] = bool(saliency[i].max() - saliency[i].min() < FLAT_TOLERANCE)
    return saliency


def _optimise_once(model: nn.Module, images: Tensor, target, baseline: Tensor, size: tuple[int, int],
                   settings: IGOSSettings, seed: int) -> Attribution:
    b, device, dtype = images.shape[0], images.device, images.dtype
    counter = ImageCounter()
    with frozen(model), counter.watch(model):
        targets = resolve_targets(model, images, target, settings.batch_size)
        generator = torch.Generator(device=device).manual_seed(int(seed))
        problem = _DeletionProblem(model, images, baseline, targets, settings)
        mask = torch.full((b, 1, *size), float(settings.start), device=device, dtype=dtype)
        every = torch.arange(b, device=device)
        _, prob = problem.plain(mask, every)
        value = torch.zeros_like(prob) if problem.noisy_search else problem.score(mask, every)[0]
        traces = new_traces(b, probability=prob.tolist())
        mask, value = descend(problem, mask, value, settings, generator, (3, *images.shape[-2:]), traces)
        final_value, final_prob = problem.plain(mask, every)
    for i, tr in enumerate(traces):
        tr.update(final_objective=float(final_value[i]), final_probability=float(final_prob[i]),
                  l1=float(settings.l1), tv=float(settings.tv), start=float(settings.start), retries=0,
                  stalled=bool((settings.start - mask[i]).abs().max() < STALL_TOLERANCE))
    final = mask[:, 0]
    saliency = order_ties(final, problem.evidence, settings.tie_break, traces)
    return Attribution(saliency=saliency, mask=final, trace=traces, forward_images=counter.forward_images,
                       backward_images=counter.backward_images, target=targets)
