"""`auto` against the model-blind controls with paired statistics (issue 21, "Numbers to reach"), read from the
caches of ``benchmarks/igos_variants.py --road`` (nothing is computed here).

The issue's bar counts photos on which a method beats all three controls on both removals: six paired comparisons
that must all go one way on a photo. On a photo whose object is centred or well outlined, the ``center`` or
``edges`` control is itself a fair map, so a faithful map ties it there and the count reads ties as losses. This
script shows what the count leaves out, per control and removal: the paired wins, the mean paired difference with
its 95 % CI, a one-sided Wilcoxon signed-rank test (``auto`` better), the losses themselves, and, with
``--seed-variant`` (the same method and options with ``seed=1``, in the caches), the method's own seed-to-seed
spread per photo, which a loss must exceed to count as clear.

    python benchmarks/controls_paired.py --resolution 28 --cache docs/results/controls-28-7.json \\
        docs/results/igospp-accelerated.json docs/results/seed-spread-28.json \\
        --auto igospp:accelerated=true,momentum=false,steps=2 \\
        --seed-variant igospp:accelerated=true,momentum=false,steps=2,seed=1
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

from grid_verdict import CONTROLS, scores  # per photo: insertion − deletion (blur), ROAD's combined score

from igos.images import find_images
from igos.stats import ci

REMOVALS = ("blur: ins − del", "ROAD: combined")


def lookup(caches: list[Path], model: str, resolution: int, photos: str) -> dict[str, dict]:
    """``METHOD:OPTIONS`` -> cache entry with ROAD scores, for ``photos`` at ``resolution`` (first cache wins)."""
    found: dict[str, dict] = {}
    for path in caches:
        for key, value in json.loads(path.read_text()).items():
            m, res, method, text, names = key.split("|", 4)
            if m == model and int(res) == resolution and names == photos and "morf" in value:
                found.setdefault(f"{method}:{text}", value)
    return found


def main() -> None:
    from scipy.stats import wilcoxon

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", default="../shared/data/imagenet-dev")
    ap.add_argument("--every", type=int, default=5)
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--model", default="efficientnet-lite0")
    ap.add_argument("--resolution", type=int, default=28)
    ap.add_argument("--cache", nargs="+", required=True, type=Path)
    ap.add_argument("--auto", required=True, metavar="METHOD:KEY=VALUE,...", help="auto's entry at this side")
    ap.add_argument("--oracle", action="store_true",
                    help="also count the photos on which any method or variant in the caches (controls aside) beats "
                         "all three controls on both removals: the most a choice among them could reach")
    ap.add_argument("--seed-variant", default=None, metavar="METHOD:KEY=VALUE,...",
                    help="the same method with seed=1: its per-photo spread against --auto")
    args = ap.parse_args()
    files = find_images([args.images])[:: args.every][: args.limit]
    found = lookup(args.cache, args.model, args.resolution, ",".join(f.name for f in files))
    missing = [k for k in (args.auto, *(f"{c}:" for c in CONTROLS)) if k not in found]
    if missing:
        raise SystemExit(f"not in the caches for these {len(files)} photos at {args.resolution}: {', '.join(missing)}")
    auto = scores(found[args.auto])
    n = len(files)
    print(f"{args.model}, {n} photos (every {args.every}th), {args.resolution}×{args.resolution}, auto = {args.auto}")
    spread = None
    if args.seed_variant:
        if args.seed_variant not in found:
            raise SystemExit(f"--seed-variant {args.seed_variant} is not in the caches")
        other = scores(found[args.seed_variant])
        spread = [[abs(a - b) for a, b in zip(auto[k], other[k])] for k in range(2)]
        for k, name in enumerate(REMOVALS):
            print(f"seed 0 against seed 1, {name}: per-photo |difference| median {statistics.median(spread[k]):.3f}, "
                  f"max {max(spread[k]):.3f}; means {statistics.mean(auto[k]):.4f} and {statistics.mean(other[k]):.4f}")
    print("\n| control | removal | auto's wins | mean paired difference (95 % CI) | Wilcoxon p (auto better) | "
          "losses | losses beyond the seed spread |\n|---|---|---|---|---|---|---|")
    controls = {c: scores(found[f"{c}:"]) for c in CONTROLS}
    for control, theirs in controls.items():
        for k, name in enumerate(REMOVALS):
            diff = [a - b for a, b in zip(auto[k], theirs[k])]
            p = wilcoxon(diff, alternative="greater").pvalue
            losses = sorted(d for d in diff if d <= 0)
            clear = ("–" if spread is None else
                     str(sum(d <= 0 and -d > statistics.median(spread[k]) for d in diff)))
            print(f"| {control} | {name} | {sum(d > 0 for d in diff)} of {n} | {statistics.mean(diff):+.3f} "
                  f"(± {ci(diff):.3f}) | {p:.2g} | {', '.join(f'{d:+.3f}' for d in losses) or '–'} | {clear} |")
    every = [all(auto[k][i] > theirs[k][i] for theirs in controls.values() for k in range(2)) for i in range(n)]
    print(f"\nbeats all three controls on both removals (the issue's count): {sum(every)} of {n}")
    if args.oracle:
        beats = {key: [all(mine[k][i] > theirs[k][i] for theirs in controls.values() for k in range(2))
                       for i in range(n)]
                 for key, entry in found.items() if key.split(":")[0] not in CONTROLS for mine in [scores(entry)]}
        print(f"methods and variants in the caches: {', '.join(sorted(beats))}")
        anyone = [any(b[i] for b in beats.values()) for i in range(n)]
        best = max(beats, key=lambda key: sum(beats[key]))
        print(f"any of the {len(beats)} methods and variants in the caches, photo by photo: {sum(anyone)} of {n}; the "
              f"best single one ({best}): {sum(beats[best])}; photos none of them clears: "
              f"{', '.join(files[i].name.split('_')[0] for i in range(n) if not anyone[i]) or '–'}")
    if spread is not None:
        tol = [statistics.median(spread[k]) for k in range(2)]
        clear = [all(auto[k][i] - theirs[k][i] >= -tol[k] for theirs in controls.values() for k in range(2))
                 for i in range(n)]
        print(f"loses to no control on either removal by more than the median seed spread: {sum(clear)} of {n}")


if __name__ == "__main__":
    main()
