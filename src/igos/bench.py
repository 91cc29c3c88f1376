"""``igos bench``: methods × resolutions × models on a folder of images, resumable.

Every (image, model, method, variant, resolution, settings) gets one row in the run folder's
SQLite store (see :mod:`igos.store`) as soon as its image batch is done. Running the same
command again skips the rows that exist and computes only the rest.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ._version import __version__
from .images import find_images
from .labels import label_for, read_labels
from .methods import get_method
from .pipeline import Item, Task, plain_settings, run
from .records import Explanation, Failure
from .sources import load_model
from .store import (
    ResultStore,
    record_to_row,
    resolution_key,
    row_key,
    saliency_from_row,
    settings_hash,
)

__all__ = ["BenchSpec", "Variant", "ABLATIONS", "SAME_LAMBDA", "plan_jobs", "run_bench", "read_labels",
           "BenchSummary", "bench_items", "row_key", "record_to_row", "settings_of", "saliency_from_row",
           "BenchRecorder"]


@dataclass(frozen=True)
class Variant:
    """A named variant of a method that the bench runs beside its default and the tables label: ``options``
    are added to the method's."""

    name: str
    method: str
    options: tuple[tuple[str, Any], ...]
    label: str


#: I-GOS's ablations (the paper's Table 4)
ABLATIONS = (
    Variant("no-tv", "igos", (("tv", 0.0),), "without TV"),
    Variant("no-noise", "igos", (("noise", 0.0),), "without noise"),
    Variant("fixed-step", "igos", (("fixed_step", 1.0),), "fixed step (1)"),
)
#: Mask under I-GOS's λ1, λ2 and TV exponent 2 (the paper's Table 5: final objectives under the same λ)
#: (plan_jobs adds I-GOS's resolved λ1, λ2 at each resolution)
SAME_LAMBDA = Variant("same-lambda", "mask", (("tv_beta", 2.0),), "Mask (same λ1, λ2, β = 2)")


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
    #: the removal operators every row is scored with (igos.removals); rows stored without one of them gain it
    #: from their stored map on the next run, without running the method again
    removals: tuple[str, ...] = ("blur",)


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
    rows_rescored: int = 0  # stored rows that gained the scores of a removal operator they lacked
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
        return Task.make(method, resolution, options, variant=variant, seed=spec.seed, removals=spec.removals)

    jobs: list[Task] = []
    for method in spec.methods:
        opts = spec.options.get(method, {})
        native = get_method(method).resolutions != "any"
        jobs.extend([task(method, 0, opts)] if native else [task(method, r, opts) for r in spec.resolutions])
    igos_opts = spec.options.get("igos", {})
    if spec.ablation:
        for v in ABLATIONS:
            jobs.extend(task(v.method, r, {**spec.options.get(v.method, {}), **dict(v.options)}, v.name)
                        for r in spec.resolutions)
    if spec.objective:
        v = SAME_LAMBDA
        for r in spec.resolutions:
            resolved = get_method("igos").effective_options(igos_opts, r)
            same = {**spec.options.get(v.method, {}), "l1": resolved["l1"], "tv": resolved["tv"], **dict(v.options)}
            jobs.append(task(v.method, r, same, v.name))
            jobs.append(task("igos", r, igos_opts))
    return list(dict.fromkeys(jobs))


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
    summary.rows_rescored += add_missing_removals(store, spec, preset, items)


def add_missing_removals(store: ResultStore, spec: BenchSpec, preset: Any, items: list[Item]) -> int:
    """Scores the stored maps of ``preset``'s rows that lack one of ``spec.removals`` (rows of an earlier run
    with fewer operators) with it, on the image the row explained: the method does not run again. Returns how
    many rows gained scores."""
    import torch

    from .removals import score_removal
    from .targets import as_targets

    wanted = [r for r in spec.removals if r != "blur"]
    sources = {it.name: it.source for it in items}
    given = {it.name: it.target for it in items}
    done = 0
    for row in store.rows(model=preset.name) if wanted else []:
        have = row.get("removals") or {}
        missing = [r for r in wanted if r not in have]
        if not missing or row["image"] not in sources:
            continue
        x = preset.read(sources[row["image"]]).unsqueeze(0).to(preset.device)
        sal = torch.from_numpy(saliency_from_row(row)).unsqueeze(0)
        target = given.get(row["image"])
        if target is None or isinstance(target, int):
            target = torch.tensor([row["target"]], device=preset.device)  # the class the row explained (its top-1)
        else:  # the label file's set, box or region, on the input as the row's photo was
            geometry = preset.geometry(sources[row["image"]])
            target = as_targets(target, 1)[0].in_input(geometry, row["image"])
        have.update({r: score_removal(preset.model, x, sal, target, r, seed=spec.seed)[0] for r in missing})
        store.set_removals(row, have)
        done += 1
    return done


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
    return [Item(rel, f.resolve(), label_for(rel, labels, spec.imagefolder)) for f, rel in zip(files, rels)]


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
    # rows of models loaded without options keep their hashes; compiling changes no value beyond float rounding
    hashed = {k: v for k, v in spec.model_options.items() if k != "compile"}
    if hashed:
        settings["model_options"] = {k: v if isinstance(v, (int, float, str, bool, type(None), list, tuple, dict))
                                     else str(v) for k, v in sorted(hashed.items())}
    return settings


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
            if rec.stage in ("load", "model", "target"):  # the image could not be used: no task ran on it
                self.summary.failed_images.add(rec.name)
            elif rec.stage != "label":  # a method (or its metric) failed on this image: the stage is the task's name
                self.summary.task_failures[rec.stage] += 1
                self.summary.task_errors.setdefault(rec.stage, rec.error)
            return
        job = rec.task
        self.summary.work_seconds += rec.seconds + (rec.evaluation_seconds or 0.0)
        row = record_to_row(rec, job, self.keys[job], self.settings[job])
        if self.store.add(row, cleared=(job.name, "load", "model", "target")):
            self.summary.rows_written += 1
            self.summary.task_rows[job.name] += 1
            if (rec.trace or {}).get("flat"):
                self.summary.stalled.append(f"{rec.path} ({job.label} {resolution_key(rec.resolution)})")
        self.done_keys.add(row_key(rec.path, self.model, job, self.keys[job]))
