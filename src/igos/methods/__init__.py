"""Saliency methods, one module each; each module holds its options dataclass, its maths and its
:class:`~igos.methods.registry.MethodSpec` (``SPEC``), registered here.

Adding a method: write ``methods/<name>.py`` with an options dataclass (:mod:`igos.methods.options`), the maths
``fn(model, images, targets, *, baseline, size, seed, options) -> Attribution`` and ``SPEC = MethodSpec(...)``,
and register it below; the CLI choices, the bench, the tables, the docs table and the contract test
(tests/test_contract.py) pick it up from the registry.
"""

from __future__ import annotations

from .common import Attribution
from .controls import CENTER as _CENTER
from .controls import EDGES as _EDGES
from .controls import RANDOM as _RANDOM
from .ebp import SPEC as _EBP
from .ebp import excitation_backprop
from .gradcam import SPEC as _GRADCAM
from .gradcam import gradcam
from .gradient import SPEC as _GRADIENT
from .gradient import gradient
from .igos import SPEC as _IGOS
from .igos import igos
from .igospp import SPEC as _IGOSPP
from .igospp import igospp
from .integrated_gradients import SPEC as _IG
from .integrated_gradients import integrated_gradients
from .mask import SPEC as _MASK
from .mask import mask
from .options import MethodOptions
from .registry import METHODS, REGISTRY, MethodFn, MethodSpec, get_method, method_names, register
from .rise import SPEC as _RISE
from .rise import rise

# Registration order is the tables' row order (the model-blind controls, cheap baselines, the optimisers last).
for _spec in (_RANDOM, _CENTER, _EDGES, _EBP, _GRADIENT, _IG, _RISE, _GRADCAM, _MASK, _IGOSPP, _IGOS):
    register(_spec)

__all__ = ["Attribution", "METHODS", "REGISTRY", "MethodFn", "MethodOptions", "MethodSpec", "get_method",
           "method_names", "register", "igos", "igospp", "mask", "integrated_gradients", "gradcam", "rise",
           "gradient", "excitation_backprop"]
