"""The descent driver shared by I-GOS and iGOS++: it owns a whole call (the mask's start, the iterations with
their active set, line search or fixed step, early stopping and step carry-over, the traces, the stall retry
and the tie order). Each method supplies only its objective and direction, a :class:`Problem`, and its options,
a :class:`DescentOptions`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

import torch
from torch import Tensor

from ..errors import UnsupportedLayerError, UnsupportedTargetError
from .common import FLAT_TOLERANCE, Attribution
from .defaults import default_start, resolve_regularisation
from .optim import SearchResult, line_search, noise_draw
from .options import Checks, MethodOptions, Size
from .warm import warm_start, warm_start_methods

__all__ = ["DescentOptions", "Problem", "Objective", "descend", "optimise", "smoothness", "new_traces", "record_step",
           "record_iteration", "order_ties", "add_evidence", "STALL_TOLERANCE", "FLAT_TOLERANCE", "SEARCH_NEUTRAL"]

#: ``(candidate masks [N, ...], rows of the current active set [N]) -> (F [N], probability [N])``
Objective = Callable[[Tensor, Tensor], tuple[Tensor, Tensor]]

#: a mask whose cells all stay within this of its start did not move (``stalled``)
STALL_TOLERANCE = 1e-3

#: options added after bench rows were stored (the search's, the warm start), at the values that behave as before
SEARCH_NEUTRAL = {"grow_only_on_first": False, "max_trials": None, "stop_on_failure": False, "nesterov": False,
                  "normalise_step": False, "momentum": True, "stable_step": False, "init": None, "init_depth": 1.0,
                  "init_fallback": None, "stall_init": None}
#: power iterations that estimate the regulariser's smoothness for ``stable_step``
SMOOTHNESS_ITERATIONS = 30


@dataclass(frozen=True)
class DescentOptions(MethodOptions):
    """How a mask is optimised; validated once, when made. ``None`` marks a per-resolution default that
    :meth:`resolved` fills.

    Attributes:
        iterations: maximum descent iterations.
        steps: ``K``, integration points ``α = 1/K … 1`` per direction.
        l1, tv: ``λ1`` (weight of ``mean|1 − M|``) and ``λ2`` (weight of the total variation); ``None``: the
            per-resolution default (:func:`~igos.methods.defaults.default_regularisation`).
        noise: σ of the Gaussian noise on every path point, ``[0, 1]`` pixel units (0: none).
        first_step: ``a_max``, the first trial step; later searches start at the last accepted step /
            ``step_decay`` (capped by ``a_max``).
        step_decay, armijo, min_step: η, β and ``a_min`` of the line search.
        fixed_step: a constant step instead of the line search (the paper's ablation).
        nesterov: with ``fixed_step``, the authors' later Nesterov-accelerated update (Khorram et al.'s 2023
            code): ``θ_k = M_k − a·g_k``, ``M_{k+1} = P(θ_k + k/(k+3)·(θ_k − θ_{k−1}))``. No candidate mask is
            scored: every image runs all ``iterations`` (no early stop), the trace's objective is the
            direction's own path estimate of ``F`` at each iterate (no ``trials``, ``accepted``, ``tried`` or
            ``armijo``: nothing is tested), and ``F`` is scored once at the end.
        momentum: with ``nesterov``, the momentum term ``k/(k+3)·(θ_k − θ_{k−1})``; ``False``: the same loop
            without it, a plain projected fixed step ``M_{k+1} = P(M_k − a·g_k)``.
        stable_step: with ``nesterov``, the step is at most ``1/L``, ``L`` the largest eigenvalue of the
            regulariser's Hessian (its gradient's Lipschitz constant, per image: a power iteration at the start,
            no model call). A larger fixed step makes the smoothing term's explicit update unstable (it
            overshoots and spreads the mask into cells the score never asked to delete), which a normalised step
            reaches whenever the score's own gradient is small.
        normalise_step: the fixed step is in units of the direction's largest cell, per image and iteration
            (``a = fixed_step / max|g|``: the cell pushed hardest moves by ``fixed_step``), so one step size
            serves photos whose score gradients differ by orders of magnitude; ``False``: ``a = fixed_step``.
        trials_per_batch: candidate steps scored per model call in the line search.
        search_points: the line search scores ``F`` with the mean score over this many of the path points
            (evenly spaced, α = 1 included); 0 scores the plain masked image (the paper's condition (8), which
            stalls on confident images: the softmax is flat near ``M = 1``).
        early_stop, patience: stop an image after ``patience`` iterations that lower ``F`` by less than
            ``early_stop``; ``None`` runs every iteration.
        grow_only_on_first: the next line search starts at the accepted step / ``step_decay`` only when this
            search accepted its first trial, else at the accepted step (``False``: always / ``step_decay``).
        max_trials: at most this many candidate steps per line search (``None``: down to ``min_step``); counted
            across its calls, so it may be smaller or larger than ``trials_per_batch``.
        stop_on_failure: an image whose line search accepts no step takes ``min_step`` and stops there (it
            sits at a minimum of ``F`` along its direction); ``False``: it goes on.
        stall_retries, stall_relax: an image whose mask never left its start (``stalled``, by
            :meth:`stall_tolerance`) is optimised again
            from the start with ``λ1, λ2`` multiplied by ``stall_relax``, up to ``stall_retries`` times (0: off,
            the papers' method); its trace gives the λ used and ``retries``.
        stall_init: the retry of a stalled image starts instead from this method's warm start (as ``init``, with
            ``init_depth`` and ``init_fallback``) at the same λ (a further retry relaxes λ); ``None``: λ ×
            ``stall_relax`` from the plain start. From Excitation Backprop at 28×28 it won both removals on the stalled
            photos but failed the random-logit check, so ``auto`` does not use it (docs/results/stall-retries-28.md).
        start: the mask's value everywhere at the start, in ``[0, 1]``; ``None``: the per-resolution default
            (:func:`~igos.methods.defaults.default_start`: 0.5 up to 14×14, 1 from 28×28).
        init: a warm start (the authors' later code has one, ``init_mask``): the name of a registered method, run
            at its own defaults (a cheap one serves: ``gradcam``, ``ebp``, ``gradient``, ``ig``), whose map ``m`` of
            the same image and target seeds the deletion mask, ``M_0 = start · (1 − init_depth · m̂)`` with
            ``m̂ = max(m, 0) / max m`` resampled to the mask's size (cell means down, bilinear up); ``None``: every
            cell at ``start``. Its images count in the method's cost.
        init_depth: how far the warm start's most salient cell starts below ``start``, in ``[0, 1]``.
        init_fallback: the method whose map seeds the mask instead where ``init`` cannot run on this model or
            target (Excitation Backprop refuses layers it has no rule for and targets that are not output units:
            :class:`~igos.errors.UnsupportedLayerError`, :class:`~igos.errors.UnsupportedTargetError`); the traces'
            ``init`` names the method used. ``None``: such a refusal is raised. Unused without ``init``.
        tie_break: a mask that ends with no order (every cell equal, e.g. one that never left 1) gets the order
            of the sum of its directions over the iterations, scaled to at most ``tie_break`` (0: off), instead
            of a flat map; a mask with any order is returned as it is.
        batch_size: images per model call (path points and trials are chunked by it).
    """

    iterations: int | None = 15
    steps: int = 10
    l1: float | None = None
    tv: float | None = None
    noise: float = 0.045
    first_step: float = 1000.0
    step_decay: float = 0.2
    armijo: float = 1e-4
    min_step: float = 1e-5
    fixed_step: float | None = None
    nesterov: bool = False
    normalise_step: bool = False
    momentum: bool = True
    stable_step: bool = False
    trials_per_batch: int | None = 2
    search_points: int = 3
    early_stop: float | None = 1e-3
    patience: int = 2
    grow_only_on_first: bool | None = False
    max_trials: int | None = None
    stop_on_failure: bool | None = False
    stall_retries: int = 0
    stall_relax: float = 0.3
    stall_init: str | None = None
    start: float | None = None
    init: str | None = None
    init_depth: float = 1.0
    init_fallback: str | None = None
    tie_break: float | None = 1e-3

    HASH_NEUTRAL: ClassVar = SEARCH_NEUTRAL
    #: options that may be ``None`` until :meth:`resolved` fills them (besides those always optional)
    FILLED_WHEN_RESOLVED: ClassVar[frozenset] = frozenset()

    def check(self, checks: Checks) -> None:
        super().check(checks)
        checks.at_least(1, "patience")
        checks.at_least(1, "steps", optional="steps" in self.FILLED_WHEN_RESOLVED)
        checks.at_least(0, "iterations", optional=True)
        checks.at_least(1, "trials_per_batch", "max_trials", optional=True)
        checks.at_least(0, "noise", "armijo", "search_points", "stall_retries")
        checks.at_least(0, "l1", "tv", "tie_break", "early_stop", optional=True)
        checks.within("step_decay", 0, 1, open_lo=True, open_hi=True)
        checks.within("stall_relax", 0, 1, open_lo=True, open_hi=True)
        checks.within("start", 0, 1, optional=True)
        checks.within("init_depth", 0, 1)
        starters = warm_start_methods()
        checks.need(self.init is None or self.init in starters, "init",
                    f"None or a registered method's name: {', '.join(starters)}")
        checks.need(self.init_fallback is None or self.init_fallback in starters, "init_fallback",
                    f"None or a registered method's name: {', '.join(starters)}")
        checks.need(self.stall_init is None or self.stall_init in starters, "stall_init",
                    f"None or a registered method's name: {', '.join(starters)}")
        checks.within("min_step", 0, float("inf"), open_lo=True)
        checks.need(not isinstance(self.min_step, (int, float)) or not isinstance(self.first_step, (int, float))
                    or self.min_step <= self.first_step, "min_step", f"≤ first_step={self.first_step!r}")
        checks.at_least(0, "fixed_step", optional=True)
        checks.flag("grow_only_on_first", "stop_on_failure", optional=True)
        checks.flag("nesterov", "normalise_step", "momentum", "stable_step")
        checks.need(not (self.nesterov or self.normalise_step) or self.fixed_step is not None,
                    "nesterov" if self.nesterov else "normalise_step", "False without a fixed_step")
        fixed = self.fixed_step_search()
        checks.need(fixed or self.momentum, "momentum", "True without a fixed-step search (nesterov, or iGOS++'s "
                    "accelerated): the line search has none")
        checks.need(fixed or not self.stable_step, "stable_step", "False without a fixed-step search (nesterov, or "
                    "iGOS++'s accelerated)")

    def fixed_step_search(self) -> bool:
        """Whether these options ask for the fixed-step loop without a search (where ``momentum`` and
        ``stable_step`` apply), before :meth:`resolved` too."""
        return self.nesterov

    def resolved(self, size: Size | None) -> DescentOptions:
        """λ1, λ2 and the start at the mask's larger side, where they are ``None``."""
        side = max(size) if size else 28
        l1, tv = resolve_regularisation(side, self.l1, self.tv)
        return self.replace(l1=l1, tv=tv, start=default_start(side) if self.start is None else self.start)

    def stall_tolerance(self) -> float:
        """How far some cell must move from the start for a run not to count as ``stalled``: ``STALL_TOLERANCE``;
        with a fixed step in units of the direction's largest cell (``nesterov`` and ``normalise_step``), one
        nominal step, ``fixed_step``. Such a step moves the cell pushed hardest by ``fixed_step`` in every
        iteration unless ``1/L`` caps it, so a mask none of whose cells got that far over the whole run was held
        at its start by the regulariser: where the class probability is saturated its gradient is too small to
        move the mask against ``λ1, λ2`` (docs/results/stall-retries-28.md)."""
        if self.nesterov and self.normalise_step and self.fixed_step is not None:
            return float(self.fixed_step)
        return STALL_TOLERANCE

    def relaxed(self) -> DescentOptions:
        """The options of a stall retry, one retry fewer: with ``stall_init``, the same λ from that method's warm start
        (``init``, with ``init_depth`` and ``init_fallback``); without, λ1, λ2 × ``stall_relax``."""
        if self.stall_init is not None:
            return self.replace(init=self.stall_init, stall_init=None, stall_retries=self.stall_retries - 1)
        return self.replace(l1=self.l1 * self.stall_relax, tv=self.tv * self.stall_relax,
                            stall_retries=self.stall_retries - 1)


class Problem(Protocol):
    """A method's objective and direction on fixed images, baseline and targets, for the driver."""

    #: mask channels: 1 for I-GOS, 2 (the pair ``M_d``, ``M_i``) for iGOS++
    channels: int
    #: Σ over the iterations of each image's direction without the regulariser ``[B, 1, s_h, s_w]`` (tie order)
    evidence: Tensor | None

    def begin(self, mask: Tensor, score: bool = True) -> tuple[Tensor, dict[str, list]]:
        """``F`` at the start ``[B]`` and per-trace lists to start the traces with (e.g. ``probability``); with
        ``score=False`` (the fixed-step loop, which never reads it) zeros and no model call for ``F``."""
        ...

    def iteration(self, mask: Tensor, idx: Tensor, noise: Tensor | None, value: Tensor
                  ) -> tuple[Tensor, Tensor, Objective, dict[str, Tensor]]:
        """``(direction, F(M) to test the step against, the line-search objective, diagnostics)`` at ``mask``
        for the images ``idx`` (rows of the batch); each diagnostic is one value per image, appended to the
        traces under its name."""
        ...

    def regulariser(self, mask: Tensor, idx: Tensor) -> Tensor:
        """The regulariser of masks ``[n, c, s_h, s_w]`` of images ``idx`` per image ``[n]``, as a function of the
        mask the model sees (``stable_step`` measures its smoothness)."""
        ...

    def finish(self, mask: Tensor, value: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        """The final mask ``[B, s_h, s_w]`` (1 = keep) and per-image values for the traces."""
        ...


#: trace keys of the line search (and the scored fixed step); the accelerated search scores no candidate
SEARCH_KEYS = ("trials", "accepted", "tried", "armijo")


def new_traces(count: int, search: bool = True, **extra: list) -> list[dict]:
    """Empty per-image traces (with the search's keys, :data:`SEARCH_KEYS`, when ``search``); a key in ``extra``
    (e.g. ``probability=[p0]``) is recorded too."""
    keys = ("objective", "step", *(SEARCH_KEYS if search else ()))
    return [{**{k: [] for k in keys}, "iterations": 0, "stopped": "",
             **{k: list(v[i:i + 1]) for k, v in extra.items()}} for i in range(count)]


def record_step(traces: list[dict], idx: Tensor, objective: Tensor, step: Tensor,
                info: dict[str, Tensor] | None = None) -> None:
    """Append one iteration's objective, step and the problem's diagnostics ``info`` to the traces of images
    ``idx``."""
    for r, i in enumerate(idx.tolist()):
        tr = traces[i]
        for name, values in (info or {}).items():
            tr.setdefault(name, []).append(float(values[r]))
        tr["objective"].append(float(objective[r]))
        tr["step"].append(float(step[r]))
        tr["iterations"] += 1


def record_iteration(traces: list[dict], idx: Tensor, base: Tensor, search: SearchResult, direction: Tensor,
                     info: dict[str, Tensor] | None = None) -> None:
    """Append one searched iteration to the traces of images ``idx``: :func:`record_step`, then the trials,
    whether the step passed the Armijo test, every trial ``(step, F)``, the record ``(F_before, F_after, step,
    ‖g‖²)`` and, for traces that keep one, the class probability."""
    record_step(traces, idx, search.value, search.step, info)
    gnorm2 = direction.flatten(1).pow(2).sum(1)
    for r, i in enumerate(idx.tolist()):
        tr = traces[i]
        if search.tried is not None:
            tr["tried"].append(search.tried[r])
        tr["armijo"].append((float(base[r]), float(search.value[r]), float(search.step[r]), float(gnorm2[r])))
        tr["trials"].append(int(search.trials[r]))
        tr["accepted"].append(bool(search.accepted[r]))
        if "probability" in tr:
            tr["probability"].append(float(search.probability[r]))


def _fixed_step(objective: Objective, mask: Tensor, direction: Tensor, s: DescentOptions) -> SearchResult:
    step = _step_size(direction, s)
    new_mask = (mask - step.view(-1, 1, 1, 1) * direction).clamp(0.0, 1.0)
    rows = torch.arange(mask.shape[0], device=mask.device)
    value, prob = objective(new_mask, rows)
    return SearchResult(step, new_mask, value, prob, torch.ones_like(rows),
                        torch.ones_like(rows, dtype=torch.bool),
                        [[(a, f)] for a, f in zip(step.tolist(), value.tolist())])


def _step(objective: Objective, mask: Tensor, direction: Tensor, base: Tensor, first: Tensor,
          s: DescentOptions) -> SearchResult:
    """One step: the fixed one, or the line search's from ``first``."""
    if s.fixed_step is not None:
        return _fixed_step(objective, mask, direction, s)
    return line_search(objective, mask, direction, base, first, decay=s.step_decay, armijo=s.armijo,
                       min_step=s.min_step, trials_per_batch=s.trials_per_batch, max_trials=s.max_trials)


def _stop(traces: list[dict], idx: Tensor, active: Tensor, slow: Tensor, base: Tensor, search: SearchResult,
          s: DescentOptions) -> None:
    """Early stop (``F`` fell too little ``patience`` times) and stop on failure, in ``active`` and the traces."""
    if s.early_stop is not None:
        small = (base - search.value) < s.early_stop
        slow[idx] = torch.where(small, slow[idx] + 1, torch.zeros_like(slow[idx]))
        for i in idx[slow[idx] >= s.patience].tolist():
            traces[i]["stopped"] = f"early stop: F fell by less than {s.early_stop:g} in {s.patience} iterations"
        active &= slow < s.patience
    if s.stop_on_failure:
        failed = idx[~search.accepted]
        for i in failed.tolist():
            traces[i]["stopped"] = "line search: no step passed the Armijo test; took min_step"
        active[failed] = False


def _step_size(direction: Tensor, s: DescentOptions) -> Tensor:
    """The fixed step per image ``[n]``: ``fixed_step``, or over the direction's largest cell."""
    a = torch.full((direction.shape[0],), float(s.fixed_step), device=direction.device, dtype=direction.dtype)
    if s.normalise_step:
        a = a / direction.flatten(1).abs().amax(1).clamp_min(1e-30)
    return a


def smoothness(regulariser: Callable[[Tensor], Tensor], shape: tuple[int, ...], device: torch.device,
               dtype: torch.dtype, iterations: int = SMOOTHNESS_ITERATIONS, seed: int = 0) -> Tensor:
    """The largest eigenvalue of the Hessian of ``regulariser`` (masks ``shape`` = ``[n, 1, s_h, s_w]`` to ``[n]``)
    per image, by power iteration on Hessian-vector products (double backward). The regulariser is quadratic
    but for the L1 term (piecewise linear), so its Hessian is the same almost everywhere: it is taken at a seeded
    random mask, where no difference of neighbours is exactly 0 (``|d|²`` written through ``abs`` has a zero
    second derivative there), the same for every image. The Rayleigh quotient approaches the eigenvalue from
    below."""
    generator = torch.Generator().manual_seed(seed)  # drawn on the CPU: the same numbers on every device
    one = (1, *shape[1:])  # one draw shared by every image: an image's value does not depend on its batch
    at = torch.rand(one, generator=generator, dtype=dtype).to(device).expand(shape).clone().requires_grad_(True)
    v = torch.randn(one, generator=generator, dtype=dtype).to(device).expand(shape).clone()
    value = torch.zeros(shape[0], device=device, dtype=dtype)
    with torch.enable_grad():
        (grad,) = torch.autograd.grad(regulariser(at).sum(), at, create_graph=True)
        for _ in range(iterations):
            v = v / v.flatten(1).norm(dim=1).clamp_min(1e-30).view(-1, *[1] * (len(shape) - 1))
            (hv,) = torch.autograd.grad((grad * v).sum(), at, retain_graph=True)
            value = (hv * v).flatten(1).sum(1)
            v = hv.detach()
    return value.detach()


def accelerate(problem: Problem, mask: Tensor, value: Tensor, settings: DescentOptions,
               generator: torch.Generator, noise_shape: tuple[int, ...], traces: list[dict]) -> tuple[Tensor, Tensor]:
    """The fixed-step descent without a search (``nesterov``): Nesterov's momentum (``momentum``) or a plain
    projected step, the step at most ``1/L`` with ``stable_step``; every image runs every iteration; one
    direction per iteration and no scored candidates, then ``F`` once at the end. Returns the final mask and
    ``F``."""
    s = settings
    every = torch.arange(mask.shape[0], device=mask.device)
    cap = None
    if s.stable_step:
        shape = (mask.shape[0], 1, *mask.shape[-2:])
        lipschitz = smoothness(lambda m: problem.regulariser(m, every), shape, mask.device, mask.dtype)
        cap = 1.0 / lipschitz.clamp_min(1e-30)
        for tr, c in zip(traces, cap.tolist()):
            tr["step_cap"] = c
    theta_prev = mask.clone()
    objective = None
    for k in range(s.iterations):
        noise = noise_draw(generator, s.steps, noise_shape, s.noise, mask.device, mask.dtype)
        direction, estimate, objective, info = problem.iteration(mask, every, noise, value)
        a = _step_size(direction, s)
        if cap is not None:
            a = torch.minimum(a, cap)
        theta = mask - a.view(-1, 1, 1, 1) * direction
        mask = (theta + (k / (k + 3) if s.momentum else 0.0) * (theta - theta_prev)).clamp(0.0, 1.0)
        theta_prev = theta
        record_step(traces, every, estimate, a, info)
    kind = "Nesterov" if s.momentum else "no momentum"
    for tr in traces:
        tr["stopped"] = f"ran all {s.iterations} iterations ({kind}, fixed step)"
    if objective is not None:
        value = objective(mask, every)[0]
    return mask, value


def descend(problem: Problem, mask: Tensor, value: Tensor, settings: DescentOptions,
            generator: torch.Generator, noise_shape: tuple[int, ...], traces: list[dict]) -> tuple[Tensor, Tensor]:
    """Optimise ``mask`` ``[B, c, s_h, s_w]`` from ``value`` = ``F(mask)`` ``[B]``; returns both, final.

    Each iteration draws one noise tensor for the path (shared by every image, so an image's
    result does not depend on its batch), asks ``problem`` for the direction of the images still
    active, takes a line-search (or fixed) step, and stops an image early once ``F`` stops falling.
    """
    s = settings
    if s.nesterov:
        return accelerate(problem, mask, value, s, generator, noise_shape, traces)
    b, device, dtype = mask.shape[0], mask.device, mask.dtype
    next_step = torch.full((b,), float(s.first_step), device=device, dtype=dtype)
    slow = torch.zeros(b, dtype=torch.long, device=device)
    active = torch.ones(b, dtype=torch.bool, device=device)
    for _ in range(s.iterations):
        noise = noise_draw(generator, s.steps, noise_shape, s.noise, device, dtype)
        idx = active.nonzero().flatten()
        if idx.numel() == 0:
            break
        direction, base, objective, info = problem.iteration(mask[idx], idx, noise, value[idx])
        search = _step(objective, mask[idx], direction, base, next_step[idx], s)
        record_iteration(traces, idx, base, search, direction, info)
        value[idx] = search.value
        mask[idx] = search.mask
        grow = search.step >= next_step[idx] if s.grow_only_on_first else torch.ones_like(search.accepted)
        next_step[idx] = torch.clamp(torch.where(grow, search.step / s.step_decay, search.step), max=s.first_step)
        _stop(traces, idx, active, slow, base, search, s)
    for i in active.nonzero().flatten().tolist():
        traces[i]["stopped"] = f"ran all {s.iterations} iterations"
    return mask, value


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


def run(problem: Problem, images: Tensor, size: Size, options: DescentOptions, seed: int,
        initial: Tensor | None = None) -> Attribution:
    """One optimisation of every image's mask from ``options.start`` (the deletion channel from ``initial``
    ``[B, 1, s_h, s_w]`` when given: the warm start); the map with its tie order, the traces."""
    b, device, dtype = images.shape[0], images.device, images.dtype
    generator = torch.Generator().manual_seed(int(seed))  # the path noise comes from the CPU: see noise_draw
    mask = torch.full((b, problem.channels, *size), float(options.start), device=device, dtype=dtype)
    if initial is not None:
        mask[:, :1] = initial
    begun = mask.clone()
    # the fixed-step loop estimates F from its own paths: F at the start would cost model calls nobody reads
    value, extra = problem.begin(mask, score=not (options.nesterov and options.iterations > 0))
    if options.nesterov:  # no candidate is scored: no probability per iteration, no search in the traces
        extra.pop("probability", None)
    traces = new_traces(b, search=not options.nesterov, **extra)
    mask, value = descend(problem, mask, value, options, generator, (3, *images.shape[-2:]), traces)
    final, finals = problem.finish(mask, value)
    tolerance = options.stall_tolerance()
    for i, tr in enumerate(traces):
        tr.update({k: float(v[i]) for k, v in finals.items()}, l1=float(options.l1), tv=float(options.tv),
                  start=float(options.start), init=options.init, retries=0,
                  stalled=bool((begun[i] - mask[i]).abs().max() < tolerance))
    saliency = order_ties(final, problem.evidence, options.tie_break, traces)
    return Attribution(saliency=saliency, mask=final, trace=traces)


def optimise(problem: Callable[..., Problem], model: Any, images: Tensor, targets: Tensor, baseline: Tensor,
             size: Size, options: DescentOptions, seed: int, initial: Tensor | None = None) -> Attribution:
    """A whole I-GOS / iGOS++ call on resolved ``options``: :func:`run`, then the stall retries (an image whose
    mask never left its start runs again with ``λ × stall_relax``). ``problem(model, images, baseline, targets,
    options)`` makes the method's :class:`Problem` (its class); ``initial`` is the warm start's mask (``None``: made
    here from ``options.init``, when set)."""
    if initial is None and options.init is not None:
        def seeded(method: str) -> Tensor:
            return warm_start(method, options.init_depth, float(options.start), model, images, targets, baseline,
                              size, seed, options.batch_size)

        try:
            initial = seeded(options.init)
        except (UnsupportedLayerError, UnsupportedTargetError):
            if options.init_fallback is None:
                raise
            options = options.replace(init=options.init_fallback)  # the traces (and any retry) name what ran
            initial = seeded(options.init)
    result = run(problem(model, images, baseline, targets, options), images, size, options, seed, initial)
    stalled = [i for i, t in enumerate(result.trace) if t["stalled"]]
    if options.stall_retries == 0 or not stalled:
        return result
    sub = torch.tensor(stalled, device=images.device)
    retry = options.relaxed()
    keep = initial is not None and options.stall_init is None  # a stall_init retry makes its own warm start
    again = optimise(problem, model, images[sub], targets[sub], baseline[sub], size, retry, seed,
                     initial[sub] if keep else None)
    result.mask[sub] = again.mask
    result.saliency[sub] = again.saliency
    for j, i in enumerate(stalled):
        result.trace[i] = {**again.trace[j], "retries": again.trace[j]["retries"] + 1}
    return result
