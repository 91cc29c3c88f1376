"""I-GOS quality and speed on a folder of photos, against the authors' reference figures.

Prints, for igos at the given settings: mean deletion (lower is better) and insertion (higher is
better), seconds per image, forward and forward+backward images per image, and the share of the
time spent inside the model. The model's share is measured in the same run: the plain throughput
of forward and forward+backward batches of the same size is timed, and multiplied by the images
igos sent through the model. The authors' reference cost (20 iterations × 15 path points = 300
forward+backward images, about 2,000 forward images in its line search, one K-point path per
trial) is emulated with the same timings, so that the ratio does not depend on the machine.

    python benchmarks/igos_dev.py --images ../shared/data/imagenet-dev --every 4 \
        --reference ../shared/data/reference/official_igos28_dev.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

import igos
from igos.core import class_probability, frozen
from igos.images import find_images
from igos.options import parse_options


def throughput(model, batch_size: int, size, repeats: int = 5) -> tuple[float, float]:
    """Seconds per image of plain forward and forward+backward batches (best of ``repeats``)."""
    x = torch.rand(batch_size, 3, *size)
    t = torch.zeros(batch_size, dtype=torch.long)
    fwd, fb = float("inf"), float("inf")
    with frozen(model):
        xg = x.clone().requires_grad_(True)
        for i in range(repeats + 1):
            with torch.no_grad():
                t0 = time.perf_counter()
                class_probability(model, x, t)
                if i:
                    fwd = min(fwd, (time.perf_counter() - t0) / batch_size)
            t0 = time.perf_counter()
            torch.autograd.grad(class_probability(model, xg, t).sum(), xg)
            if i:
                fb = min(fb, (time.perf_counter() - t0) / batch_size)
    return fwd, fb


class ModelTimer:
    """Wall time spent inside the model: its forward calls and the backward passes through it
    (``torch.autograd.grad``, which in igos only differentiates model outputs)."""

    def __init__(self, model):
        self.model = model
        self.seconds = 0.0

    def __enter__(self):
        timer = self
        self._forward = self.model.forward
        self._grad = torch.autograd.grad

        def forward(*a, **k):
            t0 = time.perf_counter()
            try:
                return timer._forward(*a, **k)
            finally:
                timer.seconds += time.perf_counter() - t0

        def grad(*a, **k):
            t0 = time.perf_counter()
            try:
                return timer._grad(*a, **k)
            finally:
                timer.seconds += time.perf_counter() - t0

        self.model.forward = forward
        torch.autograd.grad = grad
        return self

    def __exit__(self, *exc):
        del self.model.forward
        torch.autograd.grad = self._grad


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", default="../shared/data/imagenet-dev")
    ap.add_argument("--every", type=int, default=4, help="take every N-th file in sorted order")
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--model", default="efficientnet-lite0")
    ap.add_argument("--method", default="igos")
    ap.add_argument("--resolution", type=int, default=28)
    ap.add_argument("--images-per-batch", type=int, default=5)
    ap.add_argument("--reference", default=None, help="JSON of per-image reference figures")
    ap.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="method options")
    ap.add_argument("--json", default=None, help="write per-image results here")
    args = ap.parse_args()

    torch.manual_seed(0)
    files = find_images([args.images])[:: args.every][: args.limit]
    options = parse_options(args.set)
    preset = igos.load_model(args.model)
    fwd_s, fb_s = throughput(preset.model, options.get("batch_size", 16), preset.input_size)

    t0 = time.perf_counter()
    results = igos.Explanations()
    method_seconds = 0.0
    in_model = 0.0
    for start in range(0, len(files), args.images_per_batch):
        chunk = files[start : start + args.images_per_batch]
        t_call = time.perf_counter()
        with ModelTimer(preset.model) as timer:
            part = igos.explain(chunk, preset, args.method, resolution=args.resolution,
                                images_per_batch=args.images_per_batch, **options)
        method_seconds += time.perf_counter() - t_call  # explain(): the method plus the top-1 forward pass
        in_model += timer.seconds
        scores = igos.deletion_insertion(preset.model, torch.stack([r.image for r in part]),
                                         torch.stack([r.saliency for r in part]), [r.target for r in part])
        for i, r in enumerate(part):
            r.deletion, r.insertion = float(scores.deletion[i]), float(scores.insertion[i])
        results.extend(part)
    wall = time.perf_counter() - t0
    fwd_after, fb_after = throughput(preset.model, options.get("batch_size", 16), preset.input_size)
    fwd_s, fb_s = min(fwd_s, fwd_after), min(fb_s, fb_after)
    n = len(results)
    secs = [r.seconds for r in results]
    fwd = statistics.mean(r.forward_images for r in results)
    bwd = statistics.mean(r.backward_images for r in results)
    model_share = in_model / max(method_seconds, 1e-9)
    plain_share = (fwd * fwd_s + bwd * fb_s) / statistics.mean(secs)
    ref_cost = 300 * fb_s + 2000 * fwd_s

    print(f"{args.method} {args.resolution}x{args.resolution} on {n} images of {args.images}, options {options}")
    print(f"{'image':42s} {'target':>6s} {'del(↓)':>8s} {'ins(↑)':>8s} {'s':>6s}", end="")
    ref = {}
    if args.reference:
        ref = {r["image"]: r for r in json.loads(Path(args.reference).read_text())["images"]}
        print(f" {'ref del':>8s} {'ref ins':>8s}", end="")
    print()
    for r in results:
        stem = Path(r.path).stem
        line = f"{stem[:42]:42s} {r.target:6d} {r.deletion:8.4f} {r.insertion:8.4f} {r.seconds:6.2f}"
        if stem in ref:
            line += f" {ref[stem]['deletion']:8.4f} {ref[stem]['insertion']:8.4f}"
        print(line)
    mean_del = statistics.mean(r.deletion for r in results)
    mean_ins = statistics.mean(r.insertion for r in results)
    print(f"\nmean deletion  {mean_del:.4f} (lower is better)")
    print(f"mean insertion {mean_ins:.4f} (higher is better)")
    matched = [r for r in results if Path(r.path).stem in ref]
    if matched:
        rd = statistics.mean(ref[Path(r.path).stem]["deletion"] for r in matched)
        ri = statistics.mean(ref[Path(r.path).stem]["insertion"] for r in matched)
        od = statistics.mean(r.deletion for r in matched)
        oi = statistics.mean(r.insertion for r in matched)
        print(f"on the {len(matched)} reference images: igos {od:.4f} / {oi:.4f}, reference {rd:.4f} / {ri:.4f}")
        print(f"  -> deletion {'better' if od <= rd else 'WORSE'}, insertion {'better' if oi >= ri else 'WORSE'}")
        wd = sum(r.deletion < ref[Path(r.path).stem]["deletion"] for r in matched)
        wi = sum(r.insertion > ref[Path(r.path).stem]["insertion"] for r in matched)
        print(f"  paired: igos wins deletion on {wd} of {len(matched)} photos, insertion on {wi} of {len(matched)}")
    print(f"\nseconds per image: mean {statistics.mean(secs):.2f}, median {statistics.median(secs):.2f}"
          f" (wall {wall / n:.2f} incl. loading and evaluation)")
    print(f"images through the model per image: {fwd:.0f} forward, {bwd:.0f} forward+backward")
    print(f"plain throughput here (best of before/after): forward {fwd_s * 1000:.1f} ms/img, "
          f"forward+backward {fb_s * 1000:.1f} ms/img")
    print(f"time inside the model (its forward calls and backward passes, timed): {100 * model_share:.0f} % "
          f"(overhead outside it {100 * (1 - model_share):.0f} %); the same images in plain full batches would take "
          f"{100 * plain_share:.0f} % of the method's time")
    print(f"reference cost emulated with these timings: {ref_cost:.1f} s/img -> igos is "
          f"{ref_cost / statistics.mean(secs):.2f}x faster (stated reference on this machine: about 48 s/img, "
          f"{48 / statistics.mean(secs):.2f}x)")
    if args.json:
        Path(args.json).write_text(json.dumps([r.summary() for r in results], indent=1))


if __name__ == "__main__":
    main()
