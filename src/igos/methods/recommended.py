"""The method igos recommends at each heatmap side, which ``auto`` (the default of ``igos explain`` and
``igos.explain``) resolves to.

Chosen from the paired per-photo comparisons of the bench tables (README, "Which method at which
resolution"; docs/results/issue11-table-20images.md): at each side the method with the most paired wins of
insertion − deletion against every baseline. A side between two of the table's takes the method of the
nearer one on a log scale; for ``H×W`` maps the larger side counts, as for I-GOS's λ.
"""

from __future__ import annotations

import math

__all__ = ["AUTO", "RECOMMENDED", "recommended_method", "resolve_method"]

AUTO = "auto"

#: mask side -> registered method name
RECOMMENDED: dict[int, str] = {7: "igos", 14: "igospp", 28: "igospp", 112: "igospp", 224: "igospp"}


def recommended_method(resolution: int | tuple[int, int] | None) -> str:
    """The recommended method at a heatmap resolution (``None``: the default 28×28)."""
    side = 28 if resolution is None else (max(resolution) if isinstance(resolution, (tuple, list)) else resolution)
    if int(side) < 1:
        raise ValueError(f"resolution must be at least 1, got {resolution}")
    return RECOMMENDED[min(RECOMMENDED, key=lambda k: (abs(math.log(k) - math.log(int(side))), k))]


def resolve_method(method: str, resolution: int | tuple[int, int] | None) -> str:
    """``method``, or the recommended one at ``resolution`` for ``auto``."""
    return recommended_method(resolution) if method == AUTO else method
