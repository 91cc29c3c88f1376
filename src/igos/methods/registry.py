"""The method contract: one :class:`MethodSpec` per saliency method, registered once.

Everything that needs to know about methods reads this registry: the CLI's choices, the
pipeline (``igos explain``, ``igos bench``, ``igos.explain``), the tables' names and order and
the docs table. A method is a plain function

    fn(model, images, target=None, *, [baseline=None,] [resolution=...,] [seed=0,] batch_size=16, **its options)
        -> Attribution

whose keyword-only parameters with defaults *are* its options: the registry reads them from the
signature, so an option and its default are written down exactly once. ``baseline``,
``resolution`` and ``seed`` are the *common inputs*: the pipeline always has them, and passes each
one only to the methods whose signature takes it. Any other name is an option, and an unknown
option is an error naming the method and its valid options.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from torch import Tensor, nn

from .common import Attribution

__all__ = ["MethodSpec", "register", "REGISTRY", "get_method", "method_names", "COMMON_INPUTS", "RESOLUTION_KINDS",
           "methods_markdown_table"]

#: inputs every method call receives from the pipeline, passed only where the signature takes them
COMMON_INPUTS = ("baseline", "resolution", "seed")

#: which heatmap resolutions a method can honestly produce
RESOLUTION_KINDS = {
    "any": "any `s` from 1 to the input size",
    "input": "input only",
    "layer": "its layer's",
}

MethodFn = Callable[..., Attribution]


@dataclass(frozen=True)
class MethodSpec:
    """One registered method.

    Attributes:
        name: the name used by the CLI, ``igos.explain`` and the bench store (``igos``, ``gradcam``, …).
        fn: the method function (see the module docstring for its shape).
        display: the name in tables and reports (``I-GOS``, ``Grad-CAM``).
        resolutions: ``"any"`` (honours ``resolution``), ``"input"`` (input size only) or
            ``"layer"`` (its layer's size only): the bench runs the last two once per image.
        reference: the paper, for the docs table.
        cost: forward / forward+backward images per image at the defaults, for the docs table.
        resolution_note: what the docs table adds to the resolution kind (e.g. the layer's size).
        preset_options: option name -> :class:`~igos.models.ModelPreset` attribute that supplies it
            when the user gives none (GradCAM's ``layer`` from ``gradcam_layer``).
        resolve: optional ``(options, resolution) -> options``: fills options whose default depends
            on the resolution (I-GOS's λ per resolution), so that a run records what it used.
        hash_neutral: options added after bench rows were stored, each with the value that behaves as
            before: while an option holds it, the bench leaves it out of the settings hash (stored rows stay
            valid); any other value is hashed.
    """

    name: str
    fn: MethodFn
    display: str
    resolutions: str
    reference: str = ""
    cost: str = ""
    resolution_note: str = ""
    preset_options: Mapping[str, str] = field(default_factory=dict)
    resolve: Callable[[dict[str, Any], int | tuple[int, int] | None], dict[str, Any]] | None = None
    hash_neutral: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.resolutions not in RESOLUTION_KINDS:
            raise ValueError(f"method {self.name!r}: resolutions must be one of {', '.join(RESOLUTION_KINDS)}, "
                             f"got {self.resolutions!r}")
        params = inspect.signature(self.fn).parameters
        if "batch_size" not in params:
            raise TypeError(f"method {self.name!r}: every method takes a batch_size option (model calls per batch)")
        if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
            raise TypeError(f"method {self.name!r} takes **kwargs: unknown options would be swallowed; "
                            "name every option as a keyword-only parameter with a default")
        if self.resolutions == "any" and "resolution" not in params:
            raise TypeError(f"method {self.name!r} claims any resolution but takes no resolution parameter")

    @property
    def inputs(self) -> tuple[str, ...]:
        """The common inputs (``baseline``, ``resolution``, ``seed``) this method's signature takes."""
        params = inspect.signature(self.fn).parameters
        return tuple(n for n in COMMON_INPUTS if n in params)

    @property
    def options(self) -> dict[str, Any]:
        """Every option with its default, in signature order (the common inputs excluded)."""
        return {name: p.default for name, p in inspect.signature(self.fn).parameters.items()
                if p.kind is inspect.Parameter.KEYWORD_ONLY and p.default is not inspect.Parameter.empty
                and name not in COMMON_INPUTS}

    def check_options(self, options: Mapping[str, Any]) -> None:
        """``ValueError`` naming the method and its valid options if ``options`` has an unknown name."""
        valid = self.options
        unknown = [k for k in options if k not in valid]
        if not unknown:
            return
        hint = ""
        common = [k for k in unknown if k in COMMON_INPUTS]
        if common:
            hint = f" ({', '.join(common)} is not an option: it is given to every method by the call itself)"
        listing = ", ".join(f"{k}={v!r}" for k, v in valid.items())
        raise ValueError(f"unknown option(s) {', '.join(map(repr, unknown))} for method {self.name!r}{hint}; "
                         f"its options are: {listing}")

    def effective_options(self, options: Mapping[str, Any], resolution: int | tuple[int, int] | None = None
                          ) -> dict[str, Any]:
        """Every option the method runs with: the defaults overridden by ``options``, then ``resolve``d."""
        self.check_options(options)
        out = {**self.options, **options}
        return self.resolve(out, resolution) if self.resolve is not None else out

    def hashed_options(self, options: Mapping[str, Any], resolution: int | tuple[int, int] | None = None
                       ) -> dict[str, Any]:
        """:meth:`effective_options` less the ``hash_neutral`` options that hold their neutral value."""
        return {k: v for k, v in self.effective_options(options, resolution).items()
                if not (k in self.hash_neutral and v == self.hash_neutral[k])}

    def with_preset(self, options: Mapping[str, Any], preset: Any) -> dict[str, Any]:
        """``options`` plus what the model preset supplies for this method (e.g. GradCAM's layer)."""
        out = dict(options)
        for option, attribute in self.preset_options.items():
            value = getattr(preset, attribute, None)
            if out.get(option) is None and value is not None:
                out[option] = value
        return out

    def __call__(self, model: nn.Module, images: Tensor, target: Any = None, *, baseline: Tensor | None = None,
                 resolution: int | tuple[int, int] | None = None, seed: int = 0, **options: Any) -> Attribution:
        """Run the method the way the pipeline does: options checked, common inputs passed where taken."""
        self.check_options(options)
        common = {"baseline": baseline, "resolution": resolution, "seed": seed}
        kwargs = {k: common[k] for k in self.inputs if common[k] is not None}
        return self.fn(model, images, target, **kwargs, **options)


REGISTRY: dict[str, MethodSpec] = {}


def register(spec: MethodSpec) -> MethodSpec:
    """Add a method to the registry (its name must be new); returns it."""
    if spec.name in REGISTRY:
        raise ValueError(f"a method named {spec.name!r} is already registered")
    REGISTRY[spec.name] = spec
    return spec


def get_method(name: str) -> MethodSpec:
    """The registered method ``name``; ``ValueError`` naming the choices otherwise."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown method {name!r}; choose one of: {', '.join(REGISTRY)}") from None


def method_names() -> list[str]:
    """Registered names, in registration order (the tables' row order)."""
    return list(REGISTRY)


def methods_markdown_table() -> str:
    """The methods table of docs/methods.md, made from the registry (a test keeps the docs in step)."""
    lines = ["| name | method | resolutions it produces | cost per image (forward / forward+backward images) |",
             "|---|---|---|---|"]
    for spec in REGISTRY.values():
        kind = RESOLUTION_KINDS[spec.resolutions] + (f" ({spec.resolution_note})" if spec.resolution_note else "")
        lines.append(f"| `{spec.name}` | {spec.reference} | {kind} | {spec.cost} |")
    return "\n".join(lines)


#: read-only view, for code that only looks
METHODS = MappingProxyType(REGISTRY)
