"""I-GOS's descent direction, side by side: the paper's α-weighted form and textbook integrated gradients,
each on the uniform grid α = k/K and on the adaptive grid (points where p changes). Per resolution:
deletion (↓), insertion (↑), flat maps, seconds per image, the first iteration's completeness
(Σ M ⊙ g / (p(M) − p(I0)), median over photos) and paired wins against the default (paper, uniform).

Photos: the λ-tuning set, held out from both bench tables (every 4th file from the third, minus the
multiples of 4 and 5): 002, 006, 014, 018, 022, 026, 034, 038, 042, 046 in ../shared/data/imagenet-dev.

    python benchmarks/direction_forms.py --resolutions 28 7
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from igos_variants import tuning_photos  # benchmarks/: the λ-tuning photos

import igos
from igos.images import load_image

VARIANTS = [("paper", "uniform"), ("ig", "uniform"), ("paper", "adaptive"), ("ig", "adaptive")]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", default="../shared/data/imagenet-dev")
    ap.add_argument("--resolutions", nargs="+", type=int, default=[28, 7])
    ap.add_argument("--limit", type=int, default=10)
    ap.add_argument("--variants", nargs="+", default=[f"{d}/{g}" for d, g in VARIANTS])
    args = ap.parse_args()
    files = tuning_photos(args.images, args.limit)
    preset = igos.load_model("efficientnet-lite0")
    x = torch.stack([load_image(f, 224) for f in files])
    print(f"{len(files)} held-out photos: {', '.join(f.name[:3] for f in files)}")
    for res in args.resolutions:
        print(f"\n{res}×{res}\n| direction / grid | deletion (↓) | insertion (↑) | flat | s/image | completeness "
              "(1st it., median) | wins del / ins vs default |\n|---|---|---|---|---|---|---|")
        base = None
        for variant in args.variants:
            direction, grid = variant.split("/")
            t0 = time.perf_counter()
            res_list = igos.explain(x, preset, "igos", resolution=res, evaluate=True, images_per_batch=5,
                                    direction=direction, grid=grid)
            secs = (time.perf_counter() - t0) / len(files)
            ratios = [t.trace["ig_sum"][0] / t.trace["path_delta"][0] for t in res_list
                      if abs(t.trace["path_delta"][0]) > 1e-3]
            flat = sum(bool(r.trace["stalled"]) for r in res_list)
            d = statistics.mean(r.deletion for r in res_list)
            i = statistics.mean(r.insertion for r in res_list)
            wins = "–" if base is None else (f"{sum(a.deletion < b.deletion for a, b in zip(res_list, base))} / "
                                              f"{sum(a.insertion > b.insertion for a, b in zip(res_list, base))}")
            print(f"| {variant} | {d:.4f} | {i:.4f} | {flat}/{len(files)} | {secs:.1f} | "
                  f"{statistics.median(ratios) if ratios else float('nan'):.2f} | {wins} |", flush=True)
            base = base or res_list


if __name__ == "__main__":
    main()
