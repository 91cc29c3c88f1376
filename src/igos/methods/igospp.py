"""iGOS++ (Khorram et al. 2021): bidirectional I-GOS.

Two masks, ``M_d`` (deletion) and ``M_i`` (insertion), both start at ``start`` (the authors': 1); the heatmap is
``1 − M`` with ``M = M_d ⊙ M_i``. With ``D(m)`` the mean class probability along the deletion
path ``Φ(I, I0, α·U(m))`` and ``S(m)`` along the insertion path ``Φ(I0, I, α·U(m))`` (clean where
``m = 0``, blurred where ``m = 1``), the objective is

    F(M_d, M_i) = ½ [D(M) − S(M) + D(M_d) − S(M_i)] + λ1 · mean|1 − M| + λ2 · BTV(M)

Its descent direction uses integrated gradients of the four path terms (noise on every path
point, as in I-GOS), then one shared step from the same Armijo line search as I-GOS (a
noise-free subset of the path points), and projection to ``[0, 1]``. BTV is the mean of the
low-resolution TV and an edge-aware TV of ``U(M)`` with weights ``exp(−(ΔI)²/σ)``, σ = 0.01 on
the ``[0, 1]`` image (squared differences averaged over channels).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from ..perturb import btv_loss, edge_weights, l1_loss, upsample
from .common import Attribution, scores_in_batches
from .descent import SEARCH_NEUTRAL, DescentOptions, Objective, add_evidence, optimise
from .optim import path_gradients, path_scores, project_direction, search_point_indices, upsample_adjoint
from .options import Checks, Size
from .registry import MethodSpec

__all__ = ["igospp", "IGOSppOptions", "SPEC", "ACCELERATED", "FULL", "LEAN", "LEAN_FROM",
           "resolve_profile"]

#: the search of the authors' method (with igos's K = 5 and early stop): every line search runs down to
#: ``min_step``, two trials per model call, each path K points; a map left with no order gets the order of the
#: directions' sum (as I-GOS's ``tie_break``: on EfficientNet-Lite1 one 28×28 map of ten was flat without it)
FULL: dict = dict(iterations=15, trials_per_batch=2, steps_single=None, max_trials=None, grow_only_on_first=False,
                  stop_on_failure=False, tie_break=1e-3)
#: a cheaper search of equal quality from 112×112 up (docs/results/igospp-cost.md): 3 points on the paths of
#: ``M_d`` and ``M_i`` alone, one trial per call starting at the last accepted step (larger only after a
#: first-trial pass), at most 6 trials, stop when no step passes, at most 7 iterations (10 until issue 23: 7 kept
#: deletion, insertion and ROAD on the tuning and table photos at 112 and 224 at 0.86× and 0.62× the seconds,
#: docs/results/igospp-cost.md, "Seven iterations")
LEAN: dict = dict(iterations=7, trials_per_batch=1, steps_single=3, max_trials=6, grow_only_on_first=True,
                  stop_on_failure=True, tie_break=1e-3)
#: the accelerated search (issue 23): the authors' later Nesterov-accelerated fixed step (no line search) with the
#: step in units of the direction's largest cell, 3 points on the paths of ``M`` and 1 on those of ``M_d`` and
#: ``M_i`` alone, 15 iterations (docs/results/igospp-accelerated.md). With momentum it is the default nowhere (its
#: maps failed the known-answer check: at 14×14 a third of their positive mass where the model sees); without
#: momentum and with K = 2 (``momentum=False, steps=2``) it is ``auto`` at 28×28 and, warm-started, at 14×14
#: (:data:`igos.methods.recommended.RECOMMENDED_OPTIONS`)
ACCELERATED: dict = dict(iterations=15, steps=3, steps_single=1, fixed_step=0.2, tie_break=1e-3)
#: the smallest mask side at which ``lean`` is the default (at 28×28 it lost insertion on 15 of the 20 table
#: photos, at 7×7 it scored worse on the tuning photos)
LEAN_FROM = 112


def resolve_profile(side: int, steps: int, lean: bool | None = None, **given) -> dict:
    """The search options a run at mask side ``side`` uses: those ``given`` (not ``None``), the rest from
    :data:`LEAN` (``lean``; ``None``: from :data:`LEAN_FROM` up) or :data:`FULL`; ``steps_single``
    at most ``steps``."""
    lean = side >= LEAN_FROM if lean is None else bool(lean)
    profile = LEAN if lean else FULL
    out = {"lean": lean, **{k: profile[k] if given.get(k) is None else given[k] for k in profile}}
    if given.get("steps_single") is None and out["steps_single"] is not None:
        out["steps_single"] = min(out["steps_single"], steps)
    return out


@dataclass(frozen=True)
class IGOSppOptions(DescentOptions):
    """iGOS++'s options: the descent's (:class:`~igos.methods.descent.DescentOptions`: ``l1``, ``tv``,
    ``noise``, ``first_step``, ``step_decay``, ``armijo``, ``min_step``, ``fixed_step``, ``search_points``,
    ``early_stop``, ``patience``, ``stall_retries``, ``stall_relax``, ``start``, ``batch_size``) with the search
    profile's options ``None`` until resolved, and the bilateral TV's σ. Defaults differ from the authors'
    (λ1 = 10, λ2 = 20, K = 10, a line search, every image runs all iterations): I-GOS's per-resolution λ and start,
    and the line search with K = 5 and I-GOS's early stop, measured on photos held out from the bench tables
    (docs/results/igos-start.md, docs/results/igospp-cost.md); with ``l1=10, tv=20, steps=10, early_stop=None,
    start=1, lean=False, tie_break=0`` it is the authors' setting. ``accelerated=True`` is the Nesterov fixed
    step of the authors' later code (:data:`ACCELERATED`: K = 3 and 1, 15 iterations, about I-GOS's cost;
    docs/results/igospp-accelerated.md: better deletion and insertion at 14×14, but maps that fail the
    known-answer check); without momentum and with K = 2 it is what ``auto`` runs at 28×28 and 14×14, the method's
    own defaults staying the line search.

    Attributes:
        accelerated: the Nesterov-accelerated fixed step (``nesterov`` and ``normalise_step`` on, the options
            left ``None`` from :data:`ACCELERATED`); with ``momentum=False`` the same fixed step without momentum,
            its step capped at ``1/L`` of the regulariser (``stable_step``, always on there); ``False``: the line
            search of the paper, with the profile of ``lean``; ``None``: the line search.
        steps: ``K``, points on each of the four paths (``None``: 3 accelerated, 5 with the line search).
        edge_sigma: σ of the bilateral TV's edge weights ``exp(−(ΔI)²/σ)``.
        lean: take the search options left ``None`` (``iterations``, ``trials_per_batch``, ``steps_single``,
            ``max_trials``, ``grow_only_on_first``, ``stop_on_failure``, ``tie_break``) from :data:`LEAN`, else
            from :data:`FULL`; ``None``: lean from :data:`LEAN_FROM` = 112×112 up, where it kept deletion and
            insertion at about half the time.
        steps_single: points on the paths of ``M_d`` and ``M_i`` alone (``None``: the profile's, at most
            ``steps``; the full search uses ``steps``).
        iterations, trials_per_batch, max_trials, grow_only_on_first, stop_on_failure, tie_break: as I-GOS's,
            ``None`` until the profile fills them.
    """

    iterations: int | None = None
    steps: int | None = None
    accelerated: bool | None = None
    trials_per_batch: int | None = None
    grow_only_on_first: bool | None = None
    stop_on_failure: bool | None = None
    tie_break: float | None = None
    edge_sigma: float = 0.01
    lean: bool | None = None
    steps_single: int | None = None

    HASH_NEUTRAL: ClassVar = {**SEARCH_NEUTRAL, "lean": False, "steps_single": None, "tie_break": 0.0,
                              "fixed_step": None, "stall_retries": 0, "stall_relax": 0.3, "accelerated": False}
    FILLED_WHEN_RESOLVED: ClassVar = frozenset({"steps"})

    def check(self, checks: Checks) -> None:
        super().check(checks)
        checks.within("edge_sigma", 0, float("inf"), open_lo=True)
        checks.flag("lean", "accelerated", optional=True)
        if self.steps_single is not None and self.steps is not None:
            checks.within("steps_single", 1, self.steps if isinstance(self.steps, int) else 1)

    def fixed_step_search(self) -> bool:
        return self.nesterov or bool(self.accelerated)  # accelerated sets nesterov when resolved

    def resolved(self, size: Size | None) -> IGOSppOptions:
        """I-GOS's λ and start, then the search: accelerated (:data:`ACCELERATED`) when asked, else the line
        search's profile at the mask's larger side (``lean`` or ``FULL``)."""
        base = super().resolved(size)
        side = max(size) if size else 28
        if base.accelerated:
            fill = {k: v for k, v in ACCELERATED.items() if getattr(base, k) is None}
            if "steps_single" in fill and base.steps is not None:
                fill["steps_single"] = min(fill["steps_single"], base.steps)
            # without momentum the step is always capped at 1/L (stable_step): uncapped, it overshoots
            return base.replace(accelerated=True, nesterov=True, normalise_step=True,
                                stable_step=base.stable_step or not base.momentum, **fill)
        base = base.replace(steps=5 if base.steps is None else base.steps, accelerated=False)
        given = {k: getattr(base, k) for k in FULL}
        return base.replace(**resolve_profile(side, base.steps, lean=base.lean, **given))


class _BidirectionalProblem:
    """iGOS++'s objective and direction for the descent driver; the mask is the pair ``[M_d, M_i]``."""

    channels = 2

    def __init__(self, model: nn.Module, images: Tensor, baseline: Tensor, targets: Tensor, settings: IGOSppOptions):
        self.model, self.images, self.baseline, self.targets, self.s = model, images, baseline, targets, settings
        self.l1, self.tv, self.tie_break = settings.l1, settings.tv, settings.tie_break
        self.evidence: Tensor | None = None  # Σ of the score's gradient w.r.t. M over the iterations (tie order)
        self.size = tuple(images.shape[-2:])
        self.weights = edge_weights(images, settings.edge_sigma)
        steps = settings.steps
        single = steps if settings.steps_single is None else settings.steps_single  # None: the full search
        self.alphas = torch.arange(1, steps + 1, device=images.device, dtype=images.dtype) / steps
        # the paths of M_d and M_i alone may use fewer points (their noise: the first of the iteration's)
        self.alphas_single = torch.arange(1, single + 1, device=images.device, dtype=images.dtype) / single
        self.search_alphas = self.alphas[search_point_indices(steps, max(1, settings.search_points))]
        # p at the paths' starts: p(I0) for deletion paths, p(I) for insertion paths
        self.p_blurred, self.p_clean = (scores_in_batches(model, x, targets, settings.batch_size)
                                        for x in (baseline, images))

    def begin(self, pair: Tensor, score: bool = True) -> tuple[Tensor, dict[str, list]]:
        if not score:
            return pair.new_zeros(pair.shape[0]), {}
        return self.score(pair, torch.arange(pair.shape[0], device=pair.device))[0], {}

    def finish(self, pair: Tensor, value: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        return pair[:, 0] * pair[:, 1], {"final_objective": value}

    def regulariser(self, m: Tensor, j: Tensor) -> Tensor:
        """``λ1 · mean|1 − M| + λ2 · BTV(M)`` of ``M = M_d ⊙ M_i`` of images ``j``, per image."""
        return self.l1 * l1_loss(m) + self.tv * btv_loss(m, (self.weights[0][j], self.weights[1][j]), self.size)

    def score(self, pair: Tensor, j: Tensor) -> tuple[Tensor, Tensor]:
        """``F`` of mask pairs ``[N, 2, s_h, s_w]`` of images ``j`` and ``p`` at α = 1 of the deletion path."""
        md, mi = pair[:, :1], pair[:, 1:]
        m = md * mi
        up, upd, upi = (upsample(t, self.size) for t in (m, md, mi))
        x, x0, t, alphas, bs = self.images[j], self.baseline[j], self.targets[j], self.search_alphas, self.s.batch_size
        d_m = path_scores(self.model, x0, x, up, t, alphas, None, bs)
        s_m = path_scores(self.model, x, x0, up, t, alphas, None, bs)
        d_d = path_scores(self.model, x0, x, upd, t, alphas, None, bs)
        s_i = path_scores(self.model, x, x0, upi, t, alphas, None, bs)
        value = 0.5 * (d_m.mean(1) - s_m.mean(1) + d_d.mean(1) - s_i.mean(1)) + self.regulariser(m, j)
        return value, d_m[:, -1]

    def iteration(self, pair: Tensor, idx: Tensor, noise: Tensor | None, value: Tensor
                  ) -> tuple[Tensor, Tensor, Objective, dict[str, Tensor]]:
        md, mi = pair[:, :1], pair[:, 1:]
        m = md * mi
        x, x0, t, bs = self.images[idx], self.baseline[idx], self.targets[idx], self.s.batch_size

        info: dict[str, Tensor] = {}
        p0, p1 = self.p_blurred[idx], self.p_clean[idx]
        one = self.alphas_single
        # the four paths (name, start, end, mask, p at the start, points), their points sharing the model calls
        paths = [("deletion", x0, x, m, p0, self.alphas), ("insertion", x, x0, m, p1, self.alphas),
                 ("deletion_md", x0, x, md, p0, one), ("insertion_mi", x, x0, mi, p1, one)]
        specs = [(start, end, upsample(mask, self.size), alphas, None if noise is None else noise[: alphas.shape[0]])
                 for _, start, end, mask, _, alphas in paths]
        results = path_gradients(self.model, specs, t, bs)
        means: list[Tensor] = []  # each path's mean probability: F's estimate at this iterate
        for (name, _, _, mask, p_start, _), (g, probs) in zip(paths, results):
            info[f"ig_sum_{name}"] = (mask * upsample_adjoint(mask, g)).flatten(1).sum(1)
            info[f"path_delta_{name}"] = probs[:, -1] - p_start
            means.append(probs.mean(1))
        (g_m_del, _), (g_m_ins, _), (g_d, _), (g_i, _) = results
        g_m = upsample_adjoint(m, g_m_del - g_m_ins)
        if self.tie_break > 0:
            self.evidence = add_evidence(self.evidence, self.images.shape[0], idx, g_m)
        leaf = m.detach().requires_grad_(True)
        with torch.enable_grad():
            (g_reg,) = torch.autograd.grad(self.regulariser(leaf, idx).sum(), leaf)
        g_prod = 0.5 * g_m + g_reg  # gradient with respect to M = M_d ⊙ M_i
        dir_d = g_prod * mi + 0.5 * upsample_adjoint(md, g_d)
        dir_i = g_prod * md - 0.5 * upsample_adjoint(mi, g_i)
        direction = project_direction(pair, torch.cat([dir_d, dir_i], dim=1))
        if self.s.nesterov:  # no candidate is scored: the four paths' estimate of F stands for F here
            value = 0.5 * (means[0] - means[1] + means[2] - means[3]) + self.regulariser(m, idx)

        def objective(pairs: Tensor, rows: Tensor) -> tuple[Tensor, Tensor]:
            return self.score(pairs, idx[rows])

        return direction, value, objective, info


def _igospp(model: nn.Module, images: Tensor, targets: Tensor, *, baseline: Tensor, size: Size, seed: int,
            options: IGOSppOptions) -> Attribution:
    """iGOS++'s maths on checked inputs (the registry's call does the rest)."""
    return optimise(_BidirectionalProblem, model, images, targets, baseline, size, options, seed)


SPEC = MethodSpec("igospp", _igospp, "iGOS++", "any", IGOSppOptions, reference="iGOS++ (Khorram et al. 2021)",
                  cost="4 IG passes per iteration", baseline=True, default_resolution=28)


def igospp(model: nn.Module, images: Tensor, target: int | Sequence[int] | Tensor | None = None, *,
           baseline: Tensor | None = None, resolution: int | tuple[int, int] = 28, seed: int = 0,
           **options: Any) -> Attribution:
    """iGOS++ saliency ``[B, s_h, s_w]`` = ``1 − M_d ⊙ M_i`` (higher = more important); arguments as
    :func:`igos.methods.igos.igos`, ``options`` :class:`IGOSppOptions`' fields. The trace has the objective, step,
    trials and acceptance per iteration, why the run stopped, ``stalled`` and ``flat``."""
    return SPEC(model, images, target, baseline=baseline, resolution=resolution, seed=seed, **options)
