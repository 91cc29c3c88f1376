"""The shared perturbation core: blurred baseline, compositing, mask upsampling, regularisers.

Conventions used across igos:

* images are float tensors ``[B, 3, H, W]`` with values in ``[0, 1]`` (pixel space, before the
  model's own normalisation);
* a *mask* ``M`` is ``[B, 1, s_h, s_w]`` (or ``[B, s_h, s_w]``) with values in ``[0, 1]``:
  **1 keeps a pixel, 0 replaces it by the baseline**;
* a *saliency* map is ``[B, h, w]``, higher = more important (for mask methods ``1 - M``).
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "blur_kernel_size",
    "gaussian_blur",
    "blurred_baseline",
    "composite",
    "upsample",
    "interpolation_matrix",
    "l1_loss",
    "tv_loss",
    "btv_loss",
    "edge_weights",
    "regulariser",
    "regulariser_gradient",
    "cell_pool",
]


def blur_kernel_size(height: int, width: int) -> tuple[int, float]:
    """Kernel size and sigma of the reference baseline blur for an input of this size.

    51×51 with sigma 50 for inputs under 500 px; the reference code uses 151 (≥ 500 px) and
    201 (≥ 800 px) with sigma = kernel − 1 for larger inputs.
    """
    side = max(height, width)
    if side >= 800:
        return 201, 200.0
    if side >= 500:
        return 151, 150.0
    return 51, 50.0


def _gaussian_kernel1d(size: int, sigma: float, device, dtype) -> Tensor:
    # OpenCV's getGaussianKernel for sigma > 0: exp(-(i - (size-1)/2)^2 / (2 sigma^2)), normalised.
    center = (size - 1) / 2.0
    x = torch.arange(size, dtype=torch.float64) - center
    k = torch.exp(-(x**2) / (2.0 * sigma * sigma))
    return (k / k.sum()).to(device=device, dtype=dtype)


def _reflect101_index(n: int, pad: int, device) -> Tensor:
    """Indices of a reflect-101 padded axis (``gfedcb|abcdefgh|gfedcba``), any pad length."""
    idx = torch.arange(-pad, n + pad, device=device)
    if n == 1:
        return torch.zeros_like(idx)
    period = 2 * (n - 1)
    idx = torch.remainder(idx, period)
    return torch.where(idx >= n, period - idx, idx)


def gaussian_blur(images: Tensor, kernel_size: int = 51, sigma: float = 50.0) -> Tensor:
    """Separable Gaussian blur with reflect-101 borders (OpenCV ``GaussianBlur``'s default).

    Args:
        images: ``[B, C, H, W]`` float tensor.
        kernel_size: odd kernel side.
        sigma: standard deviation in pixels.

    Returns:
        The blurred images, same shape, device and dtype.
    """
    if images.dim() != 4:
        raise ValueError(f"gaussian_blur expects [B, C, H, W] images, got shape {tuple(images.shape)}")
    if kernel_size < 1 or kernel_size % 2 == 0:
        raise ValueError(f"kernel_size must be a positive odd integer, got {kernel_size}")
    b, c, h, w = images.shape
    pad = kernel_size // 2
    k = _gaussian_kernel1d(kernel_size, sigma, images.device, images.dtype)
    x = images.reshape(b * c, 1, h, w)
    x = x.index_select(2, _reflect101_index(h, pad, images.device))
    x = F.conv2d(x, k.view(1, 1, -1, 1))
    x = x.index_select(3, _reflect101_index(w, pad, images.device))
    x = F.conv2d(x, k.view(1, 1, 1, -1))
    return x.reshape(b, c, h, w)


def blurred_baseline(images: Tensor, kernel_size: int | None = None, sigma: float | None = None) -> Tensor:
    """The I-GOS baseline ``I0``: the images blurred in pixel space (see ``blur_kernel_size``)."""
    if kernel_size is None or sigma is None:
        k, s = blur_kernel_size(images.shape[-2], images.shape[-1])
        kernel_size = kernel_size or k
        sigma = sigma or s
    return gaussian_blur(images, kernel_size, sigma)


def composite(a: Tensor, b: Tensor, mask: Tensor) -> Tensor:
    """``Φ(A, B, m) = A ⊙ m + B ⊙ (1 − m)``; ``mask`` ``[B, 1, H, W]`` broadcasts over channels."""
    return b + (a - b) * mask


def interpolation_matrix(cells: int, pixels: int, *, device=None, dtype=torch.float32) -> Tensor:
    """``[pixels, cells]``: linear interpolation with ``align_corners=True`` along one axis (pixel ``i`` sits at
    cell coordinate ``i·(cells − 1)/(pixels − 1)`` and takes its two neighbouring cells' values, weighted by
    distance); each row sums to 1."""
    pos = torch.arange(pixels, dtype=torch.float64) * ((cells - 1) / (pixels - 1) if pixels > 1 else 0.0)
    lo = pos.floor().long().clamp(max=cells - 1)
    hi = (lo + 1).clamp(max=cells - 1)
    frac = pos - lo
    u = torch.zeros(pixels, cells, dtype=torch.float64)
    rows = torch.arange(pixels)
    u.index_put_((rows, lo), 1.0 - frac, accumulate=True)
    u.index_put_((rows, hi), frac, accumulate=True)
    return u.to(device=device, dtype=dtype)


def upsample(mask: Tensor, size: tuple[int, int]) -> Tensor:
    """Bilinear upsampling (``align_corners=True``) of ``[B, 1, s_h, s_w]`` masks to ``size``.

    Computed as ``U_h · M · U_wᵀ`` (:func:`interpolation_matrix`), the numbers ``F.interpolate`` gives up to
    rounding: the backward pass of two matrix products is deterministic on every device, where PyTorch documents
    CUDA's backward of ``F.interpolate`` as nondeterministic (it adds with atomics). With it and cuDNN's
    deterministic algorithms, ``auto``, iGOS++ and Mask gave the same map twice on an H200
    (docs/results/gpu-check.md, "Third run"); on this project's CPU it is also faster: 13.5 ms against 36.7 ms for
    80 masks' forward and backward at 28 → 224, I-GOS at 28×28 1.03× end to end (benchmarks/upsample_cost.py)."""
    if mask.dim() == 3:
        mask = mask.unsqueeze(1)
    if tuple(mask.shape[-2:]) == tuple(size):
        return mask
    (h, w), (s_h, s_w) = size, mask.shape[-2:]
    u_h = _interpolation_on(int(s_h), int(h), mask.device, mask.dtype)
    u_w = _interpolation_on(int(s_w), int(w), mask.device, mask.dtype)
    return u_h @ mask @ u_w.T


@functools.lru_cache(maxsize=64)
def _interpolation_on(cells: int, pixels: int, device: torch.device, dtype: torch.dtype) -> Tensor:
    """:func:`interpolation_matrix`, made once per device (no copy to a GPU, and no wait for it, each iteration)."""
    return interpolation_matrix(cells, pixels, device=device, dtype=dtype)


def l1_loss(mask: Tensor) -> Tensor:
    """``mean |1 − M|`` per image: ``[B, 1, s, s] -> [B]``."""
    return (1.0 - mask).abs().flatten(1).mean(1)


def tv_loss(mask: Tensor, beta: float = 2.0) -> Tensor:
    """Total variation ``mean |ΔM_rows|^β + mean |ΔM_cols|^β`` per image: ``[B, 1, s, s] -> [B]``."""
    d_rows = (mask[..., 1:, :] - mask[..., :-1, :]).abs()
    d_cols = (mask[..., :, 1:] - mask[..., :, :-1]).abs()
    total = torch.zeros(mask.shape[0], device=mask.device, dtype=mask.dtype)
    if d_rows.numel():
        total = total + d_rows.pow(beta).flatten(1).mean(1)
    if d_cols.numel():
        total = total + d_cols.pow(beta).flatten(1).mean(1)
    return total


def regulariser(mask: Tensor, l1: float, tv: float, beta: float = 2.0) -> Tensor:
    """``λ1 · mean|1 − M| + λ2 · TV_β(M)`` per image ``[B]``."""
    return l1 * l1_loss(mask) + tv * tv_loss(mask, beta)


def regulariser_gradient(mask: Tensor, l1: float, tv: float) -> tuple[Tensor, Tensor]:
    """Value ``[B]`` and gradient ``[B, 1, s_h, s_w]`` of the regulariser."""
    leaf = mask.detach().requires_grad_(True)
    with torch.enable_grad():
        value = regulariser(leaf, l1, tv)
        (grad,) = torch.autograd.grad(value.sum(), leaf)
    return value.detach(), grad


def edge_weights(images: Tensor, sigma: float = 0.01) -> tuple[Tensor, Tensor]:
    """Edge-aware weights ``exp(−(ΔI)²/σ)`` of the bilateral TV, rows and columns, ``[B, 1, ·, ·]``.

    ``images`` are ``[0, 1]`` pixels (iGOS++ passes them so); squared differences are averaged over channels.
    """
    d_rows = (images[..., 1:, :] - images[..., :-1, :]).pow(2).mean(1, keepdim=True)
    d_cols = (images[..., :, 1:] - images[..., :, :-1]).pow(2).mean(1, keepdim=True)
    return torch.exp(-d_rows / sigma), torch.exp(-d_cols / sigma)


def btv_loss(mask: Tensor, weights: tuple[Tensor, Tensor], size: tuple[int, int]) -> Tensor:
    """Bilateral TV (iGOS++): mean of the low-res TV and the edge-weighted TV of ``U(M)``."""
    up = upsample(mask, size)
    w_rows, w_cols = weights
    d_rows = (up[..., 1:, :] - up[..., :-1, :]).pow(2) * w_rows
    d_cols = (up[..., :, 1:] - up[..., :, :-1]).pow(2) * w_cols
    edge_tv = d_rows.flatten(1).mean(1) + d_cols.flatten(1).mean(1)
    return 0.5 * (tv_loss(mask) + edge_tv)


def check_resolution(resolution: int | tuple[int, int], size: tuple[int, int]) -> tuple[int, int]:
    """Validate a heatmap resolution against the input size; returns ``(s_h, s_w)``."""
    if isinstance(resolution, int) and not isinstance(resolution, bool):
        res = (resolution, resolution)
    else:
        try:
            res = tuple(int(r) for r in resolution)  # type: ignore[union-attr]
        except (TypeError, ValueError):
            raise ValueError(f"resolution must be an int or (h, w), got {resolution!r}") from None
        if len(res) != 2:
            raise ValueError(f"resolution must be an int or (h, w), got {resolution!r}")
    for r, n in zip(res, size):
        if r < 1 or r > n:
            raise ValueError(
                f"impossible resolution {resolution!r}: each side must be between 1 and the "
                f"input size {size[0]}x{size[1]}"
            )
    return res  # type: ignore[return-value]


def cell_pool(maps: Tensor, size: tuple[int, int], reduce: str = "sum") -> Tensor:
    """Pixel values ``[B, H, W]`` gathered into the metric's cells ``[B, s_h, s_w]``: pixel ``(y, x)`` belongs to
    cell ``(⌊y·s_h/H⌋, ⌊x·s_w/W⌋)``, the block nearest-neighbour upsampling gives that cell; ``reduce`` is
    ``"sum"`` or ``"mean"`` over the cell's pixels."""
    b, h, w = maps.shape
    s_h, s_w = size
    rows = torch.div(torch.arange(h, device=maps.device) * s_h, h, rounding_mode="floor")
    cols = torch.div(torch.arange(w, device=maps.device) * s_w, w, rounding_mode="floor")
    cell = (rows.view(-1, 1) * s_w + cols.view(1, -1)).flatten()
    flat = torch.zeros(b, s_h * s_w, device=maps.device, dtype=maps.dtype)
    flat.index_add_(1, cell, maps.reshape(b, -1))
    if reduce == "mean":
        flat = flat / torch.bincount(cell, minlength=s_h * s_w).to(maps.dtype)
    elif reduce != "sum":
        raise ValueError(f"reduce must be 'sum' or 'mean', got {reduce!r}")
    return flat.view(b, s_h, s_w)
