"""Score an input-resolution method's maps average-pooled to coarse sides, under blur and ROAD.

A method whose map has the input's resolution (RISE, integrated gradients, the gradient) is not a 7×7 map, so the
grid's comparison at 7×7 mixes the method with the map's resolution. This script explains the photos once, pools
each map to every side asked (``adaptive_avg_pool2d``), scores the native and the pooled maps with the same blur
deletion/insertion and ROAD as ``igos explain --evaluate --removal blur road``, and prints the means with paired
wins against the method ``auto`` runs at that side, read from ``benchmarks/igos_variants.py``'s caches.

    python benchmarks/pooled_maps.py --method rise --sides 28 14 7 --every 5 --maps /tmp/rise-maps.pt \
        --cache docs/results/road-grid.json docs/results/coarse-7.json
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

import igos
from igos.methods.recommended import recommended
from igos.metrics import deletion_insertion
from igos.road import road

sys.path.insert(0, str(Path(__file__).parent))
from grid_verdict import AUTO_ROW, entries, scores  # noqa: E402  (a sibling script)
from igos_variants import options_of, photo_set  # noqa: E402


def auto_entry(caches: list[Path], model: str, side: int, photos: str) -> dict | None:
    """``auto``'s cache entry at ``side``, found as ``grid_verdict.py`` finds it."""
    name, options = recommended(side)
    found = entries(caches, model, photos, {side: (name, options)} if options else None)
    return found.get((side, AUTO_ROW if options else name))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", default="../shared/data/imagenet-dev")
    ap.add_argument("--every", type=int, default=5,
                    help="every N-th file (5: the 20 table photos); 0: the tuning photos")
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--model", default="efficientnet-lite0")
    ap.add_argument("--method", default="rise")
    ap.add_argument("--sides", nargs="+", type=int, default=[28, 14, 7])
    ap.add_argument("--maps", type=Path, default=None, help="keep the maps here (and reuse them when present)")
    ap.add_argument("--cache", nargs="*", type=Path, default=[])
    ap.add_argument("--set", default="", metavar="KEY=VALUE,...", help="the method's options, e.g. masks=400")
    args = ap.parse_args()
    files = photo_set(args.images, args.every or None, args.limit)
    photos = ",".join(f.name for f in files)
    preset = igos.load_model(args.model)
    x = torch.stack([preset.read(f) for f in files])
    if args.maps and args.maps.exists():
        saved = torch.load(args.maps)
        maps, targets, secs = saved["maps"], saved["targets"], saved["seconds"]
    else:
        out = igos.explain(x, preset, args.method, images_per_batch=5, **options_of(args.set, 224))
        maps = torch.stack([e.saliency for e in out])
        targets = torch.tensor([e.target for e in out])
        secs = statistics.mean(e.seconds for e in out)
        if args.maps:
            torch.save({"maps": maps, "targets": targets, "seconds": secs}, args.maps)
    print(f"{len(files)} photos, {args.model}, {args.method} {args.set} ({secs:.1f} s an image); "
          "blur ins − del, ROAD combined; wins: paired per photo against auto at the side")
    print("| map | deletion | insertion | ins − del | MoRF | LeRF | combined | auto: ins − del / combined | "
          "wins vs auto, blur / ROAD |\n|---|---|---|---|---|---|---|---|---|")
    for side in [None, *args.sides]:
        sal = maps if side is None else F.adaptive_avg_pool2d(maps.unsqueeze(1), side)[:, 0]
        with torch.no_grad():
            s = deletion_insertion(preset.model, x, sal, targets)
            r = road(preset.model, x, sal, targets, seed=0)
        gap = (s.insertion - s.deletion).tolist()
        comb = r.combined.tolist()
        row = (f"| {'native' if side is None else f'pooled to {side}×{side}'} | {s.deletion.mean():.4f} | "
               f"{s.insertion.mean():.4f} | {statistics.mean(gap):.4f} | {r.morf.mean():.4f} | {r.lerf.mean():.4f} | "
               f"{statistics.mean(comb):.4f} |")
        auto = None if side is None else auto_entry(args.cache, args.model, side, photos)
        if auto is None:
            print(row + " – | – |", flush=True)
            continue
        agap, acomb = scores(auto)
        print(row + f" {statistics.mean(agap):.4f} / {statistics.mean(acomb):.4f} | "
              f"{sum(a > b for a, b in zip(gap, agap))} / {sum(a > b for a, b in zip(comb, acomb))} |", flush=True)


if __name__ == "__main__":
    main()
