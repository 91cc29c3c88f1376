"""Which of igos's optimisers to recommend at each resolution, from a bench run's paired per-photo wins.

For each resolution and candidate (I-GOS, iGOS++) it counts, against every baseline with maps at that
resolution (as igos table's paired wins: RISE, IG and the gradient only at 224, GradCAM at its layer's),
the photos where the candidate has the lower deletion, the higher insertion and the larger insertion −
deletion. The recommendation is the candidate whose weakest insertion − deletion comparison is best
(ties: the larger total, then the cheaper, I-GOS); it also says whether that candidate wins both metrics
on at least 60 % of the photos against every baseline (issue 11's criterion).

    python benchmarks/recommend.py RUN_DIR [--model efficientnet-lite0]
"""

from __future__ import annotations

import argparse

from igos.methods.recommended import recommended_method
from igos.store import ResultStore
from igos.tables import area, by_image, display_name, label, latest_settings, paired_wins

CANDIDATES = ("igos", "igospp")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run_dir")
    ap.add_argument("--model", default="efficientnet-lite0")
    args = ap.parse_args()
    store = ResultStore.open_existing(args.run_dir)
    rows, _ = latest_settings(store.rows())
    store.close()
    by = {(m, r): v for (m, variant, r), v in by_image(rows, args.model).items() if variant == "default"}
    resolutions = sorted({res for m, res in by if m in CANDIDATES}, key=area, reverse=True)
    print("| resolution | candidate | weakest ins − del win rate | del / ins / ins − del wins against each baseline "
          "| wins both on ≥ 60 % against all | chosen | igos.methods.recommended |\n|---|---|---|---|---|---|---|")
    for res in resolutions:
        # the baselines with maps at this resolution, as in igos table's paired wins (input-only maps at 224)
        baselines = sorted({m for m, r in by if m not in CANDIDATES and r == res})
        scored = []
        for cand in CANDIDATES:
            mine = by.get((cand, res))
            if not mine:
                continue
            parts, rates, total, both = [], [], 0, True
            for b in baselines:
                d, ins, gap, n = paired_wins(mine, by[(b, res)])
                parts.append(f"{display_name(b)} {d}/{ins}/{gap} of {n}")
                rates.append(gap / n)
                total += gap
                both &= d >= 0.6 * n and ins >= 0.6 * n
            scored.append(((min(rates), total, -CANDIDATES.index(cand)), cand, parts, both))
        best = max(scored)[1]
        shape = (res, res) if isinstance(res, int) else tuple(int(v) for v in res.split("x"))
        for key, cand, parts, both in scored:
            print(f"| {label(res)} | {display_name(cand)} | {key[0]:.0%} | {'; '.join(parts)} | "
                  f"{'yes' if both else 'no'} | {'**yes**' if cand == best else ''} | "
                  f"{recommended_method(shape) if cand == best else ''} |")


if __name__ == "__main__":
    main()
