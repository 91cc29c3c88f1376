"""Saliency methods, one module each, all with the signature
``method(model, images, target=None, *, baseline=None, resolution=..., seed=0, batch_size=..., **options)
-> Attribution``."""

from __future__ import annotations

from .common import Attribution, MethodFn
from .ebp import excitation_backprop
from .gradcam import gradcam
from .gradient import gradient
from .igos import igos
from .igospp import igospp
from .integrated_gradients import integrated_gradients
from .mask import mask
from .rise import rise

__all__ = ["Attribution", "METHODS", "RESOLUTIONS", "get_method", "igos", "igospp", "mask", "integrated_gradients",
           "gradcam", "rise", "gradient", "excitation_backprop"]

#: method name (as used by the CLI and ``igos.explain``) -> function
METHODS: dict[str, MethodFn] = {
    "igos": igos,
    "igospp": igospp,
    "mask": mask,
    "ig": integrated_gradients,
    "gradcam": gradcam,
    "rise": rise,
    "gradient": gradient,
    "ebp": excitation_backprop,
}

#: which heatmap resolutions a method can honestly produce: "any" (the ``resolution`` option),
#: "input" (the input's own size only) or "layer" (its layer's size only)
RESOLUTIONS: dict[str, str] = {
    "igos": "any",
    "igospp": "any",
    "mask": "any",
    "ig": "input",
    "gradcam": "layer",
    "rise": "input",
    "gradient": "input",
    "ebp": "any",
}


def get_method(name: str) -> MethodFn:
    """The method function registered under ``name``; ``ValueError`` naming the choices otherwise."""
    try:
        return METHODS[name]
    except KeyError:
        raise ValueError(f"unknown method {name!r}; choose one of: {', '.join(METHODS)}") from None
