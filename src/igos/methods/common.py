"""The result every method returns; the shared checks and scores live in :mod:`igos.core`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from torch import Tensor

from ..core import (
    SCORES,
    ImageCounter,
    check_finite,
    check_images,
    class_probability,
    class_score,
    resolve_targets,
    scores_in_batches,
)
from ..errors import NonFiniteOutputError

#: a map whose values all lie within this of each other has no order: it says nothing (``flat``)
FLAT_TOLERANCE = 1e-6

__all__ = [
    "Attribution",
    "FLAT_TOLERANCE",
    "NonFiniteOutputError",
    "check_images",
    "check_finite",
    "resolve_targets",
    "class_probability",
    "class_score",
    "SCORES",
    "scores_in_batches",
    "ImageCounter",
]


@dataclass
class Attribution:
    """What a method returns for a batch of ``B`` images.

    Attributes:
        saliency: ``[B, h, w]`` float tensor, higher = more important, on the input's device.
        mask: ``[B, h, w]`` optimised mask (1 = keep), for mask-optimising methods.
        trace: per image, a dict of per-iteration lists (``objective``, ``probability``,
            ``step``) and counters, for optimising methods.
        forward_images / backward_images: images that went through the model (forward only, and
            forward + backward) for the whole batch.
        target: ``[B]`` the class explained for each image (``-1`` for a set or a callable target).
        bound: the bound target (:class:`igos.targets.Bound`) the maps explain.
        options: the method's options as it ran with them (per-resolution defaults filled in).
    """

    saliency: Tensor
    mask: Tensor | None = None
    trace: list[dict[str, Any]] = field(default_factory=list)
    forward_images: int = 0
    backward_images: int = 0
    target: Tensor | None = None
    options: Any = None
    bound: Any = None


MethodFn = Callable[..., Attribution]
