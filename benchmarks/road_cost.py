"""ROAD's cost against the blur deletion/insertion curves of the same maps, measured in one run, one after the
other per photo (goal of issue 21: ROAD ≤ 2× the blur curves). Maps: I-GOS at 28×28 (the default resolution)
on EfficientNet-Lite0; prints seconds per photo of each and their ratio, and ROAD's scores.

    python benchmarks/road_cost.py --images ../shared/data/imagenet-dev --every 20 --limit 5
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

import igos
from igos.images import find_images, load_image
from igos.metrics import deletion_insertion
from igos.road import road


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", default="../shared/data/imagenet-dev")
    ap.add_argument("--every", type=int, default=20)
    ap.add_argument("--limit", type=int, default=5)
    ap.add_argument("--resolution", type=int, default=28)
    args = ap.parse_args()
    preset = igos.load_model("efficientnet-lite0")
    files = find_images([args.images])[:: args.every][: args.limit]
    blur, cost, rows = [], [], []
    for f in files:
        x = load_image(f, 224).unsqueeze(0)
        sal = igos.get_method("igos")(preset.model, x, resolution=args.resolution).saliency
        t0 = time.perf_counter()
        s = deletion_insertion(preset.model, x, sal)
        t1 = time.perf_counter()
        r = road(preset.model, x, sal)
        t2 = time.perf_counter()
        blur.append(t1 - t0)
        cost.append(t2 - t1)
        rows.append((f.name, float(s.deletion[0]), float(s.insertion[0]), float(r.morf[0]), float(r.lerf[0])))
        print(f"{f.name}: blur del {rows[-1][1]:.4f} ins {rows[-1][2]:.4f} ({t1 - t0:.2f} s); ROAD MoRF "
              f"{rows[-1][3]:.4f} (lower is better) LeRF {rows[-1][4]:.4f} (higher is better) ({t2 - t1:.2f} s)",
              flush=True)
    ratio = statistics.median(c / b for c, b in zip(cost, blur))
    print(f"{len(files)} photos, I-GOS {args.resolution}x{args.resolution} maps, torch threads "
          f"{torch.get_num_threads()}: blur curves {statistics.median(blur):.2f} s, ROAD "
          f"{statistics.median(cost):.2f} s per photo (median); ROAD / blur = {ratio:.2f}")


if __name__ == "__main__":
    main()
