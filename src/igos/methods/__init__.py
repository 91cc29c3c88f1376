"""Saliency methods, one module each, registered once here (see :mod:`igos.methods.registry` for
the contract: ``fn(model, images, target=None, *, [baseline], [resolution], [seed], batch_size, **options)
-> Attribution``, options = the keyword-only parameters with defaults).

Adding a method: write ``methods/<name>.py`` with that function, add one ``register(MethodSpec(...))``
below; the CLI choices, the bench, the tables, the docs table and the contract test
(tests/test_contract.py) pick it up from the registry.
"""

from __future__ import annotations

import inspect
from typing import Any

from .common import Attribution
from .ebp import excitation_backprop
from .gradcam import gradcam
from .gradient import gradient
from .igos import default_start, igos, resolve_regularisation
from .igospp import FULL, igospp, resolve_profile
from .integrated_gradients import integrated_gradients
from .mask import mask
from .registry import METHODS, REGISTRY, MethodFn, MethodSpec, get_method, method_names, register
from .rise import rise

__all__ = ["Attribution", "METHODS", "REGISTRY", "MethodFn", "MethodSpec", "get_method", "method_names", "register",
           "igos", "igospp", "mask", "integrated_gradients", "gradcam", "rise", "gradient", "excitation_backprop"]


def _side(resolution: int | tuple[int, int] | None) -> int:
    """The mask side the per-resolution defaults are read at: the larger one, I-GOS's default for ``None``."""
    side = inspect.signature(igos).parameters["resolution"].default if resolution is None else resolution
    return max(side) if isinstance(side, (tuple, list)) else int(side)


def _igos_lambda(options: dict[str, Any], resolution: int | tuple[int, int] | None) -> dict[str, Any]:
    """λ1, λ2 as used: the given values, I-GOS's per-resolution default for those left ``None``."""
    l1, tv = resolve_regularisation(_side(resolution), options.get("l1"), options.get("tv"))
    return {**options, "l1": l1, "tv": tv}


def _igos_defaults(options: dict[str, Any], resolution: int | tuple[int, int] | None) -> dict[str, Any]:
    """I-GOS's per-resolution defaults as used (also iGOS++'s): λ1, λ2 and the mask's start value."""
    out = _igos_lambda(options, resolution)
    if out.get("start") is None:
        out["start"] = default_start(_side(resolution))
    return out


def _igospp_defaults(options: dict[str, Any], resolution: int | tuple[int, int] | None) -> dict[str, Any]:
    """iGOS++'s per-resolution defaults as used: I-GOS's λ1, λ2 and start, and the search profile."""
    out = _igos_defaults(options, resolution)
    steps = out.get("steps", inspect.signature(igospp).parameters["steps"].default)
    return {**out, **resolve_profile(_side(resolution), steps, lean=out.get("lean"),
                                     **{k: out.get(k) for k in FULL})}


#: options of the descent driver added after bench rows were stored, at the values that behave as before
_SEARCH_NEUTRAL = {"grow_only_on_first": False, "max_trials": None, "stop_on_failure": False}

# Registration order is the tables' row order (cheap baselines first, the optimisers last).
register(MethodSpec("ebp", excitation_backprop, "Excitation BP", "any", "Excitation Backprop (Zhang et al. 2016)",
                    "0 / 1", resolution_note="input by default; coarser maps sum the winning probability per cell"))
register(MethodSpec("gradient", gradient, "Gradient", "input", "gradient (Simonyan et al. 2014)", "0 / 1"))
register(MethodSpec("ig", integrated_gradients, "Integrated Gradients", "input",
                    "Integrated Gradients (Sundararajan et al. 2017), via Captum", "0 / 20"))
register(MethodSpec("rise", rise, "RISE", "input", "RISE (Petsiuk et al. 2018)", "4000 / 0"))
register(MethodSpec("gradcam", gradcam, "GradCAM", "layer", "Grad-CAM (Selvaraju et al. 2017)", "0 / 1",
                    resolution_note="7×7 on EfficientNet-Lite0 and ResNet-50, 14×14 on VGG19",
                    preset_options={"layer": "gradcam_layer"}))
register(MethodSpec("mask", mask, "Mask", "any", "Mask / meaningful perturbation (Fong & Vedaldi 2017)", "0 / 500"))
register(MethodSpec("igospp", igospp, "iGOS++", "any", "iGOS++ (Khorram et al. 2021)",
                    "4 IG passes per iteration", resolve=_igospp_defaults,
                    hash_neutral={**_SEARCH_NEUTRAL, "lean": False, "steps_single": None, "tie_break": 0.0}))
register(MethodSpec("igos", igos, "I-GOS", "any", "I-GOS (Qi et al. 2020)", "≈ 70 / ≈ 70 at the defaults (28×28)",
                    resolve=_igos_defaults, hash_neutral=_SEARCH_NEUTRAL))
