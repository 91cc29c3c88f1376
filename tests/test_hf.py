"""HuggingFace image classifiers and segmenters (``hf:``): a random ViT saved and loaded the real way, through
``igos explain`` with every method that can explain it, and clear refusals from those that cannot; a random
SegFormer explained by region."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from igos.cli import main
from igos.models import ModelLoadError
from igos.sources import load_model

transformers = pytest.importorskip("transformers", reason="HuggingFace transformers is needed for hf: models")


@pytest.fixture(scope="module")
def vit_folder(tmp_path_factory):
    """A random ViT classifier saved the HuggingFace way, with its image processor (no download)."""
    from transformers import ViTConfig, ViTForImageClassification, ViTImageProcessor

    torch.manual_seed(0)
    config = ViTConfig(image_size=32, patch_size=8, num_channels=3, hidden_size=32, num_hidden_layers=2,
                       num_attention_heads=2, intermediate_size=64, num_labels=5,
                       id2label={i: f"class{i}" for i in range(5)}, label2id={f"class{i}": i for i in range(5)})
    folder = tmp_path_factory.mktemp("vit")
    ViTForImageClassification(config).eval().save_pretrained(folder)
    ViTImageProcessor(size={"height": 32, "width": 32}, image_mean=[0.5] * 3, image_std=[0.5] * 3).save_pretrained(
        folder)
    return folder


def test_a_huggingface_vit_is_loaded_with_its_processor_and_returns_logits(vit_folder):
    preset = load_model("hf:local/vit", weights=str(vit_folder))
    assert preset.input_size == (32, 32) and preset.class_names[3] == "class3"
    out = preset.model(torch.rand(2, 3, 32, 32))
    assert out.shape == (2, 5) and out.dtype == torch.float32


@pytest.mark.parametrize("method", ["igos", "igospp", "mask", "ig", "rise", "gradient"])
def test_every_model_agnostic_method_explains_a_vit(method, vit_folder, photo, tmp_path):
    fast = {"igos": ["iterations=2", "steps=3"], "igospp": ["iterations=1", "steps=2"], "mask": ["iterations=5"],
            "ig": ["steps=4"], "rise": ["masks=32", "grid=4"]}.get(method, [])
    code = main(["explain", str(photo), "--model", "hf:local/vit", "--weights", str(vit_folder), "--method", method,
                 "--resolution", "4", "--evaluate", "--out", str(tmp_path / "o"), "--set", *fast])
    assert code == 0
    doc = json.loads((tmp_path / "o" / "results.json").read_text())
    assert doc["images"][0]["target_name"].startswith("class")


def test_gradcam_and_ebp_refuse_a_vit_naming_why(vit_folder, photo, tmp_path, capsys):
    code = main(["explain", str(photo), "--model", "hf:local/vit", "--weights", str(vit_folder), "--method",
                 "gradcam", "--out", str(tmp_path / "g")])
    assert code == 2 and "token" in capsys.readouterr().err
    code = main(["explain", str(photo), "--model", "hf:local/vit", "--weights", str(vit_folder), "--method", "ebp",
                 "--out", str(tmp_path / "e")])
    err = capsys.readouterr().err
    assert code == 2 and "Excitation Backprop has no rule for" in err and "vit" in err.lower()


def test_hf_offline_without_weights_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelLoadError, match="offline, pass a folder"):
        load_model("hf:google/vit-base-patch16-224")


@pytest.fixture(scope="module")
def segformer_folder(tmp_path_factory):
    """A random SegFormer semantic segmenter (3 classes, logits at a quarter of the input), saved the HuggingFace
    way with its image processor."""
    from transformers import SegformerConfig, SegformerForSemanticSegmentation, SegformerImageProcessor

    torch.manual_seed(0)
    config = SegformerConfig(num_encoder_blocks=2, depths=[1, 1], sr_ratios=[2, 1], hidden_sizes=[8, 16],
                             patch_sizes=[7, 3], strides=[4, 2], num_attention_heads=[1, 1], decoder_hidden_size=16,
                             num_labels=3, id2label={i: f"part{i}" for i in range(3)},
                             label2id={f"part{i}": i for i in range(3)})
    folder = tmp_path_factory.mktemp("segformer")
    SegformerForSemanticSegmentation(config).eval().save_pretrained(folder)
    SegformerImageProcessor(size={"height": 64, "width": 64}, image_mean=[0.5] * 3,
                            image_std=[0.5] * 3).save_pretrained(folder)
    return folder


def test_a_huggingface_segmenter_is_explained_by_region(segformer_folder, photo, tmp_path):
    preset = load_model("hf:local/segformer", weights=str(segformer_folder))
    out = preset.model(torch.rand(1, 3, 64, 64))
    assert out.shape == (1, 3, 16, 16) and preset.class_names == ["part0", "part1", "part2"]
    mask = np.zeros((30, 60), np.uint8)  # the photo fixture is 60x30
    mask[:, :30] = 255
    Image.fromarray(mask).save(tmp_path / "left.png")
    code = main(["explain", str(photo), "--model", "hf:local/segformer", "--weights", str(segformer_folder),
                 "--method", "gradient", "--target", f"region={tmp_path / 'left.png'}", "--out", str(tmp_path / "o")])
    assert code == 0
    rec = json.loads((tmp_path / "o" / "results.json").read_text())["images"][0]
    assert rec["target_spec"]["kind"] == "region" and rec["target_spec"]["pixels"] == 64 * 32
    assert rec["target_name"].startswith("region of part")
