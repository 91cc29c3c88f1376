"""The machine's resources as a run sees them: the automatic batch size (the largest that fits in the device's
free memory by a measured per-image cost) and the peak memory a run reports."""

from __future__ import annotations

import sys
import weakref
from typing import Any

import torch
from torch import Tensor, nn

__all__ = ["AUTO", "CPU_BATCH", "MAX_BATCH", "MEMORY_FRACTION", "auto_batch_size", "batch_for_memory",
           "per_image_bytes", "peak_memory", "resolve_batch_size"]

#: the value of ``batch_size`` that asks for :func:`auto_batch_size`
AUTO = "auto"
#: the batch size on a CPU: there memory is rarely the limit, and past 8–16 images a call the cost per image
#: stops falling (EfficientNet-Lite0 on 2 cores: 19 ms a forward image at 16, docs/results/profile-methods.txt)
CPU_BATCH = 16
#: the largest automatic batch (more images per call buys nothing measurable and delays the first result)
MAX_BATCH = 256
#: the share of the device's free memory the automatic batch may fill (the rest: the method's own tensors, the
#: allocator's fragmentation, other processes)
MEMORY_FRACTION = 0.6

_measured: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # model -> {(shape, dtype, device): bytes}


def batch_for_memory(free_bytes: int, per_image: int, fraction: float = MEMORY_FRACTION, cap: int = MAX_BATCH) -> int:
    """The largest batch whose images, at ``per_image`` bytes each, fit in ``fraction`` of ``free_bytes``; at
    least 1, at most ``cap``."""
    if per_image <= 0:
        return cap
    return int(max(1, min(cap, (free_bytes * fraction) // per_image)))


def per_image_bytes(model: nn.Module, images: Tensor, probe: int = 2) -> int:
    """Device memory one image costs in a forward and backward pass through ``model`` (CUDA): the peak that
    ``probe`` copies of the first image add, over ``probe``. Measured once per model, input shape, dtype and
    device."""
    key = (tuple(images.shape[1:]), images.dtype, str(images.device))
    try:
        cache = _measured.setdefault(model, {})
    except TypeError:  # a model that cannot be weakly referenced: measured every time
        cache = {}
    if key in cache:
        return cache[key]
    from .outputs import logits_of, model_output

    device = images.device
    torch.cuda.synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    before = torch.cuda.memory_allocated(device)
    x = images[:1].detach().repeat(probe, 1, 1, 1).requires_grad_(True)
    with torch.enable_grad():
        out = model_output(model(x))
        logits = out if isinstance(out, Tensor) else logits_of(out)
        (grad,) = torch.autograd.grad(logits.float().sum(), x)
    del out, logits, grad, x
    torch.cuda.synchronize(device)
    cost = max(1, (torch.cuda.max_memory_allocated(device) - before) // probe)
    cache[key] = int(cost)
    return int(cost)


def auto_batch_size(model: nn.Module, images: Tensor) -> int:
    """The automatic batch size for ``images`` through ``model``: on CUDA the largest that fits
    (:func:`batch_for_memory` of the free memory and :func:`per_image_bytes`), elsewhere :data:`CPU_BATCH`.
    A model whose probe fails (an output it cannot sum) gets :data:`CPU_BATCH`; a device that then runs out of
    memory makes the method back off (half the batch, with a warning)."""
    if images.device.type != "cuda":
        return CPU_BATCH
    try:
        per_image = per_image_bytes(model, images)
    except torch.OutOfMemoryError:
        torch.cuda.empty_cache()
        return 1
    except Exception:  # noqa: BLE001 - the probe is advice; the method's own call reports a real problem
        return CPU_BATCH
    free, _ = torch.cuda.mem_get_info(images.device)
    return batch_for_memory(free, per_image)


def resolve_batch_size(batch_size: int | str, model: nn.Module, images: Tensor) -> int:
    """``batch_size``, or :func:`auto_batch_size` for ``"auto"``."""
    return auto_batch_size(model, images) if batch_size == AUTO else int(batch_size)


def peak_memory(device: Any = None) -> dict[str, float]:
    """The process's peak memory so far in MB: ``rss_mb`` (resident set; left out where the platform does not
    say) and, where CUDA was used (on ``device``, default the current CUDA device), ``cuda_mb`` (the most ever
    allocated by tensors there)."""
    out: dict[str, float] = {}
    try:
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KB on Linux, bytes on macOS
        out["rss_mb"] = round(peak / (2**20 if sys.platform == "darwin" else 2**10), 1)
    except (ImportError, OSError):
        pass
    dev = torch.device(device) if device is not None else None
    used = torch.cuda.is_available() and torch.cuda.is_initialized()
    if used and (dev is None or dev.type == "cuda"):
        out["cuda_mb"] = round(torch.cuda.max_memory_allocated(dev) / 2**20, 1)
    return out
