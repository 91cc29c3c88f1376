"""What an I-GOS / iGOS++ setting costs, and where the cost goes: seconds per image, forward-only and
forward+backward model images per image, descent iterations and line-search trials, per variant, with
the ratio of seconds to the first variant measured in the same run. Variants are run in turns
(``--repeats`` rounds, the median kept, the spread printed, and the median of each round's ratio to the first
variant, the steadier figure when the machine's speed drifts), so drift of the machine's speed hits all of them
alike, after an untimed forward+backward pass of the model on one batch (the process's first passes are slower).
One round is not enough: at 14×14 single rounds of the same variants gave I-GOS 3.67 s an image in one run and
2.36 s in another (the median of three rounds: 2.68 s), which moves every ratio to it by a third.

Run it alone (a second heavy torch process on the 2 cores slows both several times). Photos: the
λ-tuning set of ``igos_variants.py``. A variant is ``NAME:METHOD:KEY=VALUE,...`` as there.

    python benchmarks/optimiser_cost.py --resolution 28 --variant igos:igos: --variant pp:igospp:
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from igos_variants import options_of, photo_set

import igos
from igos.methods import get_method
from igos.perturb import blurred_baseline


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", default="../shared/data/imagenet-dev")
    ap.add_argument("--resolution", type=int, default=28)
    ap.add_argument("--limit", type=int, default=10)
    ap.add_argument("--every", type=int, default=None, metavar="N",
                    help="instead of the tuning photos, every N-th file of --images in sorted order")
    ap.add_argument("--batch", type=int, default=5, help="images per call (the bench's --images-per-batch)")
    ap.add_argument("--repeats", type=int, default=3, help="rounds; the median is kept (default 3)")
    ap.add_argument("--variant", action="append", required=True)
    ap.add_argument("--model", default="efficientnet-lite0")
    args = ap.parse_args()
    preset = igos.load_model(args.model)
    files = photo_set(args.images, args.every, args.limit)
    x = torch.stack([preset.read(f) for f in files])
    x0 = blurred_baseline(x)
    with torch.no_grad():
        targets = preset.model(x).argmax(1)
    variants = [v.split(":", 2) for v in args.variant]
    warm = x[: args.batch].clone().requires_grad_(True)  # untimed: the process's first passes are slower
    torch.autograd.grad(preset.model(warm).logsumexp(1).sum(), warm)
    seconds: dict[str, list[float]] = {name: [] for name, _, _ in variants}
    counts: dict[str, tuple[float, float, float, float]] = {}
    for _ in range(args.repeats):
        for name, method, text in variants:
            spec = get_method(method)
            opts = options_of(text, args.resolution)
            fwd = bwd = its = trials = 0
            t0 = time.perf_counter()
            for i in range(0, len(files), args.batch):
                sl = slice(i, i + args.batch)
                out = spec(preset.model, x[sl], targets[sl], baseline=x0[sl], resolution=args.resolution, **opts)
                fwd += out.forward_images
                bwd += out.backward_images
                its += sum(t["iterations"] for t in out.trace)
                trials += sum(sum(t.get("trials", ())) for t in out.trace)  # the accelerated search scores none
            seconds[name].append((time.perf_counter() - t0) / len(files))
            n = len(files)
            counts[name] = (fwd / n, bwd / n, its / n, trials / n)
    first = statistics.median(seconds[variants[0][0]])
    print(f"{len(files)} photos, {args.resolution}×{args.resolution}, {args.model}, {args.repeats} round(s)\n")
    print("| variant | s/image | × first | × first, per round (median) | rounds (s/image) | forward images | "
          "forward+backward images | iterations | trials |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, _, _ in variants:
        s = statistics.median(seconds[name])
        paired = statistics.median(a / b for a, b in zip(seconds[name], seconds[variants[0][0]]))
        f, b, it, tr = counts[name]
        rounds = " ".join(f"{v:.2f}" for v in seconds[name])
        print(f"| {name} | {s:.2f} | {s / first:.2f} | {paired:.2f} | {rounds} | {f:.0f} | {b:.0f} | {it:.1f} | "
              f"{tr:.1f} |")


if __name__ == "__main__":
    main()
