"""Two bench runs of the same grid compared by what a user sees: per (image, method, resolution) the change of
deletion and insertion, the Spearman rank correlation of the two maps, whether they are identical, and the
means and median seconds of each run. Used to check that a change of code keeps the explanations (issue 20:
the options schema and the method base on the 20 table photos, against the code before them).

    git worktree add /tmp/before <commit>
    PYTHONPATH=/tmp/before/src igos bench ../shared/data/imagenet-dev --every 5 --methods igos igospp \\
        --resolutions 28 --out /tmp/before-run --images-per-batch 5
    igos bench ../shared/data/imagenet-dev --every 5 --methods igos igospp --resolutions 28 \\
        --out /tmp/after-run --images-per-batch 5
    python benchmarks/compare_runs.py /tmp/before-run /tmp/after-run
"""

from __future__ import annotations

import argparse
import statistics

import numpy as np
from scipy.stats import spearmanr

from igos.store import ResultStore, saliency_from_row


def rows(run: str) -> dict[tuple, dict]:
    with ResultStore.open_existing(run) as store:
        return {(r["image"], r["model"], r["method"], r["variant"], r["resolution"]): r for r in store.rows()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("before")
    ap.add_argument("after")
    ap.add_argument("--tol", type=float, default=5e-3, help="deletion/insertion change that counts as equal")
    args = ap.parse_args()
    a, b = rows(args.before), rows(args.after)
    common = sorted(set(a) & set(b))
    print(f"{len(common)} rows in both; {len(set(a) - set(b))} only before, {len(set(b) - set(a))} only after")
    for group in sorted({k[1:] for k in common}):
        keys = [k for k in common if k[1:] == group]
        dd = [b[k]["deletion"] - a[k]["deletion"] for k in keys]
        di = [b[k]["insertion"] - a[k]["insertion"] for k in keys]
        maps = [(saliency_from_row(a[k]), saliency_from_row(b[k])) for k in keys]
        rho = [1.0 if np.array_equal(x, y) else float(spearmanr(x.ravel(), y.ravel())[0]) for x, y in maps]
        same = sum(np.array_equal(x, y) for x, y in maps)
        def mean(run: dict, m: str, keys: list = keys) -> float:
            return statistics.mean(run[k][m] for k in keys)

        def secs(run: dict, keys: list = keys) -> float:
            return statistics.median(run[k]["seconds"] for k in keys)

        print(f"{' '.join(map(str, group))}: n={len(keys)}; deletion (lower is better) {mean(a, 'deletion'):.4f} -> "
              f"{mean(b, 'deletion'):.4f}, insertion (higher is better) {mean(a, 'insertion'):.4f} -> "
              f"{mean(b, 'insertion'):.4f}; max |Δ| {max(map(abs, dd)):.2e} / {max(map(abs, di)):.2e}, within "
              f"{args.tol}: {sum(abs(x) <= args.tol for x in dd)} / {sum(abs(x) <= args.tol for x in di)} of "
              f"{len(keys)}; min Spearman {min(rho):.6f}; identical maps {same} of {len(keys)}; median seconds "
              f"{secs(a):.2f} -> {secs(b):.2f}")


if __name__ == "__main__":
    main()
