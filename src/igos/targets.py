"""What to explain: any differentiable scalar per image computed from the model's output.

A :class:`Target` says what to score; bound to a batch of clean images (:func:`bind`) it becomes a :class:`Bound`:
per-image parameters checked against the model's output (a class in range, a box inside the photo, a mask of
the input's size, a label the detector outputs there), with ``score(output, rows)`` the scalar of each row's
image. Every method and metric receives the model wrapped with its bound target (:class:`Scored`) and the rows'
image indices, so that images repeated along a path or a line search keep their own target.

* :class:`Classes` – one class or a set (a set scores the sum of its probabilities), with ``score`` one of
  ``softmax`` (default), ``log_softmax``, ``logit``, ``sigmoid`` (multi-label heads) or ``raw`` (regression,
  single outputs: the output itself).
* :class:`Region` – a segmentation model's mean probability of class ``cls`` over a region of its output
  (upsampled bilinearly to the input when smaller); by default where the clean photo is predicted as ``cls``.
* :class:`Box` – a detector's box in torchvision's convention: the maximum over detections with the label of
  IoU × score (D-RISE's similarity without the class-vector term).
* :class:`Score` – any callable ``f(output) -> Tensor[N]``.

``None`` is the top-1 class of the clean photo (:class:`TopClass`); an int or a sequence of ints one class for
all or one per image, as always; a list of targets one per image, of any kinds.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .errors import TargetError, UnsupportedTargetError
from .outputs import check_finite, describe_output, is_detection, logits_of, model_output, output_rows, take

__all__ = ["Target", "Classes", "TopClass", "Region", "Box", "Score", "Bound", "Scored", "Geometry", "bind",
           "bind_targets", "as_targets", "target_labels", "SCORES", "KINDS"]

#: how a class target is scored from the logits ``z``
SCORES = ("softmax", "log_softmax", "logit", "sigmoid", "raw")
#: what a method asks of a bound target: its score (``probability``: the target's scalar, a probability for
#: softmax, sigmoid, region and box targets), its log-odds (probability-valued targets only) or its
#: pre-normalisation ``logit`` (GradCAM's: a class's logit, a region's mean logit; a box's or callable's score)
KINDS = ("probability", "log-odds", "logit")


@dataclass(frozen=True)
class Geometry:
    """How a photo became the model's input: ``scale`` (x, y) then ``offset`` (left, top) cropped off, from a
    ``photo`` of (width, height) pixels to an ``input`` of (width, height). Coordinates given in the photo's pixels
    (boxes, mask files) are mapped with it."""

    photo: tuple[int, int]
    input: tuple[int, int]
    scale: tuple[float, float] = (1.0, 1.0)
    offset: tuple[int, int] = (0, 0)

    def box(self, xyxy: Sequence[float]) -> list[float]:
        (sx, sy), (ox, oy) = self.scale, self.offset
        x1, y1, x2, y2 = (float(v) for v in xyxy)
        return [x1 * sx - ox, y1 * sy - oy, x2 * sx - ox, y2 * sy - oy]


class Target:
    """Base of every target kind: a differentiable scalar per image from the model's output."""

    kind: ClassVar[str] = "target"
    #: given in the photo's pixels (a box, a mask file): mapped to the input's by :meth:`in_input`
    in_photo_pixels: ClassVar[bool] = False

    def group(self) -> tuple:
        """Targets of one group bind together: one vectorised :class:`Bound`, made by ``group()[0].bind_all``."""
        return (type(self), getattr(self, "score", None))

    def in_input(self, geometry: Geometry | None, where: str) -> Target:
        """This target in the input's pixels (boxes and mask files are given in the photo's)."""
        return self

    @classmethod
    def bind_all(cls, targets: list[Any], clean: _Clean, images: Tensor) -> Bound:  # pragma: no cover
        raise NotImplementedError

    def describe(self) -> dict[str, Any]:  # pragma: no cover
        raise NotImplementedError


class Bound:
    """A target bound to ``n`` images: ``score(output, rows, kind)`` is ``[N]``, the scalar of each output row for
    the image ``rows[k]`` (an index into the ``n`` images)."""

    n: int
    kind: str = "target"
    #: the score lies in [0, 1] (log-odds are defined)
    probability_valued: bool = False
    #: Excitation Backprop can start from it (:meth:`units`)
    has_units: bool = False

    def score(self, output: Any, rows: Tensor, kind: str = "probability") -> Tensor:  # pragma: no cover
        raise NotImplementedError

    def units(self, output: Any, rows: Tensor) -> Tensor:
        """Excitation Backprop's top-down start: a distribution over the output units, like ``output``."""
        raise UnsupportedTargetError(
            f"Excitation Backprop starts its top-down signal at output units of a classifier; a {self.kind} target "
            "is not a set of output units. Explain it with igos, igospp, mask, rise, ig, gradient or gradcam")

    def select(self, idx: Tensor | Sequence[int]) -> Bound:  # pragma: no cover
        raise NotImplementedError

    def labels(self) -> list[int | None]:
        """Per image, the class the target is about (``None`` for a set or a callable)."""
        return [None] * self.n

    def describe(self, i: int) -> dict[str, Any]:  # pragma: no cover
        raise NotImplementedError

    def outline(self, i: int) -> tuple[str, Any] | None:
        """What an overlay draws for image ``i``: ``("box", [x1, y1, x2, y2])`` or ``("region", mask [H, W])``."""
        return None

    def _log_odds(self, s: Tensor) -> Tensor:
        if not self.probability_valued:
            raise UnsupportedTargetError(f"log-odds need a target whose score is a probability; the {self.kind} "
                                         "target's is not (use score='probability')")
        s = s.clamp(1e-12, 1 - 1e-12)
        return s.log() - (-s).log1p()


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise ValueError(f"score kind must be one of {', '.join(KINDS)}, got {kind!r}")


def _index(idx: Tensor | Sequence[int]) -> Tensor:
    return torch.as_tensor(idx, dtype=torch.long).flatten().cpu()


class _Clean:
    """The model's output on the clean images, computed once and only as far as needed."""

    def __init__(self, model: nn.Module, images: Tensor, batch_size: int, output: Any = None):
        self.model, self.images, self.batch_size = model, images, max(1, batch_size)
        self._first, self._all = None, output

    def first(self) -> Any:
        if self._all is not None:
            return take(self._all, torch.tensor([0]))
        if self._first is None:
            with torch.no_grad():
                self._first = check_finite(model_output(self.model(self.images[:1])))
        return self._first

    def all(self) -> Any:
        if self._all is None:
            start = 0 if self._first is None else 1
            with torch.no_grad():
                parts = [check_finite(model_output(self.model(self.images[i : i + self.batch_size])))
                         for i in range(start, self.images.shape[0], self.batch_size)]
            parts = ([self._first] if start else []) + parts
            first = parts[0]
            self._all = torch.cat(parts) if isinstance(first, Tensor) else [d for p in parts for d in p]
        return self._all


# -- classes ------------------------------------------------------------------------------------------------------

def _class_tuple(indices: Any) -> tuple[int, ...]:
    if isinstance(indices, (int, np.integer)) or (isinstance(indices, Tensor) and indices.numel() == 1):
        values = [int(indices)]
    else:
        try:
            values = [int(v) for v in indices]
        except (TypeError, ValueError):
            raise TargetError(f"classes must be an int or a sequence of ints, got {indices!r}") from None
    if not values:
        raise TargetError("an empty set of classes: give at least one class")
    return tuple(sorted(set(values)))


def _check_score(score: str) -> None:
    if score not in SCORES:
        raise TargetError(f"score must be one of {', '.join(SCORES)}, got {score!r}")


@dataclass(frozen=True)
class Classes(Target):
    """One class or a set of classes (``Classes(range(151, 269))``: ImageNet's dogs). A set scores the sum of its
    classes' scores; ``score`` is how the logits ``z`` become a class's score: ``softmax`` (its probability,
    default), ``log_softmax``, ``logit``, ``sigmoid`` (a multi-label head's probability) or ``raw`` (``z`` itself:
    regression, single outputs)."""

    indices: Any
    score: str = "softmax"
    kind: ClassVar[str] = "classes"

    def __post_init__(self) -> None:
        object.__setattr__(self, "indices", _class_tuple(self.indices))
        _check_score(self.score)

    def describe(self) -> dict[str, Any]:
        return {"kind": "classes", "classes": list(self.indices), "score": self.score}

    @classmethod
    def bind_all(cls, targets: list[Any], clean: _Clean, images: Tensor) -> Bound:
        score = targets[0].score
        if any(isinstance(t, TopClass) for t in targets):
            z = logits_of(clean.all())
            sets = [(int(z[i].argmax()),) if isinstance(t, TopClass) else t.indices for i, t in enumerate(targets)]
        else:
            z = logits_of(clean.first())
            sets = [t.indices for t in targets]
        k = z.shape[1]
        if k == 1 and score in ("softmax", "log_softmax"):
            raise TargetError(f"the model has a single output: its {score} is constant; explain it with "
                              "score='raw' (regression) or 'sigmoid' (a binary logit)")
        for i, s in enumerate(sets):
            bad = [c for c in s if not 0 <= c < k]
            if bad:
                raise TargetError(f"target class {bad[0]} (image {i}) is out of range: the model has {k} classes, "
                                  f"0..{k - 1}")
        return ClassesBound(sets, score, images.device, k)


@dataclass(frozen=True)
class TopClass(Target):
    """The top-1 class of each clean photo (the default target), scored by ``score`` as :class:`Classes`."""

    score: str = "softmax"
    kind: ClassVar[str] = "classes"

    def __post_init__(self) -> None:
        _check_score(self.score)

    def group(self) -> tuple:
        return (Classes, self.score)

    def describe(self) -> dict[str, Any]:
        return {"kind": "top1", "score": self.score}


class ClassesBound(Bound):
    kind = "classes"
    has_units = True

    def __init__(self, sets: list[tuple[int, ...]], score: str, device: torch.device, k: int):
        self.sets, self.score_name, self.device, self.k, self.n = list(sets), score, device, k, len(sets)
        self.single = all(len(s) == 1 for s in self.sets)
        self.probability_valued = score == "softmax" or (score == "sigmoid" and self.single)
        if self.single:
            self.classes = torch.tensor([s[0] for s in self.sets], device=device, dtype=torch.long)
        else:
            w = torch.zeros(self.n, k, device=device)
            for i, s in enumerate(self.sets):
                w[i, list(s)] = 1.0
            self.weights = w

    def select(self, idx: Tensor | Sequence[int]) -> ClassesBound:
        return ClassesBound([self.sets[int(i)] for i in _index(idx)], self.score_name, self.device, self.k)

    def labels(self) -> list[int | None]:
        return [s[0] if len(s) == 1 else None for s in self.sets]

    def describe(self, i: int) -> dict[str, Any]:
        return {"kind": "classes", "classes": list(self.sets[i]), "score": self.score_name}

    def _pick(self, values: Tensor, rows: Tensor) -> Tensor:
        if self.single:
            return values.gather(1, self.classes[rows].view(-1, 1)).squeeze(1)
        return (values * self.weights[rows]).sum(1)

    def score(self, output: Any, rows: Tensor, kind: str = "probability") -> Tensor:
        _check_kind(kind)
        z = logits_of(output)
        if kind == "logit" or self.score_name in ("logit", "raw"):
            return self._pick(z, rows)
        if kind == "log-odds":
            if self.score_name == "sigmoid" and self.single:
                return self._pick(z, rows)
            if self.score_name != "softmax":
                return self._log_odds(self._pick(torch.sigmoid(z), rows))
            if self.single:
                t = self.classes[rows].view(-1, 1)
                own = z.gather(1, t)
                others = z.scatter(1, t, float("-inf")).logsumexp(dim=1, keepdim=True)
                return (own - others).squeeze(1)
            inside = self.weights[rows] > 0
            return (z.masked_fill(~inside, float("-inf")).logsumexp(1)
                    - z.masked_fill(inside, float("-inf")).logsumexp(1))
        if self.score_name == "softmax":
            return self._pick(z.softmax(dim=1), rows)
        if self.score_name == "sigmoid":
            return self._pick(torch.sigmoid(z), rows)
        # log_softmax: the log of the set's probability
        if self.single:
            return self._pick(z.log_softmax(dim=1), rows)
        inside = self.weights[rows] > 0
        return z.masked_fill(~inside, float("-inf")).logsumexp(1) - z.logsumexp(1)

    def units(self, output: Any, rows: Tensor) -> Tensor:
        z = logits_of(output)
        if self.single:
            return torch.zeros_like(z).scatter_(1, self.classes[rows].view(-1, 1), 1.0)
        w = self.weights[rows].to(z.dtype)
        return w / w.sum(1, keepdim=True)


# -- segmentation regions -----------------------------------------------------------------------------------------

def _read_mask(path: Path, geometry: Geometry | None, where: str) -> Tensor:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            m = np.asarray(img.convert("L")) > 0
    except FileNotFoundError:
        raise TargetError(f"region mask {path}: no such file") from None
    except (UnidentifiedImageError, OSError) as exc:
        raise TargetError(f"region mask {path}: not an image Pillow can read ({exc})") from None
    if geometry is None:
        return torch.from_numpy(m.copy())
    w, h = geometry.photo
    if m.shape != (h, w):
        raise TargetError(f"region mask {path} is {m.shape[1]}x{m.shape[0]} pixels, the photo {where} is {w}x{h}: "
                          "give a mask at the photo's size")
    sx, sy = geometry.scale
    rw, rh = round(w * sx), round(h * sy)
    resized = Image.fromarray(m.astype(np.uint8) * 255).resize((rw, rh), Image.NEAREST)
    ox, oy = geometry.offset
    iw, ih = geometry.input
    return torch.from_numpy(np.asarray(resized)[oy : oy + ih, ox : ox + iw] > 0)


@dataclass(frozen=True)
class Region(Target):
    """A segmentation model's mean probability of class ``cls`` over a region: ``mask`` a ``[H, W]`` boolean
    tensor or array at the input's size, or an image file whose non-zero pixels are the region (at the photo's
    size, mapped as the photo is); ``None``: where the clean photo is predicted as ``cls``. The output
    ``[N, C, h, w]`` (a tensor, or a dict's ``out``) is turned into probabilities by ``score`` (``softmax`` over the
    classes, or ``sigmoid`` per class) and upsampled bilinearly to the input when smaller. ``cls`` ``None`` (with a
    mask): the class the clean photo's region is most predicted as."""

    cls: int | None
    mask: Any = None
    score: str = "softmax"
    kind: ClassVar[str] = "region"
    in_photo_pixels: ClassVar[bool] = True

    def __post_init__(self) -> None:
        if self.score not in ("softmax", "sigmoid"):
            raise TargetError(f"a region's score is softmax or sigmoid, got {self.score!r}")
        if isinstance(self.mask, (str, os.PathLike)):
            object.__setattr__(self, "mask", Path(self.mask))
        elif self.mask is not None:
            m = torch.as_tensor(np.asarray(self.mask) if not isinstance(self.mask, Tensor) else self.mask)
            if m.dim() != 2:
                raise TargetError(f"a region mask is [H, W], got shape {tuple(m.shape)}")
            object.__setattr__(self, "mask", m.bool().cpu())
        if self.cls is None and self.mask is None:
            raise TargetError("a region needs its class, its mask or both")
        if self.cls is not None:
            object.__setattr__(self, "cls", int(self.cls))

    def in_input(self, geometry: Geometry | None, where: str) -> Region:
        if isinstance(self.mask, Path):
            return Region(self.cls, _read_mask(self.mask, geometry, where), self.score)
        return self

    def describe(self) -> dict[str, Any]:
        mask = str(self.mask) if isinstance(self.mask, Path) else "predicted" if self.mask is None else "given"
        return {"kind": "region", "class": self.cls, "mask": mask, "score": self.score}

    @classmethod
    def bind_all(cls, targets: list[Any], clean: _Clean, images: Tensor) -> Bound:
        h, w = images.shape[-2:]
        needs_all = any(t.mask is None or t.cls is None for t in targets)
        out = clean.all() if needs_all else clean.first()
        if not (isinstance(out, Tensor) and out.dim() == 4):
            raise TargetError("a region target needs a segmentation output [N, C, h, w]; the model returned "
                              f"{describe_output(out)}")
        c = out.shape[1]
        masks, classes = [], []
        for i, t in enumerate(targets):
            if t.cls is None:
                m = _read_mask(t.mask, None, f"image {i}") if isinstance(t.mask, Path) else t.mask
                if tuple(m.shape) == (h, w) and m.any():
                    pred = _upsampled(out[i : i + 1], (h, w)).argmax(1)[0][m.to(out.device)]
                    t = Region(int(pred.bincount(minlength=c).argmax()), m, t.score)
            if t.cls is not None and not 0 <= t.cls < c:
                raise TargetError(f"region class {t.cls} (image {i}) is out of range: the model segments {c} "
                                  f"classes, 0..{c - 1}")
            if isinstance(t.mask, Path):
                m = _read_mask(t.mask, None, f"image {i}")
            elif t.mask is None:
                pred = _upsampled(out[i : i + 1], (h, w)).argmax(1)[0]
                m = pred == t.cls
                if not m.any():
                    raise TargetError(f"the model predicts class {t.cls} nowhere on image {i}: give the region's mask")
            else:
                m = t.mask
            if tuple(m.shape) != (h, w):
                raise TargetError(f"region mask of image {i} is {m.shape[1]}x{m.shape[0]}, the input {w}x{h}: give it "
                                  "at the input's size (a mask file at the photo's size)")
            if not m.any():
                raise TargetError(f"region mask of image {i} is empty: it selects no pixel")
            masks.append(m.to(images.device))
            classes.append(t.cls)
        return RegionBound(torch.stack(masks), classes, targets[0].score,
                           ["given" if t.mask is not None else "predicted" for t in targets])


def _upsampled(values: Tensor, size: tuple[int, int]) -> Tensor:
    if tuple(values.shape[-2:]) == tuple(size):
        return values
    return F.interpolate(values, size=size, mode="bilinear", align_corners=False)


class RegionBound(Bound):
    kind = "region"
    probability_valued = True

    def __init__(self, masks: Tensor, classes: list[int], score: str, origins: list[str]):
        self.masks, self.cls, self.score_name, self.origins = masks, list(classes), score, list(origins)
        self.n = len(self.cls)
        self.weights = masks.float() / masks.float().sum((1, 2), keepdim=True)
        self.classes = torch.tensor(self.cls, device=masks.device)

    def select(self, idx: Tensor | Sequence[int]) -> RegionBound:
        i = _index(idx)
        return RegionBound(self.masks[i.to(self.masks.device)], [self.cls[int(j)] for j in i], self.score_name,
                           [self.origins[int(j)] for j in i])

    def labels(self) -> list[int | None]:
        return list(self.cls)

    def describe(self, i: int) -> dict[str, Any]:
        return {"kind": "region", "class": self.cls[i], "pixels": int(self.masks[i].sum()), "mask": self.origins[i],
                "score": self.score_name}

    def outline(self, i: int) -> tuple[str, Any]:
        return "region", self.masks[i].cpu()

    def score(self, output: Any, rows: Tensor, kind: str = "probability") -> Tensor:
        _check_kind(kind)
        out = model_output(output)
        if not (isinstance(out, Tensor) and out.dim() == 4):
            raise TargetError("a region target needs a segmentation output [N, C, h, w]")
        t = self.classes[rows].view(-1, 1, 1, 1).expand(-1, 1, *out.shape[-2:])
        if kind == "logit":
            values = out.gather(1, t)
        else:
            values = (out.softmax(1) if self.score_name == "softmax" else torch.sigmoid(out)).gather(1, t)
        s = (_upsampled(values, tuple(self.masks.shape[-2:]))[:, 0] * self.weights[rows]).sum((1, 2))
        return self._log_odds(s) if kind == "log-odds" else s


# -- detected boxes -----------------------------------------------------------------------------------------------

def box_iou(boxes: Tensor, box: Tensor) -> Tensor:
    """IoU of ``boxes`` ``[K, 4]`` with one ``box`` ``[4]`` (x1, y1, x2, y2): ``[K]``."""
    lt = torch.maximum(boxes[:, :2], box[:2])
    rb = torch.minimum(boxes[:, 2:], box[2:])
    inter = (rb - lt).clamp(min=0).prod(1)
    area = (boxes[:, 2:] - boxes[:, :2]).clamp(min=0).prod(1)
    own = (box[2:] - box[:2]).prod()
    return inter / (area + own - inter).clamp(min=1e-12)


@dataclass(frozen=True)
class Box(Target):
    """A detector's box ``xyxy`` (x1, y1, x2, y2 in the photo's pixels; for a tensor, the input's) and ``label``;
    its score on an output is the maximum over detections with that label of IoU × score (0 when there is none).
    ``label`` ``None``: the label of the clean photo's detection that matches the box best."""

    xyxy: Any
    label: int | None = None
    kind: ClassVar[str] = "box"
    in_photo_pixels: ClassVar[bool] = True

    def __post_init__(self) -> None:
        try:
            box = [float(v) for v in (self.xyxy.tolist() if isinstance(self.xyxy, Tensor) else self.xyxy)]
        except (TypeError, ValueError):
            raise TargetError(f"a box is four numbers x1, y1, x2, y2, got {self.xyxy!r}") from None
        if len(box) != 4 or not all(np.isfinite(box)):
            raise TargetError(f"a box is four finite numbers x1, y1, x2, y2, got {self.xyxy!r}")
        if box[2] <= box[0] or box[3] <= box[1]:
            raise TargetError(f"box {box} is empty: x2 must exceed x1 and y2 exceed y1")
        object.__setattr__(self, "xyxy", tuple(box))
        if self.label is not None:
            object.__setattr__(self, "label", int(self.label))

    def group(self) -> tuple:
        return (Box, None)

    def in_input(self, geometry: Geometry | None, where: str) -> Box:
        if geometry is None:
            return self
        w, h = geometry.photo
        x1, y1, x2, y2 = self.xyxy
        if x1 < 0 or y1 < 0 or x2 > w or y2 > h:
            raise TargetError(f"box {list(self.xyxy)} lies outside the photo {where} ({w}x{h} pixels)")
        return Box(geometry.box(self.xyxy), self.label)

    def describe(self) -> dict[str, Any]:
        return {"kind": "box", "box": [round(v, 2) for v in self.xyxy], "label": self.label}

    @classmethod
    def bind_all(cls, targets: list[Any], clean: _Clean, images: Tensor) -> Bound:
        h, w = images.shape[-2:]
        out = clean.all()
        if not is_detection(out):
            raise TargetError("a box target needs a detector's output (a list of dicts with 'boxes', 'labels' and "
                              f"'scores'); the model returned {type(out).__name__}")
        labels = []
        for i, t in enumerate(targets):
            x1, y1, x2, y2 = t.xyxy
            if x1 < -0.5 or y1 < -0.5 or x2 > w + 0.5 or y2 > h + 0.5:
                raise TargetError(f"box {[round(v, 1) for v in t.xyxy]} (image {i}) lies outside the input "
                                  f"({w}x{h} pixels)")
            d = out[i]
            found = sorted({int(v) for v in d["labels"].tolist()})
            if t.label is None:
                s = box_iou(d["boxes"].float(), torch.tensor(t.xyxy, device=d["boxes"].device)) * d["scores"]
                if s.numel() == 0 or float(s.max()) <= 0:
                    raise TargetError(f"no detection on image {i} overlaps box {list(t.xyxy)}: give its label "
                                      "(box=X1,Y1,X2,Y2@LABEL)")
                labels.append(int(d["labels"][s.argmax()]))
            elif t.label not in found:
                raise TargetError(f"the detector outputs no detection labelled {t.label} on image {i} (labels it "
                                  f"outputs there: {found or 'none'}); a box can only be scored by its detections")
            else:
                labels.append(t.label)
        boxes = torch.tensor([t.xyxy for t in targets], device=images.device, dtype=torch.float32)
        return BoxBound(boxes, labels, (int(h), int(w)))


class BoxBound(Bound):
    kind = "box"
    probability_valued = True

    def __init__(self, boxes: Tensor, labels: list[int], input_size: tuple[int, int]):
        self.boxes, self.label_list, self.n, self.input_size = boxes, list(labels), len(labels), input_size

    def select(self, idx: Tensor | Sequence[int]) -> BoxBound:
        i = _index(idx)
        return BoxBound(self.boxes[i.to(self.boxes.device)], [self.label_list[int(j)] for j in i], self.input_size)

    def labels(self) -> list[int | None]:
        return list(self.label_list)

    def describe(self, i: int) -> dict[str, Any]:
        return {"kind": "box", "box": [round(float(v), 2) for v in self.boxes[i]], "label": self.label_list[i],
                "input": list(self.input_size)}

    def outline(self, i: int) -> tuple[str, Any]:
        return "box", [float(v) for v in self.boxes[i]]

    def score(self, output: Any, rows: Tensor, kind: str = "probability") -> Tensor:
        _check_kind(kind)
        out = model_output(output)
        if not is_detection(out):
            raise TargetError("a box target needs a detector's output (a list of dicts with 'boxes', 'labels', "
                              "'scores')")
        values = []
        for d, r in zip(out, rows.tolist()):
            scores = d["scores"]
            keep = d["labels"] == self.label_list[r]
            zero = scores.sum() * 0.0  # 0, in the graph where the detections are
            s = box_iou(d["boxes"][keep].to(self.boxes.dtype), self.boxes[r].to(d["boxes"].device)) * scores[keep]
            values.append(torch.cat([s, zero.view(1)]).max())
        s = torch.stack(values)
        return self._log_odds(s) if kind == "log-odds" else s


# -- any callable -------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Score(Target):
    """Any callable ``fn(output) -> Tensor[N]``: one differentiable scalar per row of the model's output (the
    output as :func:`igos.outputs.model_output` gives it). ``probability``: its values lie in [0, 1] (so log-odds
    are defined). For per-image parameters, give one target per image."""

    fn: Callable[[Any], Tensor]
    name: str = ""
    probability: bool = False
    kind: ClassVar[str] = "score"

    def __post_init__(self) -> None:
        if not callable(self.fn):
            raise TargetError(f"a score target needs a callable, got {type(self.fn).__name__}")

    def group(self) -> tuple:
        return (Score, id(self.fn))

    def describe(self) -> dict[str, Any]:
        return {"kind": "score", "name": self.name or getattr(self.fn, "__name__", "callable")}

    @classmethod
    def bind_all(cls, targets: list[Any], clean: _Clean, images: Tensor) -> Bound:
        bound = ScoreBound(targets[0], len(targets))
        out = clean.first()
        s = bound.score(out, torch.zeros(1, dtype=torch.long))
        if not torch.isfinite(s).all():
            raise TargetError(f"the score {targets[0].describe()['name']!r} is not finite on image 0")
        return bound


class ScoreBound(Bound):
    kind = "score"

    def __init__(self, target: Score, n: int):
        self.target, self.n, self.probability_valued = target, n, target.probability

    def select(self, idx: Tensor | Sequence[int]) -> ScoreBound:
        return ScoreBound(self.target, len(_index(idx)))

    def describe(self, i: int) -> dict[str, Any]:
        return self.target.describe()

    def score(self, output: Any, rows: Tensor, kind: str = "probability") -> Tensor:
        _check_kind(kind)
        s = self.target.fn(model_output(output))
        n = output_rows(model_output(output))
        if not isinstance(s, Tensor) or s.shape != (n,):
            shape = tuple(s.shape) if isinstance(s, Tensor) else type(s).__name__
            raise TargetError(f"the score {self.target.describe()['name']!r} must return a tensor [N] (one scalar "
                              f"per output row, N = {n}), got {shape}")
        return self._log_odds(s) if kind == "log-odds" else s


# -- one target per image, of any kinds ----------------------------------------------------------------------------

class EachBound(Bound):
    """Per image its own bound (targets of different kinds in one batch): rows are scored image by image."""

    kind = "mixed"

    def __init__(self, bounds: list[Bound]):
        self.bounds, self.n = list(bounds), len(bounds)
        self.probability_valued = all(b.probability_valued for b in self.bounds)
        self.has_units = all(b.has_units for b in self.bounds)

    def select(self, idx: Tensor | Sequence[int]) -> EachBound:
        return EachBound([self.bounds[int(i)] for i in _index(idx)])

    def labels(self) -> list[int | None]:
        return [b.labels()[0] for b in self.bounds]

    def describe(self, i: int) -> dict[str, Any]:
        return self.bounds[i].describe(0)

    def outline(self, i: int) -> tuple[str, Any] | None:
        return self.bounds[i].outline(0)

    def _each(self, output: Any, rows: Tensor, fn: str, kind: str | None = None) -> list[tuple[Tensor, Tensor]]:
        out = model_output(output)
        parts = []
        for j in rows.unique().tolist():
            pos = (rows == j).nonzero().flatten()
            sub = take(out, pos)
            zeros = torch.zeros(len(pos), dtype=torch.long, device=rows.device)
            b = self.bounds[j]
            parts.append((pos, b.score(sub, zeros, kind) if fn == "score" else b.units(sub, zeros)))
        return parts

    def score(self, output: Any, rows: Tensor, kind: str = "probability") -> Tensor:
        parts = self._each(output, rows, "score", kind)
        s = torch.empty(len(rows), dtype=parts[0][1].dtype, device=parts[0][1].device)
        return s.index_put((torch.cat([p for p, _ in parts]).to(s.device),), torch.cat([v for _, v in parts]))

    def units(self, output: Any, rows: Tensor) -> Tensor:
        parts = self._each(output, rows, "units")
        out = torch.zeros_like(logits_of(output))
        for pos, u in parts:
            out[pos.to(out.device)] = u
        return out


# -- binding ------------------------------------------------------------------------------------------------------

def as_targets(target: Any, n: int) -> list[Target]:
    """One :class:`Target` per image from what a user gives: ``None`` (top-1), a class, a sequence of classes (one
    per image), a ``[n]`` tensor of classes, a target (for all), a callable (a :class:`Score`), or a list of
    targets and classes (one per image)."""
    if target is None:
        return [TopClass()] * n
    if isinstance(target, Target):
        return [target] * n
    if isinstance(target, (int, np.integer)):
        return [Classes(int(target))] * n
    if isinstance(target, Tensor):
        t = target.flatten()
        if t.is_floating_point():
            raise TargetError(f"class targets must be integers, got a {t.dtype} tensor")
        target = [int(v) for v in t] if t.numel() > 1 else int(t)
        if isinstance(target, int):
            return [Classes(target)] * n
    elif callable(target):
        return [Score(target)] * n
    if isinstance(target, (str, bytes)) or not isinstance(target, Sequence):
        raise TargetError(f"a target is a class, a sequence of classes (one per image), a Target or a callable, got "
                          f"{type(target).__name__}")
    if len(target) != n:
        raise TargetError(f"got {len(target)} targets for {n} images; give one per image or one for all")
    out = []
    for t in target:
        if t is None:
            out.append(TopClass())
        elif isinstance(t, Target):
            out.append(t)
        elif isinstance(t, (int, np.integer)) or (isinstance(t, Tensor) and t.numel() == 1):
            out.append(Classes(int(t)))
        else:
            raise TargetError(f"a per-image target is a class, None or a Target, got {t!r}")
    return out


def bind_targets(targets: list[Target], model: nn.Module, images: Tensor, batch_size: int = 32,
                 output: Any = None) -> Bound:
    """One :class:`Bound` for ``targets`` (one per image), checked against the model's output on the clean
    ``images`` (``output``, when the caller has it; else computed, only as far as the targets need)."""
    if len(targets) != images.shape[0]:
        raise TargetError(f"got {len(targets)} targets for {images.shape[0]} images")
    clean = _Clean(model, images, batch_size, output)
    groups = {t.group() for t in targets}
    if len(groups) == 1:
        return targets[0].group()[0].bind_all(targets, clean, images)
    out = clean.all()
    return EachBound([t.group()[0].bind_all([t], _Clean(model, images[i : i + 1], 1, take(out, torch.tensor([i]))),
                                            images[i : i + 1]) for i, t in enumerate(targets)])


def target_labels(bound: Bound, device: torch.device | str = "cpu") -> Tensor:
    """``[n]`` the class each image's target is about, ``-1`` where it has none (a set, a callable)."""
    return torch.tensor([-1 if v is None else v for v in bound.labels()], device=device, dtype=torch.long)


class Scored(nn.Module):
    """The model with its bound target: ``forward`` is the model's; ``score(images, rows, kind)`` the target's
    scalar for each image row (``rows``: the row's image among the bound ones)."""

    def __init__(self, model: nn.Module, bound: Bound):
        super().__init__()
        self.net = model
        self.bound = bound

    def forward(self, images: Tensor) -> Any:
        return self.net(images)

    def score_output(self, output: Any, rows: Tensor, kind: str = "probability") -> Tensor:
        return self.bound.score(check_finite(model_output(output)), rows, kind)

    def score(self, images: Tensor, rows: Tensor, kind: str = "probability") -> Tensor:
        return self.score_output(self.net(images), rows, kind)


def bind(model: nn.Module, images: Tensor, target: Any, batch_size: int = 32) -> tuple[Scored, Tensor]:
    """``model`` wrapped with ``target`` bound to ``images`` (a :class:`Bound` for exactly these images is taken
    as it is), and the rows ``0..B-1`` to score them with."""
    b = images.shape[0]
    if isinstance(model, Scored):
        model = model.net
    if isinstance(target, Bound):
        if target.n != b:
            raise TargetError(f"a target bound to {target.n} images was given for {b}")
        bound = target
    else:
        bound = bind_targets(as_targets(target, b), model, images, batch_size)
    return Scored(model, bound), torch.arange(b, device=images.device)
