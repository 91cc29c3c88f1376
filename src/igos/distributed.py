"""``igos bench --ray`` and ``igos explain --ray``: the pipeline on a Ray cluster.

A *unit* is a batch of images × one task (model, method, variant, resolution, settings). Units run
as Ray tasks; each worker process loads a model once, on its first unit, and keeps it (models are
never shipped). Finished units stream back to the driver, which alone writes results, as they
arrive; at most ``window`` units are in flight, so a driver killed with SIGKILL loses at most
those, and a rerun computes only what is missing. A worker process that dies is retried by Ray
(``max_retries`` times); a unit that still fails becomes failures naming its images and the error,
and the run goes on. Every unit is the same computation as the plain run's batch of the same images
(one pipeline), so the rows equal the plain run's whatever the number of workers.
"""

from __future__ import annotations

import os
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from .errors import MissingDependencyError
from .pipeline import Item, Task, describe
from .records import Explanation, Failure

__all__ = ["RayOptions", "Unit", "UnitResult", "make_units", "ray_stream", "RayStats", "require_ray"]


def require_ray() -> Any:
    """The ``ray`` module, or an ``ImportError`` that says how to install it."""
    try:
        import ray
    except ImportError:
        raise MissingDependencyError("--ray needs Ray: pip install 'igos[ray]'") from None
    return ray


@dataclass(frozen=True)
class RayOptions:
    """Where and how units run.

    Attributes:
        address: ``None`` starts a local Ray for the run (``workers`` × ``cpus_per_worker`` CPUs);
            ``"auto"``, ``"host:6379"`` or ``"ray://host:10001"`` joins that cluster.
        workers: local Ray only: worker processes (default: every core / ``cpus_per_worker``).
        cpus_per_worker, gpus_per_worker: Ray resources per unit; with GPUs, one replica per GPU.
        threads_per_worker: torch threads in a worker (default ``cpus_per_worker``).
        max_retries: retries of a unit whose worker process died.
        window: units in flight at once (default 2 × workers).
    """

    address: str | None = None
    workers: int | None = None
    cpus_per_worker: float = 1.0
    gpus_per_worker: float = 0.0
    threads_per_worker: int | None = None
    max_retries: int = 3
    window: int | None = None

    def __post_init__(self) -> None:
        if self.cpus_per_worker <= 0 or self.gpus_per_worker < 0 or self.max_retries < 0:
            raise ValueError(f"need cpus_per_worker > 0, gpus_per_worker ≥ 0 and max_retries ≥ 0, got "
                             f"{self.cpus_per_worker}, {self.gpus_per_worker}, {self.max_retries}")
        if self.workers is not None and self.workers < 1:
            raise ValueError(f"workers must be ≥ 1, got {self.workers}")


@dataclass(frozen=True)
class Unit:
    """One unit of work: ``items`` through ``task`` on the model ``model`` (a name ``load_model`` knows)."""

    index: int
    model: str
    model_options: tuple[tuple[str, Any], ...]  # load_model's keyword arguments (weights, dtype, …)
    device: str | None
    task: Task
    items: tuple[Item, ...]
    resize: str | None = None
    keep_images: bool = True


@dataclass
class UnitResult:
    """What a unit sends back: its records, the worker that ran it and the seconds it took there."""

    index: int
    records: list[Explanation | Failure]
    worker: str
    seconds: float


@dataclass
class RayStats:
    """Progress and summary of a Ray run."""

    units_total: int = 0
    units_done: int = 0
    units_failed: int = 0
    per_worker: Counter = field(default_factory=Counter)
    worker_seconds: float = 0.0
    slots: int = 1
    started: float = field(default_factory=time.perf_counter)

    def line(self) -> str:
        elapsed = time.perf_counter() - self.started
        rate = self.units_done / elapsed if elapsed > 0 else 0.0
        eta = (self.units_total - self.units_done) / rate if rate > 0 else float("nan")
        return (f"{self.units_done}/{self.units_total} units, {rate:.2f} units/s, ETA {eta:.0f} s, "
                f"{len(self.per_worker)} workers, {self.units_failed} failed")


def make_units(items: Sequence[Item], model: str, tasks: Sequence[Task], images_per_batch: int, *,
               model_options: dict[str, Any] | None = None, device: str | None = None, resize: str | None = None,
               keep_images: bool = True, skip: Callable[[Item, Task], bool] | None = None) -> list[Unit]:
    """Units in the plain run's order: for each chunk of ``images_per_batch`` items, one unit per task
    with the items that still need it (the same batches the plain pipeline would run)."""
    def freeze(v: Any) -> Any:  # hashable, so that a worker's model cache can be keyed by it
        return tuple(sorted(v.items())) if isinstance(v, dict) else tuple(v) if isinstance(v, list) else v

    frozen_options = tuple(sorted((k, freeze(v)) for k, v in (model_options or {}).items()))
    units: list[Unit] = []
    for start in range(0, len(items), images_per_batch):
        chunk = items[start : start + images_per_batch]
        for task in tasks:
            todo = tuple(it for it in chunk if skip is None or not skip(it, task))
            if todo:
                units.append(Unit(len(units), model, frozen_options, device, task, todo, resize, keep_images))
    return units


_MODELS: dict[tuple, Any] = {}  # per worker process: models loaded once, kept for every later unit


def run_unit(unit: Unit, threads: int | None = None) -> UnitResult:
    """Run one unit here (in a Ray worker, or inline); never raises for an image's or a method's error."""
    import torch

    from .pipeline import run
    from .sources import load_model

    t0 = time.perf_counter()
    if threads:
        torch.set_num_threads(int(threads))
    key = (unit.model, unit.model_options, unit.device)
    if key not in _MODELS:
        options = {k: (dict(v) if k == "model_args" else v) for k, v in unit.model_options}
        _MODELS[key] = load_model(unit.model, device=unit.device, **options)
    preset = _MODELS[key]
    records = list(run(unit.items, preset, [unit.task], images_per_batch=len(unit.items), resize=unit.resize,
                       strict=False))
    if not unit.keep_images:
        records = [replace(r, image=torch.empty(0), mask=None) if isinstance(r, Explanation) else r
                   for r in records]
    worker = f"{os.uname().nodename}:{os.getpid()}"
    return UnitResult(unit.index, records, worker, time.perf_counter() - t0)


def _init(ray: Any, options: RayOptions) -> tuple[int, bool]:
    """Start or join Ray; returns how many units can run at once, and whether this call started it."""
    started = not ray.is_initialized()
    if started:
        if options.address is None:
            workers = options.workers or max(1, int((os.cpu_count() or 1) // options.cpus_per_worker))
            ray.init(num_cpus=workers * options.cpus_per_worker, include_dashboard=False, log_to_driver=False,
                     configure_logging=False)
        else:
            ray.init(address=options.address, log_to_driver=False, configure_logging=False)
    cpus = ray.cluster_resources().get("CPU", 1.0)
    slots = int(cpus // options.cpus_per_worker)
    if options.gpus_per_worker > 0:
        slots = min(slots, int(ray.cluster_resources().get("GPU", 0.0) // options.gpus_per_worker))
    if slots < 1:
        gpus = ray.cluster_resources().get("GPU", 0)
        if started:
            ray.shutdown()
        raise ValueError(f"the Ray cluster has {cpus:g} CPUs and {gpus:g} GPUs: not enough for one worker of "
                         f"{options.cpus_per_worker:g} CPUs and {options.gpus_per_worker:g} GPUs")
    return slots, started


def ray_stream(units: Sequence[Unit], options: RayOptions, stats: RayStats | None = None,
               progress: Callable[[RayStats], None] | None = None) -> Iterator[Explanation | Failure]:
    """Run ``units`` on Ray and yield their records as units finish (in finishing order).

    A unit whose worker died more than ``max_retries`` times, or that raised, yields one
    :class:`Failure` per image naming the error. When the stream stops early (an error, an interrupt, a
    consumer that stops reading), the units in flight are cancelled, and a Ray this call started is shut down.
    """
    ray = require_ray()
    slots, started = _init(ray, options)
    stats = stats if stats is not None else RayStats()
    stats.slots = slots
    stats.units_total += len(units)
    threads = options.threads_per_worker or max(1, int(options.cpus_per_worker))
    # Ray starts workers with OMP_NUM_THREADS = their CPUs; torch.set_num_threads alone does not reach every
    # OpenMP region (measured: units 25-40 % slower at 2 threads), so the worker starts with the right value
    # (Ray's own default when the two agree: then its prestarted workers serve, no new worker is started)
    extra = {} if threads == int(options.cpus_per_worker) else {
        "runtime_env": {"env_vars": {"OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}}}
    remote = ray.remote(run_unit).options(num_cpus=options.cpus_per_worker, num_gpus=options.gpus_per_worker,
                                          max_retries=options.max_retries, retry_exceptions=False, **extra)
    window = options.window or 2 * slots
    queue, flying = deque(units), {}
    try:
        while queue or flying:
            while queue and len(flying) < window:
                unit = queue.popleft()
                flying[remote.remote(unit, threads)] = unit
            ready, _ = ray.wait(list(flying), num_returns=1)
            for ref in ready:
                unit = flying.pop(ref)
                yield from _collect(ray, ref, unit, stats)
                if progress is not None:
                    progress(stats)
    finally:
        for ref in flying:  # stopped early: what is still running would keep its CPUs busy
            ray.cancel(ref, force=True)
        if started:
            ray.shutdown()


def _collect(ray: Any, ref: Any, unit: Unit, stats: RayStats) -> list[Explanation | Failure]:
    stats.units_done += 1
    try:
        result: UnitResult = ray.get(ref)
    except Exception as exc:  # the worker died too often, or the unit raised: its images fail, the run goes on
        stats.units_failed += 1
        return [Failure(it.name, unit.task.name, describe(exc)) for it in unit.items]
    stats.per_worker[result.worker] += 1
    stats.worker_seconds += result.seconds
    return result.records
