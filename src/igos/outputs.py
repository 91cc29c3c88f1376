"""What a model's forward pass returns, in the forms igos scores: a tensor (``[N, classes]`` logits or scores,
``[N]`` single outputs, ``[N, C, h, w]`` segmentation logits) or, for a detector, a list of per-image dicts
with ``boxes`` ``[K, 4]`` (x1, y1, x2, y2 in input pixels), ``labels`` ``[K]`` and ``scores`` ``[K]``
(torchvision's convention). A leaf module: it imports nothing from igos but the errors."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor

from .errors import ModelOutputError, NonFiniteOutputError

__all__ = ["model_output", "logits_of", "is_detection", "take", "output_rows", "to_float32", "describe_output",
           "finite", "check_finite"]

#: dict keys that hold a model's main output, in the order they are looked for (``logits``: HuggingFace's
#: ``ModelOutput``; ``out``: torchvision's segmentation models)
KEYS = ("logits", "logit", "out")


def is_detection(output: Any) -> bool:
    """A detector's output: a list or tuple of per-image dicts that hold ``boxes``."""
    return isinstance(output, (list, tuple)) and len(output) > 0 and all(
        isinstance(o, Mapping) and "boxes" in o for o in output)


def model_output(output: Any) -> Tensor | list[dict[str, Tensor]]:
    """A forward pass's result in a scoreable form: a tensor as it is; a dict's (or ``ModelOutput``'s)
    ``logits``/``logit``/``out``; an object's ``.logits``; a detector's list of dicts as it is; the first
    element of any other tuple or list. ``ModelOutputError`` naming what was found when none of these fits."""
    if isinstance(output, Tensor) or is_detection(output):
        return output
    found: Any = None
    if isinstance(output, Mapping):
        found = next((output[k] for k in KEYS if k in output), None)
    elif hasattr(output, "logits"):
        found = output.logits
    elif isinstance(output, (tuple, list)) and output:
        found = output[0]
    if isinstance(found, Tensor):
        return found
    raise ModelOutputError(f"the model returned {describe_output(output)}; igos needs [N, classes] logits or "
                           "another tensor ([N] single outputs, [N, C, h, w] segmentation logits), as it is or in a "
                           "tuple, dict or ModelOutput that holds it first or under 'logits' or 'out', or a "
                           "detector's list of dicts with 'boxes', 'labels' and 'scores'")


def describe_output(output: Any) -> str:
    """``a tensor of shape (2, 10)``, ``dict with keys […]``, ``a list of 2 detection dicts``, …"""
    if isinstance(output, Tensor):
        return f"a tensor of shape {tuple(output.shape)}"
    if is_detection(output):
        return f"a list of {len(output)} detection dicts"
    if isinstance(output, Mapping):
        return f"{type(output).__name__} with keys {list(output)[:8]}"
    return type(output).__name__


def logits_of(output: Any) -> Tensor:
    """The ``[N, classes]`` tensor of a classifier's output (``[N]`` single outputs become ``[N, 1]``);
    ``ModelOutputError`` naming what was found otherwise."""
    out = model_output(output)
    if isinstance(out, Tensor) and out.dim() == 1:
        return out.unsqueeze(1)
    if isinstance(out, Tensor) and out.dim() == 2:
        return out
    hint = ""
    if isinstance(out, Tensor) and out.dim() == 4:
        hint = ": segmentation logits; explain a region of them (igos.targets.Region, --target region=MASK.png@CLASS)"
    elif is_detection(out):
        hint = ": a detector's boxes; explain one box (igos.targets.Box, --target box=X1,Y1,X2,Y2@LABEL)"
    raise ModelOutputError(f"the model returned {describe_output(out)}{hint}; a class target needs [N, classes] "
                           "logits: a tensor, or a tuple, dict or ModelOutput that holds them first or under 'logits'")


def to_float32(output: Any) -> Any:
    """``output`` with every floating tensor in it as float32 (after a forward pass under autocast)."""
    if isinstance(output, Tensor):
        return output.float() if output.is_floating_point() else output
    if isinstance(output, Mapping):
        return {k: to_float32(v) for k, v in output.items()}
    if isinstance(output, (list, tuple)):
        return type(output)(to_float32(v) for v in output) if not hasattr(output, "_fields") else output
    return output


def output_rows(output: Tensor | list) -> int:
    return output.shape[0] if isinstance(output, Tensor) else len(output)


def take(output: Tensor | list, idx: Tensor) -> Tensor | list:
    """Rows ``idx`` of an output (a tensor's rows, a detector's per-image dicts)."""
    if isinstance(output, Tensor):
        return output[idx]
    return [output[int(i)] for i in idx]


def check_finite(output: Any) -> Any:
    """``output`` (any form :func:`model_output` gives), or ``NonFiniteOutputError`` when it holds NaN or inf."""
    if not finite(output):
        raise NonFiniteOutputError("the model returned NaN or infinite outputs; cannot explain them")
    return output


def finite(output: Tensor | list) -> bool:
    if isinstance(output, Tensor):
        return bool(torch.isfinite(output).all()) if output.is_floating_point() else True
    return all(bool(torch.isfinite(v).all()) for d in output for v in d.values()
               if isinstance(v, Tensor) and v.is_floating_point())
