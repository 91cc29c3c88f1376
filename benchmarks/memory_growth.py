"""Memory over a long run (issue 23, item 3): explain ``--count`` photos one after another through the real
pipeline (``igos.explain_stream``: load, target, method, metric, record) and print the process's resident memory
every ``--every`` explanations, with the growth from the first reading to the last (flat within 5 % passes),
the peak resident set and, on CUDA, the peak allocated memory.

    python benchmarks/memory_growth.py --images ../shared/data/imagenet-dev --count 500 --method gradient
    python benchmarks/memory_growth.py --count 100 --method igos --resolution 28 --evaluate
"""

from __future__ import annotations

import argparse
import gc
import itertools
import resource
import time

import torch

import igos
from igos.images import find_images


def resident_mb() -> float:
    """The process's resident set now (Linux: /proc/self/status), in MB."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", default="../shared/data/imagenet-dev")
    ap.add_argument("--count", type=int, default=500)
    ap.add_argument("--every", type=int, default=50)
    ap.add_argument("--method", default="gradient")
    ap.add_argument("--resolution", type=int, default=28)
    ap.add_argument("--evaluate", action="store_true")
    ap.add_argument("--device", default="auto")
    args = ap.parse_args()
    preset = igos.load_model("efficientnet-lite0", device=args.device)
    files = find_images([args.images])
    stream = itertools.islice(itertools.cycle(files), args.count)
    readings: list[tuple[int, float]] = []
    t0 = time.perf_counter()
    done = 0
    print(f"{args.count} explanations, {args.method} {args.resolution}, evaluate={args.evaluate}, "
          f"{len(files)} photos cycled, device {preset.device}")
    cuda = preset.device.type == "cuda"
    print("explanations | resident MB | seconds" + (" | CUDA allocated MB" if cuda else ""))
    for path in stream:  # one photo per call, as a long-lived service would
        for rec in igos.explain_stream([path], preset, args.method, resolution=args.resolution,
                                       evaluate=args.evaluate, device=None):
            del rec
        done += 1
        if done % args.every == 0:
            gc.collect()
            readings.append((done, resident_mb()))
            allocated = f" | {torch.cuda.memory_allocated(preset.device) / 2**20:.1f}" if cuda else ""
            print(f"{done} | {readings[-1][1]:.1f} | {time.perf_counter() - t0:.0f}{allocated}", flush=True)
    first, last = readings[0][1], readings[-1][1]
    growth = (last - first) / first
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    verdict = "no growth beyond 5 %" if growth <= 0.05 else "GROWS"
    print(f"growth from {readings[0][0]} to {readings[-1][0]} explanations: {last - first:+.1f} MB "
          f"({100 * growth:+.2f} %): {verdict}; peak resident set {peak:.0f} MB")
    if preset.device.type == "cuda":
        print(f"peak CUDA memory allocated {torch.cuda.max_memory_allocated(preset.device) / 2**20:.0f} MB")


if __name__ == "__main__":
    main()
