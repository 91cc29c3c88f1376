"""bfloat16 / float16 forward passes (autocast) against float32: seconds per image of I-GOS at 28×28 and
the change of deletion and insertion on the same photos, paired. Masks, line search and metric stay
float32 in every run; the metric itself runs the model at the run's precision.

    python benchmarks/mixed_precision.py --images ../shared/data/imagenet-dev --limit 10
"""

from __future__ import annotations

import argparse
import statistics
import time

import igos
from igos.images import find_images


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", default="../shared/data/imagenet-dev")
    ap.add_argument("--every", type=int, default=10)
    ap.add_argument("--offset", type=int, default=3)
    ap.add_argument("--limit", type=int, default=10)
    ap.add_argument("--dtypes", nargs="+", default=["float32", "bfloat16", "float16"])
    args = ap.parse_args()
    files = find_images([args.images])[args.offset :: args.every][: args.limit]
    print(f"I-GOS 28×28 on {len(files)} photos ({files[0].name} … {files[-1].name})")
    runs = {}
    for dtype in args.dtypes:
        preset = igos.load_model("efficientnet-lite0", dtype=dtype)
        t0 = time.perf_counter()
        try:
            res = igos.explain(files, preset, "igos", resolution=28, evaluate=True, images_per_batch=5)
        except Exception as exc:
            print(f"{dtype}: not on this machine ({exc})")
            continue
        runs[dtype] = (res, (time.perf_counter() - t0) / len(files))
    base, base_s = runs["float32"]
    print("| dtype | s/image | × float32 | deletion (↓) | insertion (↑) | Δdel paired | Δins paired | same top-1 |")
    print("|---|---|---|---|---|---|---|---|")
    for dtype, (res, secs) in runs.items():
        dd = [a.deletion - b.deletion for a, b in zip(res, base)]
        di = [a.insertion - b.insertion for a, b in zip(res, base)]
        same = sum(a.target == b.target for a, b in zip(res, base))
        d_mean, i_mean = statistics.mean(r.deletion for r in res), statistics.mean(r.insertion for r in res)
        print(f"| {dtype} | {secs:.2f} | {secs / base_s:.2f} | {d_mean:.4f} | {i_mean:.4f} | "
              f"{statistics.mean(dd):+.4f} (max |{max(map(abs, dd)):.3f}|) | "
              f"{statistics.mean(di):+.4f} (max |{max(map(abs, di)):.3f}|) | {same}/{len(res)} |")


if __name__ == "__main__":
    main()
