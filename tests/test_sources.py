"""Model sources: outputs that hold logits, factory arguments, overrides, non-square inputs and maps,
mixed precision, HuggingFace classifiers (random weights, saved and loaded the real way)."""

import sys
from collections import OrderedDict

import pytest
import torch
from PIL import Image

import igos
from igos.cli import main
from igos.models import ModelLoadError, logits_of
from igos.sources import load_model


def test_logits_are_found_in_tensors_tuples_dicts_and_model_outputs():
    z = torch.randn(2, 5)

    class Out:
        logits = z

    for out in (z, (z, z * 0), [z], {"logits": z, "aux": 1}, OrderedDict(logits=z), Out()):
        assert logits_of(out) is z
    for bad, words in ((torch.randn(2, 5, 3, 3), "shape (2, 5, 3, 3)"), ({"features": z}, "keys ['features']"),
                       ("text", "str")):
        with pytest.raises(TypeError, match="needs \\[N, classes\\] logits") as err:
            logits_of(bad)
        assert words in str(err.value)


@pytest.mark.parametrize("factory", ["returns_tuple", "returns_dict"])
def test_models_returning_tuples_or_dicts_are_explained(factory, photo, tmp_path):
    code = main(["explain", str(photo), "--model", f"tinymodels:{factory}", "--resolution", "7", "--out",
                 str(tmp_path / "o"), "--set", "iterations=2", "steps=3"])
    assert code == 0 and len(igos.load_explanations(tmp_path / "o").records) == 1


def test_explain_records_the_precision_it_ran_in(photo, tmp_path):
    import json

    code = main(["explain", str(photo), "--model", "tinymodels:tiny_classifier", "--method", "gradient", "--dtype",
                 "tf32", "--out", str(tmp_path / "o")])
    assert code == 0
    doc = json.loads((tmp_path / "o" / "results.json").read_text())
    assert doc["dtype"] == "tf32" and doc["compile"] is False and doc["deterministic"] is False
    assert len(doc["images"]) == 1


def test_explain_deterministic_loads_a_deterministic_model_and_records_it(photo, tmp_path, monkeypatch):
    import json

    import igos.api as api

    loaded = []
    real = api.load_model
    monkeypatch.setattr(api, "load_model", lambda *a, **k: loaded.append(real(*a, **k)) or loaded[-1])
    code = main(["explain", str(photo), "--model", "tinymodels:tiny_classifier", "--method", "gradient",
                 "--deterministic", "--out", str(tmp_path / "o")])
    assert code == 0 and [p.model.deterministic for p in loaded] == [True]
    assert json.loads((tmp_path / "o" / "results.json").read_text())["deterministic"] is True


def test_a_model_without_logits_is_refused_clearly(photo, tmp_path, capsys):
    code = main(["explain", str(photo), "--model", "tinymodels:returns_no_logits", "--out", str(tmp_path / "o")])
    assert code == 2 and "keys ['features']" in capsys.readouterr().err


def test_factory_keyword_arguments_and_overrides(photo, tmp_path):
    preset = load_model("tinymodels:sized_classifier", model_args={"classes": 3, "width": 8}, mean=[0.1, 0.2, 0.3],
                        std=[0.5, 0.5, 0.5], input_size=(32, 48))
    assert preset.input_size == (32, 48) and preset.model.mean.flatten().tolist() == pytest.approx([0.1, 0.2, 0.3])
    assert preset.model(torch.rand(1, 3, 32, 48)).shape == (1, 3)
    with pytest.raises(ModelLoadError, match="does not take the arguments"):
        load_model("tinymodels:sized_classifier", model_args={"colours": 3})
    code = main(["explain", str(photo), "--model", "tinymodels:sized_classifier", "--model-arg", "classes=3",
                 "width=8", "--mean", "0.1", "0.2", "0.3", "--input-size", "32x48", "--resolution", "4x6",
                 "--evaluate", "--out", str(tmp_path / "o"), "--set", "iterations=2", "steps=3"])
    assert code == 0
    rec = igos.load_explanations(tmp_path / "o").records[0]
    assert rec["saliency"].shape == (4, 6) and rec["resolution"] == [4, 6] and rec["target"] in range(3)
    assert Image.open(tmp_path / "o" / "wide.png").size == (60, 30)  # the overlay keeps the photo's aspect


def test_bench_runs_non_square_resolutions(photo, tmp_path):
    from igos import tables
    from igos.store import ResultStore

    code = main(["bench", str(photo.parent), "--models", "tinymodels:tiny_classifier", "--methods", "igos", "ebp",
                 "--resolutions", "7", "4x8", "--out", str(tmp_path / "run"), "--set", "igos.iterations=2",
                 "igos.steps=3"])
    assert code == 0
    store = ResultStore.open_existing(tmp_path / "run")
    rows = store.rows()
    store.close()
    assert sorted(str(r["resolution"]) for r in rows) == ["4x8", "4x8", "7", "7"]
    header, _ = tables.main_table(tables.summarise(rows), "tinymodels:tiny_classifier")
    assert header == ["method", "7×7", "4×8"]


def test_bfloat16_forward_passes_keep_masks_and_metric_in_float32(tiny_net, images):
    from igos.models import Classifier, ModelPreset

    def preset(dtype):
        m = Classifier(tiny_net, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25), dtype=dtype)
        return ModelPreset("tiny", m, (32, 32), list("abcde"))

    seen = []
    handle = tiny_net.features[0].register_forward_hook(lambda m, a, out: seen.append(out.dtype))
    low = igos.explain(images, preset("bfloat16"), "igos", resolution=5, evaluate=True, iterations=3, steps=4)
    handle.remove()
    full = igos.explain(images, preset("float32"), "igos", resolution=5, evaluate=True, iterations=3, steps=4)
    assert set(seen) == {torch.bfloat16}  # the network ran in bfloat16
    for a, b in zip(low, full):
        assert a.saliency.dtype == torch.float32 and 0 <= float(a.mask.min()) and float(a.mask.max()) <= 1
        assert abs(a.deletion - b.deletion) < 0.1 and abs(a.insertion - b.insertion) < 0.1
    with pytest.raises(ValueError, match="dtype"):
        preset("int8")


def test_timm_without_timm_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "timm", None)  # an import of it fails, whatever is installed
    with pytest.raises(ModelLoadError, match=r"needs timm.*pip install timm"):
        load_model("timm:vit_tiny_patch16_224", weights="random")

