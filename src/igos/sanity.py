"""Model-randomisation sanity checks (Adebayo et al., NeurIPS 2018): a map that explains the model must change
when the model's weights are replaced by random ones.

* **Cascading**: the parameter blocks are randomised from the output down, one more at each step; each step's
  maps are compared with the original model's. For EfficientNet(-Lite) the blocks are the head (``_conv_head``,
  ``_bn1``, ``_fc``), then ``_blocks`` from the last to the first, then the stem (``_conv_stem``, ``_bn0``); for
  any other network its top-level children that hold parameters, from the last registered to the first (one
  block, ``network``, where the network holds its parameters itself).
* **Independent**: one block at a time, the others left trained.
* **Random logit**: the original model, a random other class (seeded) explained instead of the target.

Randomising a block draws every parameter in it from ``N(0, σ²)``, ``σ`` that parameter's own standard
deviation in the trained model (0.01 where it is constant), seeded; buffers (BatchNorm's running statistics)
are kept. The model the user gave is never touched: the checks run on a copy.

Similarity of a photo's map to the original map: Spearman's rank correlation of the absolute values and of the
signed values (SciPy, over the map's cells), and the SSIM and the Pearson correlation of HOG features
(scikit-image) of the maps normalised to [0, 1] (absolute values over their maximum) and upsampled bilinearly to
the input's size. A map that comes out constant is counted as its own outcome (``constant``) and never scored.
Needs ``pip install "igos[sanity]"`` (SciPy, scikit-image).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .core import frozen
from .errors import MissingDependencyError
from .methods import get_method
from .methods.layers import wrapped
from .outputs import logits_of

__all__ = ["parameter_blocks", "randomised", "similarity", "sanity_check", "SanityResult", "MEASURES",
           "merge_summaries"]

MEASURES = ("spearman_abs", "spearman", "ssim", "hog")


def parameter_blocks(model: nn.Module) -> list[tuple[str, list[nn.Module]]]:
    """The blocks randomised by the checks, from the output down: ``(name, modules)``."""
    net = wrapped(model)[-1]  # the network inside its wrappers
    if hasattr(net, "_blocks") and hasattr(net, "_conv_stem") and hasattr(net, "_fc"):  # EfficientNet(-Lite)
        head = [m for m in (getattr(net, "_conv_head", None), getattr(net, "_bn1", None), net._fc) if m is not None]
        blocks = [(f"blocks.{i}", [b]) for i, b in reversed(list(enumerate(net._blocks)))]
        stem = [m for m in (net._conv_stem, getattr(net, "_bn0", None)) if m is not None]
        return [("head", head), *blocks, ("stem", stem)]
    children = [(name, [m]) for name, m in net.named_children() if any(True for _ in m.parameters())]
    if not children:  # parameters held by the network itself: one block
        if not any(True for _ in net.parameters()):
            raise ValueError("the model has no parameters to randomise")
        return [("network", [net])]
    return list(reversed(children))


def _randomise(modules: Sequence[nn.Module], generator: torch.Generator) -> None:
    with torch.no_grad():
        for module in modules:
            for p in module.parameters():
                std = float(p.detach().float().std()) if p.numel() > 1 else 0.0
                std = std if std > 0 else 0.01
                p.copy_(torch.randn(p.shape, generator=generator, dtype=torch.float32).to(p) * std)


def randomised(model: nn.Module, names: Sequence[str], seed: int = 0) -> nn.Module:
    """A copy of ``model`` with the blocks ``names`` (of :func:`parameter_blocks`) randomised; the model is kept.
    The ``k``-th block named draws from seed ``seed · 1000 + k``."""
    copied = copy.deepcopy(model)
    for _ in _cascade(copied, names, seed):
        pass
    return copied


def _cascade(model: nn.Module, names: Sequence[str], seed: int) -> Iterator[str]:
    """Randomises the blocks ``names`` of ``model`` in place, one at a time, yielding each block's name after it."""
    blocks = dict(parameter_blocks(model))
    unknown = [n for n in names if n not in blocks]
    if unknown:
        raise ValueError(f"unknown block(s) {unknown}; the model's are {', '.join(blocks)}")
    for k, name in enumerate(names):
        _randomise(blocks[name], torch.Generator().manual_seed(seed * 1000 + k))
        yield name


def _libraries() -> tuple[Any, Any, Any]:
    try:
        from scipy.stats import spearmanr
        from skimage.feature import hog
        from skimage.metrics import structural_similarity
    except ImportError as exc:
        raise MissingDependencyError("the sanity checks use SciPy and scikit-image: pip install 'igos[sanity]'") \
            from exc
    return spearmanr, structural_similarity, hog


def constant(saliency: Tensor) -> bool:
    s = saliency.detach().double()
    return bool((s.max() - s.min()).abs() <= 1e-12 * max(1.0, float(s.abs().max())))


def similarity(a: Tensor, b: Tensor, size: tuple[int, int]) -> dict[str, float]:
    """The four measures (``MEASURES``) between two maps ``[h, w]`` of one photo (see the module docstring)."""
    spearmanr, ssim, hog = _libraries()
    x, y = a.detach().double().cpu(), b.detach().double().cpu()
    out = {"spearman_abs": float(spearmanr(x.abs().flatten(), y.abs().flatten())[0]),
           "spearman": float(spearmanr(x.flatten(), y.flatten())[0])}

    def image(m: Tensor) -> np.ndarray:
        m = m.abs() / m.abs().max().clamp_min(1e-12)
        return F.interpolate(m[None, None], size=size, mode="bilinear", align_corners=False)[0, 0].numpy()

    u, v = image(x), image(y)
    out["ssim"] = float(ssim(u, v, data_range=1.0))
    hu, hv = (hog(m, pixels_per_cell=(16, 16), cells_per_block=(2, 2)) for m in (u, v))
    out["hog"] = float(np.corrcoef(hu, hv)[0, 1]) if hu.std() > 0 and hv.std() > 0 else float("nan")
    return out


@dataclass
class SanityResult:
    """The checks of one method on some photos: per step its name, mode, mean similarities (over the photos whose
    map was not constant), the per-photo values and how many maps came out constant."""

    method: str
    resolution: Any
    photos: list[str]
    steps: list[dict[str, Any]] = field(default_factory=list)
    random_logit: dict[str, Any] = field(default_factory=dict)
    maps: dict[str, Tensor] = field(default_factory=dict)  # step name -> [B, h, w] (cascading, for the figure)

    def summary(self) -> dict[str, Any]:
        return {"method": self.method, "resolution": self.resolution, "photos": self.photos, "steps": self.steps,
                "random_logit": self.random_logit}


def _means(per_photo: dict[str, list[float | None]]) -> dict[str, float | None]:
    """Each measure's mean over the photos that were scored (``None`` where none was)."""
    return {m: (float(np.nanmean([v for v in vals if v is not None])) if any(v is not None for v in vals) else None)
            for m, vals in per_photo.items()}


def _step(name: str, mode: str, maps: Tensor, original: Tensor, size: tuple[int, int]) -> dict[str, Any]:
    per_photo: dict[str, list[float | None]] = {m: [] for m in MEASURES}
    flat = []
    for i in range(maps.shape[0]):
        if constant(maps[i]) or constant(original[i]):
            flat.append(i)
            for m in MEASURES:
                per_photo[m].append(None)
            continue
        for m, v in similarity(maps[i], original[i], size).items():
            per_photo[m].append(v)
    return {"randomised": name, "mode": mode, **_means(per_photo), "constant": len(flat), "per_photo": per_photo}


def _merged_step(parts: Sequence[dict[str, Any]]) -> dict[str, Any]:
    per_photo = {m: [v for part in parts for v in part["per_photo"][m]] for m in MEASURES}
    lists = {k: [v for part in parts for v in part[k]] for k in ("classes", "original_classes")
             if all(k in part for part in parts)}  # the random-logit check's classes
    return {"randomised": parts[0]["randomised"], "mode": parts[0]["mode"], **_means(per_photo),
            "constant": sum(part["constant"] for part in parts), "per_photo": per_photo, **lists}


def merge_summaries(summaries: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """One ``sanity.json`` document from several runs of the same method, resolution and model on different photos
    (a long check split into sittings): photos and per-photo values concatenated, means and constant counts taken
    over all of them. The randomised weights depend on the seed only, so the merged steps are the steps one run on
    every photo would have measured (the random-logit check's other classes are drawn per run). Raises
    ``ValueError`` when the runs differ in method, resolution or steps."""
    if not summaries:
        raise ValueError("nothing to merge: no sanity summary given")
    first = summaries[0]
    for other in summaries[1:]:
        for key in ("method", "resolution"):
            if other[key] != first[key]:
                raise ValueError(f"cannot merge sanity runs of different {key}s: {first[key]!r} and {other[key]!r}")
        steps = [(st["randomised"], st["mode"]) for st in other["steps"]]
        if steps != [(st["randomised"], st["mode"]) for st in first["steps"]]:
            raise ValueError("cannot merge sanity runs with different steps (another model or other modes)")
    merged = {"method": first["method"], "resolution": first["resolution"],
              "photos": [p for doc in summaries for p in doc["photos"]],
              "steps": [_merged_step([doc["steps"][i] for doc in summaries]) for i in range(len(first["steps"]))]}
    if all(doc.get("random_logit") for doc in summaries):
        merged["random_logit"] = _merged_step([doc["random_logit"] for doc in summaries])
    return merged


def sanity_check(model: nn.Module, images: Tensor, method: str, *, resolution: Any = None, target: Any = None,
                 seed: int = 0, modes: Sequence[str] = ("cascading", "independent"),
                 progress: Callable[[str], None] | None = None, names: Sequence[str] | None = None,
                 **options: Any) -> SanityResult:
    """Cascading and independent randomisation checks and the random-logit check of ``method`` on ``images``
    ``[B, 3, H, W]`` (see the module docstring); ``options``: the method's."""
    _libraries()
    spec = get_method(method)
    size = tuple(images.shape[-2:])
    blocks = [n for n, _ in parameter_blocks(model)]

    def explain(m: nn.Module, t: Any = target) -> Tensor:
        return spec(m, images, t, resolution=resolution, seed=seed, **options).saliency.detach().cpu()

    first = spec(model, images, target, resolution=resolution, seed=seed, **options)
    original = first.saliency.detach().cpu()
    # a method with its own map size ignores ``resolution``: the record says so (None: native) instead of the side asked
    recorded = resolution if spec.resolutions == "any" else None
    result = SanityResult(method, recorded, list(names or [str(i) for i in range(len(images))]))
    result.maps["original"] = original
    if "cascading" in modes:  # one copy, one more block random at each step (as randomised(model, blocks[:k+1]))
        cascade = copy.deepcopy(model)
        for name in _cascade(cascade, blocks, seed):
            if progress:
                progress(f"cascading: {name}")
            maps = explain(cascade)
            result.maps[name] = maps
            result.steps.append(_step(name, "cascading", maps, original, size))
    if "independent" in modes:
        for name in blocks:
            if progress:
                progress(f"independent: {name}")
            result.steps.append(_step(name, "independent", explain(randomised(model, [name], seed)), original, size))
    classes = first.target.cpu()
    with torch.no_grad(), frozen(model):
        n_classes = int(logits_of(model(images[:1])).shape[-1])
    g = torch.Generator().manual_seed(seed)
    other = (classes + torch.randint(1, max(2, n_classes), classes.shape, generator=g)) % n_classes
    step = _step("random logit", "random-logit", explain(model, other.to(images.device).tolist()), original, size)
    step["classes"], step["original_classes"] = other.tolist(), classes.tolist()
    result.random_logit = step
    return result
