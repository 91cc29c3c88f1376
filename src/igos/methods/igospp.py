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

import torch
from torch import Tensor, nn

from ..models import frozen
from ..perturb import blurred_baseline, btv_loss, check_resolution, edge_weights, l1_loss, upsample
from .common import Attribution, ImageCounter, check_images, resolve_targets, scores_in_batches
from .descent import DescentSettings, Objective, descend, new_traces
from .igos import add_evidence, default_start, order_ties, resolve_regularisation, search_point_indices
from .optim import path_gradient, path_scores, project_direction, upsample_adjoint

__all__ = ["igospp", "FULL", "LEAN", "LEAN_FROM", "resolve_profile"]

#: the search of the authors' method (with igos's K = 5 and early stop): every line search runs down to
#: ``min_step``, two trials per model call, each path K points; a map left with no order gets the order of the
#: directions' sum (as I-GOS's ``tie_break``: on EfficientNet-Lite1 one 28×28 map of ten was flat without it)
FULL: dict = dict(iterations=15, trials_per_batch=2, steps_single=None, max_trials=None, grow_only_on_first=False,
                  stop_on_failure=False, tie_break=1e-3)
#: a cheaper search of equal quality from 112×112 up (docs/results/igospp-cost.md): 3 points on the paths of
#: ``M_d`` and ``M_i`` alone, one trial per call starting at the last accepted step (larger only after a
#: first-trial pass), at most 6 trials, stop when no step passes, at most 10 iterations; a map left with no
#: order gets the order of the directions' sum (as I-GOS's ``tie_break``)
LEAN: dict = dict(iterations=10, trials_per_batch=1, steps_single=3, max_trials=6, grow_only_on_first=True,
                  stop_on_failure=True, tie_break=1e-3)
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


class _BidirectionalProblem:
    """iGOS++'s objective and direction for the descent driver; the mask is the pair ``[M_d, M_i]``."""

    def __init__(self, model: nn.Module, images: Tensor, baseline: Tensor, targets: Tensor,
                 settings: DescentSettings, l1: float, tv: float, search_points: int, edge_sigma: float,
                 steps_single: int, tie_break: float):
        self.model, self.images, self.baseline, self.targets, self.s = model, images, baseline, targets, settings
        self.l1, self.tv, self.tie_break = l1, tv, tie_break
        self.evidence: Tensor | None = None  # Σ of the score's gradient w.r.t. M over the iterations (tie order)
        self.size = tuple(images.shape[-2:])
        self.weights = edge_weights(images, edge_sigma)
        self.alphas = torch.arange(1, settings.steps + 1, device=images.device, dtype=images.dtype) / settings.steps
        # the paths of M_d and M_i alone may use fewer points (their noise: the first of the iteration's)
        self.alphas_single = torch.arange(1, steps_single + 1, device=images.device, dtype=images.dtype) / steps_single
        self.search_alphas = self.alphas[search_point_indices(settings.steps, max(1, search_points))]
        # p at the paths' starts: p(I0) for deletion paths, p(I) for insertion paths
        self.p_blurred, self.p_clean = (scores_in_batches(model, x, targets, settings.batch_size)
                                        for x in (baseline, images))

    def reg(self, m: Tensor, j: Tensor) -> Tensor:
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
        value = 0.5 * (d_m.mean(1) - s_m.mean(1) + d_d.mean(1) - s_i.mean(1)) + self.reg(m, j)
        return value, d_m[:, -1]

    def iteration(self, pair: Tensor, idx: Tensor, noise: Tensor | None, value: Tensor
                  ) -> tuple[Tensor, Tensor, Objective, dict[str, Tensor]]:
        md, mi = pair[:, :1], pair[:, 1:]
        m = md * mi
        x, x0, t, bs = self.images[idx], self.baseline[idx], self.targets[idx], self.s.batch_size

        info: dict[str, Tensor] = {}

        def ig(name: str, start: Tensor, end: Tensor, mask: Tensor, p_start: Tensor, alphas: Tensor) -> Tensor:
            """One path's direction; its sum and the path's probability change go to the trace."""
            eps = None if noise is None else noise[: alphas.shape[0]]
            g, probs = path_gradient(self.model, start, end, upsample(mask, self.size), t, alphas, eps, bs)
            info[f"ig_sum_{name}"] = (mask * upsample_adjoint(mask, g)).flatten(1).sum(1)
            info[f"path_delta_{name}"] = probs[:, -1] - p_start
            return g

        p0, p1 = self.p_blurred[idx], self.p_clean[idx]
        g_m_del, g_m_ins = ig("deletion", x0, x, m, p0, self.alphas), ig("insertion", x, x0, m, p1, self.alphas)
        one = self.alphas_single
        g_d, g_i = ig("deletion_md", x0, x, md, p0, one), ig("insertion_mi", x, x0, mi, p1, one)
        g_m = upsample_adjoint(m, g_m_del - g_m_ins)
        if self.tie_break > 0:
            self.evidence = add_evidence(self.evidence, self.images.shape[0], idx, g_m)
        leaf = m.detach().requires_grad_(True)
        with torch.enable_grad():
            (g_reg,) = torch.autograd.grad(self.reg(leaf, idx).sum(), leaf)
        g_prod = 0.5 * g_m + g_reg  # gradient with respect to M = M_d ⊙ M_i
        dir_d = g_prod * mi + 0.5 * upsample_adjoint(md, g_d)
        dir_i = g_prod * md - 0.5 * upsample_adjoint(mi, g_i)
        direction = project_direction(pair, torch.cat([dir_d, dir_i], dim=1))

        def objective(pairs: Tensor, rows: Tensor) -> tuple[Tensor, Tensor]:
            return self.score(pairs, idx[rows])

        return direction, value, objective, info


def igospp(
    model: nn.Module,
    images: Tensor,
    target: int | Sequence[int] | Tensor | None = None,
    *,
    baseline: Tensor | None = None,
    resolution: int | tuple[int, int] = 28,
    iterations: int | None = None,
    steps: int = 5,
    l1: float | None = None,
    tv: float | None = None,
    noise: float = 0.045,
    first_step: float = 1000.0,
    step_decay: float = 0.2,
    armijo: float = 1e-4,
    min_step: float = 1e-5,
    trials_per_batch: int | None = None,
    search_points: int = 3,
    edge_sigma: float = 0.01,
    early_stop: float | None = 1e-3,
    patience: int = 2,
    lean: bool | None = None,
    steps_single: int | None = None,
    grow_only_on_first: bool | None = None,
    max_trials: int | None = None,
    stop_on_failure: bool | None = None,
    tie_break: float | None = None,
    start: float | None = None,
    batch_size: int = 16,
    seed: int = 0,
) -> Attribution:
    """iGOS++ saliency ``[B, s_h, s_w]`` = ``1 − M_d ⊙ M_i`` (higher = more important).

    Options as :func:`igos.methods.igos.igos`. Defaults differ from the authors' (λ1 = 10, λ2 = 20 at
    224×224, K = 10 points per path, every image runs all ``iterations``), measured on 10 photos held out
    from the bench tables at 28×28 (docs/results/igos-start.md): with I-GOS's per-resolution λ
    (``l1``, ``tv`` = ``None``: :func:`igos.methods.igos.default_regularisation`), ``steps`` = 5 points on
    each of the four paths and I-GOS's early stop (``early_stop``, ``patience``) it scored deletion 0.078 /
    insertion 0.496 at 11.6 s per image, against 0.086 / 0.542 at 40.8 s with K = 10 and no early stop.
    ``start`` (both masks' first value) is I-GOS's per-resolution default (``None``:
    :func:`igos.methods.igos.default_start`, 0.5 up to 14×14, 1 from 28×28): on the same photos 0.5 against 1
    scored 0.128 / 0.523 against 0.175 / 0.432 at 7×7 and 0.105 / 0.521 against 0.107 / 0.449 at 14×14.
    The search: ``lean`` (``None``: from :data:`LEAN_FROM` = 112×112 up) takes the options left ``None`` among
    ``iterations``, ``trials_per_batch``, ``steps_single`` (points on the paths of ``M_d`` and ``M_i`` alone),
    ``max_trials``, ``grow_only_on_first``, ``stop_on_failure`` (see :class:`~igos.methods.descent.DescentSettings`)
    and ``tie_break`` (as I-GOS's) from :data:`LEAN`, else from :data:`FULL`. On the held-out photos
    (docs/results/igospp-cost.md) the lean search kept deletion and insertion at 112 and 224 at about half the
    time (1.5× I-GOS's seconds); at 28 it lost insertion on the table photos, at 7 on the tuning photos.
    ``l1=10, tv=20, steps=10, early_stop=None, start=1, lean=False, tie_break=0`` is the authors' setting.
    ``edge_sigma`` is the σ of the bilateral TV's edge weights. The trace has the objective, step, trials and
    acceptance per iteration, and why the run stopped.
    """
    images = check_images(images)
    size = check_resolution(resolution, tuple(images.shape[-2:]))
    start = default_start(max(size)) if start is None else start
    profile = resolve_profile(max(size), steps, lean=lean, iterations=iterations, trials_per_batch=trials_per_batch,
                              steps_single=steps_single, grow_only_on_first=grow_only_on_first,
                              max_trials=max_trials, stop_on_failure=stop_on_failure, tie_break=tie_break)
    iterations, trials_per_batch, max_trials = profile["iterations"], profile["trials_per_batch"], profile["max_trials"]
    grow_only_on_first, stop_on_failure = profile["grow_only_on_first"], profile["stop_on_failure"]
    steps_single, tie_break = profile["steps_single"], profile["tie_break"]
    steps_single = steps if steps_single is None else steps_single
    if not 1 <= steps_single <= steps:
        raise ValueError(f"steps_single must be in [1, steps={steps}], got {steps_single}")
    l1, tv = resolve_regularisation(max(size), l1, tv)
    settings = DescentSettings(iterations=iterations, steps=steps, noise=noise, first_step=first_step,
                               step_decay=step_decay, armijo=armijo, min_step=min_step,
                               trials_per_batch=trials_per_batch, early_stop=early_stop, patience=patience,
                               grow_only_on_first=grow_only_on_first, max_trials=max_trials,
                               stop_on_failure=stop_on_failure, start=start, batch_size=batch_size)
    b, device, dtype = images.shape[0], images.device, images.dtype
    counter = ImageCounter()
    with frozen(model), counter.watch(model):
        targets = resolve_targets(model, images, target, batch_size)
        if baseline is None:
            baseline = blurred_baseline(images)
        problem = _BidirectionalProblem(model, images, baseline, targets, settings, l1, tv, search_points, edge_sigma,
                                      steps_single, tie_break)
        generator = torch.Generator(device=device).manual_seed(int(seed))
        pair = torch.full((b, 2, *size), settings.start, device=device, dtype=dtype)
        value, _ = problem.score(pair, torch.arange(b, device=device))
        traces = new_traces(b)
        pair, value = descend(problem, pair, value, settings, generator, (3, *images.shape[-2:]), traces)
    final = pair[:, 0] * pair[:, 1]
    for i in range(b):
        traces[i].update(final_objective=float(value[i]), l1=float(l1), tv=float(tv))
    saliency = order_ties(final, problem.evidence, tie_break, traces)
    return Attribution(saliency, mask=final, trace=traces, target=targets,
                       forward_images=counter.forward_images, backward_images=counter.backward_images)
