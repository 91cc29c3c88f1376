"""Optimisation pieces shared by I-GOS and iGOS++: path integrated gradients and the line search."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import torch
from torch import Tensor, nn

from ..perturb import upsample
from .common import class_probability

__all__ = ["path_gradient", "path_scores", "line_search", "upsample_adjoint", "noise_draw", "project_direction",
           "record_iteration"]


def noise_draw(generator: torch.Generator | None, steps: int, shape: tuple[int, ...], sigma: float,
               device: torch.device, dtype: torch.dtype) -> Tensor | None:
    """``[K, 3, H, W]`` Gaussian noise for one iteration's path, shared by every image.

    Drawing one tensor per iteration (not per image) makes an image's result independent of
    the batch it is explained in: batched and one-by-one runs are equal under the same seed.
    """
    if sigma <= 0:
        return None
    return torch.randn((steps, *shape), generator=generator, device=device, dtype=dtype) * sigma


def upsample_adjoint(mask: Tensor, grad_up: Tensor) -> Tensor:
    """Pull a gradient on ``U(mask)`` back to the low-resolution ``mask`` (``[N, 1, s_h, s_w]``)."""
    leaf = mask.detach().requires_grad_(True)
    with torch.enable_grad():
        up = upsample(leaf, tuple(grad_up.shape[-2:]))
        (grad,) = torch.autograd.grad(up, leaf, grad_outputs=grad_up)
    return grad


def _path_points(
    start: Tensor, end: Tensor, mask_up: Tensor, alphas: Tensor, noise: Tensor | None, batch_size: int
) -> Iterator[tuple[Tensor, Tensor, Tensor, Tensor]]:
    """Chunks of path points ``(image index, step index, α, x)``, ``batch_size`` at a time."""
    n, k = start.shape[0], alphas.shape[0]
    diff = end - start
    pairs = torch.cartesian_prod(torch.arange(n, device=start.device), torch.arange(k, device=start.device))
    for i in range(0, pairs.shape[0], batch_size):
        img, step = pairs[i : i + batch_size].unbind(1)
        a = alphas[step].view(-1, 1, 1, 1)
        x = start[img] + a * mask_up[img] * diff[img]
        if noise is not None:
            x = x + noise[step]
        yield img, step, a, x


def path_gradient(
    model: nn.Module,
    start: Tensor,
    end: Tensor,
    mask_up: Tensor,
    targets: Tensor,
    alphas: Tensor,
    noise: Tensor | None,
    batch_size: int,
) -> tuple[Tensor, Tensor]:
    """Integrated gradient of the class probability along the mask path, w.r.t. ``U(M)``.

    Path point ``k`` of image ``n``: ``x = start + α_k · U(M) ⊙ (end − start) + ε_k``, i.e.
    ``Φ(end, start, α_k U(M))`` plus noise. Returns ``d/dU mean_k p_c(x_k)`` as
    ``[N, 1, H, W]`` and the probability at every path point ``[N, K]``. All ``N·K`` points go
    through the model ``batch_size`` at a time.
    """
    diff = end - start
    grad_up = torch.zeros_like(mask_up)
    probs = torch.zeros(start.shape[0], alphas.shape[0], device=start.device, dtype=start.dtype)
    for img, step, a, x in _path_points(start, end, mask_up, alphas, noise, batch_size):
        x.requires_grad_(True)
        with torch.enable_grad():
            p = class_probability(model, x, targets[img])
            (gx,) = torch.autograd.grad(p.sum(), x)
        grad_up.index_add_(0, img, a * (gx * diff[img]).sum(1, keepdim=True))
        probs[img, step] = p.detach()
    return grad_up / alphas.shape[0], probs


@torch.no_grad()
def path_scores(
    model: nn.Module,
    start: Tensor,
    end: Tensor,
    mask_up: Tensor,
    targets: Tensor,
    alphas: Tensor,
    noise: Tensor | None,
    batch_size: int,
) -> Tensor:
    """Class probability at the path points of ``path_gradient``, without gradients: ``[N, K]``."""
    probs = torch.zeros(start.shape[0], alphas.shape[0], device=start.device, dtype=start.dtype)
    for img, step, _, x in _path_points(start, end, mask_up, alphas, noise, batch_size):
        probs[img, step] = class_probability(model, x, targets[img])
    return probs


def project_direction(mask: Tensor, direction: Tensor, low: float = 0.0, high: float = 1.0) -> Tensor:
    """The projected (descent) direction: components of ``direction`` that would push ``mask``
    out of ``[low, high]`` where it already sits on that bound are zeroed.

    ``M − a·g`` is clamped to the box anyway, so those components never move the mask; left in,
    they inflate ``‖g‖²`` in the Armijo test. At ``M ≡ 1`` (the start) every cell whose gradient
    asks to *raise* M counts, and at coarse masks (7×7: one cell sums a 32×32 block of pixel
    gradients) they can make every step fail the test.
    """
    blocked = ((mask >= high) & (direction < 0)) | ((mask <= low) & (direction > 0))
    return direction.masked_fill(blocked, 0.0)


def line_search(
    objective: Callable[[Tensor, Tensor], tuple[Tensor, Tensor]],
    mask: Tensor,
    direction: Tensor,
    value: Tensor,
    first_step: Tensor,
    *,
    decay: float = 0.2,
    armijo: float = 1e-4,
    min_step: float = 1e-5,
    trials_per_batch: int = 3,
    project: Callable[[Tensor], Tensor] = lambda m: m.clamp(0.0, 1.0),
) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """Backtracking line search with the revised Armijo condition, several trials per batch.

    For each image accepts the largest ``a = first_step · decay^j`` with
    ``F(P(M − a·g)) ≤ F(M) − armijo · a · ‖g‖²`` (``P`` = projection to [0, 1]); if none above
    ``min_step`` is accepted, ``min_step`` is taken unconditionally. ``trials_per_batch``
    candidate steps of every image are scored in one call of ``objective``.

    Args:
        objective: ``(masks [N, 1, s_h, s_w], image_index [N]) -> (F [N], probability [N])``.
        mask, direction: ``[B, 1, s_h, s_w]``.
        value: ``F(M)`` per image ``[B]``.
        first_step: first trial step per image ``[B]``.

    Returns:
        ``(step, new_mask, new_value, new_probability, trials)``: per image, ``trials`` counts
        the candidate masks scored.
    """
    b = mask.shape[0]
    device = mask.device
    gnorm2 = direction.flatten(1).pow(2).sum(1)
    step = torch.full((b,), float(min_step), device=device, dtype=mask.dtype)
    new_mask = project(mask - min_step * direction)
    new_value = torch.full((b,), float("nan"), device=device, dtype=mask.dtype)
    new_prob = torch.full_like(new_value, float("nan"))
    trials = torch.zeros(b, dtype=torch.long, device=device)
    pending = torch.arange(b, device=device)
    current = first_step.clone().to(mask.dtype)
    powers = decay ** torch.arange(trials_per_batch, device=device, dtype=mask.dtype)
    while pending.numel():
        cand = current[pending].view(-1, 1) * powers.view(1, -1)  # [P, T]
        ok_range = cand >= min_step
        sel = ok_range.nonzero()  # rows (pending position, trial)
        if sel.numel() == 0:
            break
        rows, cols = sel.unbind(1)
        img = pending[rows]
        a = cand[rows, cols]
        trial_masks = project(mask[img] - a.view(-1, 1, 1, 1) * direction[img])
        f, p = objective(trial_masks, img)
        trials.index_add_(0, img, torch.ones_like(img))
        accept = f <= value[img] - armijo * a * gnorm2[img]
        # the first accepted trial of each pending image (trials are in decreasing step order)
        acc_table = torch.zeros_like(cand, dtype=torch.bool)
        acc_table[rows, cols] = accept
        has = acc_table.any(1)
        first = acc_table.float().argmax(1)
        done_rows = has.nonzero().flatten()
        for r in done_rows.tolist():
            j = int(first[r])
            hit = ((rows == r) & (cols == j)).nonzero()[0, 0]
            i = int(pending[r])
            step[i] = cand[r, j]
            new_mask[i] = trial_masks[hit]
            new_value[i] = f[hit]
            new_prob[i] = p[hit]
        keep = ~has & ok_range.all(1)
        current[pending] = current[pending] * decay**trials_per_batch
        pending = pending[keep]
    # images that never accepted a step take min_step unconditionally
    missing = torch.isnan(new_value).nonzero().flatten()
    if missing.numel():
        f, p = objective(new_mask[missing], missing)
        new_value[missing] = f
        new_prob[missing] = p
        trials.index_add_(0, missing, torch.ones_like(missing))
    return step, new_mask, new_value, new_prob, trials


def record_iteration(traces: list[dict], idx: Tensor, base: Tensor, value: Tensor, step: Tensor, direction: Tensor,
                     trials: Tensor, probability: Tensor | None = None) -> None:
    """Append one iteration to the per-image traces of images ``idx`` (rows of the other tensors):
    objective, step, trials, the Armijo record ``(F_before, F_after, step, ‖g‖²)`` and, if given,
    the class probability."""
    gnorm2 = direction.flatten(1).pow(2).sum(1)
    for r, i in enumerate(idx.tolist()):
        tr = traces[i]
        tr["armijo"].append((float(base[r]), float(value[r]), float(step[r]), float(gnorm2[r])))
        tr["objective"].append(float(value[r]))
        tr["step"].append(float(step[r]))
        tr["trials"].append(int(trials[r]))
        tr["iterations"] += 1
        if probability is not None:
            tr["probability"].append(float(probability[r]))
