"""Explain folders written and read by library code; bench maps stored losslessly."""

import json

import numpy as np
import pytest
import torch
from conftest import TinyNet

import igos
from igos.models import Classifier, ModelPreset
from igos.report import build_report
from igos.store import saliency_from_row


@pytest.fixture
def tiny_preset():
    model = Classifier(TinyNet().eval(), (0.5, 0.5, 0.5), (0.25, 0.25, 0.25))
    return ModelPreset("tiny", model, (32, 32), ["a", "b", "c", "d", "e"])


def test_a_python_user_writes_a_folder_that_load_and_report_read(tiny_preset, images, tmp_path):
    found = igos.explain(images, tiny_preset, "igos", resolution=5, evaluate=True, iterations=2, steps=3)
    path = igos.save_explanations(tmp_path / "ex", found, failures=[igos.Failure("gone.png", "load", "no such file")])
    doc = json.loads(path.read_text())
    assert doc["model"] == "tiny" and doc["method"] == "igos" and len(doc["images"]) == 3
    assert doc["peak_memory"]["rss_mb"] > 10  # the run's peak resident set, in MB
    saved = igos.load_explanations(tmp_path / "ex")
    assert saved.failures == [{"path": "gone.png", "stage": "load", "error": "no such file"}]
    for e, rec in zip(found, saved.records):
        assert rec["saliency"].dtype == np.float32
        np.testing.assert_array_equal(rec["saliency"], e.saliency.numpy())  # float32 both ways: exact
        assert rec["deletion"]["auc"] == e.deletion and rec["deletion"]["direction"] == "lower is better"
    # igos report reads the same folder (tensor inputs have no file to show, so no per-image rows)
    html = build_report(tmp_path / "ex").read_text()
    assert "igos explanations" in html and "gone.png" in html


def test_load_names_what_is_missing_or_broken(tmp_path):
    with pytest.raises(FileNotFoundError, match="results.json"):
        igos.load_explanations(tmp_path)
    (tmp_path / "results.json").write_text("{not json")
    with pytest.raises(ValueError, match="results.json"):
        igos.load_explanations(tmp_path)
    (tmp_path / "results.json").write_text(json.dumps({"images": [{"saliency_file": "a.npy"}]}))
    with pytest.raises(FileNotFoundError, match="a.npy"):
        igos.load_explanations(tmp_path)


def test_stored_maps_are_lossless_and_old_float16_rows_still_read():
    tiny = np.array([[2e-5, 2e-8], [1.0, 6e-9]], dtype=np.float32)  # Excitation Backprop-sized values
    row = {"saliency": tiny.tobytes(), "saliency_shape": [2, 2]}
    np.testing.assert_array_equal(saliency_from_row(row), tiny)
    old = {"saliency": tiny.astype(np.float16).tobytes(), "saliency_shape": [2, 2]}
    assert saliency_from_row(old)[0, 1] == 0.0  # what float16 did to 2e-8: the reason for float32
    np.testing.assert_allclose(saliency_from_row(old), tiny.astype(np.float16).astype(np.float32))
    with pytest.raises(ValueError, match="does not fit"):
        saliency_from_row({"saliency": b"123", "saliency_shape": [2, 2], "image": "x"})


def test_bench_rows_keep_float32_maps(tmp_path):
    from PIL import Image

    from igos.bench import BenchSpec, run_bench
    from igos.store import ResultStore

    d = tmp_path / "images"
    d.mkdir()
    Image.fromarray((np.random.default_rng(0).random((40, 40, 3)) * 255).astype(np.uint8)).save(d / "a.png")
    spec = BenchSpec(d, ["tinymodels:tiny_classifier"], ["ebp"], [7])
    run_bench(spec, tmp_path / "run")
    store = ResultStore.open_existing(tmp_path / "run")
    (row,) = store.rows()
    store.close()
    sal = saliency_from_row(row)
    assert len(row["saliency"]) == 4 * sal.size
    direct = igos.explain(torch.stack([igos.load_image(d / "a.png", 224)]), igos.load_model(
        "tinymodels:tiny_classifier"), "ebp", resolution=7)[0]
    np.testing.assert_array_equal(sal, direct.saliency.numpy())
