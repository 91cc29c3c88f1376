"""The method contract: one :class:`MethodSpec` per saliency method, registered once.

Everything that needs to know about methods reads this registry: the CLI's choices, the
pipeline (``igos explain``, ``igos bench``, ``igos.explain``), the tables' names and order and
the docs table. A method is its maths only:

    fn(model, images, targets, *, baseline, size, seed, options) -> Attribution

called by :meth:`MethodSpec.__call__` with checked inputs: ``images`` ``[B, 3, H, W]`` in ``[0, 1]``,
``model`` the user's wrapped with the bound target (:class:`igos.targets.Scored`: ``model.score(x, rows)`` is the
target's scalar, top-1 class where none was given, checked against the model's output), ``targets`` ``[B]`` the
rows ``0..B-1`` that index it (repeat them with the images), ``baseline`` (the reference blur
unless given; checked against the images' shape, device and dtype; ``None`` for methods that take none),
``size`` (the checked mask size for methods of any resolution, else ``None``), and ``options``, an instance
of the method's options dataclass (:mod:`igos.methods.options`), validated and resolved at ``size``. The call
runs ``fn`` with the model frozen (eval mode, no parameter gradients, both restored), counts the images that
go through the model, and returns the :class:`Attribution` with the targets and the options it ran with. When
the device runs out of memory, ``fn`` runs again at half the batch size (down to 1), with a warning.
"""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import torch
from torch import Tensor, nn

from ..core import ImageCounter, check_images, frozen, resolve_targets
from ..perturb import blurred_baseline, check_resolution
from ..resources import AUTO, auto_batch_size
from ..targets import target_labels
from .common import Attribution
from .options import MethodOptions, Size

__all__ = ["MethodSpec", "register", "REGISTRY", "get_method", "method_names", "RESOLUTION_KINDS",
           "methods_markdown_table", "MethodFn"]

#: which heatmap resolutions a method can honestly produce
RESOLUTION_KINDS = {
    "any": "any `s` from 1 to the input size",
    "input": "input only",
    "layer": "its layer's",
}

MethodFn = Callable[..., Attribution]
_PARAMETERS = ("model", "images", "targets", "baseline", "size", "seed", "options")


@dataclass(frozen=True)
class MethodSpec:
    """One registered method.

    Attributes:
        name: the name used by the CLI, ``igos.explain`` and the bench store (``igos``, ``gradcam``, …).
        fn: the method's maths (see the module docstring for its shape).
        display: the name in tables and reports (``I-GOS``, ``Grad-CAM``).
        resolutions: ``"any"`` (honours ``resolution``), ``"input"`` (input size only) or
            ``"layer"`` (its layer's size only): the bench runs the last two once per image.
        schema: the options dataclass (a :class:`~igos.methods.options.MethodOptions`): every option, its
            default, its per-resolution rule and its documentation.
        reference: the paper, for the docs table.
        cost: forward / forward+backward images per image at the defaults, for the docs table.
        resolution_note: what the docs table adds to the resolution kind (e.g. the layer's size).
        preset_options: option name -> :class:`~igos.models.ModelPreset` attribute that supplies it
            when the user gives none (GradCAM's ``layer`` from ``gradcam_layer``).
        baseline: the method uses the baseline image ``I0`` (default: the reference blur).
        default_resolution: the mask side of a method of any resolution when none is given (``None``: the
            input's size).
        requires: ``(module, what to install)`` pairs: optional packages the method needs, checked before any
            image is read (:meth:`check_requirements`).
    """

    name: str
    fn: MethodFn
    display: str
    resolutions: str
    schema: type[MethodOptions] = MethodOptions
    reference: str = ""
    cost: str = ""
    resolution_note: str = ""
    preset_options: Mapping[str, str] = field(default_factory=dict)
    baseline: bool = False
    default_resolution: int | None = None
    requires: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        if self.resolutions not in RESOLUTION_KINDS:
            raise ValueError(f"method {self.name!r}: resolutions must be one of {', '.join(RESOLUTION_KINDS)}, "
                             f"got {self.resolutions!r}")
        if not (isinstance(self.schema, type) and issubclass(self.schema, MethodOptions)):
            raise TypeError(f"method {self.name!r}: its options must be a MethodOptions dataclass, got "
                            f"{self.schema!r}")
        params = tuple(inspect.signature(self.fn).parameters)
        if params != _PARAMETERS:
            raise TypeError(f"method {self.name!r}: its function must take ({', '.join(_PARAMETERS)}), the "
                            f"options as one dataclass, not ({', '.join(params)})")

    @property
    def options(self) -> dict[str, Any]:
        """Every option with its default, in field order."""
        return self.schema.defaults()

    def make_options(self, options: Mapping[str, Any]) -> MethodOptions:
        """The options dataclass from ``options``: an unknown name is an ``UnknownOptionError`` naming the method
        and listing its options, a bad value an ``InvalidOptionError`` naming the option and what is allowed."""
        return self.schema.make(self.name, options)

    def check_requirements(self) -> None:
        """A ``MissingDependencyError`` saying what to install when a package this method needs is missing."""
        import importlib.util

        from ..errors import MissingDependencyError

        for module, install in self.requires:
            if importlib.util.find_spec(module) is None:
                raise MissingDependencyError(f"method {self.name!r} needs {module}: {install}")

    def check_options(self, options: Mapping[str, Any]) -> None:
        """Names and values of ``options`` checked, before any image is read (raises as :meth:`make_options`)."""
        self.make_options(options)

    def mask_size(self, resolution: int | tuple[int, int] | None, input_size: tuple[int, int] | None = None
                  ) -> Size | None:
        """The mask size a run uses: ``resolution`` (or the default) checked against ``input_size`` when known;
        ``None`` for methods of a native resolution, or when the default is the input's size and it is unknown."""
        if self.resolutions != "any":
            return None
        resolution = self.default_resolution if resolution is None else resolution
        if resolution is None:
            return input_size
        if input_size is None:
            return (resolution, resolution) if isinstance(resolution, int) else tuple(resolution)
        return check_resolution(resolution, input_size)

    def resolved_options(self, options: Mapping[str, Any], resolution: int | tuple[int, int] | None = None
                         ) -> MethodOptions:
        """The options a run at ``resolution`` uses, per-resolution defaults filled in (the call's own rule)."""
        return self.make_options(options).resolved(self.mask_size(resolution))

    def effective_options(self, options: Mapping[str, Any], resolution: int | tuple[int, int] | None = None
                          ) -> dict[str, Any]:
        """Every option a run at ``resolution`` uses, as a dict."""
        return self.resolved_options(options, resolution).as_dict()

    def hashed_options(self, options: Mapping[str, Any], resolution: int | tuple[int, int] | None = None
                       ) -> dict[str, Any]:
        """:meth:`effective_options` less the options that hold their hash-neutral value."""
        return self.resolved_options(options, resolution).hashed()

    def with_preset(self, options: Mapping[str, Any], preset: Any) -> dict[str, Any]:
        """``options`` plus what the model preset supplies for this method (e.g. GradCAM's layer)."""
        out = dict(options)
        for option, attribute in self.preset_options.items():
            value = getattr(preset, attribute, None)
            if out.get(option) is None and value is not None:
                out[option] = value
        return out

    def _baseline(self, images: Tensor, baseline: Tensor | None) -> Tensor | None:
        if not self.baseline:
            return None
        if baseline is None:
            return blurred_baseline(images)
        if not isinstance(baseline, Tensor) or baseline.shape != images.shape:
            shape = tuple(baseline.shape) if isinstance(baseline, Tensor) else type(baseline).__name__
            raise ValueError(f"method {self.name!r}: the baseline must have the images' shape "
                             f"{tuple(images.shape)}, got {shape}")
        if baseline.device != images.device or baseline.dtype != images.dtype:
            raise ValueError(f"method {self.name!r}: the baseline is {baseline.dtype} on {baseline.device}, the "
                             f"images {images.dtype} on {images.device}; give it on the images' device and dtype")
        return baseline

    def __call__(self, model: nn.Module, images: Tensor, target: Any = None, *, baseline: Tensor | None = None,
                 resolution: int | tuple[int, int] | None = None, seed: int = 0, **options: Any) -> Attribution:
        """Run the method: options and inputs checked, the model frozen and counted, targets resolved."""
        opts = self.make_options(options)
        images = check_images(images)
        size = self.mask_size(resolution, tuple(images.shape[-2:]))
        opts = opts.resolved(size)
        baseline = self._baseline(images, baseline)
        counter = ImageCounter()
        with frozen(model):
            if opts.batch_size == AUTO:  # measured outside the counter: the probe is not the method's cost
                opts = opts.replace(batch_size=auto_batch_size(model, images))
            with counter.watch(model):
                scored, rows = resolve_targets(model, images, target, opts.batch_size)
                while True:
                    try:
                        result = self.fn(scored, images, rows, baseline=baseline, size=size, seed=seed, options=opts)
                        break
                    except torch.OutOfMemoryError:
                        if opts.batch_size <= 1:
                            raise
                        opts = backed_off(self.name, opts)
        result.forward_images += counter.forward_images
        result.backward_images += counter.backward_images
        result.target, result.bound, result.options = target_labels(scored.bound, images.device), scored.bound, opts
        return result


def backed_off(method: str, options: MethodOptions) -> MethodOptions:
    """``options`` with half the batch size, after the device ran out of memory (the method runs again from the
    start: its maps equal those of a run at the smaller batch size, up to float rounding); a warning says so."""
    smaller = max(1, options.batch_size // 2)
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    warnings.warn(f"{method}: out of memory at batch_size={options.batch_size}; running again at {smaller}",
                  ResourceWarning, stacklevel=3)
    return options.replace(batch_size=smaller)


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
