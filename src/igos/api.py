"""The high-level API: ``explain`` files or tensors with any method, ``evaluate`` any saliency."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from .core import check_images
from .explanations import Explanation, Explanations
from .images import ImageLoadError, find_images, load_image
from .metrics import Scores, deletion_insertion
from .models import ModelPreset, load_model
from .pipeline import Failure, Item, Task, run

__all__ = ["Explanation", "Explanations", "explain", "explain_stream", "evaluate", "resolve_model", "resolve_device"]


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``None``/``"auto"``: CUDA when available, else CPU; otherwise checked and returned."""
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} was asked for, but CUDA is not available here")
    return dev


def resolve_model(model: str | ModelPreset, device: str | torch.device | None = None) -> ModelPreset:
    """A preset from a name (see ``load_model``) or an existing preset, moved to ``device``."""
    preset = load_model(model) if isinstance(model, str) else model
    if not isinstance(preset, ModelPreset):
        raise TypeError(f"model must be a preset name or a ModelPreset, got {type(model).__name__}")
    return preset.to(resolve_device(device))


def _targets_for(target: Any, n: int) -> list[int | None]:
    if target is None:
        return [None] * n
    if isinstance(target, int):
        return [target] * n
    targets = list(target)
    if len(targets) != n:
        raise ValueError(f"got {len(targets)} targets for {n} images; give one per image or one for all")
    return [None if t is None else int(t) for t in targets]


def explain(
    inputs: str | os.PathLike | Sequence[str | os.PathLike] | Tensor,
    model: str | ModelPreset = "efficientnet-lite0",
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
    **options: Any,
) -> Explanations:
    """Explain a model's decisions on images.

    Args:
        inputs: image files and/or folders, or a ``[B, 3, H, W]`` tensor in ``[0, 1]``.
        model: a preset name (default ``efficientnet-lite0``) or a :class:`ModelPreset`.
        method: ``auto`` (default: the method igos recommends at ``resolution``, iGOS++ from 14×14 up and
            I-GOS at 7×7, :mod:`igos.methods.recommended`), or any name in ``igos.methods.METHODS``.
        resolution: heatmap side (methods with a fixed resolution ignore it).
        target: class per image, one class for all, or ``None`` (top-1).
        seed: seed of every random choice; the same seed gives the same heatmaps.
        device: ``"cpu"``, ``"cuda"``, … (default: CUDA when available).
        evaluate: also compute deletion (lower is better) and insertion (higher is better).
        images_per_batch: images explained together.
        resize: ``"squash"`` or ``"crop"`` (default: the preset's).
        progress: called with ``(done, total)`` after each batch.
        options: the method's options (``iterations``, ``steps``, ``l1``, ``tv``, ``batch_size`` …);
            an unknown one is a ``ValueError`` that lists the valid ones.

    Returns:
        :class:`Explanations`, one per image that could be read, in input order; unreadable
        files are in ``.failures``.
    """
    out = Explanations()
    for rec in explain_stream(inputs, model, method, resolution=resolution, target=target, seed=seed, device=device,
                              evaluate=evaluate, images_per_batch=images_per_batch, resize=resize, progress=progress,
                              **options):
        if isinstance(rec, Failure):
            out.failures.append(ImageLoadError(rec.name, rec.error))
        else:
            out.append(rec)
    return out


def explain_stream(
    inputs: str | os.PathLike | Sequence[str | os.PathLike] | Tensor,
    model: str | ModelPreset = "efficientnet-lite0",
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
    **options: Any,
) -> Iterator[Explanation | Failure]:
    """:func:`explain` as a stream: each :class:`Explanation` as soon as its batch is done, and a
    :class:`~igos.pipeline.Failure` for each unreadable file. Arguments and checks as :func:`explain`;
    they are checked before the first image is read.

    ``model_options``: keyword arguments of :func:`~igos.models.load_model` (``weights``, ``dtype``, …)
    when ``model`` is a name. ``ray``: an :class:`igos.distributed.RayOptions` runs the batches on Ray
    workers, which load the model by name themselves (``model`` must then be a name); records arrive
    in the order their batches finish."""
    task = Task.make(method, resolution, options, seed=seed, evaluate=evaluate)
    items = _items(inputs, target)
    model_options = dict(model_options or {})
    if ray is not None:
        return _on_ray(items, model, task, images_per_batch, resize, device, model_options, ray, progress)
    preset = resolve_model(load_model(model, **model_options) if isinstance(model, str) else model, device)
    done = 0

    def tick(n: int) -> None:
        nonlocal done
        done += n
        if progress is not None:
            progress(done, len(items))

    return run(items, preset, [task], images_per_batch=images_per_batch, resize=resize, progress=tick)


def _on_ray(items: list[Item], model: Any, task: Task, images_per_batch: int, resize: str | None, device: Any,
            model_options: dict[str, Any], ray: Any, progress: Callable[[int, int], None] | None
            ) -> Iterator[Explanation | Failure]:
    from .distributed import make_units, ray_stream

    if not isinstance(model, str):
        raise TypeError("with ray, give the model by name (Ray workers load it themselves), not a ModelPreset")
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
    images: Tensor | str | os.PathLike,
    saliency: Tensor,
    model: str | ModelPreset = "efficientnet-lite0",
    target: int | Sequence[int] | Tensor | None = None,
    *,
    device: str | torch.device | None = None,
    batch_size: int = 32,
) -> Scores:
    """Deletion (lower is better) and insertion (higher is better) of saliency maps.

    ``images``: ``[B, 3, H, W]`` in ``[0, 1]`` or one image file; ``saliency``: ``[B, h, w]``.
    """
    preset = resolve_model(model, device)
    if not isinstance(images, Tensor):
        images = load_image(Path(images), preset.input_size, preset.resize, crop_fraction=preset.crop_fraction,
                            interpolation=preset.interpolation).unsqueeze(0)
    images = check_images(images).to(preset.device)
    return deletion_insertion(preset.model, images, torch.as_tensor(saliency), target, batch_size=batch_size)

