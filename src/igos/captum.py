"""A Captum-compatible front door: ``IGOS(forward_func).attribute(inputs, target=..., baselines=...)``.

For code written against Captum (and Quantus' ``explain_func``): ``inputs`` are what the model takes
(``[B, C, H, W]``, normalised or not), ``forward_func`` returns logits (a tensor, tuple, dict or
``ModelOutput``), and the result is a tensor on the inputs' device and dtype, shaped like Captum's
layer attributions upsampled to the input (``LayerAttribution.interpolate``): ``[B, 1, H, W]``, higher
= more important, each cell of the heatmap a block of equal values (nearest-neighbour), so Captum's
``visualization.visualize_image_attr`` takes ``attr[i].permute(1, 2, 0).numpy()`` unchanged.

igos works on images in ``[0, 1]``: give the inputs' normalisation (``mean``, ``std``) when they are
normalised; the blurred baseline and compositing commute with it, so the heatmap is the one of the
same photo in pixel space.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .methods import get_method
from .models import logits_of

__all__ = ["IGOS", "IGOSPP", "Mask", "MethodAttribution", "quantus_explain"]


class _Forward(nn.Module):
    """``forward_func`` as a pixel-space classifier: ``z ∈ [0, 1]`` -> ``forward_func(z · std + mean)``'s logits."""

    def __init__(self, forward_func: Callable[[Tensor], Any], mean: Tensor, std: Tensor):
        super().__init__()
        self.forward_func = forward_func  # a module is registered, so its parameters are frozen during a call
        self.register_buffer("mean", mean)
        self.register_buffer("std", std)

    def forward(self, z: Tensor) -> Tensor:
        return logits_of(self.forward_func((z - self.mean) / self.std))


class MethodAttribution:
    """Any registered igos method behind Captum's ``attribute`` call (see the module docstring)."""

    method = "igos"

    def __init__(self, forward_func: Callable[[Tensor], Any], *, mean: Sequence[float] | None = None,
                 std: Sequence[float] | None = None, upsample: bool = True, method: str | None = None):
        self.forward_func = forward_func
        self.mean, self.std, self.upsample = mean, std, upsample
        self.method = self.method if method is None else method
        get_method(self.method)

    def _normalisation(self, inputs: Tensor) -> tuple[Tensor, Tensor]:
        c = inputs.shape[1]
        mean = torch.zeros(c) if self.mean is None else torch.as_tensor(self.mean, dtype=torch.float32)
        std = torch.ones(c) if self.std is None else torch.as_tensor(self.std, dtype=torch.float32)
        shape = (1, -1, 1, 1)
        return (mean.view(shape).to(inputs.device, inputs.dtype), std.view(shape).to(inputs.device, inputs.dtype))

    def attribute(self, inputs: Tensor, *, target: int | Sequence[int] | Tensor | None = None,
                  baselines: Tensor | None = None, resolution: int | tuple[int, int] = 28, seed: int = 0,
                  **options: Any) -> Tensor:
        """Attributions ``[B, 1, H, W]`` (or ``[B, 1, h, w]`` with ``upsample=False``) for ``target``.

        ``target`` and ``baselines`` are keyword-only: Captum's own methods take ``(inputs, baselines, target)``
        or ``(inputs, target)`` positionally, so a positional second argument would mean different things.
        ``baselines``: the image the deletion moves towards, in the inputs' space (default: the blurred
        input, as everywhere in igos). ``options``: the method's options (unknown ones are an error). The
        model is left as it was: its mode, gradients flags and device.
        """
        if not isinstance(inputs, Tensor) or inputs.dim() != 4:
            raise ValueError(f"inputs must be a [B, C, H, W] tensor, got {getattr(inputs, 'shape', type(inputs))}")
        mean, std = self._normalisation(inputs)
        pixels = (inputs.detach() * std + mean).float()
        baseline = None if baselines is None else (torch.as_tensor(baselines).to(inputs) * std + mean).float()
        if baseline is not None and baseline.shape != inputs.shape:
            baseline = baseline.expand_as(inputs).contiguous()
        model = _Forward(self.forward_func, mean.float(), std.float())
        result = get_method(self.method)(model, pixels, target, baseline=baseline, resolution=resolution, seed=seed,
                                         **options)
        sal = result.saliency.unsqueeze(1)
        if self.upsample and tuple(sal.shape[-2:]) != tuple(inputs.shape[-2:]):
            sal = F.interpolate(sal, size=tuple(inputs.shape[-2:]), mode="nearest")
        return sal.to(dtype=inputs.dtype, device=inputs.device)


class IGOS(MethodAttribution):
    """I-GOS behind Captum's ``attribute``."""

    method = "igos"


class IGOSPP(MethodAttribution):
    """iGOS++ behind Captum's ``attribute``."""

    method = "igospp"


class Mask(MethodAttribution):
    """Mask (Fong & Vedaldi) behind Captum's ``attribute``."""

    method = "mask"


def quantus_explain(model: Callable[[Tensor], Any], inputs: np.ndarray | Tensor, targets: Any, *,
                    method: str = "igos", device: str | None = None, **kwargs: Any) -> np.ndarray:
    """A Quantus ``explain_func``: numpy (or tensor) inputs ``[B, C, H, W]`` in, numpy ``[B, 1, H, W]`` out.

    ``kwargs``: ``mean``, ``std`` (the inputs' normalisation), ``resolution``, ``seed`` and the method's
    options. Quantus calls it as ``explain_func(model=..., inputs=..., targets=..., **explain_func_kwargs)``.
    The model is left as it was (its mode and device): the inputs go to ``device``, or to the model's device.
    """
    front = {"mean": kwargs.pop("mean", None), "std": kwargs.pop("std", None)}
    x = torch.as_tensor(inputs, dtype=torch.float32)
    if device is not None:
        x = x.to(device)
    elif isinstance(model, nn.Module):  # the inputs go where the model is; the model is never moved
        x = x.to(next(iter(model.parameters()), x).device)
    target = None if targets is None else torch.as_tensor(np.asarray(targets)).long().to(x.device)
    explainer = MethodAttribution(model, method=method, **front)
    return explainer.attribute(x, target=target, **kwargs).detach().cpu().numpy()
