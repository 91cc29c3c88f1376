"""The verdict grid (issue 21, item 6): every method and control under blur and ROAD at each resolution, on one
photo set, read from the caches of ``benchmarks/igos_variants.py --road`` (nothing is computed here).

Per resolution: deletion / insertion / insertion − deletion (blur), MoRF / LeRF / combined (ROAD), paired
per-photo wins of insertion − deletion and of the combined score against ``auto`` (the recommended method at that
side), and the photos on which a method beats all three controls on both removals. A method whose mean does not
beat the ``center`` and ``edges`` controls on a score is flagged. Methods with a map of their own resolution
(GradCAM's layer, the input's) have one map at every side: their entry is taken from whichever side it was
computed at. Where ``auto`` runs its method with options of its own (``RECOMMENDED_OPTIONS``: at 14×14 iGOS++'s
fixed step warm-started from Excitation Backprop) its row is that entry, and the method at its defaults is a row
of its own.

    python benchmarks/grid_verdict.py --every 5 --cache docs/results/road-grid.json docs/results/coarse-14.json \\
        docs/results/coarse-7.json docs/results/controls-28-7.json docs/results/igospp-accelerated.json
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

from igos.images import find_images
from igos.methods import get_method
from igos.methods.recommended import recommended
from igos.options import parse_options

CONTROLS = ("random", "center", "edges")
ORDER = ("igospp", "igos", "mask", "ebp", "gradcam", "rise", "ig", "gradient", *CONTROLS)
#: option spellings that are the method's defaults (entries computed with them stand for the default)
DEFAULT_SPELLINGS = {"igospp": {"", "accelerated=false"}}
#: the row key of ``auto`` where it runs a method with options of its own (at 14×14: iGOS++'s fixed step warm from
#: Excitation Backprop)
AUTO_ROW = "auto"


#: options of ``auto`` that change nothing on a model where its warm start runs (the fallback's method is used only
#: where ``init``'s refuses the model or target; Excitation Backprop runs on the EfficientNets)
INERT = ("init_fallback",)


def spelling(options: dict) -> str:
    """The cache key's spelling of ``options`` (``igos_variants.py``'s ``KEY=VALUE,...``)."""
    return ",".join(f"{k}={v}" for k, v in options.items())


def same_options(text: str, options: dict) -> bool:
    """Whether a cache key's option text (``KEY=VALUE,...`` as typed) asks for ``options`` (values compared parsed:
    ``true`` is ``True``, ``1`` is ``1.0``), the options in :data:`INERT` left out."""
    wanted = {k: v for k, v in options.items() if k not in INERT}
    return bool(text) and parse_options(text.split(",")) == wanted


def entries(caches: list[Path], model: str, photos: str,
            presets: dict[int, tuple[str, dict]] | None = None) -> dict[tuple[int, str], dict]:
    """``(resolution, method) -> cache entry`` for the methods at their defaults on ``photos``; with ``presets``
    (``resolution -> (method, auto's options)``) also ``(resolution, AUTO_ROW)`` for ``auto``'s own
    options at that side."""
    presets = presets or {}
    found: dict[tuple[int, str], dict] = {}
    for path in caches:
        if not path.exists():
            print(f"(no cache {path})")
            continue
        for key, value in json.loads(path.read_text()).items():
            m, res, method, text, names = key.split("|", 4)
            if m != model or names != photos or "morf" not in value:
                continue
            preset = presets.get(int(res))
            if preset is not None and preset[0] == method and same_options(text, preset[1]):
                found.setdefault((int(res), AUTO_ROW), value)
            if text not in DEFAULT_SPELLINGS.get(method, {""}):
                continue
            found.setdefault((int(res), method), value)
    return found


def scores(entry: dict) -> tuple[list[float], list[float]]:
    gap = [i - d for d, i in zip(entry["deletion"], entry["insertion"])]
    comb = [(le - mo) / 2 for mo, le in zip(entry["morf"], entry["lerf"])]
    return gap, comb


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", default="../shared/data/imagenet-dev")
    ap.add_argument("--every", type=int, default=5)
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--model", default="efficientnet-lite0")
    ap.add_argument("--resolutions", nargs="+", type=int, default=[224, 112, 28, 14, 7])
    ap.add_argument("--cache", nargs="+", required=True, type=Path)
    ap.add_argument("--as-auto", action="append", default=[], metavar="SIDE:METHOD:KEY=VALUE,...",
                    help="score a candidate in auto's place at SIDE (its rows must be in the caches)")
    args = ap.parse_args()
    files = find_images([args.images])[:: args.every][: args.limit]
    chosen = {res: recommended(res) for res in args.resolutions}
    for candidate in args.as_auto:
        side, method, text = candidate.split(":", 2)
        chosen[int(side)] = (method, parse_options(text.split(",")) if text else {})
    presets = {res: (name, options) for res, (name, options) in chosen.items() if options}
    found = entries(args.cache, args.model, ",".join(f.name for f in files), presets)
    native = {method: e for (res, method), e in found.items()
              if method != AUTO_ROW and get_method(method).resolutions != "any"}
    print(f"{args.model}, {len(files)} photos (every {args.every}th); blur: deletion ↓ / insertion ↑ / ins − del; "
          "ROAD: MoRF ↓ / LeRF ↑ / combined = (LeRF − MoRF) / 2; wins: paired per photo against auto")
    for res in args.resolutions:
        method_name, preset = chosen[res]
        auto = AUTO_ROW if preset else method_name
        row = {m: found.get((res, m)) or native.get(m) for m in ((AUTO_ROW,) if preset else ()) + ORDER}
        row = {m: e for m, e in row.items() if e is not None}
        if auto not in row:
            print(f"\n{res}×{res}: auto ({method_name} {spelling(preset)}) not in the caches")
            continue
        base_gap, base_comb = scores(row[auto])
        controls = {c: scores(row[c]) for c in CONTROLS if c in row}
        title = f"{method_name} {spelling(preset)}" if preset else method_name
        print(f"\n{res}×{res} (auto = {title})\n| method | deletion | insertion | ins − del | MoRF | LeRF | combined | "
              "wins vs auto, blur / ROAD | photos beating every control on both | below center or edges |\n"
              "|---|---|---|---|---|---|---|---|---|---|")
        for method, e in row.items():
            gap, comb = scores(e)
            wins = "–" if method == auto else (f"{sum(a > b for a, b in zip(gap, base_gap))} / "
                                               f"{sum(a > b for a, b in zip(comb, base_comb))}")
            if len(controls) == len(CONTROLS) and method not in CONTROLS:
                beats = sum(all(gap[i] > cg[i] and comb[i] > cc[i] for cg, cc in controls.values())
                            for i in range(len(gap)))
                beats_text = f"{beats} of {len(gap)}"
            else:
                beats_text = "–"
            below = [name for name, mine, idx in (("ins − del", gap, 0), ("combined", comb, 1))
                     if method not in CONTROLS
                     and any(c in controls and statistics.mean(mine) <= statistics.mean(controls[c][idx])
                             for c in ("center", "edges"))]
            name = get_method(method_name if method == AUTO_ROW else method).display
            if method == AUTO_ROW:
                name = f"{name}, {spelling(preset)}"
            elif preset and method == method_name:
                name = f"{name}, its defaults"
            name = f"**{name}** (auto)" if method == auto else name
            print(f"| {name} | {statistics.mean(e['deletion']):.4f} | {statistics.mean(e['insertion']):.4f} | "
                  f"{statistics.mean(gap):.4f} | {statistics.mean(e['morf']):.4f} | {statistics.mean(e['lerf']):.4f} | "
                  f"{statistics.mean(comb):.4f} | {wins} | {beats_text} | {', '.join(below) or ''} |")


if __name__ == "__main__":
    main()
