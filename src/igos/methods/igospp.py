"""iGOS++ (Khorram et al. 2021): bidirectional I-GOS.

Two masks, ``M_d`` (deletion) and ``M_i`` (insertion), both start at 1; the heatmap is
``1 − M`` with ``M = M_d ⊙ M_i``. With ``D(m)`` the mean class probability along the deletion
path ``Φ(I, I0, α·U(m))`` and ``S(m)`` along the insertion path ``Φ(I0, I, α·U(m))`` (clean where
``m = 0``, blurred where ``m = 1``), the objective is

    F(M_d, M_i) = ½ [D(M) − S(M) + D(M_d) − S(M_i)] + λ1 · mean|1 − M| + λ2 · BTV(M)

Its descent direction uses integrated gradients of the four path terms (noise on every path
point, as in I-GOS), then one shared step from the same Armijo line search as I-GOS (a
noise-free subset of the path points), and projection to ``[0, 1]``. BTV is the mean of the
low-resolution TV and an edge-aware TV of ``U(M)`` with weights ``exp(−(ΔI)²/σ)``, σ = 0.01 on
the ``[0, 1]`` image (squared differences averaged over channels).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from ..models import frozen
from ..perturb import blurred_baseline, btv_loss, check_resolution, edge_weights, l1_loss, upsample
from .common import Attribution, ImageCounter, check_images, resolve_targets
from .igos import search_point_indices
from .optim import (
    line_search,
    noise_draw,
    path_gradient,
    path_scores,
    project_direction,
    record_iteration,
    upsample_adjoint,
)

__all__ = ["igospp"]


def igospp(
    model: nn.Module,
    images: Tensor,
    target: int | Sequence[int] | Tensor | None = None,
    *,
    baseline: Tensor | None = None,
    resolution: int | tuple[int, int] = 28,
    iterations: int = 15,
    steps: int = 10,
    l1: float = 10.0,
    tv: float = 20.0,
    noise: float = 0.045,
    first_step: float = 1000.0,
    step_decay: float = 0.2,
    armijo: float = 1e-4,
    min_step: float = 1e-5,
    trials_per_batch: int = 2,
    search_points: int = 3,
    edge_sigma: float = 0.01,
    batch_size: int = 16,
    seed: int = 0,
) -> Attribution:
    """iGOS++ saliency ``[B, s_h, s_w]`` = ``1 − M_d ⊙ M_i`` (higher = more important).

    Options as :func:`igos.methods.igos.igos`; λ1 = 10, λ2 = 20 are the authors' values at
    224×224 for classification. The trace has the objective, step and trials per iteration.
    """
    images = check_images(images)
    b, _, h, w = images.shape
    s_h, s_w = check_resolution(resolution, (h, w))
    device, dtype = images.device, images.dtype
    counter = ImageCounter()
    with frozen(model), counter.watch(model):
        targets = resolve_targets(model, images, target, batch_size)
        if baseline is None:
            baseline = blurred_baseline(images)
        weights = edge_weights(images, edge_sigma)
        generator = torch.Generator(device=device).manual_seed(int(seed))
        alphas = torch.arange(1, steps + 1, device=device, dtype=dtype) / steps
        points = search_point_indices(steps, max(1, search_points))
        sub = alphas[points]

        def reg(m: Tensor, j: Tensor) -> Tensor:
            return l1 * l1_loss(m) + tv * btv_loss(m, (weights[0][j], weights[1][j]), (h, w))

        def objective(pair: Tensor, j: Tensor) -> tuple[Tensor, Tensor]:
            md, mi = pair[:, :1], pair[:, 1:]
            m = md * mi
            up, upd, upi = (upsample(t, (h, w)) for t in (m, md, mi))
            x, x0, t = images[j], baseline[j], targets[j]
            d_m = path_scores(model, x0, x, up, t, sub, None, batch_size)
            s_m = path_scores(model, x, x0, up, t, sub, None, batch_size)
            d_d = path_scores(model, x0, x, upd, t, sub, None, batch_size)
            s_i = path_scores(model, x, x0, upi, t, sub, None, batch_size)
            value = 0.5 * (d_m.mean(1) - s_m.mean(1) + d_d.mean(1) - s_i.mean(1)) + reg(m, j)
            return value, d_m[:, -1]

        pair = torch.ones(b, 2, s_h, s_w, device=device, dtype=dtype)
        every = torch.arange(b, device=device)
        value, _ = objective(pair, every)
        next_step = torch.full((b,), float(first_step), device=device, dtype=dtype)
        traces = [{"objective": [], "step": [], "trials": [], "armijo": [], "iterations": 0} for _ in range(b)]
        for _ in range(iterations):
            eps = noise_draw(generator, steps, (3, h, w), noise, device, dtype)
            md, mi = pair[:, :1], pair[:, 1:]
            m = md * mi
            g_m_del, _ = path_gradient(model, baseline, images, upsample(m, (h, w)), targets, alphas, eps, batch_size)
            g_m_ins, _ = path_gradient(model, images, baseline, upsample(m, (h, w)), targets, alphas, eps, batch_size)
            g_d, _ = path_gradient(model, baseline, images, upsample(md, (h, w)), targets, alphas, eps, batch_size)
            g_i, _ = path_gradient(model, images, baseline, upsample(mi, (h, w)), targets, alphas, eps, batch_size)
            g_m = upsample_adjoint(m, g_m_del - g_m_ins)
            leaf = m.detach().requires_grad_(True)
            with torch.enable_grad():
                (g_reg,) = torch.autograd.grad(reg(leaf, every).sum(), leaf)
            g_prod = 0.5 * g_m + g_reg  # gradient with respect to M = M_d ⊙ M_i
            dir_d = g_prod * mi + 0.5 * upsample_adjoint(md, g_d)
            dir_i = g_prod * md - 0.5 * upsample_adjoint(mi, g_i)
            direction = project_direction(pair, torch.cat([dir_d, dir_i], dim=1))
            step, new_pair, new_v, _, trials = line_search(
                objective, pair, direction, value, next_step, decay=step_decay, armijo=armijo, min_step=min_step,
                trials_per_batch=trials_per_batch,
            )
            record_iteration(traces, every, value, new_v, step, direction, trials)
            pair, value = new_pair, new_v
            next_step = torch.clamp(step / step_decay, max=first_step)
    final = pair[:, 0] * pair[:, 1]
    for i in range(b):
        traces[i]["final_objective"] = float(value[i])
        traces[i]["l1"], traces[i]["tv"] = float(l1), float(tv)
    return Attribution(1.0 - final, mask=final, trace=traces, target=targets,
                       forward_images=counter.forward_images, backward_images=counter.backward_images)
