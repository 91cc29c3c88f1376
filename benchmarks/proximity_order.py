"""An experiment for the controls bar (issue 21): order an optimised map's tail by nearness to its evidence.

An I-GOS / iGOS++ mask orders the cells it deletes; the rest stay near 1 and are ordered by small differences, which
ROAD's LeRF and MoRF at p up to 0.9 and the insertion curve read. A centred blob orders every pixel by distance
from the centre, which is why it beats the optimisers on some photos. This script adds to each map ``eps`` × (the
map's range) × its own Gaussian blur (σ in cells, scaled to a peak of 1), so cells of almost equal saliency are
ordered by how near they lie to the salient ones; the head of the map keeps its order when ``eps`` is small. The
maps of ``--method`` (default ``auto``) are computed once and cached; every variant and the three controls are scored
under blur and ROAD. It prints, per variant, the means, the paired wins against the plain map and the photos on
which the map beats all three controls on both removals.

    python benchmarks/proximity_order.py --resolution 28 --eps 0.02 0.1 --sigma 2 4             # 10 tuning photos
    python benchmarks/proximity_order.py --resolution 28 --every 5 --eps 0.1 --sigma 4           # 20 table photos
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

import igos
from igos.known_answer import inside_share, known_answer, out_of_sight_share, region_mask
from igos.methods.recommended import resolve
from igos.metrics import deletion_insertion
from igos.road import road

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from igos_variants import photo_set  # noqa: E402

CONTROLS = ("random", "center", "edges")


def gaussian_blur(maps: torch.Tensor, sigma: float) -> torch.Tensor:
    """``maps`` ``[B, h, w]`` blurred by a separable Gaussian of ``sigma`` cells, zero padding (nearness to the map's
    evidence, not to the frame)."""
    radius = max(1, int(3 * sigma + 0.5))
    t = torch.arange(-radius, radius + 1, dtype=maps.dtype)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    k = k / k.sum()
    x = maps.unsqueeze(1)
    x = F.conv2d(x, k.view(1, 1, 1, -1), padding=(0, radius))
    x = F.conv2d(x, k.view(1, 1, -1, 1), padding=(radius, 0))
    return x[:, 0]


def nearness_order(maps: torch.Tensor, eps: float, sigma: float) -> torch.Tensor:
    """``maps`` plus ``eps`` × their range × their own blur scaled to a peak of 1 (only the positive part spreads)."""
    if eps == 0:
        return maps
    lo = maps.flatten(1).amin(1).view(-1, 1, 1)
    span = (maps.flatten(1).amax(1).view(-1, 1, 1) - lo).clamp_min(1e-30)
    spread = gaussian_blur((maps - lo) / span, sigma)
    spread = spread / spread.flatten(1).amax(1).view(-1, 1, 1).clamp_min(1e-30)
    return maps + eps * span * spread


def scores(model, x: torch.Tensor, maps: torch.Tensor) -> dict[str, list[float]]:
    blur = deletion_insertion(model, x, maps)
    r = road(model, x, maps)
    return {"deletion": blur.deletion.tolist(), "insertion": blur.insertion.tolist(),
            "morf": r.morf.tolist(), "lerf": r.lerf.tolist()}


def both(s: dict[str, list[float]]) -> tuple[list[float], list[float]]:
    """Per photo: insertion − deletion and ROAD's combined score."""
    return ([i - d for d, i in zip(s["deletion"], s["insertion"])],
            [(le - mo) / 2 for mo, le in zip(s["morf"], s["lerf"])])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", default="../shared/data/imagenet-dev")
    ap.add_argument("--every", type=int, default=None)
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--resolution", type=int, default=28)
    ap.add_argument("--method", default="auto")
    ap.add_argument("--eps", type=float, nargs="+", default=[0.02, 0.1])
    ap.add_argument("--sigma", type=float, nargs="+", default=[2.0, 4.0])
    ap.add_argument("--cache", default=None, help="JSON of maps and scores (default: none)")
    ap.add_argument("--known-answer", action="store_true",
                    help="instead: the share of each variant's map inside the quadrant a wrapped model sees")
    args = ap.parse_args()
    files = photo_set(args.images, args.every, args.limit)
    print(f"{len(files)} photos: {', '.join(f.name[:3] for f in files)}; {args.method} at {args.resolution}")
    cache_path = Path(args.cache) if args.cache else None
    cache = json.loads(cache_path.read_text()) if cache_path and cache_path.exists() else {}
    tag = f"{args.resolution}|{','.join(f.name for f in files)}"
    preset = igos.load_model("efficientnet-lite0")
    x = torch.stack([preset.read(f) for f in files])

    def save() -> None:
        if cache_path:
            cache_path.write_text(json.dumps(cache))

    if args.known_answer:
        key = f"known|{args.method}|{tag}"
        if key not in cache:
            method, options = resolve(args.method, args.resolution)
            found = known_answer(preset.model, x, method, resolution=args.resolution, **options)
            cache[key] = [m.tolist() for m in found.maps]
            save()
        maps = torch.tensor(cache[key], dtype=torch.float32)
        region = region_mask("quadrant", tuple(x.shape[-2:]), 0, 0)
        print("\n| map | share inside the quadrant (mean, min) | out of sight (mean) |\n|---|---|---|")
        for name, eps, sigma in [("plain", 0.0, 0.0)] + [(f"eps {e:g}, σ {s:g}", e, s) for e in args.eps
                                                         for s in args.sigma]:
            m = nearness_order(maps, eps, sigma)
            inside = [inside_share(v, region) for v in m]
            out = [out_of_sight_share(v, region) for v in m]
            print(f"| {name} | {statistics.mean(inside):.3f}, {min(inside):.3f} | {statistics.mean(out):.3f} |")
        return

    maps: dict[str, torch.Tensor] = {}
    for method in (args.method, *CONTROLS):
        key = f"maps|{method}|{tag}"
        if key not in cache:
            t0 = time.perf_counter()
            out = igos.explain(x, preset, method, resolution=args.resolution, images_per_batch=5)
            cache[key] = [r.saliency.tolist() for r in out]
            print(f"{method}: {(time.perf_counter() - t0) / len(files):.1f} s an image", flush=True)
            save()
        maps[method] = torch.tensor(cache[key], dtype=torch.float32)
    variants = [("plain", args.method, 0.0, 0.0)] + [(f"eps {e:g}, σ {s:g}", args.method, e, s)
                                                      for e in args.eps for s in args.sigma]
    variants += [(c, c, 0.0, 0.0) for c in CONTROLS]
    results: dict[str, dict[str, list[float]]] = {}
    for name, method, eps, sigma in variants:
        key = f"scores|{method}|{eps}|{sigma}|{tag}"
        if key not in cache:
            t0 = time.perf_counter()
            cache[key] = scores(preset.model, x, nearness_order(maps[method], eps, sigma))
            print(f"scored {name}: {(time.perf_counter() - t0) / len(files):.1f} s an image", flush=True)
            save()
        results[name] = cache[key]
    base_blur, base_road = both(results["plain"])
    controls = [both(results[c]) for c in CONTROLS]
    print("\n| map | del / ins (ins − del) | MoRF / LeRF (combined) | wins vs plain, blur / ROAD | "
          "beats all 3 controls on both |\n|---|---|---|---|---|")
    for name, _, _, _ in variants:
        s = results[name]
        blur, rd = both(s)
        wins = "–" if name == "plain" else (f"{sum(a > b for a, b in zip(blur, base_blur))} / "
                                            f"{sum(a > b for a, b in zip(rd, base_road))}")
        beats = sum(all(blur[i] > cb[i] and rd[i] > cr[i] for cb, cr in controls) for i in range(len(files)))
        print(f"| {name} | {statistics.mean(s['deletion']):.4f} / {statistics.mean(s['insertion']):.4f} "
              f"({statistics.mean(blur):.4f}) | {statistics.mean(s['morf']):.4f} / {statistics.mean(s['lerf']):.4f} "
              f"({statistics.mean(rd):.4f}) | {wins} | {beats} of {len(files)} |")


if __name__ == "__main__":
    main()
