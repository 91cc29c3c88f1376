"""An experiment for the controls bar (issue 21): the mean of a method's maps over several seeds.

Most of `auto`'s single losses to a model-blind control are smaller than its own change from one seed to another
(docs/results/controls-paired-28.txt). This script computes the maps of ``--method`` for seeds 0 … k−1, averages the
first j of them for j = 1 … k, and scores each average and the three controls under blur and ROAD: means, paired wins
against seed 0 alone, and the photos on which the map beats all three controls on both removals. Maps and scores are
cached (``--cache``) in the format of ``benchmarks/proximity_order.py``: both run on ``benchmarks/map_experiment.py``.

    python benchmarks/seed_average.py --every 5 --resolution 28 --seeds 3 --cache /tmp/seeds-28.json
"""

from __future__ import annotations

import argparse
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from map_experiment import MapExperiment, add_arguments  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(ap)
    ap.add_argument("--seeds", type=int, default=3)
    args = ap.parse_args()
    ex = MapExperiment(args)
    per_seed = [ex.maps(args.method, s) for s in range(args.seeds)]
    results = {}
    for j in range(1, args.seeds + 1):
        name = "seed 0" if j == 1 else f"mean of seeds 0–{j - 1}"
        key = f"scores|{args.method}|0.0|0.0" if j == 1 else f"scores|{args.method}|seeds={j}"
        results[name] = ex.scored(name, key, torch.stack(per_seed[:j]).mean(0))
    for s in range(1, args.seeds):
        results[f"seed {s}"] = ex.scored(f"seed {s}", f"scores|{args.method}|seed={s}", per_seed[s])
    ex.table(results | ex.controls(), "seed 0")


if __name__ == "__main__":
    main()
