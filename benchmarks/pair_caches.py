"""Paired per-photo differences between two caches of ``igos_variants.py`` holding the same variants (method,
options, photos, resolution) computed by two versions of igos, for example a scratch worktree that changes one
line against the code as it is.

For each variant found in both caches: insertion − deletion (blur), ROAD's combined score ``(LeRF − MoRF) / 2``
where both caches have it, deletion (lower is better, so its sign is flipped) and insertion, as the mean and
median of ``other − base`` and the photos where ``other`` is better / equal / worse.

    python benchmarks/pair_caches.py docs/results/igospp-accelerated.json docs/results/nearest-28-diagnostic.json \\
        --resolution 28 --variant igospp:accelerated=false --variant igos:
"""

from __future__ import annotations

import argparse
import json
import statistics

SCORES = {
    "ins - del": lambda r, i: r["insertion"][i] - r["deletion"][i],
    "ROAD combined": lambda r, i: (r["lerf"][i] - r["morf"][i]) / 2,
    "deletion (sign flipped)": lambda r, i: -r["deletion"][i],
    "insertion": lambda r, i: r["insertion"][i],
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("base", help="the cache of the reference code")
    ap.add_argument("other", help="the cache of the changed code")
    ap.add_argument("--resolution", type=int, required=True)
    ap.add_argument("--model", default="efficientnet-lite0")
    ap.add_argument("--variant", action="append", required=True, help="METHOD:OPTIONS, as in the cache's keys")
    args = ap.parse_args()
    with open(args.base) as fh:
        base = json.load(fh)
    with open(args.other) as fh:
        other = json.load(fh)
    for variant in args.variant:
        method, _, options = variant.partition(":")
        prefix = f"{args.model}|{args.resolution}|{method}|{options}|"
        keys = [k for k in other if k.startswith(prefix) and k in base]
        if not keys:
            raise SystemExit(f"{variant}: no photo set at {args.resolution} in both caches")
        for key in keys:
            a, b = base[key], other[key]
            n = len(a["deletion"])
            print(f"{variant} ({n} photos)")
            for name, score in SCORES.items():
                if name == "ROAD combined" and not ("morf" in a and "morf" in b):
                    continue
                d = [score(b, i) - score(a, i) for i in range(n)]
                better = sum(x > 1e-9 for x in d)
                worse = sum(x < -1e-9 for x in d)
                print(f"  {name}: other - base mean {statistics.fmean(d):+.4f}, median {statistics.median(d):+.4f}; "
                      f"better {better}, equal {n - better - worse}, worse {worse}")


if __name__ == "__main__":
    main()
