"""The one batch pipeline: load → target → baseline → method → metric → records.

``igos.explain``, ``igos explain``, ``igos bench`` and the Ray runner all call :func:`run`. It
streams: images are read ``images_per_batch`` at a time, every :class:`Task` runs on the batch, and
each finished record is yielded at once, so a caller can save it before the next batch starts.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from .core import check_finite, frozen
from .images import ImageLoadError, load_image
from .methods import get_method
from .methods.recommended import resolve_method
from .metrics import deletion_insertion
from .models import ModelPreset
from .perturb import blurred_baseline
from .records import Explanation, Failure
from .removals import check_removals, score_removal

__all__ = ["Task", "Item", "Failure", "Batch", "run", "prepare_batch", "run_task", "plain_settings", "describe"]


@dataclass(frozen=True)
class Task:
    """One method run on every image of a batch.

    ``resolution`` ``None`` (or 0) means the method's native one; ``options`` are the method's options as
    sorted ``(name, value)`` pairs (hashable); ``variant`` labels a named variant in the bench
    (``no-tv``, ``same-lambda``, …); ``removals`` the operators the maps are scored with when ``evaluate``
    (:mod:`igos.removals`: ``blur``, the deletion and insertion of every table, ``road``, ``mean``, ``zero``).
    """

    method: str
    resolution: int | tuple[int, int] | None = None
    options: tuple[tuple[str, Any], ...] = ()
    variant: str = "default"
    seed: int = 0
    evaluate: bool = True
    removals: tuple[str, ...] = ("blur",)

    @classmethod
    def make(cls, method: str, resolution: int | tuple[int, int] | None = None,
             options: dict[str, Any] | None = None, **kw: Any) -> Task:
        """A task whose options (names and values) and optional packages are checked now, before any image is
        read; ``auto`` is the recommended method at ``resolution`` (:mod:`igos.methods.recommended`)."""
        options = dict(options or {})
        if "removals" in kw:
            kw["removals"] = check_removals(kw["removals"])
        method = resolve_method(method, resolution)
        spec = get_method(method)
        spec.check_options(options)
        spec.check_requirements()
        return cls(method, resolution, tuple(sorted(options.items())), **kw)

    @property
    def label(self) -> str:
        """The method and its variant: ``igos``, ``igos/no-tv``."""
        return self.method if self.variant == "default" else f"{self.method}/{self.variant}"

    @property
    def name(self) -> str:
        """The task as records and summaries name it: ``igos 28``, ``igos 14x28``, ``gradcam`` (its own size)."""
        r = self.resolution
        size = "" if not r else f" {r[0]}x{r[1]}" if isinstance(r, tuple) else f" {r}"
        return self.label + size


@dataclass(frozen=True)
class Item:
    """One image: a ``name`` for records (its path, or ``None`` for a tensor), the ``source`` (a file
    path or a ``[3, H, W]`` tensor in ``[0, 1]``) and its ``target`` class (``None``: top-1)."""

    name: str | None
    source: str | os.PathLike | Tensor
    target: int | None = None


@dataclass
class Batch:
    """Images ready for the methods: ``[B, 3, H, W]`` images and baseline, targets and their probabilities."""

    items: list[Item]
    images: Tensor
    baseline: Tensor
    targets: Tensor
    probabilities: Tensor
    failures: list[Failure] = field(default_factory=list)

    @classmethod
    def empty(cls, failures: list[Failure]) -> Batch:
        """A batch with no usable image, only the failures that say why."""
        none = torch.empty(0)
        return cls([], none, none, none, none, failures)


def plain_settings(options: dict[str, Any]) -> dict[str, Any]:
    """Options as JSON-able values (a module or tensor option becomes its ``str``)."""
    return {k: v if isinstance(v, (int, float, str, bool, type(None))) else str(v) for k, v in options.items()}


def _load(items: Sequence[Item], preset: ModelPreset, resize: str | None) -> tuple[list[Item], list[Tensor],
                                                                                    list[Failure]]:
    kept, images, failures = [], [], []
    for item in items:
        if isinstance(item.source, Tensor):
            images.append(item.source)
        else:
            try:
                images.append(load_image(item.source, preset.input_size, resize or preset.resize,
                                         crop_fraction=preset.crop_fraction, interpolation=preset.interpolation))
            except ImageLoadError as exc:
                failures.append(Failure(item.name, "load", exc.reason))
                continue
        kept.append(item)
    return kept, images, failures


def prepare_batch(items: Sequence[Item], preset: ModelPreset, *, resize: str | None = None,
                  strict: bool = True) -> Batch:
    """Load ``items``, pick targets (top-1 where none is given) and make the blurred baseline.

    ``strict``: a model returning NaN or a class out of range raises (``NonFiniteOutputError``,
    ``ValueError``); otherwise it becomes a :class:`Failure` (an out-of-range label falls back to the
    top-1 class). The batch has no items when none of ``items`` could be used.
    """
    kept, images, failures = _load(items, preset, resize)
    if not kept:
        return Batch.empty(failures)
    x = torch.stack(images).to(preset.device)
    with torch.no_grad(), frozen(preset.model):  # a preset left in train mode: no dropout, no BatchNorm update
        logits = preset.model(x)
    if not torch.isfinite(logits).all():
        if strict:
            check_finite(logits)  # raises NonFiniteOutputError
        failures += [Failure(it.name, "model", "the model returned NaN or infinite outputs") for it in kept]
        return Batch.empty(failures)
    classes = logits.shape[1]
    targets = []
    for i, item in enumerate(kept):
        t = item.target
        if t is not None and not 0 <= t < classes:
            error = f"target class {t} for {item.name or f'image {i}'} is out of range: the model has {classes} " \
                    f"classes, 0..{classes - 1}"
            if strict:
                raise ValueError(error)
            failures.append(Failure(item.name, "label", error))
            t = None
        targets.append(int(logits[i].argmax()) if t is None else int(t))
    target_t = torch.tensor(targets, device=x.device)
    probs = logits.softmax(1).gather(1, target_t.view(-1, 1)).squeeze(1)
    return Batch(kept, x, blurred_baseline(x), target_t, probs, failures)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def run_task(preset: ModelPreset, batch: Batch, task: Task, rows: Sequence[int] | None = None) -> list[Explanation]:
    """Run ``task`` on the images ``rows`` of ``batch`` (default all) and score them; one record per image."""
    spec = get_method(task.method)
    rows = list(range(len(batch.items))) if rows is None else list(rows)
    idx = torch.tensor(rows, device=batch.images.device)
    x, target, baseline = batch.images[idx], batch.targets[idx], batch.baseline[idx]
    options = spec.with_preset(dict(task.options), preset)
    _sync(x.device)
    t0 = time.perf_counter()
    result = spec(preset.model, x, target, baseline=baseline, resolution=task.resolution or None, seed=task.seed,
                  **options)
    _sync(x.device)
    t1 = time.perf_counter()
    blur = task.evaluate and "blur" in task.removals
    scores = deletion_insertion(preset.model, x, result.saliency, target, baseline=baseline) if blur else None
    others = {r: score_removal(preset.model, x, result.saliency, target, r, seed=task.seed)
              for r in task.removals if task.evaluate and r != "blur"}
    t2 = time.perf_counter()
    n = len(rows)
    settings = {**plain_settings(result.options.as_dict()), "seed": task.seed}  # the options it ran with
    out = []
    for r, i in enumerate(rows):
        sal = result.saliency[r].detach().float().cpu()
        e = Explanation(
            path=batch.items[i].name, image=x[r].detach().cpu(), saliency=sal, target=int(target[r]),
            target_name=preset.class_name(int(target[r])), probability=float(batch.probabilities[i]),
            method=task.method, variant=task.variant, task=task, model=preset.name,
            resolution=(int(sal.shape[0]), int(sal.shape[1])), settings=settings, seconds=(t1 - t0) / n,
            forward_images=result.forward_images // n, backward_images=result.backward_images // n,
            mask=None if result.mask is None else result.mask[r].detach().cpu(),
            trace=result.trace[r] if result.trace else None,
        )
        if scores is not None:
            e.set_scores(scores, r, (t2 - t1) / n)
        if others:
            e.removals = {name: per_image[r] for name, per_image in others.items()}
            e.evaluation_seconds = (t2 - t1) / n
        out.append(e)
    return out


def run(
    items: Iterable[Item],
    preset: ModelPreset,
    tasks: Sequence[Task],
    *,
    images_per_batch: int = 8,
    resize: str | None = None,
    strict: bool = True,
    skip: Callable[[Item, Task], bool] | None = None,
    progress: Callable[[int], None] | None = None,
) -> Iterator[Explanation | Failure]:
    """Every task on every item, ``images_per_batch`` images at a time; yields records and failures.

    Args:
        items: the images (see :class:`Item`).
        preset: the model.
        tasks: what to run on each batch, in order.
        images_per_batch: images loaded and explained together.
        resize: ``"squash"`` or ``"crop"`` (default: the preset's).
        strict: raise on a method's error, a NaN model or an out-of-range class; otherwise yield a
            :class:`Failure` naming the image and go on. Unreadable files are always failures.
        skip: ``(item, task) -> True`` for work that is already done (the bench's resume).
        progress: called with the number of items finished after each batch.
    """
    items = list(items)
    if images_per_batch < 1:
        raise ValueError(f"images_per_batch must be ≥ 1, got {images_per_batch}")
    for start in range(0, len(items), images_per_batch):
        chunk = items[start : start + images_per_batch]
        todo = [it for it in chunk if skip is None or any(not skip(it, t) for t in tasks)]
        if todo:
            batch = prepare_batch(todo, preset, resize=resize, strict=strict)
            yield from batch.failures
            for task in tasks:
                rows = [i for i, it in enumerate(batch.items) if skip is None or not skip(it, task)]
                if rows:
                    yield from _guarded(preset, batch, task, rows, strict)
        if progress is not None:
            progress(len(chunk))


def _guarded(preset: ModelPreset, batch: Batch, task: Task, rows: list[int], strict: bool
             ) -> list[Explanation | Failure]:
    """``run_task``; when not strict, any error becomes one :class:`Failure` per image (as a failed Ray unit
    does), so that one method's trouble never stops a grid."""
    try:
        return list(run_task(preset, batch, task, rows))
    except Exception as exc:
        if strict:
            raise
        return [Failure(batch.items[i].name, task.name, describe(exc)) for i in rows]


def describe(exc: BaseException) -> str:
    """An error as a failure record says it: the message, with the exception's type where that helps (a
    programming error's ``TypeError: …``; igos's own errors speak for themselves)."""
    from .errors import IgosError

    text = str(exc).strip() or type(exc).__name__
    return text if isinstance(exc, (IgosError, ValueError)) else f"{type(exc).__name__}: {text}"
