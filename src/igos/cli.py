"""The ``igos`` command: parses arguments, calls the library, prints. Nothing else."""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .models import DTYPES
from .records import target_text
from .removals import REMOVALS
from .targets import SCORES as TARGET_SCORES

__all__ = ["main", "build_parser"]

STYLE = dict(cmap=dict(default="viridis", choices=["viridis", "jet", "gray"], help="default viridis"),
             alpha=dict(type=float, default=0.5, help="heatmap opacity in the overlay (0…1)"))


def memory_text() -> str:
    """The process's peak memory, for a run's last line."""
    from .resources import peak_memory

    peak = peak_memory()
    parts = [f"resident {peak['rss_mb']:.0f} MB"] if "rss_mb" in peak else []
    parts += [f"CUDA {peak['cuda_mb']:.0f} MB"] if "cuda_mb" in peak else []
    return "peak memory " + ", ".join(parts) if parts else "peak memory not known on this platform"


def _batch_size(text: str) -> int | str:
    """``--batch-size``: a positive integer or ``auto``."""
    if text == "auto":
        return text
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer or 'auto', got {text!r}")
    return value


def _model_options(args: argparse.Namespace) -> dict[str, Any]:
    """``load_model``'s keyword arguments from the model flags (``--weights``, ``--model-arg``, ``--mean``, …)."""
    from .options import parse_options, parse_size

    return {"weights": args.weights, "model_args": parse_options(args.model_arg), "mean": args.mean,
            "std": args.std, "dtype": args.dtype, "compile": args.compile,
            **({"deterministic": True} if args.deterministic else {}),  # absent by default: older stores resume
            "input_size": None if args.input_size is None else parse_size(args.input_size)}


def _model_args(p: argparse.ArgumentParser, *, bench: bool = False) -> None:
    if bench:
        p.add_argument("--models", "--model", nargs="+", default=["efficientnet-lite0"], metavar="MODEL",
                       help="presets, torchvision names, timm:NAME, hf:ORG/NAME or package.module:factory "
                            "(default efficientnet-lite0); the model flags below apply to each")
    else:
        p.add_argument("--model", default="efficientnet-lite0",
                       help="efficientnet-lite0/1/2, a torchvision name, timm:NAME, hf:ORG/NAME or "
                            "package.module:factory")
    p.add_argument("--weights", default=None,
                   help="state-dict file (loaded with weights_only=True), a save_pretrained folder (hf:), or 'random'")
    p.add_argument("--model-arg", nargs="*", default=[], metavar="KEY=VALUE",
                   help="keyword arguments of a package.module:factory or timm: model, e.g. num_classes=10")
    p.add_argument("--mean", type=float, nargs=3, default=None, help="override the model's input mean (3 values)")
    p.add_argument("--std", type=float, nargs=3, default=None, help="override the model's input std (3 values)")
    p.add_argument("--input-size", default=None, metavar="H[xW]", help="override the model's input size")
    p.add_argument("--dtype", default="float32", choices=list(DTYPES),
                   help="precision of the model's passes: float32 (IEEE float32 on every device, the default), tf32 "
                        "(float32 with TensorFloat-32 convolutions on NVIDIA GPUs: faster, ~1e-3 relative error), "
                        "bfloat16 or float16 (autocast); masks and metric stay float32")
    p.add_argument("--compile", action="store_true",
                   help="run the passes without gradients (line searches, the metric, RISE, ROAD) through "
                        "torch.compile: faster on long runs after a compile of about 100 s per input shape "
                        "(benchmarks/torch_compile.py)")
    p.add_argument("--deterministic", action="store_true",
                   help="PyTorch's and cuDNN's deterministic algorithms: on a GPU the same seed then gives the same "
                        "maps from one run to the next (slower there; CPU runs are deterministic already)")
    p.add_argument("--device", default="auto", help="auto (default: cuda when available), cpu, cuda, cuda:1, …")
    p.add_argument("--seed", type=int, default=0, help="seed of all random choices (default 0)")


def _ray_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("Ray (pip install 'igos[ray]')")
    g.add_argument("--ray", nargs="?", const="local", default=None, metavar="ADDRESS",
                   help="run on Ray: alone, a local Ray started for the run (all cores); with an address "
                        "(auto, host:6379, ray://host:10001), that cluster")
    g.add_argument("--workers", type=int, default=None, help="local Ray: worker processes (default: every core)")
    g.add_argument("--cpus-per-worker", type=float, default=1.0, help="Ray CPUs per worker (default 1)")
    g.add_argument("--gpus-per-worker", type=float, default=0.0,
                   help="Ray GPUs per worker (default 0); 1 runs one model replica per GPU")
    g.add_argument("--threads-per-worker", type=int, default=None, help="torch threads per worker")
    g.add_argument("--max-retries", type=int, default=3, help="retries of a unit whose worker died (default 3)")


def _ray_options(args: argparse.Namespace) -> Any:
    if args.ray is None:
        return None
    from .distributed import RayOptions, require_ray

    require_ray()
    return RayOptions(None if args.ray == "local" else args.ray, args.workers, args.cpus_per_worker,
                      args.gpus_per_worker, args.threads_per_worker, args.max_retries)


#: what to try for a flat map (``prefix``: ``igos.`` for the bench's METHOD.KEY options)
FLAT_ADVICE = ("try --set {prefix}stall_retries=2 (optimised again with smaller λ) or smaller {prefix}l1 and "
               "{prefix}tv (not always better: docs/methods.md)")

AUTO_HELP = ("saliency method (default auto: the recommended one at the resolution, iGOS++ from 14×14 up, "
             "at 28×28 and 14×14 its fixed step (at 14×14 warm-started from Excitation Backprop), I-GOS at 7×7; "
             "see the README)")


def _explain_parser(sub: Any, methods: list[str]) -> None:
    from .methods.recommended import AUTO

    ex = sub.add_parser("explain", help="explain images: heatmaps (.npy, .png) and results.json")
    ex.add_argument("inputs", nargs="+", metavar="IMAGE_OR_DIR")
    _model_args(ex)
    ex.add_argument("--method", default=AUTO, choices=[AUTO, *methods], help=AUTO_HELP)
    ex.add_argument("--resolution", default="28", metavar="S|HxW", help="heatmap side or HxW (default 28)")
    ex.add_argument("--target", default=None,
                    help="what to explain (default: each photo's top-1 class): 281 (a class for all images); "
                         "281,17,… (one per image); 151-268 or 151+207+208 (a set: the sum of its probabilities); "
                         "box=X1,Y1,X2,Y2[@LABEL] (a detector's box, photo pixels); region=MASK.png[@CLASS] "
                         "(a segmentation region, non-zero mask pixels); several separated by ';' (one per image)")
    ex.add_argument("--score", default=None, choices=list(TARGET_SCORES),
                    help="how a class target is scored from the logits: softmax (default), log_softmax, logit, "
                         "sigmoid (multi-label heads), raw (regression, single outputs); region: softmax or sigmoid")
    ex.add_argument("--out", default="igos-out", help="output folder (default igos-out)")
    ex.add_argument("--evaluate", action="store_true", help="also compute deletion (↓) and insertion (↑)")
    ex.add_argument("--removal", nargs="+", default=["blur"], choices=list(REMOVALS),
                    help="removal operators the maps are scored with (implies --evaluate): blur (deletion and "
                         "insertion, the default), road (ROAD's MoRF ↓ and LeRF ↑), mean, zero")
    ex.add_argument("--resize", choices=["squash", "crop"], default=None, help="default: the model preset's")
    ex.add_argument("--images-per-batch", type=int, default=8, help="images explained together (default 8)")
    ex.add_argument("--batch-size", type=_batch_size, default=None, metavar="N|auto",
                    help="images per model call inside the method (default auto: the largest that fits on a GPU, "
                         "16 on a CPU)")
    ex.add_argument("--cmap", **STYLE["cmap"])
    ex.add_argument("--alpha", **STYLE["alpha"])
    ex.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                    help="method options, e.g. iterations=10 steps=20 l1=1 tv=20")
    ex.add_argument("--figure", action="store_true",
                    help="also <stem>_figure.png: overlay, heatmap, deletion and insertion curves (needs igos[viz])")
    ex.add_argument("--animate", action="store_true",
                    help="also <stem>_curves.gif: the deletion and insertion sequences (needs igos[viz])")
    _ray_args(ex)


def _bench_parser(sub: Any, methods: list[str]) -> None:
    be = sub.add_parser("bench", help="methods × resolutions × models on a folder, resumable (SQLite)")
    be.add_argument("images_dir", metavar="IMAGES_DIR")
    _model_args(be, bench=True)
    be.add_argument("--methods", nargs="+", default=["igos"], choices=methods, metavar="METHOD",
                    help=f"any of: {', '.join(methods)} (default igos)")
    be.add_argument("--resolutions", nargs="+", default=["28"], metavar="S|HxW",
                    help="heatmap sides or HxW, e.g. 224 112 28 14 7 14x28 (default 28); methods with one native "
                         "size run once")
    be.add_argument("--out", required=True, metavar="RUN_DIR", help="run folder (created; reused to resume)")
    be.add_argument("--limit", type=int, default=None, help="at most N images")
    be.add_argument("--every", type=int, default=1, help="take every N-th image in sorted order")
    be.add_argument("--labels", default=None, help="label file: name,label per line (index or WordNet id)")
    be.add_argument("--imagefolder", action="store_true", help="class = the image's folder name")
    be.add_argument("--ablation", action="store_true", help="also I-GOS without TV / noise / with a fixed step")
    be.add_argument("--objective", action="store_true", help="also Mask under I-GOS's λ (final objectives)")
    be.add_argument("--images-per-batch", type=int, default=4,
                    help="images explained together per method call; rows are saved as each method "
                         "finishes a batch (default 4)")
    be.add_argument("--removal", nargs="+", default=["blur"], choices=list(REMOVALS),
                    help="removal operators every row is scored with: blur (deletion and insertion, the default), "
                         "road (ROAD's MoRF and LeRF), mean, zero; rows already stored gain the missing ones")
    be.add_argument("--set", nargs="*", default=[], metavar="METHOD.KEY=VALUE",
                    help="method options, e.g. igos.iterations=10 rise.masks=2000")
    _ray_args(be)


def _other_parsers(sub: Any, methods: list[str]) -> None:
    from .methods.recommended import AUTO

    rp = sub.add_parser("report", help="one self-contained HTML page for a bench run or an explain folder")
    rp.add_argument("source", metavar="RUN_DIR_OR_EXPLAIN_DIR")
    rp.add_argument("--out", default=None, help="HTML file (default SOURCE/report.html)")
    rp.add_argument("--cmap", **STYLE["cmap"])
    rp.add_argument("--alpha", **STYLE["alpha"])
    rp.add_argument("--max-images", type=int, default=None, help="show at most N images")
    rp.add_argument("--checks", nargs="+", default=[], metavar="PATH",
                    help="sanity.json / known-answer.json files of igos sanity, or folders holding them, shown with "
                         "their verdicts (those under SOURCE are found without it)")
    rp.add_argument("--figures", action="store_true",
                    help="bench runs: also one PNG per result in the paper's layout, in RUN_DIR/figures/")
    ta = sub.add_parser("table", help="the paper's tables from a bench run (Markdown + CSV)")
    ta.add_argument("run_dir", metavar="RUN_DIR")
    ta.add_argument("--per-image", action="store_true", help="also list every row")
    ta.add_argument("--out", default=None, help="folder for table.md / table.csv (default RUN_DIR)")
    ta.add_argument("--paired", nargs="+", default=None, metavar="METHOD",
                    help="methods whose per-photo wins against every other method are tabled "
                         "(default igos, when the run has it)")
    sa = sub.add_parser("sanity", help="model-randomisation sanity checks of a method (needs igos[sanity])")
    sa.add_argument("inputs", nargs="+", metavar="IMAGE_OR_DIR")
    _model_args(sa)
    sa.add_argument("--method", default=AUTO, choices=[AUTO, *methods], help=AUTO_HELP)
    sa.add_argument("--resolution", default="28", metavar="S|HxW", help="heatmap side or HxW (default 28)")
    sa.add_argument("--mode", nargs="+", default=["cascading", "independent"],
                    choices=["cascading", "independent", "logit"],
                    help="which randomisations (default both; the random-logit check always runs; 'logit' alone: "
                         "only the random-logit check, two explanations per photo)")
    sa.add_argument("--limit", type=int, default=10, help="at most this many photos (default 10)")
    sa.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="the method's options")
    sa.add_argument("--out", default="igos-sanity", help="output folder: sanity.json, sanity.png")
    sa.add_argument("--known-answer", choices=["quadrant", "box"], default=None,
                    help="instead: wrap the model so that it sees only a region (the top-left quadrant, or a seeded "
                         "box per photo) and report the share of each map's positive mass on the cells that reach it "
                         "(the check's measure) and on its own cells (known-answer.json)")
    sa.add_argument("--fill", choices=["blur", "grey"], default="blur",
                    help="what the wrapped model sees outside its region (default: the photo's blur)")
    demo = sub.add_parser("demo", help="explain sample photos that ship with scikit-image (needs igos[demo])")
    demo.add_argument("--out", default="igos-demo", help="output folder (default igos-demo)")
    demo.add_argument("--method", default=AUTO, choices=[AUTO, *methods], help=AUTO_HELP)
    demo.add_argument("--resolution", default="28", metavar="S|HxW", help="heatmap side or HxW (default 28)")
    demo.add_argument("--device", default="auto", help="auto (default: cuda when available), cpu, cuda, …")


def build_parser() -> argparse.ArgumentParser:
    from .methods import method_names

    parser = argparse.ArgumentParser(prog="igos", description="Faithful saliency maps for image classifiers.")
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    parser.add_argument("--debug", action="store_true", help="show the full traceback of an error")
    sub = parser.add_subparsers(dest="command")
    _explain_parser(sub, method_names())
    _bench_parser(sub, method_names())
    _other_parsers(sub, method_names())
    return parser


def cmd_explain(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from .api import explain_stream, resolve_model
    from .explanations import ExplanationWriter
    from .methods.recommended import resolve_method
    from .options import parse_options, parse_size, parse_targets
    from .records import Failure

    options = parse_options(args.set) | ({"batch_size": args.batch_size} if args.batch_size else {})
    ray = _ray_options(args)
    model_options = _model_options(args)
    preset = args.model if ray else resolve_model(args.model, args.device, model_options)
    resolution = parse_size(args.resolution)
    def progress(done: int, total: int) -> None:
        bar.total = total
        bar.update(done - bar.n)
        writer.flush_if_due()

    stream = explain_stream(args.inputs, preset, args.method, resolution=resolution,
                            target=parse_targets(args.target, args.score), seed=args.seed,
                            evaluate=args.evaluate or args.figure or args.animate or args.removal != ["blur"],
                            removal=args.removal,
                            images_per_batch=args.images_per_batch, resize=args.resize, progress=progress,
                            ray=ray, model_options=model_options if ray else None, **options)
    method = resolve_method(args.method, resolution)
    meta = {"model": args.model, "method": method, "resolution": resolution, "seed": args.seed,
            "dtype": args.dtype, "compile": bool(args.compile),  # the precision the numbers were computed in
            "deterministic": bool(args.deterministic)}
    writer = ExplanationWriter(args.out, meta, cmap=args.cmap, alpha=args.alpha, figure=args.figure,
                               animate=args.animate, preset=preset, resize=args.resize)  # after the stream's checks
    bar = tqdm(desc=f"{method} {args.resolution}", unit="img", disable=None)
    with bar:
        for rec in stream:
            if isinstance(rec, Failure):
                writer.add_failure(rec)
            elif writer.add(rec) and rec.deletion is not None:
                bar.set_postfix_str(f"del↓ {rec.deletion:.3f} ins↑ {rec.insertion:.3f}")
    writer.flush()
    _print_summary(writer.records, writer.failures, writer.folder)
    return 1 if not writer.records else 0


def _print_summary(records: list, failures: list, out_dir: Path) -> None:
    for rec in records:
        line = f"{Path(rec['path']).name}: {target_text(rec['target_name'], rec['target'])} p={rec['probability']:.3f}"
        if "deletion" in rec:
            line += f"  deletion {rec['deletion']['auc']:.4f} (lower is better)"
            line += f"  insertion {rec['insertion']['auc']:.4f} (higher is better)"
        if "road" in rec:
            road = rec["road"]
            line += f"  ROAD MoRF {road['morf']:.4f} (lower is better) LeRF {road['lerf']:.4f} (higher is better)"
        for name in ("mean", "zero"):
            if name in rec:
                line += f"  {name}: deletion {rec[name]['deletion']:.4f} insertion {rec[name]['insertion']:.4f}"
        line += f"  {rec['seconds']:.1f}s"
        if rec.get("flat"):
            line += ("\n  warning: this heatmap is flat (all its cells equal: it says nothing); the mask "
                     + ("never left its start (no step lowered the objective)" if rec.get("stalled")
                        else "moved as one")
                     + "; " + FLAT_ADVICE.format(prefix=""))
        elif rec.get("stalled"):
            line += ("\n  warning: no cell of the mask moved one step from its start (a confident photo: the class "
                     "probability is saturated), so the map's order is weak; try --set stall_retries=1 (optimised "
                     "again with smaller λ)")
        print(line)
    if records and "deletion" in records[0]:
        d = np.mean([r["deletion"]["auc"] for r in records])
        i = np.mean([r["insertion"]["auc"] for r in records])
        print(f"mean over {len(records)} images: deletion {d:.4f} (lower is better), "
              f"insertion {i:.4f} (higher is better)")
    print(f"wrote {len(records)} heatmaps and results.json to {out_dir}/; {memory_text()}")
    if failures:
        print(f"{len(failures)} image(s) failed:", file=sys.stderr)
        for f in failures:
            print(f"  {f['path']}: {f['error']}", file=sys.stderr)


def cmd_bench(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from .bench import BenchSpec, run_bench
    from .options import parse_method_options, parse_size

    if not Path(args.images_dir).is_dir():
        raise ValueError(f"{args.images_dir} is not a folder")
    model_options = {k: v for k, v in _model_options(args).items() if k != "dtype" and v not in (None, {})}
    spec = BenchSpec(Path(args.images_dir), args.models, args.methods, [parse_size(r) for r in args.resolutions],
                     seed=args.seed, dtype=args.dtype, device=args.device, model_options=model_options,
                     limit=args.limit, every=args.every,
                     labels=Path(args.labels) if args.labels else None, imagefolder=args.imagefolder,
                     ablation=args.ablation, objective=args.objective, images_per_batch=args.images_per_batch,
                     removals=tuple(args.removal),
                     options=parse_method_options(args.set))
    summary = run_bench(spec, args.out, command="igos " + " ".join(map(shlex.quote, sys.argv[1:])), progress=tqdm,
                        ray=_ray_options(args))
    print(f"bench: {summary.rows_written} rows written, {summary.rows_skipped} already there, "
          f"{summary.images_failed} of {summary.images_total} images failed; {summary.wall_seconds:.0f} s"
          + (f", overhead outside methods and metric {100 * summary.overhead:.2f} %" if summary.rows_written else "")
          + (f"; {summary.rows_rescored} stored rows scored with the new removal(s)" if summary.rows_rescored else "")
          + f"; {memory_text()}")
    if summary.stalled:
        print(f"warning: {len(summary.stalled)} I-GOS map(s) are flat (all cells equal: they say nothing): "
              + ", ".join(summary.stalled[:10]) + (" …" if len(summary.stalled) > 10 else "")
              + "; " + FLAT_ADVICE.format(prefix="igos."))
    if summary.ray is not None:
        r = summary.ray
        print(f"ray: {r.units_done} units on {len(r.per_worker)} workers ("
              + ", ".join(f"{w} {n}" for w, n in sorted(r.per_worker.items())) + f"), {r.units_failed} failed")
    for task, failed in sorted(summary.task_failures.items()):
        print(f"{task}: {failed} image(s) failed, {summary.task_rows[task]} row(s) written; e.g. "
              f"{summary.task_errors[task]}", file=sys.stderr)
    print(f"results in {Path(args.out) / 'results.sqlite'}; read them with: igos table {args.out}")
    if summary.images_total and summary.images_failed == summary.images_total:
        print("igos: every image failed; see the failures with: igos table " + args.out, file=sys.stderr)
        return 1
    if summary.empty_tasks():
        print(f"igos: {', '.join(summary.empty_tasks())} produced no rows: every image failed there (above); "
              "the other tasks' rows are stored", file=sys.stderr)
        return 1
    return 0


def cmd_table(args: argparse.Namespace) -> int:
    from . import tables
    from .store import ResultStore

    with ResultStore.open_existing(args.run_dir) as store:
        rows, failures = store.rows(), store.failures()
    if not rows:
        print(f"igos: {args.run_dir} holds no results yet", file=sys.stderr)
        return 1
    held = sorted({r["method"] for r in rows})
    paired = args.paired if args.paired is not None else [m for m in (tables.DEFAULT_PAIRED,) if m in held]
    missing = [m for m in paired if m not in held]
    if missing:
        print(f"igos: --paired {' '.join(missing)}: {args.run_dir} holds no rows of "
              f"{'that method' if len(missing) == 1 else 'those methods'}; it holds {', '.join(held)}", file=sys.stderr)
        return 2
    rows, older = tables.latest_settings(rows)
    text, csv_text = tables.render(rows, failures, per_image=args.per_image, older=older, paired=paired)
    print(text)
    md, csv_path = tables.write(args.out or args.run_dir, text, csv_text)
    print(f"\nwrote {md} and {csv_path}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from .report import build_report, write_run_figures

    path = build_report(args.source, args.out, cmap=args.cmap, alpha=args.alpha, max_images=args.max_images,
                        checks=args.checks)
    if args.figures:
        figs = write_run_figures(args.source, cmap=args.cmap, alpha=args.alpha)
        print(f"wrote {len(figs)} figures to {Path(args.source) / 'figures'}/")
    print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB, opens offline)")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from .images import demo_images

    ns = build_parser().parse_args(["explain", *demo_images(), "--evaluate", "--out", args.out,
                                    "--method", args.method, "--resolution", str(args.resolution),
                                    "--device", args.device])
    return cmd_explain(ns)


def cmd_sanity(args: argparse.Namespace) -> int:
    import json

    import torch

    from .api import resolve_model
    from .images import find_images
    from .methods.recommended import resolve
    from .options import parse_options, parse_size
    from .sanity import sanity_check

    preset = resolve_model(args.model, args.device, _model_options(args))
    resolution = parse_size(args.resolution)
    method, options = resolve(args.method, resolution, parse_options(args.set))
    files = find_images(args.inputs)[: args.limit]
    if not files:
        raise ValueError(f"no image files found in {', '.join(args.inputs)}")
    x = torch.stack([preset.read(f) for f in files]).to(preset.device)
    if args.known_answer:
        return _known_answer(args, preset, x, method, resolution, [str(f) for f in files], options)
    modes = [m for m in args.mode if m != "logit"]  # the random-logit check runs in every mode
    result = sanity_check(preset.model, x, method, resolution=resolution, seed=args.seed, modes=modes,
                          names=[str(f) for f in files], progress=lambda s: print(s, file=sys.stderr, flush=True),
                          **options)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "sanity.json").write_text(json.dumps(result.summary(), indent=1))
    try:
        from .figures import save_sanity_figure

        if "cascading" in modes:  # the figure is the cascade's
            save_sanity_figure(out / "sanity.png", result, x.cpu())
    except ImportError as exc:  # matplotlib missing: the JSON is the result
        print(f"no figure ({exc})", file=sys.stderr)
    def num(v: float | None) -> str:
        return "–" if v is None else f"{v:.3f}"

    last = [s for s in result.steps if s["mode"] == "cascading"]
    if last:
        s = last[-1]
        print(f"{method}: fully randomised ({s['randomised']}, cascading) Spearman |map| {num(s['spearman_abs'])} "
              f"(a map that explains the model: low), SSIM {num(s['ssim'])}, HOG {num(s['hog'])}; constant maps "
              f"{s['constant']} of {len(files)}")
    rl = result.random_logit
    print(f"random logit: Spearman |map| {num(rl['spearman_abs'])}, SSIM {num(rl['ssim'])}")
    print(f"wrote {out / 'sanity.json'}")
    return 0


def _known_answer(args: argparse.Namespace, preset: Any, x: Any, method: str, resolution: Any,
                  names: list[str], options: dict[str, Any]) -> int:
    """``igos sanity --known-answer``: the share of each map within reach of, and inside, the region the wrapped
    model sees, with the check's verdict."""
    import json

    from .known_answer import known_answer

    result = known_answer(preset.model, x, method, resolution=resolution, region=args.known_answer, fill=args.fill,
                          seed=args.seed, names=names, progress=lambda s: print(s, file=sys.stderr, flush=True),
                          **options)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    summary = result.summary()
    (out / "known-answer.json").write_text(json.dumps(summary, indent=1))
    from .report_checks import known_answer_verdict

    print(known_answer_verdict(summary) + (f" {summary['no_positive_mass']} map(s) had no positive mass."
                                           if summary["no_positive_mass"] else ""))
    print(f"wrote {out / 'known-answer.json'}")
    return 0


COMMANDS = {"explain": cmd_explain, "demo": cmd_demo, "bench": cmd_bench, "table": cmd_table, "report": cmd_report,
            "sanity": cmd_sanity}


def main(argv: Sequence[str] | None = None) -> int:
    """The ``igos`` command. An error of the input (a bad option, file, model, label; igos's ``IgosError`` and
    ``ValueError``) is one line on stderr and exit code 2; ``--debug`` shows its traceback. Any other exception
    is a bug and propagates with its traceback."""
    from .errors import IgosError

    parser = build_parser()
    args = parser.parse_args(argv)
    if args.version:
        from ._version import __version__

        print(f"igos {__version__}")
        return 0
    if args.command not in COMMANDS:
        parser.print_help()
        return 2
    try:
        return COMMANDS[args.command](args)
    except (IgosError, ValueError, FileNotFoundError) as exc:
        if args.debug:
            raise
        print(f"igos: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
