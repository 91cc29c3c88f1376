"""I-GOS's tuned per-resolution defaults (also iGOS++'s): λ1, λ2 and the mask's start value, read at the
mask's larger side. Measured on photos held out from the bench tables: docs/results/igos-lambda-tuning.md
and docs/results/igos-start.md."""

from __future__ import annotations

import math

__all__ = ["REGULARISATION", "START", "default_regularisation", "default_start", "resolve_regularisation"]

#: (λ1, λ2) per mask side: 28 is the authors' (1, 20); 7, 14, 112 and 224 are the best insertion − deletion of
#: a grid on 10 tuning photos (benchmarks/tune_regularisation.py); 56 lies between its neighbours, untuned;
#: other sides interpolate in log scale.
REGULARISATION: dict[int, tuple[float, float]] = {
    7: (1.0, 1.0),
    14: (1.0, 2.0),
    28: (1.0, 20.0),
    56: (1.0, 40.0),
    112: (1.0, 60.0),
    224: (1.0, 160.0),
}

#: the mask's start value per mask side: 0.5 up to 14 (from the paper's 1 the softmax is saturated on confident
#: photos and at coarse masks no step lowers F: a flat map), the paper's 1 from 28 (0.5 lost there on the
#: reference photos, and insertion at 112 and 224)
START: dict[int, tuple[float]] = {14: (0.5,), 28: (1.0,)}


def _interpolate(table: dict[int, tuple[float, ...]], side: int) -> tuple[float, ...]:
    """``table``'s values at a mask side: log-linear between its sides, its ends outside them."""
    keys = sorted(table)
    if side <= keys[0]:
        return table[keys[0]]
    if side >= keys[-1]:
        return table[keys[-1]]
    lo, hi = max(k for k in keys if k <= side), min(k for k in keys if k >= side)
    if lo == hi:
        return table[lo]
    t = (math.log(side) - math.log(lo)) / (math.log(hi) - math.log(lo))
    return tuple(a + t * (b - a) for a, b in zip(table[lo], table[hi]))


def default_regularisation(side: int) -> tuple[float, float]:
    """Default ``(λ1, λ2)`` at a mask side (log-linear interpolation of :data:`REGULARISATION`)."""
    l1, tv = _interpolate(REGULARISATION, side)
    return l1, tv


def default_start(side: int) -> float:
    """Default start value of the mask at a mask side (:data:`START`: 0.5 up to 14, 1 from 28, log-linear
    between)."""
    return _interpolate(START, side)[0]


def resolve_regularisation(side: int, l1: float | None = None, tv: float | None = None) -> tuple[float, float]:
    """``(λ1, λ2)`` a run at mask side ``side`` uses: the given values, the default for those that are ``None``."""
    d1, d2 = default_regularisation(side)
    return (d1 if l1 is None else l1), (d2 if tv is None else tv)
