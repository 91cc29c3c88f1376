"""Finding layers by dotted name or module, and capturing their activations with hooks that are
always removed (a context manager), even when the forward pass fails."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import Tensor, nn

__all__ = ["resolve_layer", "last_spatial_layer", "capture", "wrapped"]


def wrapped(model: nn.Module) -> list[nn.Module]:
    """``model`` and the models it wraps, outermost first, each under ``net`` (the bound target's wrapper, a
    Classifier, the network)."""
    chain = [model]
    while isinstance(getattr(chain[-1], "net", None), nn.Module):
        chain.append(chain[-1].net)
    return chain


def resolve_layer(model: nn.Module, layer: str | nn.Module) -> nn.Module:
    """A submodule of ``model`` from a dotted name (relative to ``model`` or to its wrapped
    ``net``) or a module object that belongs to ``model``."""
    if isinstance(layer, nn.Module):
        if not any(m is layer for m in model.modules()):
            raise ValueError(f"layer {type(layer).__name__} is not a submodule of the model")
        return layer
    for root in wrapped(model):
        try:
            return root.get_submodule(layer)
        except AttributeError:
            continue
    names = [n for n, _ in model.named_modules() if n][-8:]
    raise ValueError(f"no layer named {layer!r} in the model; its last layers are: {', '.join(names)}")


def last_spatial_layer(model: nn.Module, image: Tensor) -> str:
    """Dotted name of the last module (called once per forward) whose output is a
    ``[N, C, h, w]`` map with ``h, w > 1``: the usual GradCAM layer."""
    calls: dict[str, int] = {}
    order: list[tuple[str, tuple]] = []
    handles = []

    def hook(name):
        def fn(module, args, output):
            calls[name] = calls.get(name, 0) + 1
            if isinstance(output, Tensor):
                order.append((name, tuple(output.shape)))
        return fn

    try:
        for name, module in model.named_modules():
            if name:
                handles.append(module.register_forward_hook(hook(name)))
        with torch.no_grad():
            model(image[:1])
    finally:
        for h in handles:
            h.remove()
    spatial = [i for i, (n, s) in enumerate(order) if len(s) == 4 and s[2] > 1 and s[3] > 1 and calls[n] == 1]
    tokens = [n for n, s in order[spatial[-1] + 1 if spatial else 0 :] if len(s) == 3 and s[1] > 1]
    if tokens:
        where = f"after its last spatial layer {order[spatial[-1]][0]!r}" if spatial else "and no spatial layer"
        raise ValueError(f"the model has token layers ({tokens[-1]!r} gives [N, tokens, channels]) {where}: it is "
                         "a transformer, and GradCAM needs a late [N, C, h, w] feature map. igos does not reshape "
                         "tokens to a grid; name a spatial layer with layer=..., or use a model-agnostic method "
                         "(igos, igospp, mask, rise, ig, gradient)")
    if not spatial:
        raise ValueError("found no layer with a spatial [N, C, h, w] output; name one with layer=...")
    return order[spatial[-1]][0]


@contextlib.contextmanager
def capture(module: nn.Module) -> Iterator[list[Tensor]]:
    """Record ``module``'s outputs (one per call) while the block runs; the hook is removed after."""
    outputs: list[Tensor] = []
    handle = module.register_forward_hook(lambda m, a, out: outputs.append(out))
    try:
        yield outputs
    finally:
        handle.remove()
