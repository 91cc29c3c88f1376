"""I-GOS / iGOS++ settings side by side on the λ-tuning photos: deletion (↓), insertion (↑), flat maps,
seconds per image, and paired per-photo wins against the first variant. Results are cached per
(variant, resolution, photo set) in a JSON file, so a rerun adds only what is missing.

A variant is ``NAME:METHOD:KEY=VALUE,...``; ``scale=C`` multiplies the resolution's default λ1 and λ2
(I-GOS's ``default_regularisation``) by ``C``. Photos: the λ-tuning set, held out from both bench tables
(every 4th file from the third, minus the multiples of 4 and 5 in sorted order): 020, 060, 140, 180,
220, 260, 340, 380, 420, 460 of ../shared/data/imagenet-dev; with ``--every 5`` the 20 table photos instead
(000, 050, …, 950), for the check on photos not used to choose.

    python benchmarks/igos_variants.py --resolutions 28 7 \\
        --variant default:igos: --variant logodds:igos:score=log-odds,scale=10

``--road`` scores ROAD too (MoRF ↓, LeRF ↑, combined = (LeRF − MoRF) / 2, paired wins of the combined score): a
cached variant without ROAD's scores runs again.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import torch

import igos
from igos.images import find_images
from igos.methods.defaults import default_regularisation
from igos.options import parse_value


def tuning_photos(folder: str, limit: int) -> list[Path]:
    indexed = [(i, f) for i, f in list(enumerate(find_images([folder])))[2::4] if i % 4 and i % 5]
    return [f for _, f in indexed][:limit]


def photo_set(folder: str, every: int | None, limit: int | None) -> list[Path]:
    """The photos a benchmark runs on: the tuning photos (``every`` None; at most ``limit``, 10 when ``None``), else
    every ``every``-th file of ``folder`` in sorted order (at most ``limit``)."""
    if every is None:
        return tuning_photos(folder, limit or 10)
    return find_images([folder])[::every][:limit]


def options_of(text: str, resolution: int) -> dict:
    opts = {}
    for part in filter(None, text.split(",")):
        key, value = part.split("=", 1)
        opts[key] = parse_value(value)
    scale = opts.pop("scale", None)
    if scale is not None:
        l1, tv = default_regularisation(resolution)
        opts.setdefault("l1", l1 * scale)
        opts.setdefault("tv", tv * scale)
    return opts


def scale_of(text: str) -> float:
    """The variant's λ scale (``scale=C``; 1 when not given)."""
    return next((float(p.split("=", 1)[1]) for p in text.split(",") if p.startswith("scale=")), 1.0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", default="../shared/data/imagenet-dev")
    ap.add_argument("--resolutions", nargs="+", type=int, default=[28, 7])
    ap.add_argument("--limit", type=int, default=None, help="at most this many photos (default: 10 tuning photos, "
                    "or every one of --every)")
    ap.add_argument("--every", type=int, default=None, metavar="N",
                    help="instead of the tuning photos, every N-th file in sorted order (5: the 20 table photos)")
    ap.add_argument("--variant", action="append", required=True)
    ap.add_argument("--model", default="efficientnet-lite0")
    ap.add_argument("--cache", default="docs/results/igos-variants.json")
    ap.add_argument("--cached-only", action="store_true", help="print what the cache holds, compute nothing")
    ap.add_argument("--road", action="store_true", help="also score ROAD (MoRF, LeRF, combined)")
    ap.add_argument("--plot", default=None, metavar="PNG",
                    help="also plot mean deletion against mean insertion per variant, one panel per resolution; "
                         "variants of one method are joined in the order of their λ scale (a trade-off curve over λ)")
    args = ap.parse_args()
    points: dict[int, list[tuple[str, str, float, float, float]]] = {}
    files = photo_set(args.images, args.every, args.limit)
    cache_path = Path(args.cache)
    cache = json.loads(cache_path.read_text()) if cache_path.exists() else {}
    preset = None
    x = None
    kind = "held-out" if args.every is None else f"every {args.every}th"
    print(f"{len(files)} {kind} photos: {', '.join(f.name[:3] for f in files)}; model {args.model}")
    road_head = ((" MoRF (↓) | LeRF (↑) | combined | wins combined vs first |", "---|---|---|---|") if args.road
                 else ("", ""))
    for res in args.resolutions:
        print(f"\n{res}×{res}\n| variant | deletion (↓) | insertion (↑) | ins − del | flat (stalled) | s/image | "
              f"wins del / ins / ins−del vs first |{road_head[0]}\n|---|---|---|---|---|---|---|{road_head[1]}")
        base = None
        for variant in args.variant:
            name, method, text = variant.split(":", 2)
            key = f"{args.model}|{res}|{method}|{text}|{','.join(f.name for f in files)}"
            missing = key not in cache or (args.road and "morf" not in cache[key])
            if missing and args.cached_only:
                continue
            if missing:
                if preset is None:
                    preset = igos.load_model(args.model)
                    x = torch.stack([preset.read(f) for f in files])
                out = igos.explain(x, preset, method, resolution=res, evaluate=True, images_per_batch=5,
                                   removal=("blur", "road") if args.road else "blur", **options_of(text, res))
                secs = statistics.mean(r.seconds for r in out)  # the method's time, without the metric
                cache[key] = {"deletion": [r.deletion for r in out], "insertion": [r.insertion for r in out],
                              "flat": [bool(float(r.saliency.max() - r.saliency.min()) < 1e-6) for r in out],
                              "stalled": [bool((r.trace or {}).get("stalled")) for r in out], "seconds": secs}
                if args.road:
                    cache[key].update(morf=[r.removals["road"]["morf"] for r in out],
                                      lerf=[r.removals["road"]["lerf"] for r in out])
                cache_path.write_text(json.dumps(cache))
            c = cache[key]
            d, i = c["deletion"], c["insertion"]
            gap = [b - a for a, b in zip(d, i)]
            if base is None:
                wins = "–"
                base = c
            else:
                bd, bi = base["deletion"], base["insertion"]
                wins = (f"{sum(a < b for a, b in zip(d, bd))} / {sum(a > b for a, b in zip(i, bi))} / "
                        f"{sum(g > bi_ - bd_ for g, bi_, bd_ in zip(gap, bi, bd))}")
            points.setdefault(res, []).append((name, method, statistics.mean(d), statistics.mean(i), scale_of(text)))
            road = ""
            if args.road:
                comb = [(b - a) / 2 for a, b in zip(c["morf"], c["lerf"])]
                base_comb = [(b - a) / 2 for a, b in zip(base["morf"], base["lerf"])]
                road_wins = "–" if c is base else str(sum(a > b for a, b in zip(comb, base_comb)))
                road = (f" {statistics.mean(c['morf']):.4f} | {statistics.mean(c['lerf']):.4f} | "
                        f"{statistics.mean(comb):.4f} | {road_wins} |")
            print(f"| {name} | {statistics.mean(d):.4f} | {statistics.mean(i):.4f} | {statistics.mean(gap):.4f} | "
                  f"{sum(c['flat'])}/{len(d)} ({sum(c.get('stalled', c['flat']))}) | {c['seconds']:.1f} | {wins} |"
                  f"{road}", flush=True)
    if args.plot:
        plot(points, args.plot, len(files), args.model)


def plot(points: dict[int, list[tuple[str, str, float, float, float]]], path: str, n: int, model: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(points), figsize=(5 * len(points), 4.5), squeeze=False)
    for ax, (res, pts) in zip(axes[0], points.items()):
        for method in dict.fromkeys(p[1] for p in pts):
            mine = sorted((p for p in pts if p[1] == method), key=lambda p: p[4])  # by λ scale
            xs, ys = [p[2] for p in mine], [p[3] for p in mine]
            ax.plot(xs, ys, "o-" if len(mine) > 1 else "s", label=method)
            for name, _, x, y, _ in mine:
                ax.annotate(name, (x, y), textcoords="offset points", xytext=(4, 4), fontsize=7)
        ax.set_xlabel("deletion (lower is better)")
        ax.set_ylabel("insertion (higher is better)")
        ax.set_title(f"{res}×{res}, {model}, {n} photos (mean)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
