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

from .core import frozen
from .errors import ModelOutputError, TargetError
from .images import ImageLoadError
from .methods import get_method
from .methods.recommended import resolve
from .metrics import deletion_insertion
from .models import ModelPreset
from .outputs import check_finite, finite, model_output, take
from .perturb import blurred_baseline
from .records import Explanation, Failure
from .removals import check_removals, score_removal
from .targets import Bound, Classes, Target, TopClass, as_targets, bind_targets, target_labels

__all__ = ["Task", "Item", "Failure", "Batch", "run", "prepare_batch", "check_targets", "run_task", "plain_settings",
           "describe"]


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
        read; ``auto`` is the recommended method at ``resolution`` with its options there, ``options`` over them
        (:mod:`igos.methods.recommended`)."""
        if "removals" in kw:
            kw["removals"] = check_removals(kw["removals"])
        method, options = resolve(method, resolution, options)
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
    path or a ``[3, H, W]`` tensor in ``[0, 1]``) and its ``target``: a class, ``None`` (top-1) or any
    :class:`igos.targets.Target` (boxes and mask files in the photo's pixels)."""

    name: str | None
    source: str | os.PathLike | Tensor
    target: int | Target | None = None


@dataclass
class Batch:
    """Images ready for the methods: ``[B, 3, H, W]`` images and baseline, their bound targets
    (:class:`igos.targets.Bound`), the class each is about (``-1``: none) and the targets' scores on the clean
    images (a class's probability)."""

    items: list[Item]
    images: Tensor
    baseline: Tensor
    targets: Tensor
    probabilities: Tensor
    failures: list[Failure] = field(default_factory=list)
    bound: Bound | None = None

    @classmethod
    def empty(cls, failures: list[Failure]) -> Batch:
        """A batch with no usable image, only the failures that say why."""
        none = torch.empty(0)
        return cls([], none, none, none, none, failures)


def plain_settings(options: dict[str, Any]) -> dict[str, Any]:
    """Options as JSON-able values (a module or tensor option becomes its ``str``)."""
    return {k: v if isinstance(v, (int, float, str, bool, type(None))) else str(v) for k, v in options.items()}


def _load(items: Sequence[Item], preset: ModelPreset, resize: str | None, strict: bool = True
          ) -> tuple[list[Item], list[Tensor], list[Target], list[Failure]]:
    """The images that could be read, with their targets in the input's pixels (a target that does not fit its
    photo raises when ``strict``, else is a :class:`Failure`)."""
    kept, images, targets, failures = [], [], [], []
    for item in items:
        target = as_targets(item.target, 1)[0]
        where = item.name or "(tensor)"
        try:
            if isinstance(item.source, Tensor):
                image, geometry = item.source, None
            else:
                image = preset.read(item.source, resize)
                geometry = preset.geometry(item.source, resize) if target.in_photo_pixels else None
        except ImageLoadError as exc:
            failures.append(Failure(item.name, "load", exc.reason))
            continue
        try:
            target = target.in_input(geometry, where)
        except TargetError as exc:
            if strict:
                raise
            failures.append(Failure(item.name, "target", str(exc)))
            continue
        kept.append(item)
        images.append(image)
        targets.append(target)
    return kept, images, targets, failures


def _bind(kept: list[Item], targets: list[Target], preset: ModelPreset, x: Tensor, output: Any, strict: bool
          ) -> tuple[list[int], Bound | None, list[Failure]]:
    """The batch's targets bound together; when not strict, a target that does not fit its image is a
    :class:`Failure` (an out-of-range class falls back to the top-1 class, as a bad label always did)."""
    try:
        return list(range(len(kept))), bind_targets(targets, preset.model, x, output=output), []
    except (TargetError, ModelOutputError):
        if strict:
            raise
    rows, usable, failures = [], [], []
    for i, (item, target) in enumerate(zip(kept, targets)):
        tries = [target] + ([TopClass(target.score)] if isinstance(target, Classes) else [])
        for n, candidate in enumerate(tries):
            try:
                bind_targets([candidate], preset.model, x[i : i + 1], output=_rows(output, [i]))
            except (TargetError, ModelOutputError) as exc:
                failures.append(Failure(item.name, "label" if n == 0 and len(tries) > 1 else "target", str(exc)))
                continue
            rows.append(i)
            usable.append(candidate)
            break
    if not rows:
        return [], None, failures
    return rows, bind_targets(usable, preset.model, x[torch.tensor(rows, device=x.device)],
                              output=_rows(output, rows)), failures


def _rows(output: Any, rows: list[int]) -> Any:
    return take(output, torch.tensor(rows, device=output.device if isinstance(output, Tensor) else "cpu"))


def check_targets(items: Sequence[Item], preset: ModelPreset, resize: str | None = None) -> None:
    """Before any work: every box and mask file given on a photo fits it (``TargetError`` naming the photo and
    what is wrong otherwise). What needs the model's output (a class's range, a detector's labels) is checked
    with each batch's clean forward pass."""
    for item in items:
        target = as_targets(item.target, 1)[0]
        if not target.in_photo_pixels:
            continue
        if isinstance(item.source, Tensor):
            target.in_input(None, "(tensor)")
            continue
        try:
            geometry = preset.geometry(item.source, resize)
        except ImageLoadError:
            continue  # an unreadable photo is the load stage's failure
        target.in_input(geometry, str(item.name))


def prepare_batch(items: Sequence[Item], preset: ModelPreset, *, resize: str | None = None,
                  strict: bool = True) -> Batch:
    """Load ``items``, pick targets (top-1 where none is given) and make the blurred baseline.

    ``strict``: a model returning NaN or a class out of range raises (``NonFiniteOutputError``,
    ``ValueError``); otherwise it becomes a :class:`Failure` (an out-of-range label falls back to the
    top-1 class). The batch has no items when none of ``items`` could be used.
    """
    kept, images, targets, failures = _load(items, preset, resize, strict)
    if not kept:
        return Batch.empty(failures)
    x = torch.stack(images).to(preset.device)
    with torch.no_grad(), frozen(preset.model):  # a preset left in train mode: no dropout, no BatchNorm update
        output = model_output(preset.model(x))
        if not finite(output):
            if strict:
                check_finite(output)  # raises NonFiniteOutputError
            failures += [Failure(it.name, "model", "the model returned NaN or infinite outputs") for it in kept]
            return Batch.empty(failures)
        rows, bound, more = _bind(kept, targets, preset, x, output, strict)
        failures += more
        if bound is None:
            return Batch.empty(failures)
        if len(rows) < len(kept):
            kept, x, output = [kept[i] for i in rows], x[torch.tensor(rows, device=x.device)], _rows(output, rows)
        probs = bound.score(output, torch.arange(len(kept), device=x.device))
    return Batch(kept, x, blurred_baseline(x), target_labels(bound, x.device), probs, failures, bound)


def target_name(preset: ModelPreset, bound: Bound, row: int, label: int) -> str:
    """How records name a target: the class's name; a set's size and first classes; a box's or region's class."""
    spec = bound.describe(row)
    kind = spec["kind"]
    if kind == "classes" and len(spec["classes"]) > 1:
        c = spec["classes"]
        span = f"{c[0]}–{c[-1]}" if c == list(range(c[0], c[-1] + 1)) else "+".join(map(str, c[:4])) + \
            ("+…" if len(c) > 4 else "")
        return f"{len(c)} classes {span}"
    if kind == "box":
        return f"box of {preset.class_name(label)}"
    if kind == "region":
        return f"region of {preset.class_name(label)}"
    if kind == "score":
        return spec["name"]
    return preset.class_name(label)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def run_task(preset: ModelPreset, batch: Batch, task: Task, rows: Sequence[int] | None = None) -> list[Explanation]:
    """Run ``task`` on the images ``rows`` of ``batch`` (default all) and score them; one record per image."""
    spec = get_method(task.method)
    rows = list(range(len(batch.items))) if rows is None else list(rows)
    idx = torch.tensor(rows, device=batch.images.device)
    x, labels, baseline = batch.images[idx], batch.targets[idx], batch.baseline[idx]
    target = batch.bound.select(rows)
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
            path=batch.items[i].name, image=x[r].detach().cpu(), saliency=sal, target=int(labels[r]),
            target_name=target_name(preset, target, r, int(labels[r])), probability=float(batch.probabilities[i]),
            method=task.method, variant=task.variant, task=task, model=preset.name,
            resolution=(int(sal.shape[0]), int(sal.shape[1])), settings=settings, seconds=(t1 - t0) / n,
            forward_images=result.forward_images // n, backward_images=result.backward_images // n,
            mask=None if result.mask is None else result.mask[r].detach().cpu(),
            trace=result.trace[r] if result.trace else None,
            target_spec=target.describe(r), outline=target.outline(r),
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
