"""``igos bench``: methods × resolutions × models on a folder of images, resumable.

Every (image, model, method, variant, resolution, settings) gets one row in the run folder's
SQLite store (see :mod:`igos.store`) as soon as its image batch is done. Running the same
command again skips the rows that exist and computes only the rest.
"""

from __future__ import annotations

import csv
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ._version import __version__
from .images import find_images
from .methods import get_method
from .models import imagenet_wnids
from .pipeline import Item, Task, plain_settings, run
from .records import Explanation, Failure
from .sources import load_model
from .store import ResultStore, saliency_from_row, settings_hash

__all__ = ["BenchSpec", "plan_jobs", "run_bench", "read_labels", "BenchSummary", "bench_items", "row_key",
           "record_to_row", "settings_of", "saliency_from_row", "BenchRecorder"]

#: I-GOS ablations of the paper's Table 4: variant -> extra options of I-GOS
ABLATIONS: dict[str, dict[str, Any]] = {
    "no-tv": {"tv": 0.0},
    "no-noise": {"noise": 0.0},
    "fixed-step": {"fixed_step": 1.0},
}


@dataclass
class BenchSpec:
    """What a bench run computes."""

    images_dir: Path
    models: list[str]
    methods: list[str]
    resolutions: list[int | tuple[int, int]]
    seed: int = 0
    dtype: str = "float32"
    device: str | None = None
    #: every model's ``load_model`` options besides ``dtype`` and ``device`` (``weights``, ``model_args``,
    #: ``mean``, ``std``, ``input_size``): part of the settings hash, and sent to Ray workers
    model_options: dict[str, Any] = field(default_factory=dict)
    limit: int | None = None
    every: int = 1
    labels: Path | None = None
    imagefolder: bool = False
    ablation: bool = False
    objective: bool = False
    images_per_batch: int = 4
    options: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass
class BenchSummary:
    rows_written: int = 0
    rows_skipped: int = 0
    images_failed: int = 0
    images_total: int = 0
    wall_seconds: float = 0.0
    work_seconds: float = 0.0
    stalled: list[str] = field(default_factory=list)  # "image (method/variant resolution)" of flat I-GOS maps
    failed_images: set[str] = field(default_factory=set)
    #: per task name ("igos 28", "gradcam"): rows written and images that failed in it, this run
    task_rows: Counter = field(default_factory=Counter)
    task_failures: Counter = field(default_factory=Counter)
    task_errors: dict[str, str] = field(default_factory=dict)  # per task name: its first error, as an example
    workers: int = 1  # units that ran at once (Ray), 1 for the plain run
    ray: Any = None  # igos.distributed.RayStats of a --ray run

    def empty_tasks(self) -> list[str]:
        """Tasks that had work to do this run and produced no row: every image failed in them."""
        return sorted(t for t in self.task_failures if self.task_rows[t] == 0)

    @property
    def overhead(self) -> float:
        """Share of the wall time (× workers) outside the methods and the metric."""
        total = self.wall_seconds * self.workers
        return 0.0 if total <= 0 else max(0.0, 1 - self.work_seconds / total)


def plan_jobs(spec: BenchSpec) -> list[Task]:
    """The method × resolution (× variant) columns of a run, options checked before any work.

    Methods that produce one native resolution (input or layer) run once, with resolution 0.
    """
    for method, opts in spec.options.items():
        get_method(method).check_options(opts)  # a typo in --set fails before any image is read

    def task(method: str, resolution: int, options: dict[str, Any], variant: str = "default") -> Task:
        return Task.make(method, resolution, options, variant=variant, seed=spec.seed)

    jobs: list[Task] = []
    for method in spec.methods:
        opts = spec.options.get(method, {})
        native = get_method(method).resolutions != "any"
        jobs.extend([task(method, 0, opts)] if native else [task(method, r, opts) for r in spec.resolutions])
    igos_opts = spec.options.get("igos", {})
    if spec.ablation:
        for name, extra in ABLATIONS.items():
            jobs.extend(task("igos", r, {**igos_opts, **extra}, name) for r in spec.resolutions)
    if spec.objective:
        for r in spec.resolutions:
            resolved = get_method("igos").effective_options(igos_opts, r)
            same = {**spec.options.get("mask", {}), "l1": resolved["l1"], "tv": resolved["tv"], "tv_beta": 2.0}
            jobs.append(task("mask", r, same, "same-lambda"))
            jobs.append(task("igos", r, igos_opts))
    return list(dict.fromkeys(jobs))


def read_labels(path: Path) -> dict[str, int]:
    """A label file: ``name,label`` or ``name<TAB>label`` per line (header optional); ``name`` is a
    path relative to the images folder or a file stem; ``label`` a class index or a WordNet id."""
    wnid_index = {w: i for i, w in enumerate(imagenet_wnids())}
    out: dict[str, int] = {}
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"label file {path}: cannot be read ({exc})") from None
    lines = text.splitlines()
    if not any(line.strip() for line in lines):
        raise ValueError(f"label file {path} is empty: expected name,label per line (a class index or WordNet id)")
    dialect = "excel-tab" if "\t" in lines[0] else "excel"
    for n, row in enumerate(csv.reader(lines, dialect=dialect), start=1):
        if len(row) < 2 or not row[0].strip():
            continue
        name, label = row[0].strip(), row[1].strip()
        if label.isdigit():
            out[name] = int(label)
        elif label in wnid_index:
            out[name] = wnid_index[label]
        elif n == 1:
            continue  # a header
        else:
            raise ValueError(f"{path}, line {n}: label {label!r} is neither a class index nor a WordNet id")
    return out


def _label_for(rel: str, labels: dict[str, int] | None, imagefolder: bool) -> int | None:
    if labels is not None:
        for key in (rel, Path(rel).name, Path(rel).stem):
            if key in labels:
                return labels[key]
        return None
    if imagefolder:
        parent = Path(rel).parent.name
        if parent.isdigit():
            return int(parent)
        wnids = {w: i for i, w in enumerate(imagenet_wnids())}
        return wnids.get(parent)
    return None


def run_bench(
    spec: BenchSpec,
    run_dir: str | Path,
    *,
    command: str = "",
    progress: Callable[..., Any] | None = None,
    ray: Any = None,
) -> BenchSummary:
    """Compute every missing row of ``spec`` into ``run_dir``'s store; returns a summary.

    ``progress``: a ``tqdm``-like factory for a progress bar. ``ray``: an
    :class:`igos.distributed.RayOptions` to run the units on a Ray cluster (the driver, this
    process, still writes every row)."""
    t_start = time.perf_counter()
    jobs = plan_jobs(spec)
    store = ResultStore(run_dir)
    store.record_run(command, __version__, str(Path(spec.images_dir).resolve()))
    items = bench_items(spec)
    summary = BenchSummary(images_total=len(items))
    try:
        for model_name in spec.models:
            if ray is None:
                _plain(spec, model_name, items, jobs, store, summary, progress)
            else:
                _on_ray(spec, model_name, items, jobs, store, summary, progress, ray)
    finally:
        summary.wall_seconds = time.perf_counter() - t_start
        summary.images_failed = len(summary.failed_images)
        store.close()
    return summary


def _plain(spec: BenchSpec, model_name: str, items: list[Item], jobs: list[Task], store: ResultStore,
           summary: BenchSummary, progress: Callable[..., Any] | None) -> None:
    preset = load_model(model_name, device=spec.device, dtype=spec.dtype, **spec.model_options)
    recorder = BenchRecorder(store, spec, preset.name, jobs, summary)
    todo = recorder.todo(items)
    bar = progress(total=len(todo), desc=preset.name, unit="img") if progress else None
    for rec in run(todo, preset, jobs, images_per_batch=spec.images_per_batch, strict=False, skip=recorder.done,
                   progress=bar.update if bar is not None else None):
        recorder.write(rec)
    if bar is not None:
        bar.close()


def _on_ray(spec: BenchSpec, model_name: str, items: list[Item], jobs: list[Task], store: ResultStore,
            summary: BenchSummary, progress: Callable[..., Any] | None, ray: Any) -> None:
    from .distributed import RayStats, make_units, ray_stream

    recorder = BenchRecorder(store, spec, model_name, jobs, summary)  # a preset is named by what loaded it
    units = make_units(recorder.todo(items), model_name, jobs, spec.images_per_batch, device=spec.device,
                       model_options={"dtype": spec.dtype, **spec.model_options}, keep_images=False,
                       skip=recorder.done)
    summary.ray = summary.ray or RayStats()
    bar = progress(total=len(units), desc=f"{model_name} (Ray)", unit="unit") if progress else None

    def tick(stats: RayStats) -> None:
        if bar is not None:
            bar.update(1)
            bar.set_postfix_str(stats.line())

    for rec in ray_stream(units, ray, summary.ray, tick):
        recorder.write(rec)
    summary.workers = max(summary.workers, summary.ray.slots)
    if bar is not None:
        bar.close()


def bench_items(spec: BenchSpec) -> list[Item]:
    """The images of a run (every ``every``-th, at most ``limit``), named by their path relative to
    the images folder, with their labels as targets (``None``: top-1)."""
    files = find_images([spec.images_dir])[:: max(1, spec.every)][: spec.limit]
    if not files:
        raise ValueError(f"no image files found in {spec.images_dir}")
    labels = read_labels(spec.labels) if spec.labels else None
    root = Path(spec.images_dir)
    rels = [f.relative_to(root).as_posix() if f.is_relative_to(root) else str(f) for f in files]
    # sources are absolute: Ray workers do not share the driver's working directory
    return [Item(rel, f.resolve(), _label_for(rel, labels, spec.imagefolder)) for f, rel in zip(files, rels)]


def settings_of(spec: BenchSpec, job: Task) -> dict[str, Any]:
    """What a row's settings hash covers: method, variant, the options given and every parameter the
    method ran with (defaults included, resolution-dependent ones resolved), seed and target rule."""
    options = dict(job.options)
    settings = {
        "method": job.method,
        "variant": job.variant,
        "options": options,
        "parameters": plain_settings(get_method(job.method).hashed_options(options, job.resolution or None)),
        "seed": spec.seed,
        "targets": "labels" if (spec.labels is not None or spec.imagefolder) else "top1",
    }
    if spec.dtype != "float32":  # float32 rows keep the hashes they had before precisions existed
        settings["dtype"] = spec.dtype
    if spec.model_options:  # rows of models loaded without options keep their hashes
        settings["model_options"] = {k: v if isinstance(v, (int, float, str, bool, type(None), list, tuple, dict))
                                     else str(v) for k, v in sorted(spec.model_options.items())}
    return settings


def resolution_key(resolution: int | tuple[int, int] | None) -> int | str:
    """The store's resolution column: the side of a square map, ``"HxW"`` otherwise, 0 for a method's own."""
    if isinstance(resolution, tuple):
        return resolution[0] if resolution[0] == resolution[1] else f"{resolution[0]}x{resolution[1]}"
    return int(resolution or 0)


def row_key(image: str, model: str, job: Task, key: str) -> tuple:
    """The store's primary key of a row."""
    return image, model, job.method, job.variant, resolution_key(job.resolution), key


def completeness(trace: dict[str, Any]) -> tuple[float | None, float | None]:
    """A row's completeness figures: the sum of the method's integrated gradients and the probability change
    along their path (I-GOS: the first iteration's direction; iGOS++: its deletion path on M = M_d ⊙ M_i;
    Integrated Gradients: the attributions); ``(None, None)`` for methods without one."""
    for total, change in (("ig_sum", "path_delta"), ("ig_sum_deletion", "path_delta_deletion")):
        if trace.get(total) and trace.get(change):
            return float(trace[total][0]), float(trace[change][0])
    if "attribution_sum" in trace and "path_delta" in trace:
        return float(trace["attribution_sum"]), float(trace["path_delta"])
    return None, None


def record_to_row(e: Explanation, job: Task, key: str, settings: dict[str, Any]) -> dict[str, Any]:
    """A store row from a pipeline record; the map is stored losslessly as float32."""
    sal = e.saliency.detach().float().cpu().numpy().astype(np.float32)
    trace = e.trace or {}
    curves = e.curves or {}
    return {
        "image": e.path, "model": e.model, "method": job.method, "variant": job.variant,
        "resolution": resolution_key(job.resolution), "settings_hash": key, "settings": settings, "target": e.target,
        "target_name": e.target_name, "probability": e.probability, "deletion": e.deletion,
        "insertion": e.insertion, "x": curves.get("x"), "deletion_curve": curves.get("deletion"),
        "insertion_curve": curves.get("insertion"), "seconds": e.seconds,
        "evaluation_seconds": e.evaluation_seconds, "forward_images": e.forward_images,
        "backward_images": e.backward_images, "final_objective": trace.get("final_objective"),
        **dict(zip(("direction_sum", "path_delta"), completeness(trace))),
        "saliency": sal.tobytes(), "saliency_shape": list(sal.shape), "version": __version__,
        "created": time.time(),
    }


class BenchRecorder:
    """Turns the pipeline's stream into store rows for one model: what is done, what to skip, the summary."""

    def __init__(self, store: ResultStore, spec: BenchSpec, model: str, jobs: list[Task], summary: BenchSummary):
        self.store, self.model, self.jobs, self.summary = store, model, jobs, summary
        self.settings = {j: settings_of(spec, j) for j in jobs}
        self.keys = {j: settings_hash(s) for j, s in self.settings.items()}
        self.done_keys = store.done_keys()
        self.failures: set[Failure] = set()  # on Ray, every unit of an unreadable image reports it: store it once

    def done(self, item: Item, job: Task) -> bool:
        return row_key(item.name, self.model, job, self.keys[job]) in self.done_keys

    def todo(self, items: list[Item]) -> list[Item]:
        """Items with at least one missing row; every row already there counts as skipped."""
        todo = [it for it in items if any(not self.done(it, j) for j in self.jobs)]
        self.summary.rows_skipped += sum(self.done(it, j) for it in items for j in self.jobs)
        return todo

    def write(self, rec: Explanation | Failure) -> None:
        if isinstance(rec, Failure):
            if rec in self.failures:
                return
            self.failures.add(rec)
            self.store.add_failure(rec, self.model)
            if rec.stage in ("load", "model"):
                self.summary.failed_images.add(rec.name)
            elif rec.stage != "label":  # a method (or its metric) failed on this image: the stage is the task's name
                self.summary.task_failures[rec.stage] += 1
                self.summary.task_errors.setdefault(rec.stage, rec.error)
            return
        job = rec.task
        self.summary.work_seconds += rec.seconds + (rec.evaluation_seconds or 0.0)
        row = record_to_row(rec, job, self.keys[job], self.settings[job])
        if self.store.add(row, cleared=(job.name, "load", "model")):
            self.summary.rows_written += 1
            self.summary.task_rows[job.name] += 1
            if (rec.trace or {}).get("flat"):
                self.summary.stalled.append(f"{rec.path} ({job.label} {resolution_key(rec.resolution)})")
        self.done_keys.add(row_key(rec.path, self.model, job, self.keys[job]))
