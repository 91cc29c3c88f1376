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

import torch
from torch import Tensor, nn

from ..models import frozen
from ..perturb import blurred_baseline, check_resolution, composite, l1_loss, tv_loss, upsample
from .common import Attribution, ImageCounter, check_images, class_probability, resolve_targets
from .optim import noise_draw

__all__ = ["mask"]


def mask(
    model: nn.Module,
    images: Tensor,
    target: int | Sequence[int] | Tensor | None = None,
    *,
    baseline: Tensor | None = None,
    resolution: int | tuple[int, int] = 28,
    iterations: int = 500,
    lr: float = 0.1,
    l1: float = 0.01,
    tv: float = 0.2,
    tv_beta: float = 3.0,
    noise: float = 0.045,
    batch_size: int = 16,
    seed: int = 0,
) -> Attribution:
    """Mask saliency ``[B, s_h, s_w]`` = ``1 − M`` (higher = more important).

    The trace holds the objective per iteration (with that iteration's noise) and
    ``final_objective``: the noise-free ``F`` of the final mask.
    """
    images = check_images(images)
    b, _, h, w = images.shape
    s_h, s_w = check_resolution(resolution, (h, w))
    if baseline is None:
        baseline = blurred_baseline(images)
    counter = ImageCounter()
    device, dtype = images.device, images.dtype
    with frozen(model), counter.watch(model):
        targets = resolve_targets(model, images, target, batch_size)
        generator = torch.Generator(device=device).manual_seed(int(seed))
        m = torch.ones(b, 1, s_h, s_w, device=device, dtype=dtype, requires_grad=True)
        opt = torch.optim.Adam([m], lr=lr)
        history = torch.zeros(iterations, b, device=device, dtype=dtype)

        def objective(eps: Tensor | None, grad: bool) -> Tensor:
            values = []
            for sl in torch.arange(b, device=device).split(batch_size):
                with torch.set_grad_enabled(grad):
                    x = composite(images[sl], baseline[sl], upsample(m[sl], (h, w)))
                    if eps is not None:
                        x = x + eps
                    f = class_probability(model, x, targets[sl]) + l1 * l1_loss(m[sl]) + tv * tv_loss(m[sl], tv_beta)
                    if grad:
                        f.sum().backward()
                values.append(f.detach())
            return torch.cat(values)

        for it in range(iterations):
            eps = noise_draw(generator, 1, (3, h, w), noise, device, dtype)
            opt.zero_grad(set_to_none=True)
            history[it] = objective(None if eps is None else eps[0], grad=True)
            opt.step()
            with torch.no_grad():
                m.clamp_(0.0, 1.0)
        final = objective(None, grad=False)
    result = m.detach()[:, 0]
    trace = [
        {"objective": history[:, i].tolist(), "final_objective": float(final[i]), "iterations": iterations,
         "l1": l1, "tv": tv}
        for i in range(b)
    ]
    return Attribution(1.0 - result, mask=result, trace=trace, target=targets,
                       forward_images=counter.forward_images, backward_images=counter.backward_images)
