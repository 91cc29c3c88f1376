"""An experiment for the controls bar (issue 21): the mean of a method's maps over several seeds.

Most of `auto`'s single losses to a model-blind control are smaller than its own change from one seed to another
(docs/results/controls-paired-28.txt). This script computes the maps of ``--method`` for seeds 0 … k−1, averages the
first j of them for j = 1 … k, and scores each average and the three controls under blur and ROAD: means, paired wins
against seed 0 alone, and the photos on which the map beats all three controls on both removals. Maps and scores are
cached (``--cache``), and the controls share the cache format of ``benchmarks/proximity_order.py``.

    python benchmarks/seed_average.py --every 5 --resolution 28 --seeds 3 --cache /tmp/seeds-28.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import torch

import igos

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from igos_variants import photo_set  # noqa: E402
from proximity_order import CONTROLS, both, scores  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", default="../shared/data/imagenet-dev")
    ap.add_argument("--every", type=int, default=None)
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--resolution", type=int, default=28)
    ap.add_argument("--method", default="auto")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--cache", default=None)
    args = ap.parse_args()
    files = photo_set(args.images, args.every, args.limit)
    print(f"{len(files)} photos: {', '.join(f.name[:3] for f in files)}; {args.method} at {args.resolution}")
    cache_path = Path(args.cache) if args.cache else None
    cache = json.loads(cache_path.read_text()) if cache_path and cache_path.exists() else {}
    tag = f"{args.resolution}|{','.join(f.name for f in files)}"
    preset = igos.load_model("efficientnet-lite0")
    x = torch.stack([preset.read(f) for f in files])

    def save() -> None:
        if cache_path:
            cache_path.write_text(json.dumps(cache))

    def maps_of(method: str, seed: int) -> torch.Tensor:
        key = f"maps|{method}|{tag}" + (f"|seed={seed}" if seed else "")
        if key not in cache:
            t0 = time.perf_counter()
            out = igos.explain(x, preset, method, resolution=args.resolution, images_per_batch=5, seed=seed)
            cache[key] = [r.saliency.tolist() for r in out]
            print(f"{method}, seed {seed}: {(time.perf_counter() - t0) / len(files):.1f} s an image", flush=True)
            save()
        return torch.tensor(cache[key], dtype=torch.float32)

    def scored(name: str, key: str, maps: torch.Tensor) -> dict[str, list[float]]:
        if key not in cache:
            t0 = time.perf_counter()
            cache[key] = scores(preset.model, x, maps)
            print(f"scored {name}: {(time.perf_counter() - t0) / len(files):.1f} s an image", flush=True)
            save()
        return cache[key]

    per_seed = [maps_of(args.method, s) for s in range(args.seeds)]
    results = {}
    for j in range(1, args.seeds + 1):
        name = "seed 0" if j == 1 else f"mean of seeds 0–{j - 1}"
        key = f"scores|{args.method}|0.0|0.0|{tag}" if j == 1 else f"scores|{args.method}|seeds={j}|{tag}"
        results[name] = scored(name, key, torch.stack(per_seed[:j]).mean(0))
    for s in range(1, args.seeds):
        results[f"seed {s}"] = scored(f"seed {s}", f"scores|{args.method}|seed={s}|{tag}", per_seed[s])
    for c in CONTROLS:
        results[c] = scored(c, f"scores|{c}|0.0|0.0|{tag}", maps_of(c, 0))
    base_blur, base_road = both(results["seed 0"])
    controls = [both(results[c]) for c in CONTROLS]
    print("\n| map | del / ins (ins − del) | MoRF / LeRF (combined) | wins vs seed 0, blur / ROAD | "
          "beats all 3 controls on both |\n|---|---|---|---|---|")
    for name, s in results.items():
        blur, rd = both(s)
        wins = "–" if name == "seed 0" else (f"{sum(a > b for a, b in zip(blur, base_blur))} / "
                                             f"{sum(a > b for a, b in zip(rd, base_road))}")
        beats = sum(all(blur[i] > cb[i] and rd[i] > cr[i] for cb, cr in controls) for i in range(len(files)))
        print(f"| {name} | {statistics.mean(s['deletion']):.4f} / {statistics.mean(s['insertion']):.4f} "
              f"({statistics.mean(blur):.4f}) | {statistics.mean(s['morf']):.4f} / {statistics.mean(s['lerf']):.4f} "
              f"({statistics.mean(rd):.4f}) | {wins} | {beats} of {len(files)} |")


if __name__ == "__main__":
    main()
