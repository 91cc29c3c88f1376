"""The ``igos`` command: a thin layer over the library."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["main"]


def parse_value(text: str) -> Any:
    """``"3"`` -> 3, ``"0.5"`` -> 0.5, ``"none"`` -> None, ``"true"`` -> True, else the string."""
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return {"none": None, "true": True, "false": False}.get(text.lower(), text)


def parse_options(pairs: Sequence[str]) -> dict[str, Any]:
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise SystemExit(f"igos: --set expects KEY=VALUE, got {pair!r}")
        out[key.replace("-", "_")] = parse_value(value)
    return out


def parse_targets(text: str | None) -> int | list[int] | None:
    if text is None:
        return None
    try:
        values = [int(t) for t in text.split(",")]
    except ValueError:
        raise SystemExit(f"igos: --target expects a class index or a comma-separated list, got {text!r}") from None
    return values[0] if len(values) == 1 else values


def _add_model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default="efficientnet-lite0",
                   help="preset (efficientnet-lite0/1/2), torchvision name, or package.module:factory")
    p.add_argument("--weights", default=None, help="state-dict file for --model (loaded with weights_only=True)")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1, … (default: cuda when available)")
    p.add_argument("--seed", type=int, default=0, help="seed of all random choices (default 0)")


def build_parser() -> argparse.ArgumentParser:
    from .methods import METHODS

    parser = argparse.ArgumentParser(prog="igos", description="Faithful saliency maps for image classifiers.")
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    sub = parser.add_subparsers(dest="command")

    ex = sub.add_parser("explain", help="explain images: heatmaps (.npy, .png) and results.json")
    ex.add_argument("inputs", nargs="+", metavar="IMAGE_OR_DIR")
    _add_model_args(ex)
    ex.add_argument("--method", default="igos", choices=sorted(METHODS), help="saliency method (default igos)")
    ex.add_argument("--resolution", type=int, default=28, help="heatmap side (default 28)")
    ex.add_argument("--target", default=None, help="class index for all images, or one per image: 3,17,…")
    ex.add_argument("--out", default="igos-out", help="output folder (default igos-out)")
    ex.add_argument("--evaluate", action="store_true", help="also compute deletion (↓) and insertion (↑)")
    ex.add_argument("--resize", choices=["squash", "crop"], default=None, help="default: the model preset's")
    ex.add_argument("--images-per-batch", type=int, default=8, help="images explained together (default 8)")
    ex.add_argument("--batch-size", type=int, default=None, help="images per model call inside the method")
    ex.add_argument("--cmap", default="viridis", choices=["viridis", "jet", "gray"], help="default viridis")
    ex.add_argument("--alpha", type=float, default=0.5, help="heatmap opacity in the overlay (0…1)")
    ex.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                    help="method options, e.g. iterations=10 steps=20 l1=1 tv=20")
    ex.add_argument("--figure", action="store_true",
                    help="also <stem>_figure.png: overlay, heatmap, deletion and insertion curves (needs igos[viz])")
    ex.add_argument("--animate", action="store_true",
                    help="also <stem>_curves.gif: the deletion and insertion sequences (needs igos[viz])")
    be = sub.add_parser("bench", help="methods × resolutions × models on a folder, resumable (SQLite)")
    be.add_argument("images_dir", metavar="IMAGES_DIR")
    be.add_argument("--models", nargs="+", default=["efficientnet-lite0"],
                    help="presets, torchvision names or package.module:factory (default efficientnet-lite0)")
    be.add_argument("--methods", nargs="+", default=["igos"], help=f"any of: {', '.join(sorted(METHODS))}")
    be.add_argument("--resolutions", nargs="+", type=int, default=[28],
                    help="heatmap sides, e.g. 224 112 28 14 7 (default 28); methods with one native size run once")
    be.add_argument("--out", required=True, metavar="RUN_DIR", help="run folder (created; reused to resume)")
    be.add_argument("--limit", type=int, default=None, help="at most N images")
    be.add_argument("--every", type=int, default=1, help="take every N-th image in sorted order")
    be.add_argument("--seed", type=int, default=0, help="seed of all random choices (default 0)")
    be.add_argument("--device", default=None, help="cpu, cuda, cuda:1, … (default: cuda when available)")
    be.add_argument("--labels", default=None, help="label file: name,label per line (index or WordNet id)")
    be.add_argument("--imagefolder", action="store_true", help="class = the image's folder name")
    be.add_argument("--ablation", action="store_true", help="also I-GOS without TV / noise / with a fixed step")
    be.add_argument("--objective", action="store_true", help="also Mask under I-GOS's λ (final objectives)")
    be.add_argument("--images-per-batch", type=int, default=4,
                    help="images explained together per method call; rows are saved as each method "
                         "finishes a batch (default 4)")
    be.add_argument("--set", nargs="*", default=[], metavar="METHOD.KEY=VALUE",
                    help="method options, e.g. igos.iterations=10 rise.masks=2000")

    rp = sub.add_parser("report", help="one self-contained HTML page for a bench run or an explain folder")
    rp.add_argument("source", metavar="RUN_DIR_OR_EXPLAIN_DIR")
    rp.add_argument("--out", default=None, help="HTML file (default SOURCE/report.html)")
    rp.add_argument("--cmap", default="viridis", choices=["viridis", "jet", "gray"], help="default viridis")
    rp.add_argument("--alpha", type=float, default=0.5, help="heatmap opacity in the overlay (0…1)")
    rp.add_argument("--max-images", type=int, default=None, help="show at most N images")
    rp.add_argument("--figures", action="store_true",
                    help="bench runs: also one PNG per result in the paper's layout, in RUN_DIR/figures/")

    ta = sub.add_parser("table", help="the paper's tables from a bench run (Markdown + CSV)")
    ta.add_argument("run_dir", metavar="RUN_DIR")
    ta.add_argument("--per-image", action="store_true", help="also list every row")
    ta.add_argument("--out", default=None, help="folder for table.md / table.csv (default RUN_DIR)")

    demo = sub.add_parser("demo", help="explain sample photos that ship with scikit-image (needs igos[demo])")
    demo.add_argument("--out", default="igos-demo", help="output folder (default igos-demo)")
    demo.add_argument("--method", default="igos", choices=sorted(METHODS), help="saliency method (default igos)")
    demo.add_argument("--resolution", type=int, default=28, help="heatmap side (default 28)")
    demo.add_argument("--device", default=None, help="cpu, cuda, … (default: cuda when available)")
    return parser


def cmd_bench(args: argparse.Namespace) -> int:
    import shlex

    from tqdm import tqdm

    from .bench import BenchSpec, parse_method_options, run_bench
    from .models import ModelLoadError

    images_dir = Path(args.images_dir)
    if not images_dir.is_dir():
        print(f"igos: {images_dir} is not a folder", file=sys.stderr)
        return 2
    try:
        options = parse_method_options(args.set, parse_value)
        spec = BenchSpec(images_dir, args.models, args.methods, args.resolutions, seed=args.seed, device=args.device,
                         limit=args.limit, every=args.every, labels=Path(args.labels) if args.labels else None,
                         imagefolder=args.imagefolder, ablation=args.ablation, objective=args.objective,
                         images_per_batch=args.images_per_batch, options=options)
        command = "igos " + " ".join(shlex.quote(a) for a in sys.argv[1:])
        summary = run_bench(spec, args.out, command=command, progress=tqdm)
    except (ValueError, ModelLoadError, FileNotFoundError) as exc:
        print(f"igos: {exc}", file=sys.stderr)
        return 2
    print(f"bench: {summary.rows_written} rows written, {summary.rows_skipped} already there, "
          f"{summary.images_failed} of {summary.images_total} images failed; "
          f"{summary.wall_seconds:.0f} s"
          + (f", overhead outside methods and metric {100 * summary.overhead:.2f} %" if summary.rows_written else ""))
    if summary.stalled:
        print(f"warning: {len(summary.stalled)} I-GOS map(s) stayed flat (the mask never left M = 1): "
              + ", ".join(summary.stalled[:10]) + (" …" if len(summary.stalled) > 10 else "")
              + "; --set igos.stall_retries=2 optimises them again with smaller λ (not always better: "
              "docs/methods.md)")
    print(f"results in {Path(args.out) / 'results.sqlite'}; read them with: igos table {args.out}")
    if summary.images_total and summary.images_failed == summary.images_total:
        print("igos: every image failed; see the failures with: igos table " + args.out, file=sys.stderr)
        return 1
    return 0


def cmd_table(args: argparse.Namespace) -> int:
    from . import tables
    from .store import ResultStore

    try:
        store = ResultStore.open_existing(args.run_dir)
    except FileNotFoundError as exc:
        print(f"igos: {exc}", file=sys.stderr)
        return 2
    rows = store.rows()
    failures = store.failures()
    store.close()
    if not rows:
        print(f"igos: {args.run_dir} holds no results yet", file=sys.stderr)
        return 1
    rows, older = tables.latest_settings(rows)
    cells = tables.summarise(rows)
    md, csv_parts = [], []
    if older:
        md.append(f"{older} row(s) computed under earlier settings of the same method are left out "
                  "(each cell uses the settings its method was run with last).\n")
    for model in sorted({r["model"] for r in rows}):
        sections = [(f"Deletion (lower is better) / insertion (higher is better), {model}; mean ± 95 % CI, "
                     "best per column in bold", tables.main_table(cells, model)),
                    (f"Runtime, seconds per image, median (mean), {model}", tables.runtime_table(cells, model))]
        abl = tables.ablation_table(cells, model)
        if abl:
            sections.append((f"Ablation of I-GOS, deletion (lower is better) / insertion (higher is better), {model}",
                             abl))
        obj = tables.objective_table(cells, model)
        if obj:
            sections.append((f"Final objective F(M) (lower is better), same λ, {model}", obj))
        for title, (header, body) in sections:
            md.append(f"### {title}\n\n{tables.markdown(header, body)}\n")
            csv_parts.append(f"# {title}\n{tables.to_csv(header, body)}")
    if args.per_image:
        header, body = tables.per_image_table(rows)
        md.append(f"### Per image\n\n{tables.markdown(header, body)}\n")
        csv_parts.append(f"# Per image\n{tables.to_csv(header, body)}")
    if failures:
        md.append(f"{len(failures)} failure(s): " + "; ".join(f"{f[0]} ({f[2]}: {f[3]})" for f in failures[:20]))
    text = "\n".join(md)
    print(text)
    out = Path(args.out or args.run_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "table.md").write_text(text + "\n")
    (out / "table.csv").write_text("\n".join(csv_parts))
    print(f"\nwrote {out / 'table.md'} and {out / 'table.csv'}")
    return 0


def demo_images() -> list[str]:
    """Sample photos inside scikit-image's wheel (chelsea the cat, a coffee cup, a rocket)."""
    try:
        import skimage
    except ImportError:
        raise SystemExit("igos demo needs scikit-image for its sample photos: pip install 'igos[demo]'") from None
    data = Path(skimage.__file__).parent / "data"
    return [str(data / name) for name in ("chelsea.png", "coffee.png", "rocket.jpg") if (data / name).exists()]


def cmd_demo(args: argparse.Namespace) -> int:
    ns = build_parser().parse_args(["explain", *demo_images(), "--evaluate", "--out", args.out,
                                    "--method", args.method, "--resolution", str(args.resolution)]
                                   + (["--device", args.device] if args.device else []))
    return cmd_explain(ns)


def _unique_stems(paths: Sequence[str | None]) -> list[str]:
    stems, seen = [], {}
    for i, p in enumerate(paths):
        stem = Path(p).stem if p else f"image{i:04d}"
        n = seen.get(stem, 0)
        seen[stem] = n + 1
        stems.append(stem if n == 0 else f"{stem}-{n}")
    return stems


def cmd_explain(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from .api import explain, resolve_model
    from .images import find_images
    from .methods.common import NonFiniteOutputError
    from .models import ModelLoadError, load_model
    from .overlay import overlay

    options = parse_options(args.set)
    if (args.figure or args.animate) and not args.evaluate:
        args.evaluate = True  # the figures show the curves
    if args.batch_size:
        options["batch_size"] = args.batch_size
    try:
        preset = resolve_model(load_model(args.model, weights=args.weights), args.device)
    except (ModelLoadError, ValueError) as exc:
        print(f"igos: {exc}", file=sys.stderr)
        return 2
    files = find_images(args.inputs)
    if not files:
        print(f"igos: no image files found in {' '.join(args.inputs)}", file=sys.stderr)
        return 2
    targets = parse_targets(args.target)
    if isinstance(targets, list) and len(targets) != len(files):
        print(f"igos: --target lists {len(targets)} classes for {len(files)} images", file=sys.stderr)
        return 2
    if not 0.0 <= args.alpha <= 1.0:
        print(f"igos: --alpha must be between 0 and 1, got {args.alpha}", file=sys.stderr)
        return 2
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    stems = dict(zip(map(str, files), _unique_stems([str(f) for f in files])))
    records: list[dict[str, Any]] = []
    failures: list[dict[str, str]] = []
    step = max(1, args.images_per_batch)
    bar = tqdm(total=len(files), desc=f"{args.method} {args.resolution}x{args.resolution}", unit="img",
               disable=None)
    try:
        for start in range(0, len(files), step):
            chunk = files[start : start + step]
            chunk_targets = targets[start : start + step] if isinstance(targets, list) else targets
            try:
                results = explain(chunk, preset, args.method, resolution=args.resolution, target=chunk_targets,
                                  seed=args.seed, evaluate=args.evaluate, images_per_batch=step,
                                  resize=args.resize, **options)
            except (ValueError, TypeError, NonFiniteOutputError) as exc:
                print(f"igos: {exc}", file=sys.stderr)
                return 2
            failures.extend({"path": f.path, "error": f.reason} for f in results.failures)
            for r in results:
                stem = stems[r.path]
                np.save(out_dir / f"{stem}.npy", r.saliency.numpy().astype(np.float32))
                overlay(r.image, r.saliency, args.alpha, args.cmap).save(out_dir / f"{stem}.png")
                rec = r.summary()
                rec["saliency_file"] = f"{stem}.npy"
                rec["overlay_file"] = f"{stem}.png"
                if args.figure or args.animate:
                    rec.update(_figures(r, out_dir / stem, args))
                records.append(rec)
                if r.deletion is not None:
                    bar.set_postfix_str(f"del↓ {r.deletion:.3f} ins↑ {r.insertion:.3f}")
            bar.update(len(chunk))
            _write_results(out_dir, args, preset.name, records, failures)
    finally:
        bar.close()
    _print_summary(records, failures, out_dir)
    return 1 if not records else 0


def _figures(r, stem: Path, args: argparse.Namespace) -> dict[str, str]:
    from .figures import animate_curves, save_explanation_figure
    from .perturb import blurred_baseline

    out = {}
    c = r.curves
    if args.figure:
        title = f"{r.target_name} ({r.target}) p={r.probability:.3f} · {r.method} {r.resolution[0]}×{r.resolution[1]}"
        save_explanation_figure(f"{stem}_figure.png", r.image, r.saliency, title=title, x=c["x"],
                                deletion_curve=c["deletion"], insertion_curve=c["insertion"], deletion=r.deletion,
                                insertion=r.insertion, cmap=args.cmap, alpha=args.alpha)
        out["figure_file"] = f"{stem.name}_figure.png"
    if args.animate:
        baseline = blurred_baseline(r.image.unsqueeze(0))[0]
        animate_curves(f"{stem}_curves.gif", r.image, baseline, r.saliency, c["x"], c["deletion"], c["insertion"])
        out["animation_file"] = f"{stem.name}_curves.gif"
    return out


def cmd_report(args: argparse.Namespace) -> int:
    from .report import build_report, write_run_figures

    try:
        path = build_report(args.source, args.out, cmap=args.cmap, alpha=args.alpha, max_images=args.max_images)
        if args.figures:
            figs = write_run_figures(args.source, cmap=args.cmap, alpha=args.alpha)
            print(f"wrote {len(figs)} figures to {Path(args.source) / 'figures'}/")
    except (FileNotFoundError, ValueError) as exc:
        print(f"igos: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB, opens offline)")
    return 0


def _write_results(out_dir: Path, args: argparse.Namespace, model: str, records: list, failures: list) -> None:
    from . import __version__

    doc = {
        "igos_version": __version__,
        "model": model,
        "method": args.method,
        "resolution": args.resolution,
        "seed": args.seed,
        "images": records,
        "failures": failures,
    }
    tmp = out_dir / "results.json.tmp"
    tmp.write_text(json.dumps(doc, indent=1))
    os.replace(tmp, out_dir / "results.json")


def _print_summary(records: list, failures: list, out_dir: Path) -> None:
    for rec in records:
        line = f"{Path(rec['path']).name}: {rec['target_name']} ({rec['target']}) p={rec['probability']:.3f}"
        if "deletion" in rec:
            line += f"  deletion {rec['deletion']['auc']:.4f} (lower is better)"
            line += f"  insertion {rec['insertion']['auc']:.4f} (higher is better)"
        line += f"  {rec['seconds']:.1f}s"
        if rec.get("stalled"):
            line += ("\n  warning: the mask never left M = 1 (no step lowered the objective): this heatmap is flat; "
                     "try --set stall_retries=2 or smaller l1 and tv (not always better: docs/methods.md)")
        print(line)
    if records and "deletion" in records[0]:
        d = np.mean([r["deletion"]["auc"] for r in records])
        i = np.mean([r["insertion"]["auc"] for r in records])
        print(f"mean over {len(records)} images: deletion {d:.4f} (lower is better), "
              f"insertion {i:.4f} (higher is better)")
    print(f"wrote {len(records)} heatmaps and results.json to {out_dir}/")
    if failures:
        print(f"{len(failures)} image(s) failed:", file=sys.stderr)
        for f in failures:
            print(f"  {f['path']}: {f['error']}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.version:
        from . import __version__

        print(f"igos {__version__}")
        return 0
    if args.command == "explain":
        return cmd_explain(args)
    if args.command == "demo":
        return cmd_demo(args)
    if args.command == "bench":
        return cmd_bench(args)
    if args.command == "table":
        return cmd_table(args)
    if args.command == "report":
        return cmd_report(args)
    parser.print_help()
    return 2


if __name__ == "__main__":
    sys.exit(main())
