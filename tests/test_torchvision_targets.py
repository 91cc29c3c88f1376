"""torchvision's detectors (Faster R-CNN, RetinaNet, FCOS) and segmenters (DeepLabV3, FCN) with random weights,
explained end to end by box and by region. torchvision does not import beside this machine's torch 2.13 CPU
build: these tests skip there and run in the side environment (docs/results/side-environment.txt)."""

from __future__ import annotations

import os

import pytest
import skimage
import torch

import igos
from igos.images import load_image
from igos.models import Classifier, ModelPreset
from igos.targets import Box, Region, bind

try:
    import torchvision  # noqa: F401
    from torchvision.models import detection, segmentation
except Exception as exc:  # an ImportError, or torchvision's operators failing to load beside this torch
    pytest.skip(f"torchvision does not import here ({str(exc).splitlines()[0][:120]})", allow_module_level=True)

SIDE = 160


def photo() -> torch.Tensor:
    return load_image(os.path.join(os.path.dirname(skimage.__file__), "data", "astronaut.png"), SIDE).unsqueeze(0)


DETECTORS = {
    "fasterrcnn": lambda: detection.fasterrcnn_mobilenet_v3_large_fpn(weights=None, weights_backbone=None,
                                                                       num_classes=5, box_score_thresh=0.0),
    "retinanet": lambda: detection.retinanet_resnet50_fpn(weights=None, weights_backbone=None, num_classes=5,
                                                          score_thresh=0.0),
    "fcos": lambda: detection.fcos_resnet50_fpn(weights=None, weights_backbone=None, num_classes=5, score_thresh=0.0),
}


@pytest.mark.parametrize("name", list(DETECTORS))
def test_a_torchvision_detector_is_explained_by_box(name):
    torch.manual_seed(0)
    net = DETECTORS[name]()
    net.transform.min_size, net.transform.max_size = (SIDE,), SIDE  # no resizing to 800 pixels: fast on a CPU
    preset = ModelPreset(name, Classifier(net.eval(), (0.0, 0.0, 0.0), (1.0, 1.0, 1.0)), (SIDE, SIDE))
    x = photo()
    with torch.no_grad():
        out = preset.model(x)[0]
    assert len(out["boxes"]) > 0, "a random detector with no score threshold still detects"
    best = int(out["scores"].argmax())
    target = Box(out["boxes"][best].tolist(), int(out["labels"][best]))
    scored, rows = bind(preset.model, x, target)
    with torch.no_grad():  # IoU 1 with itself: the detection's own score
        assert float(scored.score(x, rows)) == pytest.approx(float(out["scores"][best]), rel=1e-4)
    for method in ("gradient", "igos"):
        options = {"iterations": 2, "steps": 2} if method == "igos" else {}
        result = igos.explain(x, preset, method, resolution=7, target=target, evaluate=True, **options)
        e = result[0]
        assert torch.isfinite(e.saliency).all() and e.target_spec["kind"] == "box"
        assert e.curves["deletion"][0] == pytest.approx(float(scored.score(x, rows)), abs=1e-4)


SEGMENTERS = {
    "deeplabv3": lambda: segmentation.deeplabv3_mobilenet_v3_large(weights=None, weights_backbone=None,
                                                                   num_classes=4, aux_loss=False),
    "fcn": lambda: segmentation.fcn_resnet50(weights=None, weights_backbone=None, num_classes=4, aux_loss=False),
}


@pytest.mark.parametrize("name", list(SEGMENTERS))
def test_a_torchvision_segmenter_is_explained_by_region(name):
    torch.manual_seed(0)
    net = SEGMENTERS[name]().eval()
    preset = ModelPreset(name, Classifier(net, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)), (SIDE, SIDE))
    x = photo()
    with torch.no_grad():
        logits = preset.model(x)  # the dict's "out", at the input's size
    assert logits.shape == (1, 4, SIDE, SIDE)
    cls = int(logits.argmax(1).flatten().bincount(minlength=4).argmax())
    target = Region(cls)  # where the clean photo is predicted as the most predicted class
    for method in ("gradient", "igos"):
        options = {"iterations": 2, "steps": 2} if method == "igos" else {}
        e = igos.explain(x, preset, method, resolution=7, target=target, evaluate=True, **options)[0]
        assert torch.isfinite(e.saliency).all() and e.target_spec["kind"] == "region" and e.target == cls
        assert e.curves["deletion"][0] == pytest.approx(e.probability, abs=1e-4)
