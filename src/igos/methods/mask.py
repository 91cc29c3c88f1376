"""Mask / meaningful perturbation (Fong & Vedaldi 2017), the I-GOS paper's main baseline.

Minimises the same deletion objective as I-GOS with a first-order method instead of
integrated gradients and a line search:

    F(M) = p_c(Φ(I, I0, U(M)) + ε) + λ1 · mean|1 − M| + λ2 · TV_β(M)

with Adam (learning rate 0.1) for 500 iterations from ``M = 1``, projecting ``M`` to ``[0, 1]``
after every step, and fresh Gaussian noise ``ε`` on the perturbed image at every iteration (its
reference implementation's σ = 0.2 in ImageNet-normalised units ≈ 0.045 in pixel units).
Defaults λ1 = 0.01, λ2 = 0.2, β = 3: the values the I-GOS paper reports as best for Mask at
28×28. Any resolution; saliency = ``1 − M``. Baseline, compositing, upsampling and the
regularisers are the shared ones of :mod:`igos.perturb`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from ..perturb import composite, regulariser, upsample
from .common import Attribution, class_probability
from .optim import noise_draw
from .options import Checks, MethodOptions, Size
from .registry import MethodSpec

__all__ = ["mask", "MaskOptions", "SPEC"]


@dataclass(frozen=True)
class MaskOptions(MethodOptions):
    """Mask's options (the I-GOS paper's best for Mask at 28×28).

    Attributes:
        iterations: Adam steps (500).
        lr: Adam's learning rate (0.1).
        l1: λ1, the weight of ``mean|1 − M|`` (0.01).
        tv: λ2, the weight of ``TV_β(M)`` (0.2).
        tv_beta: β, the total variation's exponent (3).
        noise: σ of the Gaussian noise added to the perturbed image at every step, ``[0, 1]`` pixel units.
        batch_size: images per model call.
    """

    iterations: int = 500
    lr: float = 0.1
    l1: float = 0.01
    tv: float = 0.2
    tv_beta: float = 3.0
    noise: float = 0.045

    def check(self, checks: Checks) -> None:
        super().check(checks)
        checks.at_least(0, "iterations", "l1", "tv", "noise")
        checks.within("lr", 0, float("inf"), open_lo=True)
        checks.at_least(1, "tv_beta")


class _Objective:
    """``F`` of every image's mask, one model batch at a time, with its gradient when asked."""

    def __init__(self, model: nn.Module, images: Tensor, baseline: Tensor, targets: Tensor, options: MaskOptions):
        self.model, self.images, self.baseline, self.targets, self.o = model, images, baseline, targets, options

    def __call__(self, m: Tensor, eps: Tensor | None, grad: bool) -> Tensor:
        o, (h, w), values = self.o, self.images.shape[-2:], []
        for sl in torch.arange(m.shape[0], device=m.device).split(o.batch_size):
            with torch.set_grad_enabled(grad):
                x = composite(self.images[sl], self.baseline[sl], upsample(m[sl], (h, w)))
                if eps is not None:
                    x = x + eps
                f = class_probability(self.model, x, self.targets[sl]) + regulariser(m[sl], o.l1, o.tv, o.tv_beta)
                if grad:
                    f.sum().backward()
            values.append(f.detach())
        return torch.cat(values)


def _mask(model: nn.Module, images: Tensor, targets: Tensor, *, baseline: Tensor, size: Size, seed: int,
          options: MaskOptions) -> Attribution:
    b, _, h, w = images.shape
    device, dtype = images.device, images.dtype
    generator = torch.Generator().manual_seed(int(seed))  # the noise comes from the CPU: see noise_draw
    m = torch.ones(b, 1, *size, device=device, dtype=dtype, requires_grad=True)
    opt = torch.optim.Adam([m], lr=options.lr)
    history = torch.zeros(options.iterations, b, device=device, dtype=dtype)
    objective = _Objective(model, images, baseline, targets, options)
    for it in range(options.iterations):
        eps = noise_draw(generator, 1, (3, h, w), options.noise, device, dtype)
        opt.zero_grad(set_to_none=True)
        history[it] = objective(m, None if eps is None else eps[0], grad=True)
        opt.step()
        with torch.no_grad():
            m.clamp_(0.0, 1.0)
    final = objective(m, None, grad=False)
    result = m.detach()[:, 0]
    trace = [{"objective": history[:, i].tolist(), "final_objective": float(final[i]),
              "iterations": options.iterations, "l1": options.l1, "tv": options.tv} for i in range(b)]
    return Attribution(1.0 - result, mask=result, trace=trace)


SPEC = MethodSpec("mask", _mask, "Mask", "any", MaskOptions,
                  reference="Mask / meaningful perturbation (Fong & Vedaldi 2017)", cost="0 / 500", baseline=True,
                  default_resolution=28)


def mask(model: nn.Module, images: Tensor, target: int | Sequence[int] | Tensor | None = None, *,
         baseline: Tensor | None = None, resolution: int | tuple[int, int] = 28, seed: int = 0,
         **options: Any) -> Attribution:
    """Mask saliency ``[B, s_h, s_w]`` = ``1 − M`` (higher = more important); ``options``: :class:`MaskOptions`'
    fields. The trace holds the objective per iteration (with that iteration's noise) and ``final_objective``:
    the noise-free ``F`` of the final mask."""
    return SPEC(model, images, target, baseline=baseline, resolution=resolution, seed=seed, **options)
