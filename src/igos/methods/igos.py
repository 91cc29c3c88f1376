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

Differences from the authors' code, all deliberate (docs/algorithm.md): the line search scores the plain
masked image (the paper's condition (8)) or noise-free path points, not a freshly noised path; it starts from
the last accepted step / η instead of ``a_max``; several trial steps are scored in one batch; the base value
``F(M)`` comes from the previous accepted trial.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from ..perturb import regulariser, regulariser_gradient, upsample
from .common import SCORES, Attribution, scores_in_batches
from .descent import FLAT_TOLERANCE, STALL_TOLERANCE, DescentOptions, Objective, add_evidence, optimise
from .optim import adaptive_grid, path_gradient, path_scores, project_direction, search_point_indices, upsample_adjoint
from .options import Checks, Size
from .registry import MethodSpec

__all__ = ["igos", "IGOSOptions", "SPEC", "STALL_TOLERANCE", "FLAT_TOLERANCE", "DIRECTIONS", "GRIDS"]

#: the smallest score drop s(I) − s(I0) that ``normalise`` divides by, per score kind
NORMALISE_FLOOR = {"probability": 0.05, "log-odds": 1.0}

#: the descent direction's form: the paper's (each path point's gradient carries its α) or textbook
#: integrated gradients (the quadrature weights dα alone; they sum to p(M) − p(I0))
DIRECTIONS = ("paper", "ig")
#: where the K gradient points lie on α ∈ (0, 1]: k/K, or placed by where p changes along the path
GRIDS = ("uniform", "adaptive")


@dataclass(frozen=True)
class IGOSOptions(DescentOptions):
    """I-GOS's options: the descent's (:class:`~igos.methods.descent.DescentOptions`: ``iterations``, ``steps``,
    ``l1``, ``tv``, ``noise``, ``first_step``, ``step_decay``, ``armijo``, ``min_step``, ``fixed_step``,
    ``trials_per_batch``, ``search_points``, ``early_stop``, ``patience``, ``grow_only_on_first``,
    ``max_trials``, ``stop_on_failure``, ``stall_retries``, ``stall_relax``, ``start``, ``tie_break``,
    ``batch_size``) and the objective's form. ``steps`` is 10: at 20, the paper's, the quality on the
    development photos was no better at twice the cost (docs/results/igos-28-tuning.md).

    Attributes:
        search_noise: add the iteration's path noise to the line-search points too (the base value then comes
            from the IG pass); by default the line-search objective is noise-free, so it is deterministic and
            comparable across iterations.
        direction: ``"paper"``: ``(1/K) Σ_k ∂p(Φ(I, I0, α_k M))/∂M`` (each point's gradient carries a factor α_k:
            the paper's formula (4)); ``"ig"``: textbook integrated gradients in mask space, ``Σ_k dα_k
            ∂p/∂(αM)``, whose sum ``Σ M ⊙ g`` is ``p(M) − p(I0)``.
        grid: ``"uniform"``: ``α_k = k/K``; ``"adaptive"``: a noise-free forward sweep of ``sweep`` points per
            iteration, then the ``K`` gradient points placed where ``p`` changes
            (:func:`~igos.methods.optim.adaptive_grid`).
        sweep: points of the adaptive grid's forward sweep.
        score: what ``F`` measures of the class: ``"probability"`` (the paper's) or ``"log-odds"``
            (``log p − log(1 − p)``, unsaturated; λ must then be larger, docs/results/igos-start.md).
        normalise: divide the score term by its drop ``s(I) − s(I0)`` (at least 0.05 for the probability,
            1 for the log-odds), so that it falls from about 1 to 0 on every photo.
    """

    search_noise: bool = False
    direction: str = "paper"
    grid: str = "uniform"
    sweep: int = 10
    score: str = "probability"
    normalise: bool = False

    def check(self, checks: Checks) -> None:
        super().check(checks)
        checks.flag("search_noise", "normalise")
        checks.one_of("direction", DIRECTIONS)
        checks.one_of("grid", GRIDS)
        checks.one_of("score", SCORES)
        checks.at_least(1, "sweep")


class _DeletionProblem:
    """I-GOS's objective and direction for the descent driver (images, baseline, targets fixed)."""

    channels = 1

    def __init__(self, model: nn.Module, images: Tensor, baseline: Tensor, targets: Tensor, settings: IGOSOptions):
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

    def regulariser(self, masks: Tensor, idx: Tensor) -> Tensor:
        """``λ1 · mean|1 − M| + λ2 · TV(M)`` per image (``stable_step``'s smoothness)."""
        return regulariser(masks, self.s.l1, self.s.tv)

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

    def begin(self, mask: Tensor, score: bool = True) -> tuple[Tensor, dict[str, list]]:
        if not score:
            return mask.new_zeros(mask.shape[0]), {}
        every = torch.arange(mask.shape[0], device=mask.device)
        _, prob = self.plain(mask, every)
        value = torch.zeros_like(prob) if self.noisy_search else self.score(mask, every)[0]
        return value, {"probability": prob.tolist()}

    def finish(self, mask: Tensor, value: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        final_value, final_prob = self.plain(mask, torch.arange(mask.shape[0], device=mask.device))
        return mask[:, 0], {"final_objective": final_value, "final_probability": final_prob}

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
        if self.s.nesterov:  # no candidate is scored: F's estimate at this iterate comes from the IG pass
            search_noise = noise
            value = self.weight[idx] * path_probs.mean(1) + reg_value
        elif self.noisy_search:  # this iteration's noisy path points: the base value comes from the IG pass
            search_noise = noise[self.points]
            value = self.weight[idx] * path_probs[:, self.points].mean(1) + reg_value
        else:  # a deterministic objective: the base value is the last accepted trial's
            search_noise = None

        def objective(masks: Tensor, rows: Tensor) -> tuple[Tensor, Tensor]:
            return self.score(masks, idx[rows], search_noise)

        return direction, value, objective, info


def _igos(model: nn.Module, images: Tensor, targets: Tensor, *, baseline: Tensor, size: Size, seed: int,
          options: IGOSOptions) -> Attribution:
    """I-GOS's maths on checked inputs (the registry's call does the rest)."""
    return optimise(_DeletionProblem, model, images, targets, baseline, size, options, seed)


SPEC = MethodSpec("igos", _igos, "I-GOS", "any", IGOSOptions, reference="I-GOS (Qi et al. 2020)",
                  cost="≈ 70 / ≈ 70 at the defaults (28×28)", baseline=True, default_resolution=28)


def igos(model: nn.Module, images: Tensor, target: int | Sequence[int] | Tensor | None = None, *,
         baseline: Tensor | None = None, resolution: int | tuple[int, int] = 28, seed: int = 0,
         **options: Any) -> Attribution:
    """Explain ``model``'s decision for ``target`` (``None``: top-1) on ``images`` (``[B, 3, H, W]`` in
    ``[0, 1]``) with I-GOS at mask side ``resolution`` (or ``(s_h, s_w)``), from ``baseline`` (default the
    reference blur); ``options`` are :class:`IGOSOptions`' fields.

    Returns :class:`~igos.methods.common.Attribution` with ``saliency = 1 − M`` ``[B, s_h, s_w]``, the mask, the
    resolved options, and per image a trace: ``objective``, ``probability``, ``step``, ``trials``, ``accepted``
    and ``tried`` (every trial's ``(step, F)``) per iteration, ``ig_sum`` (``Σ M ⊙ g_IG``) against
    ``path_delta`` (``p`` at the path's end − ``p(I0)``) per iteration, ``stopped`` (why the run ended),
    ``iterations``, ``armijo`` records ``(F_before, F_after, step, ‖g‖²)``, ``stalled`` (no cell left its start
    by more than ``STALL_TOLERANCE``) and ``flat`` (the map has no order: all its values within
    ``FLAT_TOLERANCE``; it says nothing).
    """
    return SPEC(model, images, target, baseline=baseline, resolution=resolution, seed=seed, **options)
