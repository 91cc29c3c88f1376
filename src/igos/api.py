"""The high-level API: ``explain`` files or tensors with any method, ``evaluate`` any saliency."""

from __future__ import annotations

import inspect
import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from .images import ImageLoadError, find_images, load_image
from .methods import get_method
from .methods.common import NonFiniteOutputError, check_images
from .metrics import DIRECTIONS, Scores, deletion_insertion
from .models import ModelPreset, load_model
from .perturb import blurred_baseline

__all__ = ["Explanation", "Explanations", "explain", "evaluate", "resolve_model", "resolve_device", "preset_options"]


@dataclass
class Explanation:
    """One image's explanation.

    ``saliency`` is ``[h, w]`` (higher = more important) on the CPU; ``deletion`` (lower is
    better) and ``insertion`` (higher is better) are set when evaluated.
    """

    path: str | None
    image: Tensor
    saliency: Tensor
    target: int
    target_name: str
    probability: float
    method: str
    model: str
    resolution: tuple[int, int]
    settings: dict[str, Any]
    seconds: float
    forward_images: int
    backward_images: int
    mask: Tensor | None = None
    trace: dict[str, Any] | None = None
    deletion: float | None = None
    insertion: float | None = None
    curves: dict[str, list[float]] | None = None
    evaluation_seconds: float | None = None

    def summary(self) -> dict[str, Any]:
        """A JSON-ready record (no tensors)."""
        out = {
            "path": self.path,
            "model": self.model,
            "method": self.method,
            "resolution": list(self.resolution),
            "target": self.target,
            "target_name": self.target_name,
            "probability": self.probability,
            "settings": self.settings,
            "seconds": round(self.seconds, 4),
            "forward_images": self.forward_images,
            "backward_images": self.backward_images,
        }
        if self.trace is not None:
            out["iterations"] = self.trace.get("iterations")
            out["final_objective"] = self.trace.get("final_objective")
            if "stalled" in self.trace:
                out["stalled"] = self.trace["stalled"]
        if self.deletion is not None:
            out["deletion"] = {"auc": self.deletion, "direction": DIRECTIONS["deletion"]}
            out["insertion"] = {"auc": self.insertion, "direction": DIRECTIONS["insertion"]}
            out["evaluation_seconds"] = round(self.evaluation_seconds or 0.0, 4)
            out["curves"] = self.curves
        return out


class Explanations(list):
    """A list of :class:`Explanation` with the ``failures`` (``ImageLoadError`` …) of the run."""

    def __init__(self, items: Iterable[Explanation] = (), failures: Sequence[Exception] = ()):
        super().__init__(items)
        self.failures: list[Exception] = list(failures)


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


def preset_options(fn: Callable, preset: ModelPreset, options: dict[str, Any]) -> dict[str, Any]:
    """``options`` plus what the preset knows that the method asks for (GradCAM's ``layer``)."""
    if "layer" in inspect.signature(fn).parameters and "layer" not in options and preset.gradcam_layer:
        return {**options, "layer": preset.gradcam_layer}
    return options


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
    method: str = "igos",
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
        method: ``igos`` (default), or any name in ``igos.methods.METHODS``.
        resolution: heatmap side (methods with a fixed resolution ignore it).
        target: class per image, one class for all, or ``None`` (top-1).
        seed: seed of every random choice; the same seed gives the same heatmaps.
        device: ``"cpu"``, ``"cuda"``, … (default: CUDA when available).
        evaluate: also compute deletion (lower is better) and insertion (higher is better).
        images_per_batch: images explained together.
        resize: ``"squash"`` or ``"crop"`` (default: the preset's).
        progress: called with ``(done, total)`` after each batch.
        options: passed to the method (``iterations``, ``steps``, ``l1``, ``tv``, ``batch_size`` …).

    Returns:
        :class:`Explanations`, one per image that could be read, in input order; unreadable
        files are in ``.failures``.
    """
    preset = resolve_model(model, device)
    dev = preset.device
    fn = get_method(method)
    failures: list[Exception] = []
    if isinstance(inputs, Tensor):
        batch = check_images(inputs)
        items: list[tuple[str | None, Tensor | None]] = [(None, img) for img in batch]
    else:
        paths = [inputs] if isinstance(inputs, (str, os.PathLike)) else list(inputs)
        files = find_images(paths)
        if not files:
            raise ValueError(f"no image files found in {', '.join(map(str, paths))}")
        items = [(str(f), None) for f in files]
    targets = _targets_for(target, len(items))
    out = Explanations()
    done = 0
    for start in range(0, len(items), images_per_batch):
        chunk = items[start : start + images_per_batch]
        chunk_targets = targets[start : start + images_per_batch]
        imgs, paths_ok, tgts = [], [], []
        for (path, img), t in zip(chunk, chunk_targets):
            if img is None:
                try:
                    img = load_image(path, preset.input_size, resize or preset.resize)
                except ImageLoadError as exc:
                    failures.append(exc)
                    continue
            imgs.append(img)
            paths_ok.append(path)
            tgts.append(t)
        if imgs:
            out.extend(_explain_batch(preset, fn, method, torch.stack(imgs).to(dev), paths_ok, tgts,
                                      resolution, seed, evaluate, options))
        done += len(chunk)
        if progress is not None:
            progress(done, len(items))
    out.failures = failures
    return out


def _explain_batch(preset, fn, method, images, paths, targets, resolution, seed, evaluate, options):
    model = preset.model
    options = preset_options(fn, preset, options)
    if any(t is None for t in targets):
        with torch.no_grad():
            top1 = model(images).argmax(1)
        targets = [int(top1[i]) if t is None else t for i, t in enumerate(targets)]
    baseline = blurred_baseline(images)
    target_t = torch.tensor(targets, device=images.device)
    if images.device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    result = fn(model, images, target_t, baseline=baseline, resolution=resolution, seed=seed, **options)
    if images.device.type == "cuda":
        torch.cuda.synchronize()
    seconds = (time.perf_counter() - t0) / images.shape[0]
    with torch.no_grad():
        logits = model(images)
    if not torch.isfinite(logits).all():
        raise NonFiniteOutputError("the model returned NaN or infinite outputs")
    probs = logits.softmax(1).gather(1, target_t.view(-1, 1)).squeeze(1)
    scores: Scores | None = None
    eval_seconds = None
    if evaluate:
        t1 = time.perf_counter()
        scores = deletion_insertion(model, images, result.saliency, target_t, baseline=baseline)
        eval_seconds = (time.perf_counter() - t1) / images.shape[0]
    settings = {k: v for k, v in options.items() if isinstance(v, (int, float, str, bool, type(None)))}
    settings["seed"] = seed
    b = images.shape[0]
    explanations = []
    for i in range(b):
        sal = result.saliency[i].detach().float().cpu()
        trace = result.trace[i] if result.trace else None
        if trace is not None and "l1" in trace:
            settings = {**settings, "l1": trace["l1"], "tv": trace["tv"]}
        e = Explanation(
            path=paths[i],
            image=images[i].detach().cpu(),
            saliency=sal,
            target=int(targets[i]),
            target_name=preset.class_name(int(targets[i])),
            probability=float(probs[i]),
            method=method,
            model=preset.name,
            resolution=(int(sal.shape[0]), int(sal.shape[1])),
            settings=dict(settings),
            seconds=seconds,
            forward_images=result.forward_images // b,
            backward_images=result.backward_images // b,
            mask=None if result.mask is None else result.mask[i].detach().cpu(),
            trace=trace,
        )
        if scores is not None:
            e.deletion = float(scores.deletion[i])
            e.insertion = float(scores.insertion[i])
            e.curves = {
                "x": scores.x.tolist(),
                "deletion": scores.deletion_curve[i].tolist(),
                "insertion": scores.insertion_curve[i].tolist(),
            }
            e.evaluation_seconds = eval_seconds
        explanations.append(e)
    return explanations


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
        images = load_image(Path(images), preset.input_size, preset.resize).unsqueeze(0)
    images = check_images(images).to(preset.device)
    return deletion_insertion(preset.model, images, torch.as_tensor(saliency), target, batch_size=batch_size)

