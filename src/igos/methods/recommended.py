"""The method igos recommends at each heatmap side, which ``auto`` (the default of ``igos explain`` and
``igos.explain``) resolves to.

Chosen from the paired per-photo comparisons of the bench tables (docs/verdict.md, the evidence behind the
README's verdict; docs/results/issue11-table-20images.md): at each side the method with the most paired wins of
insertion − deletion against every baseline. A side between two of the table's takes the method of the
nearer one on a log scale; for ``H×W`` maps the larger side counts, as for I-GOS's λ.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

__all__ = ["AUTO", "RECOMMENDED", "RECOMMENDED_OPTIONS", "SEARCH_CHOICE", "SEARCH_OPTIONS", "recommended_method",
           "recommended", "resolve_method", "resolve"]

AUTO = "auto"

#: mask side -> registered method name (56 is no table side: it is there so that sides from 40 to 79 keep iGOS++'s line
#: search, which beat 28×28's fixed step at 56×56 on the tuning photos, 0.523 against 0.462 of insertion − deletion;
#: docs/results/igospp-accelerated.md, "28×28 joins")
RECOMMENDED: dict[int, str] = {7: "igos", 14: "igospp", 28: "igospp", 56: "igospp", 112: "igospp", 224: "igospp"}


#: mask side -> the options the recommended method runs with there, on top of its own defaults (a caller's options
#: win): at 28×28 and 14×14 iGOS++'s fixed step without momentum (K = 2 on the paths of ``M``, 15 iterations, no line
#: search), at 14×14 from a mask of 1 warm-started from Excitation Backprop's map at depth 0.5, GradCAM's where
#: Excitation Backprop refuses the model or target (docs/verdict.md, "14×14" and "28×28";
#: docs/results/igospp-accelerated.md, "Fresh photos at 14×14" and "28×28 joins")
RECOMMENDED_OPTIONS: dict[int, dict[str, Any]] = {
    28: {"accelerated": True, "momentum": False, "steps": 2},
    14: {"accelerated": True, "momentum": False, "steps": 2, "start": 1.0,
         "init": "ebp", "init_fallback": "gradcam", "init_depth": 0.5},
}

#: options that choose the search: a caller who names one of :data:`SEARCH_CHOICE` gets none of the preset's
#: :data:`SEARCH_OPTIONS` (``accelerated=false`` at 14×14 is the line search at its own defaults, not the line search
#: with the fixed step's ``momentum=false``, K and start)
SEARCH_CHOICE = frozenset({"accelerated", "nesterov"})
SEARCH_OPTIONS = frozenset({"accelerated", "nesterov", "momentum", "stable_step", "normalise_step", "fixed_step",
                            "steps", "start"})


def _table_side(resolution: int | tuple[int, int] | None) -> int:
    """The table's side nearest to ``resolution`` on a log scale (``None``: 28; ``H×W``: the larger side)."""
    side = 28 if resolution is None else (max(resolution) if isinstance(resolution, (tuple, list)) else resolution)
    if int(side) < 1:
        raise ValueError(f"resolution must be at least 1, got {resolution}")
    return min(RECOMMENDED, key=lambda k: (abs(math.log(k) - math.log(int(side))), k))


def recommended_method(resolution: int | tuple[int, int] | None) -> str:
    """The recommended method at a heatmap resolution (``None``: the default 28×28)."""
    return RECOMMENDED[_table_side(resolution)]


def recommended(resolution: int | tuple[int, int] | None) -> tuple[str, dict[str, Any]]:
    """The recommended method at a heatmap resolution and the options it runs with there."""
    side = _table_side(resolution)
    return RECOMMENDED[side], dict(RECOMMENDED_OPTIONS.get(side, {}))


def resolve_method(method: str, resolution: int | tuple[int, int] | None) -> str:
    """``method``, or the recommended one at ``resolution`` for ``auto``."""
    return recommended_method(resolution) if method == AUTO else method


def resolve(method: str, resolution: int | tuple[int, int] | None,
            options: Mapping[str, Any] | None = None) -> tuple[str, dict[str, Any]]:
    """``(method, options)`` to run: for ``auto`` the recommended method with its options at ``resolution``, the
    caller's ``options`` over them (``init=None`` turns a recommended warm start off; ``accelerated=…`` replaces the
    recommended search, :data:`SEARCH_OPTIONS`); any other name unchanged."""
    options = dict(options or {})
    if method != AUTO:
        return method, options
    name, preset = recommended(resolution)
    if SEARCH_CHOICE & options.keys():
        preset = {k: v for k, v in preset.items() if k not in SEARCH_OPTIONS}
    return name, preset | options
