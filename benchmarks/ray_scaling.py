"""Ray on one machine: overhead against the plain run, scaling from 1 to 2 workers, per-unit overhead,
and the projected wall time of the paper's 5,000-photo grid. Every figure comes from runs made here,
one after another (never two at once), on the same grid, each into a fresh run folder.

    python benchmarks/ray_scaling.py --images ../shared/data/imagenet-dev --limit 8

Runs: plain (torch 2 threads); Ray 1 worker × 2 threads; Ray 1 worker × 1 thread; Ray 2 workers × 1
thread; interleaved, ``--repeats`` times each, means reported. Wall times are given with and without
Ray's start (a long run pays the start once).
Per-unit overhead = (wall after start × workers − seconds the units spent inside the pipeline) / units:
scheduling, transfer of the result, the driver's store write and the tail where a worker idles.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch

from igos.bench import BenchSpec, run_bench
from igos.distributed import RayOptions

# seconds per image of the full grid (7 methods × 224/112/28/14/7) on 2 threads, medians from
# docs/results/issue4-tables-20images.md (I-GOS 5 resolutions, Mask 5 × ~26, RISE, IG, EBP 5 ×, GradCAM, gradient)
FULL_GRID_SECONDS_2_THREADS = (8.6 + 7.4 + 4.5 + 3.7 + 3.9) + 5 * 26.0 + 97.0 + 1.4 + 5 * 0.17 + 0.03 + 0.06


def timed(spec: BenchSpec, ray: RayOptions | None) -> tuple[float, float, float, int]:
    """Wall seconds, seconds before the first unit could run (Ray's start), work seconds, units."""
    import ray as ray_module

    with tempfile.TemporaryDirectory() as d:
        t0 = time.perf_counter()
        start = 0.0
        if ray is not None:
            ray_module.init(num_cpus=ray.workers * ray.cpus_per_worker, include_dashboard=False,
                            log_to_driver=False, configure_logging=False)
            start = time.perf_counter() - t0
        summary = run_bench(spec, Path(d) / "run", ray=ray)
        wall = time.perf_counter() - t0
        if summary.images_failed or (summary.ray and summary.ray.units_failed) or not summary.rows_written:
            raise SystemExit(f"the run failed: {summary}")
        if ray is not None:
            ray_module.shutdown()
        units = summary.ray.units_done if summary.ray else 0
        work = summary.ray.worker_seconds if summary.ray else summary.work_seconds
        return wall, start, work, units


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", default="../shared/data/imagenet-dev")
    ap.add_argument("--limit", type=int, default=8)
    ap.add_argument("--every", type=int, default=7)
    ap.add_argument("--methods", nargs="+", default=["igos", "gradcam", "ebp"])
    ap.add_argument("--resolutions", nargs="+", type=int, default=[28])
    ap.add_argument("--images-per-batch", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=2, help="each configuration this many times, interleaved")
    args = ap.parse_args()
    spec = BenchSpec(Path(args.images), ["efficientnet-lite0"], args.methods, args.resolutions, limit=args.limit,
                     every=args.every, images_per_batch=args.images_per_batch)
    print(f"grid: {args.limit} photos × {args.methods} × {args.resolutions}, {args.images_per_batch} images per unit")
    torch.set_num_threads(2)
    runs: dict[str, list] = {"plain": [], "1x2": [], "1x1": [], "2x1": []}
    options = {"plain": None, "1x2": RayOptions(workers=1, cpus_per_worker=2),
               "1x1": RayOptions(workers=1, threads_per_worker=1), "2x1": RayOptions(workers=2, threads_per_worker=1)}
    # interleaved and repeated: this machine's timings drift by ±10 % between identical runs
    for name in ["plain", "1x2", "1x1", "2x1"] * args.repeats:
        runs[name].append(timed(spec, options[name]))
        wall, start, _, _ = runs[name][-1]
        print(f"{name}: {wall:.1f} s" + (f" ({wall - start:.1f} s after Ray's {start:.1f} s start)" if start else ""),
              flush=True)
    plain, r12, r11, r21 = (tuple(statistics.mean(v) for v in zip(*runs[k])) for k in ("plain", "1x2", "1x1", "2x1"))
    print("\n| figure | value | target |\n|---|---|---|")
    print(f"| Ray 1×2 vs plain, wall | {r12[0] / plain[0]:.3f}× ({100 * (r12[0] / plain[0] - 1):+.1f} %) | ≤ +10 % |")
    print(f"| same, after Ray's start | {(r12[0] - r12[1]) / plain[0]:.3f}× "
          f"({100 * ((r12[0] - r12[1]) / plain[0] - 1):+.1f} %) | |")
    print(f"| throughput 2×1 vs 1×1 | {r11[0] / r21[0]:.2f}× (after start {(r11[0] - r11[1]) / (r21[0] - r21[1]):.2f}×)"
          " | ≥ 1.8× |")
    per_unit = []
    for (wall, start, work, units), workers in ((r12, 1), (r11, 1), (r21, 2)):
        per_unit.append(1000 * ((wall - start) * workers - work) / max(units, 1))
    print(f"| per-unit overhead (1×2, 1×1, 2×1) | {per_unit[0]:.0f}, {per_unit[1]:.0f}, {per_unit[2]:.0f} ms | |")
    overhead_ms = statistics.median(per_unit)
    one_thread = (r11[2] / r11[3]) / (r12[2] / r12[3])  # a unit's cost on 1 thread / on 2 threads
    photo = FULL_GRID_SECONDS_2_THREADS * one_thread  # one photo of the full grid on one 1-thread worker
    units_per_photo = 7 * 5 / args.images_per_batch  # ≤ 35 (method, resolution) cells per photo
    for workers in (8, 64):
        hours = 5000 * (photo + units_per_photo * overhead_ms / 1000) / workers / 3600
        print(f"| paper's 5,000-photo grid on {workers} workers (1 thread each, this CPU) | {hours:.1f} h | |")
    print(f"\nprojection: {FULL_GRID_SECONDS_2_THREADS:.0f} s per photo of the full grid on 2 threads (issue-4 "
          f"medians), × {one_thread:.2f} on 1 thread (measured here) = {photo:.0f} s, plus {units_per_photo:.1f} "
          f"units × {overhead_ms:.0f} ms per photo.")


if __name__ == "__main__":
    main()
