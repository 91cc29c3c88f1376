"""The high-level API: ``explain`` files or tensors with any method, ``evaluate`` any saliency."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch
from torch import Tensor

from .core import check_images
from .images import find_images
from .metrics import Scores, deletion_insertion
from .models import ModelPreset, placed
from .pipeline import Item, Task, check_targets, run
from .records import Explanation, Explanations, Failure
from .sources import load_model
from .targets import Target, as_targets

__all__ = ["Explanation", "Explanations", "explain", "explain_stream", "evaluate", "resolve_model"]

DEFAULT_MODEL = "efficientnet-lite0"


def resolve_model(model: str | ModelPreset | None, device: str | torch.device | None = None,
                  model_options: dict[str, Any] | None = None, *, tensors: bool = False) -> ModelPreset:
    """The preset to run: a name loaded (with ``model_options``) onto ``device``, or the caller's preset, left
    where it is when ``device`` is ``None`` (a copy goes to another device: the caller's model is never moved).
    ``None`` is the embedded default model for files; ``tensors`` (the inputs are a tensor) requires one."""
    if model is None:
        if tensors:
            raise ValueError("explaining a tensor needs the model that takes it: pass model= (a ModelPreset, or a "
                             "name such as 'efficientnet-lite0')")
        model = DEFAULT_MODEL
    if isinstance(model, str):
        return load_model(model, device=device, **dict(model_options or {}))
    if not isinstance(model, ModelPreset):
        raise TypeError(f"model must be a preset name or a ModelPreset, got {type(model).__name__}")
    if model_options:
        raise ValueError(f"model_options ({', '.join(model_options)}) are for a model given by name, not a "
                         "ModelPreset")
    return placed(model, device)


def _targets_for(target: Any, n: int) -> list[Target | None]:
    """One target per image (``None``: its top-1) from ``None``, one class or target for all, or one per image
    (:func:`igos.targets.as_targets`)."""
    return [None] * n if target is None else as_targets(target, n)


def explain(
    inputs: str | os.PathLike | Sequence[str | os.PathLike] | Tensor,
    model: str | ModelPreset | None = None,
    method: str = "auto",
    *,
    resolution: int | tuple[int, int] = 28,
    target: int | Sequence[int | None] | None = None,
    seed: int = 0,
    device: str | torch.device | None = None,
    evaluate: bool = False,
    images_per_batch: int = 8,
    resize: str | None = None,
    progress: Callable[[int, int], None] | None = None,
    ray: Any = None,
    model_options: dict[str, Any] | None = None,
    removal: str | Sequence[str] = "blur",
    **options: Any,
) -> Explanations:
    """Explain a model's decisions on images.

    Args:
        inputs: image files and/or folders, or a ``[B, 3, H, W]`` tensor in ``[0, 1]``.
        model: a :class:`ModelPreset`, or a preset name (see :func:`igos.load_model`); for files ``None`` is the
            embedded ``efficientnet-lite0``, for a tensor a model is required.
        method: ``auto`` (default: the method igos recommends at ``resolution``, iGOS++ from 14×14 up and
            I-GOS at 7×7, :mod:`igos.methods.recommended`), or any name in ``igos.methods.METHODS``.
        resolution: heatmap side (methods with a fixed resolution ignore it).
        target: what to explain: ``None`` (each image's top-1 class), a class or a :mod:`igos.targets` target
            for all images (``Classes(range(151, 269))``, ``Classes(3, score="sigmoid")``, ``Box(xyxy, label)``,
            ``Region(cls, mask)``, ``Score(fn)`` or any callable ``f(output) -> Tensor[N]``), or one per image (a
            list of classes and targets). Boxes and mask files are in the photo's pixels.
        seed: seed of every random choice; the same seed gives the same heatmaps.
        device: ``None`` (default): where the model is (a model loaded by name: the CPU); ``"auto"``: CUDA when
            available; ``"cpu"``, ``"cuda"``, …. A preset on another device is copied there, never moved.
        evaluate: also score the maps: deletion (lower is better) and insertion (higher is better), and the other
            ``removal`` operators.
        removal: the removal operators ``evaluate`` scores with, one or several of ``blur`` (deletion and
            insertion towards the blurred photo, the default), ``road`` (ROAD's MoRF, lower is better, and LeRF,
            higher is better), ``mean`` and ``zero`` (deletion and insertion towards the channel means, or black):
            :mod:`igos.removals`; each explanation's ``removals`` holds all but ``blur``.
        images_per_batch: images explained together.
        resize: ``"squash"`` or ``"crop"`` (default: the preset's).
        progress: called with ``(done, total)`` after each batch.
        ray: an :class:`igos.distributed.RayOptions`: the batches run on Ray workers, which load the model by
            name themselves (``model`` must then be a name).
        model_options: keyword arguments of :func:`igos.load_model` (``weights``, ``dtype``, ``mean``, …) for a
            model given by name.
        options: the method's options (``iterations``, ``steps``, ``l1``, ``tv``, ``batch_size`` …); an unknown
            one is an ``UnknownOptionError`` that lists the valid ones, a bad value an ``InvalidOptionError``.

    Returns:
        :class:`Explanations`, one per image that could be explained, in input order; the others are
        :class:`Failure` records in ``.failures``.
    """
    out = Explanations()
    for rec in explain_stream(inputs, model, method, resolution=resolution, target=target, seed=seed, device=device,
                              evaluate=evaluate, images_per_batch=images_per_batch, resize=resize, progress=progress,
                              ray=ray, model_options=model_options, removal=removal, **options):
        (out.failures if isinstance(rec, Failure) else out).append(rec)
    return out


def explain_stream(
    inputs: str | os.PathLike | Sequence[str | os.PathLike] | Tensor,
    model: str | ModelPreset | None = None,
    method: str = "auto",
    *,
    resolution: int | tuple[int, int] = 28,
    target: int | Sequence[int | None] | None = None,
    seed: int = 0,
    device: str | torch.device | None = None,
    evaluate: bool = False,
    images_per_batch: int = 8,
    resize: str | None = None,
    progress: Callable[[int, int], None] | None = None,
    ray: Any = None,
    model_options: dict[str, Any] | None = None,
    removal: str | Sequence[str] = "blur",
    **options: Any,
) -> Iterator[Explanation | Failure]:
    """:func:`explain` as a stream: each :class:`Explanation` as soon as its batch is done, and a
    :class:`Failure` for each image that produced none. Arguments as :func:`explain`; every argument is checked
    (and the model loaded) here, before the first image is read; on Ray, records arrive in the order their
    batches finish."""
    task = Task.make(method, resolution, options, seed=seed, evaluate=evaluate, removals=removal)
    items = _items(inputs, target)
    if images_per_batch < 1:
        raise ValueError(f"images_per_batch must be ≥ 1, got {images_per_batch}")
    if ray is not None:
        if not isinstance(model, str):
            raise TypeError("with ray, give the model by name (Ray workers load it themselves), not a ModelPreset")
        return _on_ray(items, model, task, images_per_batch, resize, device, dict(model_options or {}), ray,
                       progress)
    preset = resolve_model(model, device, model_options, tensors=isinstance(inputs, Tensor))
    check_targets(items, preset, resize)
    done = 0

    def tick(n: int) -> None:
        nonlocal done
        done += n
        if progress is not None:
            progress(done, len(items))

    return run(items, preset, [task], images_per_batch=images_per_batch, resize=resize, progress=tick)


def _on_ray(items: list[Item], model: str, task: Task, images_per_batch: int, resize: str | None, device: Any,
            model_options: dict[str, Any], ray: Any, progress: Callable[[int, int], None] | None
            ) -> Iterator[Explanation | Failure]:
    from .distributed import make_units, ray_stream

    units = make_units(items, model, [task], images_per_batch, model_options=model_options,
                       device=None if device is None else str(device), resize=resize)
    for done, rec in enumerate(ray_stream(units, ray), start=1):  # one record per image
        yield rec
        if progress is not None:
            progress(min(done, len(items)), len(items))


def _items(inputs: str | os.PathLike | Sequence[str | os.PathLike] | Tensor, target: Any) -> list[Item]:
    if isinstance(inputs, Tensor):
        sources: list[Any] = list(check_images(inputs))
        names: list[str | None] = [None] * len(sources)
    else:
        paths = [inputs] if isinstance(inputs, (str, os.PathLike)) else list(inputs)
        files = find_images(paths)
        if not files:
            raise ValueError(f"no image files found in {', '.join(map(str, paths))}")
        sources, names = [f.resolve() for f in files], [str(f) for f in files]  # absolute: Ray workers
    targets = _targets_for(target, len(sources))
    return [Item(n, s, t) for n, s, t in zip(names, sources, targets)]


def evaluate(
    model: str | ModelPreset,
    images: Tensor | str | os.PathLike,
    saliency: Tensor,
    target: int | Sequence[int] | Tensor | None = None,
    *,
    device: str | torch.device | None = None,
    batch_size: int = 32,
) -> Scores:
    """Deletion (lower is better) and insertion (higher is better) of saliency maps, in the functional order of
    :func:`igos.deletion_insertion`: ``(model, images, saliency, target)``.

    ``model``: a :class:`ModelPreset` or a name; ``images``: ``[B, 3, H, W]`` in ``[0, 1]`` or one image file (read
    as the preset reads files); ``saliency``: ``[B, h, w]``; ``target``: ``None`` (top-1), one class or one per
    image, or any :mod:`igos.targets` target (in the input's pixels).
    """
    preset = resolve_model(model, device)
    if not isinstance(images, Tensor):
        images = preset.read(images).unsqueeze(0)
    images = check_images(images).to(preset.device)
    return deletion_insertion(preset.model, images, torch.as_tensor(saliency), target, batch_size=batch_size)
