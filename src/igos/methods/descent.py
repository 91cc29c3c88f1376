"""The descent driver shared by I-GOS and iGOS++: active set, line search or fixed step, early
stopping, step carry-over and traces. Each method supplies only its objective and direction (a
:class:`Problem`); the settings are one frozen, validated :class:`DescentSettings`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import torch
from torch import Tensor

from .optim import SearchResult, line_search, noise_draw

__all__ = ["DescentSettings", "Problem", "Objective", "descend", "new_traces", "record_iteration"]

#: ``(candidate masks [N, ...], rows of the current active set [N]) -> (F [N], probability [N])``
Objective = Callable[[Tensor, Tensor], tuple[Tensor, Tensor]]


@dataclass(frozen=True)
class DescentSettings:
    """How a mask is optimised; validated once, when made.

    Attributes:
        iterations: maximum descent iterations.
        steps: ``K``, integration points ``α = 1/K … 1`` per direction.
        noise: σ of the Gaussian noise on every path point, ``[0, 1]`` pixel units (0: none).
        first_step: ``a_max``; later searches start at the last accepted step / ``step_decay``.
        step_decay, armijo, min_step: η, β and ``a_min`` of the line search.
        fixed_step: a constant step instead of the line search (the paper's ablation).
        trials_per_batch: candidate steps scored per model call in the line search.
        early_stop, patience: stop an image after ``patience`` iterations that lower ``F`` by less than
            ``early_stop``; ``None`` runs every iteration.
        grow_only_on_first: the next line search starts at the accepted step / ``step_decay`` only when this
            search accepted its first trial, else at the accepted step (``False``: always / ``step_decay``).
        max_trials: at most this many candidate steps per line search (``None``: down to ``min_step``); counted
            across its calls, so it may be smaller or larger than ``trials_per_batch``.
        stop_on_failure: an image whose line search accepts no step takes ``min_step`` and stops there (it
            sits at a minimum of ``F`` along its direction); ``False``: it goes on.
        start: the mask's value everywhere at the start, in ``[0, 1]``.
        batch_size: images per model call.
    """

    iterations: int = 15
    steps: int = 10
    noise: float = 0.045
    first_step: float = 1000.0
    step_decay: float = 0.2
    armijo: float = 1e-4
    min_step: float = 1e-5
    fixed_step: float | None = None
    trials_per_batch: int = 2
    early_stop: float | None = 1e-3
    patience: int = 2
    grow_only_on_first: bool = False
    max_trials: int | None = None
    stop_on_failure: bool = False
    start: float = 1.0
    batch_size: int = 16

    def __post_init__(self) -> None:
        problems = []
        if self.steps < 1 or self.iterations < 0:
            problems.append(f"steps must be ≥ 1 and iterations ≥ 0, got steps={self.steps}, "
                            f"iterations={self.iterations}")
        if not 0 < self.step_decay < 1:
            problems.append(f"step_decay must be in (0, 1), got {self.step_decay}")
        if not 0 < self.min_step <= self.first_step:
            problems.append(f"need 0 < min_step ≤ first_step, got min_step={self.min_step}, "
                            f"first_step={self.first_step}")
        if self.noise < 0 or self.armijo < 0:
            problems.append(f"noise and armijo must be ≥ 0, got noise={self.noise}, armijo={self.armijo}")
        if self.trials_per_batch < 1 or self.batch_size < 1 or self.patience < 1:
            problems.append(f"trials_per_batch, batch_size and patience must be ≥ 1, got {self.trials_per_batch}, "
                            f"{self.batch_size}, {self.patience}")
        if not 0.0 <= self.start <= 1.0:
            problems.append(f"start must be in [0, 1], got {self.start}")
        if self.max_trials is not None and self.max_trials < 1:
            problems.append(f"max_trials must be ≥ 1 or None, got {self.max_trials}")
        if problems:
            raise ValueError("; ".join(problems))


class Problem(Protocol):
    """What a method gives the driver for one iteration of the images ``idx`` (rows of the batch)."""

    def iteration(self, mask: Tensor, idx: Tensor, noise: Tensor | None, value: Tensor
                  ) -> tuple[Tensor, Tensor, Objective, dict[str, Tensor]]:
        """``(direction, F(M) to test the step against, the line-search objective, diagnostics)`` at
        ``mask``; each diagnostic is one value per image, appended to the traces under its name."""
        ...


def new_traces(count: int, **extra: list) -> list[dict]:
    """Empty per-image traces; a key in ``extra`` (e.g. ``probability=[p0]``) is recorded too."""
    return [{"objective": [], "step": [], "trials": [], "accepted": [], "tried": [], "armijo": [], "iterations": 0,
             "stopped": "", **{k: list(v[i:i + 1]) for k, v in extra.items()}} for i in range(count)]


def record_iteration(traces: list[dict], idx: Tensor, base: Tensor, search: SearchResult, direction: Tensor,
                     info: dict[str, Tensor] | None = None) -> None:
    """Append one iteration to the traces of images ``idx``: objective, step, trials, whether the
    step passed the Armijo test, every trial ``(step, F)``, the record ``(F_before, F_after, step, ‖g‖²)``,
    the problem's diagnostics ``info`` and, for traces that keep one, the class probability."""
    gnorm2 = direction.flatten(1).pow(2).sum(1)
    for r, i in enumerate(idx.tolist()):
        tr = traces[i]
        for name, values in (info or {}).items():
            tr.setdefault(name, []).append(float(values[r]))
        if search.tried is not None:
            tr["tried"].append(search.tried[r])
        tr["armijo"].append((float(base[r]), float(search.value[r]), float(search.step[r]), float(gnorm2[r])))
        tr["objective"].append(float(search.value[r]))
        tr["step"].append(float(search.step[r]))
        tr["trials"].append(int(search.trials[r]))
        tr["accepted"].append(bool(search.accepted[r]))
        tr["iterations"] += 1
        if "probability" in tr:
            tr["probability"].append(float(search.probability[r]))


def _fixed_step(objective: Objective, mask: Tensor, direction: Tensor, step: float) -> SearchResult:
    new_mask = (mask - step * direction).clamp(0.0, 1.0)
    rows = torch.arange(mask.shape[0], device=mask.device)
    value, prob = objective(new_mask, rows)
    return SearchResult(torch.full_like(value, float(step)), new_mask, value, prob, torch.ones_like(rows),
                        torch.ones_like(rows, dtype=torch.bool), [[(float(step), f)] for f in value.tolist()])


def descend(problem: Problem, mask: Tensor, value: Tensor, settings: DescentSettings,
            generator: torch.Generator, noise_shape: tuple[int, ...], traces: list[dict]) -> tuple[Tensor, Tensor]:
    """Optimise ``mask`` ``[B, c, s_h, s_w]`` from ``value`` = ``F(mask)`` ``[B]``; returns both, final.

    Each iteration draws one noise tensor for the path (shared by every image, so an image's
    result does not depend on its batch), asks ``problem`` for the direction of the images still
    active, takes a line-search (or fixed) step, and stops an image early once ``F`` stops falling.
    """
    s = settings
    b, device, dtype = mask.shape[0], mask.device, mask.dtype
    next_step = torch.full((b,), float(s.first_step), device=device, dtype=dtype)
    slow = torch.zeros(b, dtype=torch.long, device=device)
    active = torch.ones(b, dtype=torch.bool, device=device)
    for _ in range(s.iterations):
        noise = noise_draw(generator, s.steps, noise_shape, s.noise, device, dtype)
        idx = active.nonzero().flatten()
        if idx.numel() == 0:
            break
        m = mask[idx]
        direction, base, objective, info = problem.iteration(m, idx, noise, value[idx])
        if s.fixed_step is not None:
            search = _fixed_step(objective, m, direction, s.fixed_step)
        else:
            search = line_search(objective, m, direction, base, next_step[idx], decay=s.step_decay, armijo=s.armijo,
                                 min_step=s.min_step, trials_per_batch=s.trials_per_batch,
                                 max_trials=s.max_trials)
        record_iteration(traces, idx, base, search, direction, info)
        value[idx] = search.value
        mask[idx] = search.mask
        grow = search.step >= next_step[idx] if s.grow_only_on_first else torch.ones_like(search.accepted)
        next_step[idx] = torch.clamp(torch.where(grow, search.step / s.step_decay, search.step), max=s.first_step)
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
    for i in active.nonzero().flatten().tolist():
        traces[i]["stopped"] = f"ran all {s.iterations} iterations"
    return mask, value
