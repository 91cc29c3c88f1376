"""Grid search of I-GOS's (λ1, λ2) at one mask resolution, on photos held out from the tables.

The bench tables of issues 3/4 use every 4th (000, 040, …) and every 5th (000, 050, …) file of
imagenet-dev; this script takes, by default, every 4th file starting at the third (020, 060,
100, …): none is in the issue-3 table, but 100 and 300 are in the issue-4 one. ``--holdout``
also drops every file whose index is a multiple of 4 or 5, i.e. every file of either table.
For each (λ1, λ2) it prints mean deletion (lower is
better), mean insertion (higher is better), their difference ins − del (the single figure used
to pick a default; higher is better) and the mean number of iterations run.

    python benchmarks/tune_regularisation.py --resolution 7 --grid 1,5 0.5,1 0.2,0.5 --limit 10
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

import igos
from igos.images import find_images, load_image
from igos.options import parse_options


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", default="../shared/data/imagenet-dev")
    ap.add_argument("--every", type=int, default=4)
    ap.add_argument("--offset", type=int, default=2, help="first file index (default 2: held out from the tables)")
    ap.add_argument("--limit", type=int, default=10)
    ap.add_argument("--holdout", action="store_true",
                    help="skip every file of the issue-3/4 tables (index a multiple of 4 or 5)")
    ap.add_argument("--model", default="efficientnet-lite0")
    ap.add_argument("--resolution", type=int, required=True)
    ap.add_argument("--grid", nargs="*", default=[], metavar="L1,L2")
    ap.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="other I-GOS options")
    ap.add_argument("--images-per-batch", type=int, default=5)
    ap.add_argument("--compare", nargs="*", default=[], metavar="METHOD",
                    help="also score these methods (defaults) on the same photos, e.g. gradcam ebp")
    args = ap.parse_args()

    indexed = list(enumerate(find_images([args.images])))[args.offset :: args.every]
    if args.holdout:
        indexed = [(i, f) for i, f in indexed if i % 4 and i % 5]
    files = [f for _, f in indexed][: args.limit]
    options = parse_options(args.set)
    preset = igos.load_model(args.model)
    images = torch.stack([load_image(f, preset.input_size, preset.resize) for f in files])
    print(f"I-GOS {args.resolution}x{args.resolution}, {len(files)} photos ({files[0].name} … {files[-1].name}), "
          f"options {options}")
    print(f"{'λ1':>6s} {'λ2':>7s} {'del(↓)':>8s} {'ins(↑)':>8s} {'ins−del':>8s} {'iters':>6s} {'s/img':>6s} "
          f"{'flat':>5s}")

    def score(method, opts: dict) -> tuple[float, float, list[dict], float, str]:
        """Mean deletion and insertion of a registered ``method`` with ``opts`` at the resolution over the
        photos, its traces, seconds per photo and the map's side."""
        dels, inss, traces = [], [], []
        t0 = time.perf_counter()
        for start in range(0, len(files), args.images_per_batch):
            batch = images[start : start + args.images_per_batch]
            att = method(preset.model, batch, resolution=args.resolution, **opts)
            scores = igos.deletion_insertion(preset.model, batch, att.saliency, att.target)
            dels += scores.deletion.tolist()
            inss += scores.insertion.tolist()
            traces += att.trace or []
        side = "x".join(map(str, att.saliency.shape[1:]))
        return statistics.mean(dels), statistics.mean(inss), traces, (time.perf_counter() - t0) / len(files), side

    for name in args.compare:
        spec = igos.get_method(name)
        d, i, _, secs, side = score(spec, spec.with_preset({}, preset))
        print(f"{name + ' ' + side:>14s} {d:8.4f} {i:8.4f} {i - d:8.4f} {'':>6s} {secs:6.1f}", flush=True)
    for spec in args.grid:
        l1, tv = (float(v) for v in spec.split(","))
        d, i, traces, secs, _ = score(igos.get_method("igos"), {**options, "l1": l1, "tv": tv})
        iters = statistics.mean(t["iterations"] for t in traces)
        flat = sum(bool(t.get("stalled")) for t in traces)  # maps that never left M = 1 (after any retries)
        print(f"{l1:6g} {tv:7g} {d:8.4f} {i:8.4f} {i - d:8.4f} {iters:6.1f} {secs:6.1f} {flat:5d}", flush=True)

if __name__ == "__main__":
    main()
