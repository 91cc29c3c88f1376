"""timm and torchvision sources. Both need torchvision, which does not import beside this machine's
torch 2.13 CPU build: these tests skip here with that reason and run in the side environment
(torch 2.14.1 + torchvision 0.29.1; see docs/results/side-environment.txt)."""

import json

import pytest

from igos.cli import main
from igos.sources import load_model


def _needs(name):
    try:
        return __import__(name)
    except Exception as exc:  # ImportError, or torchvision's operator registration failing on this torch
        pytest.skip(f"{name} does not import here ({type(exc).__name__}: {str(exc)[:80]}); run in the side environment")


def test_torchvision_takes_each_weight_sets_own_transforms():
    _needs("torchvision")
    preset = load_model("resnet50", weights="random")
    assert preset.input_size == (224, 224) and preset.resize == "crop"
    assert preset.crop_fraction == pytest.approx(224 / 232)  # resnet50's DEFAULT weights resize to 232, not 256
    assert preset.model.mean.flatten().tolist() == pytest.approx([0.485, 0.456, 0.406])
    assert preset.gradcam_layer == "net.layer4"


@pytest.mark.parametrize("name, mean", [("timm:vit_tiny_patch16_224", [0.5, 0.5, 0.5]),
                                        ("timm:convnext_atto", [0.485, 0.456, 0.406])])
def test_timm_models_bring_their_pretrained_config(name, mean):
    timm = _needs("timm")
    preset = load_model(name, weights="random")
    cfg = timm.data.resolve_data_config({}, model=timm.create_model(name.removeprefix("timm:"), pretrained=False))
    assert preset.input_size == tuple(cfg["input_size"][1:])
    assert preset.crop_fraction == pytest.approx(cfg["crop_pct"]) and preset.interpolation == cfg["interpolation"]
    assert preset.model.mean.flatten().tolist() == pytest.approx(list(cfg["mean"]))
    assert list(cfg["mean"]) == pytest.approx(mean)


@pytest.mark.parametrize("name, methods", [
    ("timm:vit_tiny_patch16_224", ["igos", "mask", "rise", "ig", "gradient"]),
    ("timm:convnext_atto", ["igos", "gradcam", "gradient"]),
])
def test_timm_models_through_igos_explain(name, methods, photo, tmp_path):
    _needs("timm")
    fast = {"igos": ["iterations=2", "steps=3"], "mask": ["iterations=3"], "rise": ["masks=16"], "ig": ["steps=2"]}
    for method in methods:
        out = tmp_path / method
        code = main(["explain", str(photo), "--model", name, "--weights", "random", "--method", method,
                     "--resolution", "7", "--out", str(out), "--set", *fast.get(method, [])])
        assert code == 0, method
        assert json.loads((out / "results.json").read_text())["images"]


def test_gradcam_on_a_timm_vit_is_refused(photo, tmp_path, capsys):
    _needs("timm")
    code = main(["explain", str(photo), "--model", "timm:vit_tiny_patch16_224", "--weights", "random",
                 "--method", "gradcam", "--out", str(tmp_path / "g")])
    assert code == 2 and "token" in capsys.readouterr().err


def test_timm_offline_without_weights_fails_fast_and_clearly(monkeypatch):
    _needs("timm")
    # huggingface_hub reads HF_HUB_OFFLINE when it is imported: set both the variable and its constant
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    from igos.models import ModelLoadError

    with pytest.raises(ModelLoadError, match="--weights"):
        load_model("timm:vit_tiny_patch16_224")
