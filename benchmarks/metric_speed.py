"""Deletion + insertion cost against the bare forward passes it needs, measured in one run.

One 28×28 map needs 106 forward images (53 curve points × 2). The metric's time is compared to
the time of the same number of images pushed through the model in plain batches of the same
size (the floor for any implementation). The issue's bar: within 1.3×.

    python benchmarks/metric_speed.py [--images 4] [--resolution 28] [--repeats 3]
"""

from __future__ import annotations

import argparse
import time

import torch

import igos
from igos.core import frozen
from igos.metrics import curve_steps


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="efficientnet-lite0")
    ap.add_argument("--images", type=int, default=4)
    ap.add_argument("--resolution", type=int, nargs="+", default=[28, 224, 7])
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    torch.manual_seed(0)
    preset = igos.load_model(args.model)
    model = preset.model
    x = torch.rand(args.images, 3, *preset.input_size)
    for res in args.resolution:
        sal = torch.rand(args.images, res, res)
        n_images = 2 * len(curve_steps(res * res)) * args.images
        plain = torch.rand(n_images, 3, *preset.input_size)
        best_metric, best_plain = float("inf"), float("inf")
        with frozen(model):
            igos.deletion_insertion(model, x[:1], sal[:1], batch_size=args.batch_size)  # warm-up
            for _ in range(args.repeats):
                t0 = time.perf_counter()
                igos.deletion_insertion(model, x, sal, batch_size=args.batch_size)
                best_metric = min(best_metric, time.perf_counter() - t0)
                t0 = time.perf_counter()
                with torch.no_grad():
                    for chunk in plain.split(args.batch_size):
                        model(chunk).softmax(1)
                best_plain = min(best_plain, time.perf_counter() - t0)
        print(f"{res}x{res}: {n_images // args.images} forward images per map; metric {best_metric / args.images:.3f} "
              f"s/map, plain forwards {best_plain / args.images:.3f} s/map -> ratio {best_metric / best_plain:.2f}x "
              f"(best of {args.repeats})")


if __name__ == "__main__":
    main()
