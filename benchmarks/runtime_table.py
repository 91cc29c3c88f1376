"""Seconds per image of every method at every resolution it has (the paper's Table 3 form).

Run it alone on the machine (a second heavy torch process slows both several times). Images are
explained in one batch per method and resolution; seconds are the method's wall time / images.

    python benchmarks/runtime_table.py --images ../shared/data/imagenet-dev --every 20 --limit 3
"""

from __future__ import annotations

import argparse
import time

import torch

import igos
from igos.images import find_images
from igos.methods import get_method
from igos.perturb import blurred_baseline


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", default="../shared/data/imagenet-dev")
    ap.add_argument("--every", type=int, default=20)
    ap.add_argument("--limit", type=int, default=3)
    ap.add_argument("--model", default="efficientnet-lite0")
    ap.add_argument("--methods", nargs="+", default=["igos", "mask", "ig", "gradcam", "rise", "ebp", "gradient"])
    ap.add_argument("--resolutions", nargs="+", type=int, default=[224, 112, 28, 14, 7])
    args = ap.parse_args()
    preset = igos.load_model(args.model)
    files = find_images([args.images])[:: args.every][: args.limit]
    x = torch.stack([preset.read(f) for f in files])
    with torch.no_grad():
        targets = preset.model(x).argmax(1)
    baseline = blurred_baseline(x)
    print(f"{args.model}, {len(files)} images, seconds per image (forward / forward+backward images per image)")
    print("| method | " + " | ".join(f"{r}×{r}" for r in args.resolutions) + " |")
    print("|---|" + "---|" * len(args.resolutions))
    for name in args.methods:
        spec = get_method(name)
        cells = []
        for r in args.resolutions:
            kind = spec.resolutions
            if kind != "any" and r != args.resolutions[0]:
                cells.append("–")
                continue
            t0 = time.perf_counter()
            res = spec(preset.model, x, targets, baseline=baseline, resolution=r, **spec.with_preset({}, preset))
            sec = (time.perf_counter() - t0) / len(files)
            n = len(files)
            side = res.saliency.shape[-1]
            label = "" if kind == "any" else f" ({side}×{side})"
            cells.append(f"{sec:.2f}{label} ({res.forward_images // n}/{res.backward_images // n})")
        print(f"| {name} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
