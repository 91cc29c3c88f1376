"""Models are left as they were: a preset in train mode, with some parameters frozen, is unchanged and still on
its device after every public call (its mode, its requires_grad flags, its weights and BatchNorm statistics,
no .grad), and device=None computes where the model is."""

import pytest
import torch
from torch import nn

import igos
from igos.captum import IGOS, quantus_explain
from igos.methods import METHODS
from igos.models import Classifier, ModelPreset, placed, resolve_device

FAST = {"igos": dict(iterations=2, steps=3), "igospp": dict(iterations=1, steps=2), "mask": dict(iterations=3),
        "ig": dict(steps=4), "rise": dict(masks=16, grid=4)}


def norm_net() -> nn.Module:
    """A small CNN with BatchNorm and dropout: train mode would change its statistics and its outputs."""
    g = torch.Generator().manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.BatchNorm2d(6), nn.ReLU(), nn.Conv2d(6, 8, 3, padding=1),
                        nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Dropout(0.5), nn.Linear(32, 5))
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.5)
        net[1].running_mean.copy_(torch.randn(6, generator=g) * 0.1)
    return net


def snapshot(preset: ModelPreset) -> dict:
    m = preset.model
    return {"modes": [mod.training for mod in m.modules()],
            "flags": [p.requires_grad for p in m.parameters()],
            "state": {k: v.clone() for k, v in m.state_dict().items()},
            "grads": [p.grad for p in m.parameters()],
            "device": preset.device}


def assert_unchanged(preset: ModelPreset, before: dict) -> None:
    after = snapshot(preset)
    assert after["modes"] == before["modes"] and after["flags"] == before["flags"]
    assert after["device"] == before["device"]
    assert all(g is None for g in after["grads"])
    for k, v in before["state"].items():
        assert torch.equal(after["state"][k], v), f"{k} changed"


@pytest.fixture
def trained_preset():
    model = Classifier(norm_net(), (0.5, 0.5, 0.5), (0.25, 0.25, 0.25))
    model.train()
    model.net[8].bias.requires_grad_(False)
    return ModelPreset("norm", model, (32, 32), list("abcde"), gradcam_layer="net.3")


def test_every_public_call_leaves_the_model_as_it_was(trained_preset, images, tmp_path):
    before = snapshot(trained_preset)
    for name in METHODS:
        METHODS[name](trained_preset.model, images[:2], resolution=4, **(
            {"layer": "net.3"} if name == "gradcam" else FAST.get(name, {})))
        assert_unchanged(trained_preset, before)
        igos.explain(images[:2], trained_preset, name, resolution=4, evaluate=True, **FAST.get(name, {}))
        assert_unchanged(trained_preset, before)
    sal = torch.rand(2, 4, 4)
    igos.evaluate(trained_preset, images[:2], sal)
    igos.deletion_insertion(trained_preset.model, images[:2], sal)
    IGOS(trained_preset.model).attribute(images[:1], target=0, resolution=4, **FAST["igos"])
    quantus_explain(trained_preset.model, images[:1].numpy(), [0], resolution=4, **FAST["igos"])
    assert_unchanged(trained_preset, before)


def test_device_none_computes_where_the_model_is(trained_preset, images):
    assert resolve_device(None) is None and placed(trained_preset, None) is trained_preset
    assert placed(trained_preset, "cpu") is trained_preset  # already there: no copy
    e = igos.explain(images[:1], trained_preset, "gradient")[0]
    assert e.saliency.device.type == "cpu"
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            resolve_device("cuda")
        assert resolve_device("auto") == torch.device("cpu")


def test_a_tensor_needs_its_model(images):
    with pytest.raises(ValueError, match="needs the model"):
        igos.explain(images[:1], method="gradient")


def test_explain_refuses_a_preset_on_ray_before_reading_anything(trained_preset, images):
    from igos.distributed import RayOptions

    with pytest.raises(TypeError, match="by name"):
        igos.explain_stream(images[:1], trained_preset, "gradient", ray=RayOptions())  # no next() needed


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA: run python -m pytest -m gpu on a CUDA machine")
@pytest.mark.gpu
def test_a_cpu_preset_stays_on_the_cpu_when_cuda_is_asked_for(trained_preset, images):
    before = snapshot(trained_preset)
    e = igos.explain(images[:1], trained_preset, "gradient", device="cuda")[0]
    assert e.saliency.shape == (32, 32)
    assert_unchanged(trained_preset, before)
