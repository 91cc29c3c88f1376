"""Known answers (issue 21, item 7): every method explains photos through a model that sees only a region (the
top-left quadrant, or a seeded box per photo; the rest replaced by the photo's blur before the network), and the
share of each map's positive mass inside the region is printed per method and resolution (all of it is the
correct answer), beside the share the region itself scores once pooled to the map's cells, and the share on
cells "out of sight" (whose upsampled footprint misses the region: mass no deletion could justify). Per-photo
shares go to a JSON file.

    python benchmarks/known_answer.py --images ../shared/data/imagenet-dev --every 5 --limit 3 \\
        --methods igos igospp mask gradcam --resolutions 28
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

import igos
from igos.images import find_images
from igos.known_answer import known_answer
from igos.methods.recommended import resolve
from igos.options import parse_value


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", default="../shared/data/imagenet-dev")
    ap.add_argument("--every", type=int, default=5, help="every N-th photo in sorted order (5: the table photos)")
    ap.add_argument("--limit", type=int, default=3)
    ap.add_argument("--methods", nargs="+", default=["igos", "igospp", "mask", "gradcam", "gradient", "center"])
    ap.add_argument("--resolutions", nargs="+", type=int, default=[28])
    ap.add_argument("--region", default="quadrant", choices=["quadrant", "box"])
    ap.add_argument("--fill", default="blur", choices=["blur", "grey"])
    ap.add_argument("--model", default="efficientnet-lite0")
    ap.add_argument("--set", nargs="*", default=[], metavar="METHOD:KEY=VALUE", help="a method's option")
    ap.add_argument("--json", default=None, help="write the per-photo shares here")
    args = ap.parse_args()
    preset = igos.load_model(args.model)
    files = find_images([args.images])[:: args.every][: args.limit]
    x = torch.stack([preset.read(f) for f in files])
    extra: dict[str, dict] = {}
    for item in args.set:
        method, kv = item.split(":", 1)
        key, value = kv.split("=", 1)
        extra.setdefault(method, {})[key] = parse_value(value)
    print(f"{len(files)} photos ({', '.join(f.name[:3] for f in files)}), {args.model}, region {args.region}, "
          f"outside: {args.fill}; share of positive map mass inside the region (1 = the known answer)")
    print("| method | resolution | mean | min | max | per photo | s/image | the region pooled to the cells | "
          "out of sight (mean, max) | the whole region as far as the cells reach | in reach, the check's measure "
          "(mean, min) |\n|---|---|---|---|---|---|---|---|---|---|---|")
    out = []
    for res in args.resolutions:
        for name in args.methods:
            method, options = resolve(name, res, extra.get(name, {}))  # auto: the recommended method at res
            spec = igos.get_method(method)
            resolution = res if spec.resolutions == "any" else None
            t0 = time.perf_counter()
            r = known_answer(preset.model, x, method, resolution=resolution, region=args.region, fill=args.fill,
                             names=[f.name for f in files], **options)
            secs = (time.perf_counter() - t0) / len(files)
            shares = [s for s in r.shares if s is not None]
            label = res if resolution is not None else "native"
            ref = r.summary()["reference"]
            far = [v for v in r.out_of_sight if v is not None]
            reach = [v for v in r.in_reach() if v is not None]
            print(f"| {name} | {label} | {statistics.mean(shares):.3f} | {min(shares):.3f} | {max(shares):.3f} | "
                  + " ".join(f"{s:.3f}" for s in shares) + f" | {secs:.1f} | {ref:.3f} | "
                  f"{statistics.mean(far):.3f}, {max(far):.3f} | {r.summary()['reach_reference']:.3f} | "
                  f"{statistics.mean(reach):.3f}, {min(reach):.3f} |", flush=True)
            out.append({**r.summary(), "method": name, "resolution": label, "seconds": secs, "options": options})
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
