"""The removal operators the curves can use, each scoring a saliency map its own way:

* ``blur`` (the default): deletion and insertion towards the blurred photo (docs/evaluation.md);
* ``mean`` and ``zero``: deletion and insertion towards the photo's channel means, or black;
* ``road``: ROAD's MoRF and LeRF with noisy linear imputation (:mod:`igos.road`).

I-GOS, iGOS++ and Mask optimise against the blurred photo; the other operators are evidence they never saw.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from .metrics import DIRECTIONS, deletion_insertion
from .road import road

__all__ = ["REMOVALS", "check_removals", "score_removal", "ROAD_DIRECTIONS"]

REMOVALS = ("blur", "road", "mean", "zero")
ROAD_DIRECTIONS = {"morf": "lower is better", "lerf": "higher is better", "combined": "higher is better"}


def check_removals(removals: Any) -> tuple[str, ...]:
    """The removal names as a tuple, each known; a ``ValueError`` naming the unknown ones otherwise."""
    names = (removals,) if isinstance(removals, str) else tuple(removals)
    unknown = [r for r in names if r not in REMOVALS]
    if unknown or not names:
        raise ValueError(f"unknown removal(s) {', '.join(map(repr, unknown)) or '(none given)'}: choose from "
                         f"{', '.join(REMOVALS)}")
    return tuple(dict.fromkeys(names))


def score_removal(model: nn.Module, images: Tensor, saliency: Tensor, targets: Tensor, removal: str, *,
                  seed: int = 0) -> list[dict[str, Any]]:
    """Per image, the scores of ``removal`` (not ``blur``: the pipeline's own) with their directions and curves."""
    if removal == "road":
        s = road(model, images, saliency, targets, seed=seed)
        return [{"morf": float(s.morf[i]), "lerf": float(s.lerf[i]), "combined": float(s.combined[i]),
                 "directions": ROAD_DIRECTIONS,
                 "curves": {"fractions": s.fractions.tolist(), "morf": s.morf_curve[i].tolist(),
                            "lerf": s.lerf_curve[i].tolist()}} for i in range(images.shape[0])]
    if removal == "mean":
        baseline = images.mean((2, 3), keepdim=True).expand_as(images).contiguous()
    elif removal == "zero":
        baseline = torch.zeros_like(images)
    else:
        raise ValueError(f"score_removal scores road, mean or zero, not {removal!r}")
    s = deletion_insertion(model, images, saliency, targets, baseline=baseline)
    return [{"deletion": float(s.deletion[i]), "insertion": float(s.insertion[i]), "directions": DIRECTIONS,
             "curves": {"x": s.x.tolist(), "deletion": s.deletion_curve[i].tolist(),
                        "insertion": s.insertion_curve[i].tolist()}} for i in range(images.shape[0])]
