"""Excitation Backprop (Zhang et al. 2016): marginal winning probabilities (MWP).

Top-down, a neuron passes its winning probability to its inputs in proportion to their
excitatory contributions: for ``y_i = Σ_j W_ij x_j``,

    P(x_j) = Σ_i P(y_i) · (x_j W_ij)⁺ / Σ_j' (x_j' W_ij')⁺

(with ``x ≥ 0``, the paper's ``x_j W⁺_ij``; the positive-contribution form also covers the
negative inputs of linear bottlenecks, e.g. EfficientNet's). It starts from ``P = 1`` on the
target's logit and ends at the input pixels; the map is the probability mass per pixel (summed
over colour channels), or per cell summed over the cell's pixels at a coarser ``resolution``:
the probability that the winning pixel lies in the cell. Mass is conserved layer to layer
wherever a neuron has an excitatory input.

Supported, recognised while the model runs (a torch function mode, so no graph tracing):
convolutions and linear layers (batch norm that follows one is folded into it: the sign of its
scale selects the excitatory weights), ReLU / ReLU6 / hardtanh and dropout (pass P through),
average pooling (a linear layer with positive weights), max pooling (winner takes all),
residual sums (P split by the operands' positive parts), padding and reshapes, and arithmetic
with constants (the input normalisation). Anything else on the path from the input to the
logits raises :class:`UnsupportedLayerError` naming the operation and the module.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.overrides import TorchFunctionMode

from ..errors import UnsupportedLayerError
from ..perturb import cell_pool
from .common import Attribution, check_finite
from .options import MethodOptions, Size
from .registry import MethodSpec

__all__ = ["excitation_backprop", "EBPOptions", "SPEC", "UnsupportedLayerError", "winning_probabilities"]

_EPS = 1e-12


class _Rule(torch.autograd.Function):
    """Returns ``out`` in the forward pass; maps ``P_out`` to ``P_in`` with ``rule`` backwards."""

    @staticmethod
    def forward(ctx, x: Tensor, out: Tensor, rule: Callable[[Tensor], Tensor]) -> Tensor:
        ctx.rule = rule
        return out.clone()

    @staticmethod
    def backward(ctx, p_out: Tensor):
        return ctx.rule(p_out), None, None


class _Split(torch.autograd.Function):
    """Residual sum: ``P`` split between the operands by their positive parts."""

    @staticmethod
    def forward(ctx, a: Tensor, b: Tensor) -> Tensor:
        ctx.save_for_backward(a, b)
        return a + b

    @staticmethod
    def backward(ctx, p_out: Tensor):
        a, b = ctx.saved_tensors
        pa, pb = a.clamp(min=0), b.clamp(min=0)
        total = pa + pb
        share = torch.where(total > 0, pa / total.clamp(min=_EPS), torch.full_like(total, 0.5))
        return p_out * share, p_out * (1 - share)


def _excitation(linear: Callable[[Tensor, Tensor], Tensor], x: Tensor, weight: Tensor | None,
                sign: Tensor | None) -> Callable[[Tensor], Tensor]:
    """The MWP rule of a linear map ``linear(x, W)`` (weights optional, e.g. pooling)."""

    def rule(p_out: Tensor) -> Tensor:
        w = weight
        if w is not None and sign is not None:
            w = w * sign.view(-1, *([1] * (w.dim() - 1)))
        xp = x.detach().clamp(min=0).requires_grad_(True)
        xn = (-x.detach()).clamp(min=0).requires_grad_(True)
        with torch.enable_grad():
            if w is None:
                z = linear(xp, None)
                parts = [xp]
            else:
                z = linear(xp, w.clamp(min=0)) + linear(xn, (-w).clamp(min=0))
                parts = [xp, xn]
            s = torch.where(z > 0, p_out / z.clamp(min=_EPS), torch.zeros_like(z))
            grads = torch.autograd.grad((z * s.detach()).sum(), parts)
        return sum(p.detach() * g for p, g in zip(parts, grads))

    return rule


_PASS = {F.relu, torch.relu, Tensor.relu, F.relu6, F.hardtanh, F.dropout, torch.dropout, Tensor.clamp,
         torch.clamp, F.relu_, torch.relu_, Tensor.relu_, F.hardtanh_}
# ops whose ordinary gradient is already the right P routing (reshapes, padding, max pooling)
_ROUTE = {Tensor.view, Tensor.reshape, torch.reshape, torch.flatten, Tensor.flatten, Tensor.contiguous,
          Tensor.clone, Tensor.to, Tensor.float, F.pad, torch.squeeze, Tensor.squeeze, torch.unsqueeze,
          Tensor.unsqueeze, F.max_pool2d, F.max_pool1d, F.adaptive_max_pool2d, torch.max_pool2d,
          Tensor.permute, Tensor.transpose, torch.transpose, Tensor.__getitem__, Tensor.expand,
          torch._C._nn.pad if hasattr(torch._C._nn, "pad") else F.pad}
_CONST_ARITH = {Tensor.__add__, Tensor.__radd__, Tensor.__sub__, Tensor.__rsub__, Tensor.__mul__,
                Tensor.__rmul__, Tensor.__truediv__, torch.add, torch.sub, torch.mul, torch.div, Tensor.add,
                Tensor.sub, Tensor.mul, Tensor.div}
_ADDS = {Tensor.__add__, Tensor.__radd__, torch.add, Tensor.add, Tensor.__iadd__, Tensor.add_}


def _needs(t: Any) -> bool:
    return isinstance(t, Tensor) and t.requires_grad


class _EBPMode(TorchFunctionMode):
    def __init__(self, where: Callable[[], str]):
        super().__init__()
        self.where = where
        self.error: UnsupportedLayerError | None = None

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        if not _needs(out):
            return out
        tensors = [a for a in list(args) + list(kwargs.values()) if _needs(a)]
        x = tensors[0] if tensors else None
        name = getattr(func, "__name__", str(func))
        if func in (F.conv2d, F.conv1d, F.linear):
            weight = args[1] if len(args) > 1 else kwargs["weight"]
            extra = args[3:] if len(args) > 3 else ()
            kw = {k: v for k, v in kwargs.items() if k not in ("input", "weight", "bias")}
            def base(i: Tensor, w: Tensor) -> Tensor:
                return func(i, w, None, *extra, **kw)

            info: dict[str, Any] = {"sign": None}
            y = _Rule.apply(x, out.detach(), _lazy_rule(base, x, weight.detach(), info))
            y._ebp_info = info
            return y
        if func is F.batch_norm:
            inp = args[0]
            info = getattr(inp, "_ebp_info", None)
            if info is None:
                raise UnsupportedLayerError(f"Excitation Backprop: batch norm in {self.where()} does not follow a "
                                            "convolution or linear layer, so it cannot be folded")
            weight = args[3] if len(args) > 3 else kwargs.get("weight")
            var = args[2] if len(args) > 2 else kwargs["running_var"]
            scale = (weight if weight is not None else torch.ones_like(var)) / torch.sqrt(var + 1e-5)
            info["sign"] = torch.where(scale < 0, -1.0, 1.0).to(var.dtype).detach()
            return _Rule.apply(inp, out.detach(), lambda p: p)
        if func in (F.avg_pool2d, F.adaptive_avg_pool2d, F.avg_pool1d, torch.mean, Tensor.mean):
            extra = args[1:]
            kw = dict(kwargs)
            return _Rule.apply(x, out.detach(), _excitation(lambda i, _w: func(i, *extra, **kw), x, None, None))
        if func in _PASS:
            return _Rule.apply(x, out.detach(), lambda p: p)
        if func in _ROUTE:
            return out
        if func in _ADDS and len(tensors) == 2:
            a, b = args[0], args[1]
            if isinstance(a, Tensor) and isinstance(b, Tensor) and a.shape == b.shape:
                return _Split.apply(a, b)
        if func in _CONST_ARITH and len(tensors) == 1:
            return _Rule.apply(x, out.detach(), lambda p, s=x.shape: p.sum_to_size(s) if p.shape != s else p)
        # kept: an operator (``**``) turns a TypeError into NotImplemented, and Python then reports its own
        self.error = UnsupportedLayerError(
            f"Excitation Backprop has no rule for '{name}' in layer {self.where()}; supported: convolutions, "
            "linear layers, batch norm after them, ReLU/ReLU6, average and max pooling, residual sums, reshapes"
        )
        raise self.error


def _lazy_rule(base, x, weight, info):
    def rule(p_out):
        return _excitation(base, x, weight, info["sign"])(p_out)

    return rule


@contextlib.contextmanager
def _module_tracker(model: nn.Module) -> Iterator[Callable[[], str]]:
    stack: list[str] = []
    handles = []

    def enter(label: str) -> Callable[..., None]:
        def hook(module, args) -> None:
            stack.append(label)
        return hook

    def leave(module, args, output) -> None:
        if stack:
            stack.pop()

    for name, module in model.named_modules():
        handles.append(module.register_forward_pre_hook(enter(f"{name or '<model>'} ({type(module).__name__})")))
        handles.append(module.register_forward_hook(leave))
    try:
        yield lambda: stack[-1] if stack else "<model>"
    finally:
        for h in handles:
            h.remove()


def winning_probabilities(model: nn.Module, images: Tensor, targets: Tensor) -> Tensor:
    """MWP of every input value ``[B, 3, H, W]`` for the targets (each image's map sums to ≤ 1)."""
    bound = getattr(model, "bound", None)
    if bound is not None and not bound.has_units:
        bound.units(None, targets)  # raises: says why Excitation Backprop cannot start from this target
    x = images.detach().clone().requires_grad_(True)
    with _module_tracker(model) as where, torch.enable_grad():
        mode = _EBPMode(where)
        try:
            with mode:
                logits = model(x)
        except TypeError:
            if mode.error is not None:
                raise mode.error from None
            raise
        check_finite(logits)
        start = (bound.units(logits, targets) if bound is not None
                 else torch.zeros_like(logits).scatter_(1, targets.view(-1, 1), 1.0))
        (p,) = torch.autograd.grad(logits, x, grad_outputs=start)
    return p


@dataclass(frozen=True)
class EBPOptions(MethodOptions):
    """Excitation Backprop's options.

    Attributes:
        batch_size: images per model call.
    """


def _excitation_backprop(model: nn.Module, images: Tensor, targets: Tensor, *, baseline: None, size: Size,
                         seed: int, options: EBPOptions) -> Attribution:
    (h, w), (s_h, s_w) = images.shape[-2:], size
    maps = []
    for xb, tb in zip(images.split(options.batch_size), targets.split(options.batch_size)):
        p = winning_probabilities(model, xb, tb).sum(1)
        if (s_h, s_w) != (h, w):  # the winning probability's mass per cell (the metric's blocks)
            p = cell_pool(p, (s_h, s_w), "sum")
        maps.append(p.detach())
    return Attribution(torch.cat(maps))


SPEC = MethodSpec("ebp", _excitation_backprop, "Excitation BP", "any", EBPOptions,
                  reference="Excitation Backprop (Zhang et al. 2016)", cost="0 / 1",
                  resolution_note="input by default; coarser maps sum the winning probability per cell")


def excitation_backprop(model: nn.Module, images: Tensor, target: int | Sequence[int] | Tensor | None = None, *,
                        resolution: int | tuple[int, int] | None = None, **options: Any) -> Attribution:
    """Excitation Backprop saliency ``[B, s_h, s_w]``: winning probability per cell (higher = more important);
    the input's resolution unless ``resolution`` is given; ``options``: ``batch_size``."""
    return SPEC(model, images, target, resolution=resolution, **options)
