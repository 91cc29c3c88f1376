"""The records a run produces: an :class:`Explanation` per image and method, a :class:`Failure` per image and
stage that produced none. Below the pipeline, the writers and the store, which all pass them on."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from torch import Tensor

from .metrics import DIRECTIONS, Scores

__all__ = ["Explanation", "Explanations", "Failure", "target_text"]


def target_text(name: str, target: int | None) -> str:
    """A target as lines and titles show it: ``tabby (281)``; a set's or callable's name alone (its class is -1)."""
    return name if target is None or target < 0 else f"{name} ({target})"


@dataclass(frozen=True)
class Failure:
    """An image that produced no record for a stage: ``load`` (unreadable file), ``model`` (the model failed on
    it), ``label`` (its label was out of range: explained for the top-1 class instead), ``target`` (its target
    does not fit it: a box outside the photo, a label its detector does not output there) or a task's label (the
    method or the metric failed). ``error`` says what went wrong; ``name`` is the image's path (``None`` for a
    tensor)."""

    name: str | None
    stage: str
    error: str
    model: str | None = None  # the model it happened on, where a run has several (the bench's store)

    def summary(self) -> dict[str, Any]:
        """A JSON-ready record."""
        return {"path": self.name, "stage": self.stage, "error": self.error}

    def line(self) -> str:
        """One line for tables and reports: ``name (stage: error)``."""
        return f"{self.name} ({self.stage}: {self.error})"


@dataclass
class Explanation:
    """One image's explanation.

    ``saliency`` is ``[h, w]`` (higher = more important) on the CPU; ``deletion`` (lower is
    better) and ``insertion`` (higher is better) are set when evaluated. ``target`` is the class explained
    (``-1`` for a set or a callable target), ``probability`` the target's score on the clean image.
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
    variant: str = "default"
    task: Any = None  # the pipeline Task that made it (igos.pipeline.Task)
    mask: Tensor | None = None
    trace: dict[str, Any] | None = None
    deletion: float | None = None
    insertion: float | None = None
    curves: dict[str, list[float]] | None = None
    evaluation_seconds: float | None = None
    #: scores under removal operators other than the blur (``road``, ``mean``, ``zero``): per name, the scores
    #: with their directions and curves (:func:`igos.removals.score_removal`)
    removals: dict[str, dict[str, Any]] | None = None
    #: what was explained (:meth:`igos.targets.Bound.describe`: ``{"kind": "classes", "classes": [281], …}``,
    #: a box in the input's pixels, a region's class and size, a callable's name)
    target_spec: dict[str, Any] | None = None
    #: what overlays draw: ``("box", [x1, y1, x2, y2])`` or ``("region", mask [H, W])`` in the input's pixels
    outline: tuple[str, Any] | None = None

    def set_scores(self, scores: Scores, row: int, seconds: float) -> None:
        """Take deletion, insertion and their curves from row ``row`` of ``scores``."""
        self.deletion = float(scores.deletion[row])
        self.insertion = float(scores.insertion[row])
        self.curves = {"x": scores.x.tolist(), "deletion": scores.deletion_curve[row].tolist(),
                       "insertion": scores.insertion_curve[row].tolist()}
        self.evaluation_seconds = seconds

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
            **({"target_spec": self.target_spec} if self.target_spec is not None else {}),
            "settings": self.settings,
            "seconds": round(self.seconds, 4),
            "forward_images": self.forward_images,
            "backward_images": self.backward_images,
        }
        if self.variant != "default":
            out["variant"] = self.variant
        if self.trace is not None:
            out["iterations"] = self.trace.get("iterations")
            out["final_objective"] = self.trace.get("final_objective")
            for key in ("stalled", "flat"):
                if key in self.trace:
                    out[key] = self.trace[key]
        if self.deletion is not None:
            out["deletion"] = {"auc": self.deletion, "direction": DIRECTIONS["deletion"]}
            out["insertion"] = {"auc": self.insertion, "direction": DIRECTIONS["insertion"]}
            out["curves"] = self.curves
        if self.deletion is not None or self.removals:
            out["evaluation_seconds"] = round(self.evaluation_seconds or 0.0, 4)
        for name, scores in (self.removals or {}).items():
            out[name] = scores
        return out


class Explanations(list):
    """A list of :class:`Explanation` with the run's :class:`Failure` records (``failures``)."""

    def __init__(self, items: Iterable[Explanation] = (), failures: Iterable[Failure] = ()):
        super().__init__(items)
        self.failures: list[Failure] = list(failures)
