"""What ``--compile`` (``torch.compile`` of the gradient-free passes, :meth:`igos.models.Classifier.compile_inference`)
buys on this machine: the network's passes, then whole jobs.

1. The network alone, one batch of random images: seconds per image of a forward pass without gradients and of a
   forward+backward pass, eager and compiled (the backward pass is measured compiled too, to show why igos keeps
   passes with gradients eager), the compile's seconds (the first calls), and the largest difference of the logits.
2. Whole jobs on the tuning photos of ``igos_variants.py``: ``igos.explain(..., evaluate=True)`` with each method,
   eager and then compiled (the compile paid once, before the timed run, and printed), seconds per image, the
   ratio, and the largest change of an image's deletion and insertion (float rounding, amplified by any search).

Run it alone (a second heavy torch process on the 2 cores slows both several times).

    python benchmarks/torch_compile.py --methods igos auto rise --limit 5
"""

from __future__ import annotations

import argparse
import time

import torch
from igos_variants import tuning_photos

import igos


def per_image(fn, batch: int, repeats: int) -> float:
    """The fastest of ``repeats`` calls of ``fn``, per image."""
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best / batch


def network(preset, batch: int, repeats: int) -> None:
    model = preset.model
    x = torch.rand(batch, 3, *preset.input_size, generator=torch.Generator().manual_seed(0))

    def forward():
        with torch.no_grad():
            return model(x)

    def forward_backward(net):
        xi = x.clone().requires_grad_(True)
        out = net(xi)
        torch.autograd.grad(out[:, 0].sum(), xi)

    model.compile_inference(False)
    eager_out = forward()
    eager_f = per_image(forward, batch, repeats)
    eager_fb = per_image(lambda: forward_backward(model), batch, repeats)
    model.compile_inference(True)
    t0 = time.perf_counter()
    compiled_out = forward()
    compile_s = time.perf_counter() - t0
    compiled_f = per_image(forward, batch, repeats)
    # the backward pass through a compiled network (what igos does not do): compiled separately
    full = torch.compile(model)
    t0 = time.perf_counter()
    forward_backward(full)
    compile_fb_s = time.perf_counter() - t0
    compiled_fb = per_image(lambda: forward_backward(full), batch, repeats)
    model.compile_inference(False)
    diff = float((compiled_out - eager_out).abs().max())
    print(f"network, batch {batch} at {preset.input_size[0]}×{preset.input_size[1]}, the best of {repeats}:")
    print("| pass | eager ms/image | compiled ms/image | eager / compiled | compile s (first call) |")
    print("|---|---|---|---|---|")
    print(f"| forward, no gradients | {1e3 * eager_f:.1f} | {1e3 * compiled_f:.1f} | {eager_f / compiled_f:.2f} | "
          f"{compile_s:.0f} |")
    print(f"| forward + backward | {1e3 * eager_fb:.1f} | {1e3 * compiled_fb:.1f} | {eager_fb / compiled_fb:.2f} | "
          f"{compile_fb_s:.0f} |")
    print(f"largest |logit difference|, compiled against eager: {diff:.2e}\n", flush=True)


def jobs(preset, files, methods: list[str], resolution: int, batch: int) -> None:
    print(f"jobs: igos.explain(evaluate=True) on {len(files)} photos at {resolution}×{resolution}, "
          f"{batch} per batch; seconds per image, the compile paid before the timed run:")
    print("| method | eager s/image | compiled s/image | eager / compiled | compile s | largest change of "
          "deletion / insertion |")
    print("|---|---|---|---|---|---|")
    for method in methods:
        preset.model.compile_inference(False)
        t0 = time.perf_counter()
        eager = igos.explain(files, preset, method, resolution=resolution, evaluate=True, images_per_batch=batch)
        eager_s = (time.perf_counter() - t0) / len(files)
        preset.model.compile_inference(True)
        t0 = time.perf_counter()  # the compile: one run on the same shapes, untimed below
        igos.explain(files, preset, method, resolution=resolution, evaluate=True, images_per_batch=batch)
        warm_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        compiled = igos.explain(files, preset, method, resolution=resolution, evaluate=True, images_per_batch=batch)
        compiled_s = (time.perf_counter() - t0) / len(files)
        preset.model.compile_inference(False)
        d_del = max(abs(a.deletion - b.deletion) for a, b in zip(eager, compiled))
        d_ins = max(abs(a.insertion - b.insertion) for a, b in zip(eager, compiled))
        print(f"| {method} | {eager_s:.2f} | {compiled_s:.2f} | {eager_s / compiled_s:.2f} | "
              f"{warm_s - compiled_s * len(files):.0f} | {d_del:.4f} / {d_ins:.4f} |", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", default="../shared/data/imagenet-dev")
    ap.add_argument("--model", default="efficientnet-lite0")
    ap.add_argument("--methods", nargs="*", default=["igos", "auto"])
    ap.add_argument("--resolution", type=int, default=28)
    ap.add_argument("--limit", type=int, default=5)
    ap.add_argument("--batch", type=int, default=16, help="images per network call in part 1")
    ap.add_argument("--images-per-batch", type=int, default=5, help="photos per explain batch in part 2")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    preset = igos.load_model(args.model)
    print(f"{args.model}, torch {torch.__version__}, {torch.get_num_threads()} threads\n")
    network(preset, args.batch, args.repeats)
    if args.methods:
        files = tuning_photos(args.images, args.limit)
        jobs(preset, files, args.methods, args.resolution, args.images_per_batch)


if __name__ == "__main__":
    main()
