"""The statistics of the tables: 95 % confidence intervals of means and paired per-photo wins."""

from __future__ import annotations

import math
import statistics

__all__ = ["t_critical", "ci", "paired_wins"]

# two-sided 95 % critical values of Student's t, df = 1..30; beyond that the normal 1.96
_T95 = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145,
        2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048,
        2.045, 2.042]


def t_critical(n: int) -> float:
    """Half-width multiplier of a 95 % confidence interval of a mean of ``n`` values."""
    if n < 2:
        return float("nan")
    return _T95[n - 2] if n - 1 <= len(_T95) else 1.96


def ci(values: list[float]) -> float:
    """Half-width of the 95 % confidence interval of the mean of ``values`` (NaN for fewer than 2)."""
    if len(values) < 2:
        return float("nan")
    return t_critical(len(values)) * statistics.stdev(values) / math.sqrt(len(values))


def paired_wins(mine: dict[str, dict], theirs: dict[str, dict], low: str = "deletion", high: str = "insertion"
                ) -> tuple[int, int, int, int]:
    """On the photos both ``{image: row}`` hold: how often ``mine`` has the lower ``low`` (deletion, or ROAD's
    MoRF), the higher ``high`` (insertion, LeRF) and the larger ``high − low`` (ties are no wins), and how many
    photos that is."""
    both = sorted(set(mine) & set(theirs))
    d = sum(mine[i][low] < theirs[i][low] for i in both)
    ins = sum(mine[i][high] > theirs[i][high] for i in both)
    gap = sum(mine[i][high] - mine[i][low] > theirs[i][high] - theirs[i][low] for i in both)
    return d, ins, gap, len(both)
