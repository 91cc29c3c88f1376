"""``igos bench``: methods × resolutions × models on a folder of images, resumable.

Every (image, model, method, variant, resolution, settings) gets one row in the run folder's
SQLite store (see :mod:`igos.store`) as soon as its image batch is done. Running the same
command again skips the rows that exist and computes only the rest.
"""

from __future__ import annotations

import csv
import inspect
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from . import __version__
from .api import preset_options, resolve_device
from .images import ImageLoadError, find_images, load_image
from .methods import RESOLUTIONS, get_method
from .methods.igos import resolve_regularisation
from .metrics import deletion_insertion
from .models import ModelPreset, imagenet_wnids, load_model
from .perturb import blurred_baseline
from .store import ResultStore, settings_hash

__all__ = ["Job", "BenchSpec", "plan_jobs", "run_bench", "read_labels", "BenchSummary"]

#: I-GOS ablations of the paper's Table 4: name -> options
ABLATIONS: dict[str, dict[str, Any]] = {
    "no-tv": {"tv": 0.0},
    "no-noise": {"noise": 0.0},
    "fixed-step": {"fixed_step": 1.0},
}


@dataclass(frozen=True)
class Job:
    """One column of work: a method (and variant) at a resolution (0 = the method's native one)."""

    method: str
    variant: str
    resolution: int
    options: tuple[tuple[str, Any], ...] = ()

    @property
    def label(self) -> str:
        return self.method if self.variant == "default" else f"{self.method}/{self.variant}"


@dataclass
class BenchSpec:
    """What a bench run computes."""

    images_dir: Path
    models: list[str]
    methods: list[str]
    resolutions: list[int]
    seed: int = 0
    device: str | None = None
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

    @property
    def overhead(self) -> float:
        """Share of the wall time outside the methods and the metric."""
        return 0.0 if self.wall_seconds <= 0 else max(0.0, 1 - self.work_seconds / self.wall_seconds)


def plan_jobs(spec: BenchSpec) -> list[Job]:
    """The method × resolution (× variant) columns of a run."""
    jobs: list[Job] = []
    for method in spec.methods:
        get_method(method)  # unknown names fail early, naming the choices
        kind = RESOLUTIONS.get(method, "any")
        opts = tuple(sorted(spec.options.get(method, {}).items()))
        if kind == "any":
            jobs.extend(Job(method, "default", r, opts) for r in spec.resolutions)
        else:
            jobs.append(Job(method, "default", 0, opts))
    if spec.ablation:
        for name, extra in ABLATIONS.items():
            base = dict(spec.options.get("igos", {}))
            jobs.extend(Job("igos", name, r, tuple(sorted({**base, **extra}.items()))) for r in spec.resolutions)
    if spec.objective:
        for r in spec.resolutions:
            igos_opts = spec.options.get("igos", {})
            l1, tv = resolve_regularisation(r, igos_opts.get("l1"), igos_opts.get("tv"))
            opts = {**spec.options.get("mask", {}), "l1": l1, "tv": tv, "tv_beta": 2.0}
            jobs.append(Job("mask", "same-lambda", r, tuple(sorted(opts.items()))))
            if "igos" not in spec.methods:
                jobs.append(Job("igos", "default", r, tuple(sorted(igos_opts.items()))))
    seen, unique = set(), []
    for j in jobs:
        if j not in seen:
            seen.add(j)
            unique.append(j)
    return unique


def read_labels(path: Path) -> dict[str, int]:
    """A label file: ``name,label`` or ``name<TAB>label`` per line (header optional); ``name`` is a
    path relative to the images folder or a file stem; ``label`` a class index or a WordNet id."""
    wnid_index = {w: i for i, w in enumerate(imagenet_wnids())}
    out: dict[str, int] = {}
    text = Path(path).read_text(encoding="utf-8")
    dialect = "excel-tab" if "\t" in text.splitlines()[0] else "excel"
    for n, row in enumerate(csv.reader(text.splitlines(), dialect=dialect), start=1):
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
    log: Callable[[str], None] = print,
) -> BenchSummary:
    """Compute every missing row of ``spec`` into ``run_dir``'s store; returns a summary."""
    t_start = time.perf_counter()
    store = ResultStore(run_dir)
    store.record_run(command, __version__, str(Path(spec.images_dir).resolve()))
    files = find_images([spec.images_dir])[:: max(1, spec.every)][: spec.limit]
    if not files:
        raise ValueError(f"no image files found in {spec.images_dir}")
    labels = read_labels(spec.labels) if spec.labels else None
    jobs = plan_jobs(spec)
    device = resolve_device(spec.device)
    summary = BenchSummary(images_total=len(files))
    done = store.done_keys()
    failed_images: set[str] = set()
    try:
        for model_name in spec.models:
            preset = load_model(model_name).to(device)
            rels = [f.relative_to(spec.images_dir).as_posix() if f.is_relative_to(spec.images_dir) else str(f)
                    for f in files]
            keyed = {j: settings_hash(_settings(spec, j, labels)) for j in jobs}
            todo = [
                (f, rel) for f, rel in zip(files, rels)
                if any((rel, preset.name, j.method, j.variant, j.resolution, keyed[j]) not in done for j in jobs)
            ]
            summary.rows_skipped += (len(files) - len(todo)) * len(jobs)
            bar = progress(total=len(todo), desc=preset.name, unit="img") if progress else None
            for start in range(0, len(todo), spec.images_per_batch):
                batch = todo[start : start + spec.images_per_batch]
                work = _run_batch(spec, preset, batch, jobs, keyed, done, store, labels, summary, failed_images)
                summary.work_seconds += work
                if bar is not None:
                    bar.update(len(batch))
            if bar is not None:
                bar.close()
    finally:
        summary.wall_seconds = time.perf_counter() - t_start
        summary.images_failed = len(failed_images)
        store.close()
    return summary


def effective_parameters(method: str, resolution: int, options: dict[str, Any]) -> dict[str, Any]:
    """Every keyword parameter the method runs with: its defaults, overridden by ``options``, with
    I-GOS's per-resolution (λ1, λ2) resolved. Part of a row's settings, so that a change of a
    library default makes new rows instead of silently reusing rows computed under the old one."""
    fn = get_method(method)
    params: dict[str, Any] = {}
    for name, p in inspect.signature(fn).parameters.items():
        if p.kind is inspect.Parameter.KEYWORD_ONLY and p.default is not inspect.Parameter.empty:
            params[name] = p.default
    params.pop("baseline", None)
    params.update(options)
    if method == "igos" and resolution:
        params["l1"], params["tv"] = resolve_regularisation(resolution, params.get("l1"), params.get("tv"))
    return {k: v if isinstance(v, (int, float, str, bool, type(None))) else str(v) for k, v in params.items()}


def _settings(spec: BenchSpec, job: Job, labels: dict | None) -> dict[str, Any]:
    return {
        "method": job.method,
        "variant": job.variant,
        "options": dict(job.options),
        "parameters": effective_parameters(job.method, job.resolution, dict(job.options)),
        "seed": spec.seed,
        "targets": "labels" if (labels is not None or spec.imagefolder) else "top1",
    }


def _run_batch(spec, preset: ModelPreset, batch, jobs, keyed, done, store: ResultStore, labels, summary,
               failed_images) -> float:
    work = 0.0
    images, rels = [], []
    for f, rel in batch:
        try:
            images.append(load_image(f, preset.input_size, preset.resize))
            rels.append(rel)
        except ImageLoadError as exc:
            store.add_failure(rel, preset.name, "load", exc.reason)
            failed_images.add(rel)
    if not images:
        return work
    x = torch.stack(images).to(preset.device)
    with torch.no_grad():
        logits = preset.model(x)
    if not torch.isfinite(logits).all():
        for rel in rels:
            store.add_failure(rel, preset.name, "model", "the model returned NaN or infinite outputs")
            failed_images.add(rel)
        return work
    targets = []
    for i, rel in enumerate(rels):
        label = _label_for(rel, labels, spec.imagefolder)
        if label is not None and not 0 <= label < logits.shape[1]:
            store.add_failure(rel, preset.name, "label", f"label {label} out of range 0..{logits.shape[1] - 1}")
            label = None
        targets.append(int(logits[i].argmax()) if label is None else label)
    target_t = torch.tensor(targets, device=x.device)
    probs = logits.softmax(1).gather(1, target_t.view(-1, 1)).squeeze(1)
    baseline = blurred_baseline(x)
    for job in jobs:
        need = [i for i, rel in enumerate(rels)
                if (rel, preset.name, job.method, job.variant, job.resolution, keyed[job]) not in done]
        if not need:
            continue
        idx = torch.tensor(need, device=x.device)
        fn = get_method(job.method)
        opts = preset_options(fn, preset, dict(job.options))
        res = job.resolution or preset.input_size[0]
        try:
            t0 = time.perf_counter()
            result = fn(preset.model, x[idx], target_t[idx], baseline=baseline[idx], resolution=res,
                        seed=spec.seed, **opts)
            t1 = time.perf_counter()
            scores = deletion_insertion(preset.model, x[idx], result.saliency, target_t[idx], baseline=baseline[idx])
            t2 = time.perf_counter()
        except (ValueError, RuntimeError) as exc:
            for i in need:
                store.add_failure(rels[i], preset.name, job.label, str(exc))
            continue
        work += t2 - t0
        n = len(need)
        for r, i in enumerate(need):
            sal = result.saliency[r].detach().float().cpu().numpy()
            trace = result.trace[r] if result.trace else {}
            row = {
                "image": rels[i], "model": preset.name, "method": job.method, "variant": job.variant,
                "resolution": job.resolution, "settings_hash": keyed[job],
                "settings": _settings(spec, job, labels), "target": targets[i],
                "target_name": preset.class_name(targets[i]), "probability": float(probs[i]),
                "deletion": float(scores.deletion[r]), "insertion": float(scores.insertion[r]),
                "x": scores.x.tolist(), "deletion_curve": scores.deletion_curve[r].tolist(),
                "insertion_curve": scores.insertion_curve[r].tolist(),
                "seconds": (t1 - t0) / n, "evaluation_seconds": (t2 - t1) / n,
                "forward_images": result.forward_images // n, "backward_images": result.backward_images // n,
                "final_objective": trace.get("final_objective"),
                "saliency": sal.astype(np.float16).tobytes(), "saliency_shape": list(sal.shape),
                "version": __version__, "created": time.time(),
            }
            if store.add(row):
                summary.rows_written += 1
                if trace.get("stalled"):
                    summary.stalled.append(f"{rels[i]} ({job.label} {res})")
            done.add((rels[i], preset.name, job.method, job.variant, job.resolution, keyed[job]))
    return work


def saliency_from_row(row: dict[str, Any]) -> np.ndarray:
    """The stored saliency map of a result row (float32 ``[h, w]``)."""
    return np.frombuffer(row["saliency"], dtype=np.float16).reshape(row["saliency_shape"]).astype(np.float32)


def parse_method_options(pairs: Sequence[str], parse_value: Callable[[str], Any]) -> dict[str, dict[str, Any]]:
    """``method.key=value`` pairs into ``{method: {key: value}}``."""
    out: dict[str, dict[str, Any]] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        method, dot, name = key.partition(".")
        if not sep or not dot or not name:
            raise ValueError(f"--set expects METHOD.KEY=VALUE (e.g. igos.iterations=10), got {pair!r}")
        out.setdefault(method, {})[name.replace("-", "_")] = parse_value(value)
    return out
