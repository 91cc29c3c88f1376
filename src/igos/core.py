"""What every method and the metric share, below both: input checks, target binding, target scores, the
model's frozen state and the count of images through it. It imports nothing from igos but the model outputs and
the targets (:mod:`igos.outputs`, :mod:`igos.targets`)."""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterator
from typing import Any

import torch
from torch import Tensor, nn

from .outputs import check_finite
from .targets import Scored, bind

__all__ = ["check_images", "check_finite", "resolve_targets", "class_probability", "class_score", "SCORES",
           "scores_in_batches", "ImageCounter", "frozen", "float32_math", "deterministic_algorithms", "photo_seed"]


def check_images(images: Tensor) -> Tensor:
    """Validate a ``[B, 3, H, W]`` (or ``[3, H, W]``) float batch in ``[0, 1]``; returns ``[B, 3, H, W]``."""
    if not isinstance(images, Tensor):
        raise TypeError(f"images must be a torch.Tensor, got {type(images).__name__}")
    if images.dim() == 3:
        images = images.unsqueeze(0)
    if images.dim() != 4 or images.shape[1] != 3:
        raise ValueError(f"images must have shape [B, 3, H, W] (or [3, H, W]), got {tuple(images.shape)}")
    if images.shape[0] == 0:
        raise ValueError("images is an empty batch")
    if not images.is_floating_point():
        raise ValueError(f"images must be a float tensor with values in [0, 1], got dtype {images.dtype}")
    if not torch.isfinite(images).all():
        raise ValueError("images contain NaN or infinite values")
    lo, hi = float(images.min()), float(images.max())
    if lo < -1e-3 or hi > 1 + 1e-3:
        raise ValueError(
            f"images must be in [0, 1] pixel space (igos normalises inside the model), "
            f"got values in [{lo:.3g}, {hi:.3g}]"
        )
    return images


def class_probability(model: nn.Module, images: Tensor, targets: Tensor) -> Tensor:
    """The target's score of each image: ``[N, 3, H, W], [N] -> [N]``. For a :class:`igos.targets.Scored` model
    ``targets`` are the rows' image indices and the score is its bound target's (a class's softmax probability by
    default); for a bare classifier they are class indices, scored by their softmax probability."""
    if isinstance(model, Scored):
        return model.score(images, targets, "probability")
    logits = check_finite(model(images))
    return logits.softmax(dim=1).gather(1, targets.view(-1, 1)).squeeze(1)


#: what an optimised mask's objective measures of the target: its score ``p`` (the papers': a class's softmax
#: probability), or its log-odds ``log p − log(1 − p)`` (for a class: the logit minus the log-sum-exp of the
#: other logits), which does not saturate on confident photos (``p = σ(log-odds)``)
SCORES = ("probability", "log-odds")


def class_score(model: nn.Module, images: Tensor, targets: Tensor, kind: str = "probability") -> Tensor:
    """The target's ``kind`` score (see ``SCORES``): ``[N, 3, H, W], [N] -> [N]``."""
    if kind == "probability":
        return class_probability(model, images, targets)
    if kind != "log-odds":
        raise ValueError(f"score must be one of {', '.join(SCORES)}, got {kind!r}")
    if isinstance(model, Scored):
        return model.score(images, targets, "log-odds")
    logits = check_finite(model(images))
    own = logits.gather(1, targets.view(-1, 1))
    others = logits.scatter(1, targets.view(-1, 1), float("-inf")).logsumexp(dim=1, keepdim=True)
    return (own - others).squeeze(1)


@torch.no_grad()
def scores_in_batches(
    model: nn.Module, images: Tensor, targets: Tensor, batch_size: int, kind: str = "probability"
) -> Tensor:
    """``class_score`` without gradients, ``batch_size`` images at a time."""
    out = [
        class_score(model, images[i : i + batch_size], targets[i : i + batch_size], kind)
        for i in range(0, images.shape[0], batch_size)
    ]
    return torch.cat(out)


def resolve_targets(model: nn.Module, images: Tensor, target: Any, batch_size: int = 32) -> tuple[Scored, Tensor]:
    """``model`` with ``target`` bound to ``images`` (:func:`igos.targets.bind`), and the rows to score them with."""
    return bind(model, images, target, batch_size)


class ImageCounter:
    """Counts images that go through a model: forward-only and forward-with-gradient."""

    def __init__(self) -> None:
        self.forward_images = 0
        self.backward_images = 0

    def _hook(self, module: nn.Module, args: tuple, output: Any) -> None:
        n = args[0].shape[0] if args and isinstance(args[0], Tensor) else 0
        if torch.is_grad_enabled() and isinstance(output, Tensor) and output.requires_grad:
            self.backward_images += n
        else:
            self.forward_images += n

    @contextlib.contextmanager
    def watch(self, model: nn.Module) -> Iterator[ImageCounter]:
        handle = model.register_forward_hook(self._hook)
        try:
            yield self
        finally:
            handle.remove()


def _tf32_flags() -> list[tuple[Any, str, Any]]:
    """(owner, attribute, value if TF32 is allowed / if not) of CUDA's float32 switches: PyTorch 2.9's
    ``fp32_precision`` where it exists (mixing it with the older ``allow_tf32`` flags is an error there),
    ``allow_tf32`` before."""
    backends = torch.backends
    conv = getattr(backends.cudnn, "conv", None)
    if conv is not None and hasattr(conv, "fp32_precision"):
        return [(conv, "fp32_precision", ("tf32", "ieee")), (backends.cuda.matmul, "fp32_precision", ("tf32", "ieee"))]
    return [(backends.cudnn, "allow_tf32", (True, False)), (backends.cuda.matmul, "allow_tf32", (True, False))]


@contextlib.contextmanager
def float32_math(tf32: bool = False) -> Iterator[None]:
    """CUDA's float32 convolutions and matrix products in IEEE float32 (``tf32=False``) or TensorFloat-32 for the
    duration; the process's settings restored afterwards.

    PyTorch runs cuDNN's float32 convolutions in TF32 by default (10-bit mantissa): on an H200 that moved
    EfficientNet-Lite0's input gradients by up to ~10 % against the CPU's, and the metric's curves by ~5e-4
    (docs/results/gpu-check.md). igos's ``float32`` means IEEE float32 on every device; TF32 is the opt-in
    precision ``tf32`` (:class:`igos.models.Classifier`'s ``dtype``). CPUs ignore both."""
    flags = _tf32_flags()
    saved = [getattr(owner, name) for owner, name, _ in flags]
    try:
        for owner, name, (on, off) in flags:
            setattr(owner, name, on if tf32 else off)
        yield
    finally:
        for (owner, name, _), value in zip(flags, saved):
            setattr(owner, name, value)


@contextlib.contextmanager
def deterministic_algorithms(on: bool) -> Iterator[None]:
    """With ``on``, PyTorch's deterministic algorithms for the duration (``torch.use_deterministic_algorithms``,
    warn-only: an operation that has none warns instead of failing) and cuDNN's, without timing others; the
    process's settings restored afterwards. Without it nothing changes.

    On an H200, cuDNN's deterministic convolutions alone made a seeded explanation the same from one call to the
    next for ``auto`` at 28×28, iGOS++ and Mask, where the default algorithms moved the largest cell by 17 %, 4 % and
    11 % between two calls of one process; I-GOS still moved by 2e-3 (benchmarks/gpu_determinism.py,
    docs/results/gpu-check.md). The path gradients' ``index_add_`` adds with atomics on CUDA unless PyTorch's
    deterministic mode is on, hence that mode too. cuBLAS needs ``CUBLAS_WORKSPACE_CONFIG=:4096:8`` in the
    environment before CUDA starts (:func:`igos.load_model` sets it when asked for ``deterministic``, if unset)."""
    if not on:
        yield
        return
    cudnn = torch.backends.cudnn
    saved = cudnn.deterministic, cudnn.benchmark
    mode = torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled()
    try:
        cudnn.deterministic, cudnn.benchmark = True, False
        torch.use_deterministic_algorithms(True, warn_only=True)
        yield
    finally:
        cudnn.deterministic, cudnn.benchmark = saved
        torch.use_deterministic_algorithms(mode[0], warn_only=mode[1])


@contextlib.contextmanager
def frozen(model: nn.Module) -> Iterator[nn.Module]:
    """Eval mode and no parameter gradients for the duration; both restored afterwards. CUDA's float32 math is
    IEEE float32 meanwhile, or TF32 for a model whose ``tf32`` attribute is true (:func:`float32_math`); PyTorch's
    and cuDNN's algorithms are deterministic for a model whose ``deterministic`` attribute is true
    (:func:`deterministic_algorithms`).

    Methods differentiate only with respect to their inputs, so the model's parameters never
    accumulate ``.grad`` and backward passes skip the weight gradients.
    """
    modes = [(m, m.training) for m in model.modules()]
    flags = [(p, p.requires_grad) for p in model.parameters()]
    model.eval()
    for p, _ in flags:
        p.requires_grad_(False)
    try:
        with float32_math(getattr(model, "tf32", False) is True), \
                deterministic_algorithms(getattr(model, "deterministic", False) is True):
            yield model
    finally:
        for m, mode in modes:
            m.train(mode)
        for p, flag in flags:
            p.requires_grad_(flag)


def photo_seed(image: Tensor, seed: int) -> int:
    """A seed from the photo's pixels and ``seed``: the same photo draws the same map in any batch."""
    digest = hashlib.blake2b(image.detach().float().cpu().numpy().tobytes(), digest_size=8,
                             key=str(int(seed)).encode()).digest()
    return int.from_bytes(digest, "little") & (2**63 - 1)
