"""An experiment at coarse sides (issue 21, item 8): I-GOS's tie order added to *every* map instead of only to maps
with no order. The tie order is the sum of the method's integrated-gradient directions over its iterations,
scaled to at most ``tie_break`` (``igos.methods.descent.order_ties``); here it reorders every cell whose saliency
lies within ``tie_break`` of another's, the cells the mask left near 1. Runs ``benchmarks/igos_variants.py`` with
that one function replaced, so its variants' ``tie_break=T`` mean "added everywhere": keep their cache apart from
the others.

    python benchmarks/tie_order_everywhere.py --resolutions 7 --road --cache docs/results/tie-order-everywhere-7.json \
        --variant igos:igos: --variant ebp:ebp: --variant t02:igos:tie_break=0.02 --variant t1:igos:tie_break=0.1 \
        --variant t3:igos:tie_break=0.3
"""

from __future__ import annotations

import os
import sys

import igos.methods.descent as descent


def order_everywhere(final, evidence, tie_break, traces):
    """:func:`igos.methods.descent.order_ties` without its condition that the map have no order."""
    saliency = 1.0 - final
    if tie_break > 0 and evidence is not None:
        ev = evidence[:, 0]
        saliency = saliency + tie_break * ev / ev.flatten(1).abs().amax(1).clamp_min(1e-30).view(-1, 1, 1)
    for i, tr in enumerate(traces):
        tr["flat"] = bool(saliency[i].max() - saliency[i].min() < descent.FLAT_TOLERANCE)
    return saliency


def main() -> None:
    descent.order_ties = order_everywhere
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import igos_variants

    igos_variants.main()


if __name__ == "__main__":
    main()
