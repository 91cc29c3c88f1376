"""Model presets: a network with its input size, normalisation, class names and GradCAM layer.

Every method in igos works on images in ``[0, 1]`` pixel space: a preset's ``model`` is a
:class:`Classifier` that normalises inside its ``forward`` and returns logits. The sources a preset
can come from (EfficientNet-Lite, torchvision, timm, HuggingFace, ``package.module:factory``) are
in :mod:`igos.sources`, with :func:`igos.sources.load_model`; each takes its preprocessing from the source.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from functools import lru_cache
from importlib import resources

import torch
from torch import Tensor, nn

from .core import frozen
from .errors import ModelLoadError
from .images import load_image, photo_geometry
from .outputs import logits_of, model_output, to_float32
from .targets import Geometry

__all__ = [
    "Classifier",
    "ModelPreset",
    "ModelLoadError",
    "resolve_device",
    "placed",
    "imagenet_classes",
    "frozen",
    "logits_of",
    "DTYPES",
]

#: forward-pass precisions: name -> autocast dtype (None: no autocast). ``float32`` is IEEE float32 on every device;
#: ``tf32`` is float32 whose CUDA convolutions and matrix products may use TensorFloat-32 (faster on NVIDIA GPUs
#: since Ampere, ~1e-3 relative error; the same as float32 on a CPU): :func:`igos.core.float32_math`
DTYPES = {"float32": None, "tf32": None, "bfloat16": torch.bfloat16, "float16": torch.float16}



class Classifier(nn.Module):
    """Wraps a network so that it takes ``[B, 3, H, W]`` images in ``[0, 1]`` and returns its output in a form
    igos scores (:func:`igos.outputs.model_output`: a classifier's logits, a segmenter's ``[N, C, h, w]`` logits, a
    detector's list of dicts).

    ``channels_last=True`` runs a convolutional network in the channels-last memory format
    (weights and inputs), 1.7–2.5× faster on CPUs for EfficientNet-Lite0; values are unchanged
    up to float rounding.

    :meth:`compile_inference` (``igos … --compile``) runs the passes without gradients (line searches, the
    metric's curves, RISE, ROAD) through ``torch.compile`` of the network; passes with gradients stay eager.
    """

    def __init__(self, net: nn.Module, mean: Sequence[float], std: Sequence[float], channels_last: bool = False,
                 dtype: str = "float32"):
        super().__init__()
        self.net = net
        self.channels_last = channels_last
        if channels_last:
            self.net.to(memory_format=torch.channels_last)
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))
        self.dtype = dtype
        #: run deterministic algorithms while igos runs this model (:func:`igos.core.deterministic_algorithms`):
        #: on a GPU, the same seed then gives the same map from one call to the next; slower there, no effect on CPUs
        self.deterministic = False
        self._compile_options: dict | None = None  # compile_inference's; the compiled network is made on first use
        object.__setattr__(self, "_inference", None)  # not a submodule: state_dict, children, .to() ignore it

    def compile_inference(self, on: bool = True, **options) -> Classifier:
        """Run the forward passes made without gradients through ``torch.compile(net, **options)`` (``on=False``:
        eager again). On this project's 2-core CPU, EfficientNet-Lite0's gradient-free pass was 2.75× faster
        compiled while a compiled forward+backward pass was 2.8× slower, so passes with gradients (and any hooks on
        the network's layers that they use: GradCAM, Excitation Backprop) always run eager; the first compiled
        calls of a run's input shapes compile (50–100 s here: worth it for long runs; benchmarks/torch_compile.py,
        docs/results/torch-compile.txt). Values are unchanged up to float rounding. Returns ``self``."""
        if on and not hasattr(torch, "compile"):
            raise RuntimeError("compile needs torch.compile (PyTorch 2.0 or later)")
        self._compile_options = dict(options) if on else None
        object.__setattr__(self, "_inference", None)
        return self

    @property
    def compiled(self) -> bool:
        """Whether gradient-free passes run through ``torch.compile`` (:meth:`compile_inference`)."""
        return self._compile_options is not None

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_inference"] = None  # a copy (another device: placed) compiles its own network on first use
        return state

    def _inference_net(self) -> nn.Module:
        if self._compile_options is None or torch.is_grad_enabled():
            return self.net
        if self._inference is None:
            object.__setattr__(self, "_inference", torch.compile(self.net, **self._compile_options))
        return self._inference

    @property
    def dtype(self) -> str:
        """Precision of the network's forward passes: ``float32`` (IEEE float32 on every device), ``tf32`` (float32
        with TensorFloat-32 CUDA convolutions and matrix products), or ``bfloat16``/``float16`` under autocast
        (the input, its normalisation and the returned logits stay float32)."""
        return self._dtype

    @dtype.setter
    def dtype(self, value: str) -> None:
        if value not in DTYPES:
            raise ValueError(f"dtype must be one of {', '.join(DTYPES)}, got {value!r}")
        self._dtype = value

    @property
    def tf32(self) -> bool:
        """Whether CUDA's float32 math may use TensorFloat-32 while igos runs this model (``dtype="tf32"``)."""
        return self._dtype == "tf32"

    def forward(self, images: Tensor) -> Tensor:
        x = (images - self.mean) / self.std
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        net = self._inference_net()
        autocast = DTYPES[self._dtype]
        if autocast is None:
            return model_output(net(x))
        with torch.autocast(x.device.type, dtype=autocast):
            out = model_output(net(x))
        return to_float32(out)


@dataclass
class ModelPreset:
    """A ready-to-explain model.

    Attributes:
        name: the preset's name (``efficientnet-lite0``, ``resnet50``, ``pkg.mod:factory``, …).
        model: a :class:`Classifier` (pixel-space input, logits out), in eval mode.
        input_size: ``(H, W)`` the network expects.
        class_names: one name per output class.
        gradcam_layer: dotted name (relative to ``model``) of the last spatial feature layer.
        resize: how files become inputs: ``"squash"`` (the reference protocol) or ``"crop"``.
        crop_fraction: with ``"crop"``, the centre crop's share of the resized shorter side (0.875:
            256 -> 224; torchvision's resnet50 weights use 224/232).
        interpolation: ``"bilinear"`` or ``"bicubic"`` resizing of files.
    """

    name: str
    model: Classifier
    input_size: tuple[int, int] = (224, 224)
    class_names: list[str] = field(default_factory=list)
    gradcam_layer: str | None = None
    resize: str = "squash"
    crop_fraction: float = 0.875
    interpolation: str = "bilinear"

    @property
    def device(self) -> torch.device:
        return next(self.model.buffers()).device

    def to(self, device: str | torch.device) -> ModelPreset:
        """Moves the model to ``device``, in place (igos itself moves only models it loaded: :func:`placed`)."""
        self.model.to(device)
        return self

    def read(self, path: str | os.PathLike, resize: str | None = None) -> Tensor:
        """One image file as this model's input, ``[3, H, W]`` in ``[0, 1]`` on the CPU: its size, ``resize``
        (``None``: the preset's), crop fraction and interpolation (:func:`igos.images.load_image`)."""
        return load_image(path, self.input_size, resize or self.resize, crop_fraction=self.crop_fraction,
                          interpolation=self.interpolation)

    def geometry(self, path: str | os.PathLike, resize: str | None = None) -> Geometry:
        """How :meth:`read` maps the file's pixels to the input's (:func:`igos.images.photo_geometry`), for boxes
        and masks given on the photo."""
        return photo_geometry(path, self.input_size, resize or self.resize, crop_fraction=self.crop_fraction)

    def class_name(self, index: int) -> str:
        if 0 <= index < len(self.class_names):
            return self.class_names[index]
        return str(index)


def resolve_device(device: str | torch.device | None) -> torch.device | None:
    """Where to compute: ``None`` leaves the model where it is (no move); ``"auto"`` is CUDA when available,
    else the CPU; any other name is checked (``"cuda"`` where CUDA is missing is a ``ValueError``)."""
    if device is None:
        return None
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(f"unknown device {device!r}: use cpu, cuda, cuda:1, auto, …") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} was asked for, but CUDA is not available here")
    return dev


def _same_device(a: torch.device, b: torch.device) -> bool:
    return a.type == b.type and (a.index is None or b.index is None or a.index == b.index)


def placed(preset: ModelPreset, device: str | torch.device | None) -> ModelPreset:
    """``preset`` on ``device``: itself where it already is (or ``device`` is ``None``), else a copy there, so
    that the caller's model stays where it was."""
    dev = resolve_device(device)
    if dev is None or _same_device(preset.device, dev):
        return preset
    return replace(preset, model=copy.deepcopy(preset.model).to(dev))


@lru_cache(maxsize=1)
def _imagenet_table() -> tuple[tuple[str, str], ...]:
    text = resources.files("igos").joinpath("data/imagenet_classes.tsv").read_text(encoding="utf-8")
    rows = [line.split("\t") for line in text.splitlines()[1:] if line.strip()]
    return tuple((r[1], r[2]) for r in rows)


def imagenet_classes() -> list[str]:
    """The 1000 ImageNet class names, index order."""
    return [name for _, name in _imagenet_table()]


def imagenet_wnids() -> list[str]:
    """The 1000 ImageNet WordNet ids, index order."""
    return [wnid for wnid, _ in _imagenet_table()]
