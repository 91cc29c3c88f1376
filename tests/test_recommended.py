"""``auto``: the recommended method per heatmap side, for igos.explain and igos explain."""

import json

import numpy as np
import pytest
from PIL import Image

from igos.cli import main
from igos.methods import METHODS
from igos.methods.recommended import RECOMMENDED, recommended_method, resolve_method
from igos.pipeline import Task


def test_each_table_side_has_its_method_and_other_sides_take_the_nearer_on_a_log_scale():
    assert all(m in METHODS for m in RECOMMENDED.values())
    for side, method in RECOMMENDED.items():
        assert recommended_method(side) == method
    # 9: |log 9 − log 7| = 0.25 < |log 14 − log 9| = 0.44; 10: 0.36 against 0.34
    assert recommended_method(9) == RECOMMENDED[7] and recommended_method(10) == RECOMMENDED[14]
    assert recommended_method(1) == RECOMMENDED[7] and recommended_method(500) == RECOMMENDED[224]
    assert recommended_method((7, 28)) == RECOMMENDED[28]  # the larger side counts
    assert recommended_method(None) == RECOMMENDED[28]
    with pytest.raises(ValueError, match="at least 1"):
        recommended_method(0)


def test_auto_resolves_in_tasks_and_other_names_pass_through():
    assert resolve_method("mask", 7) == "mask"
    assert Task.make("auto", 7).method == RECOMMENDED[7]
    assert Task.make("auto", 28).method == RECOMMENDED[28]
    with pytest.raises(ValueError, match="iteratons"):  # options are checked against the resolved method
        Task.make("auto", 28, {"iteratons": 3})


def test_cli_explain_without_method_records_the_recommended_one(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(__import__("pathlib").Path(__file__).parent))
    img = tmp_path / "a.png"
    Image.fromarray((np.random.default_rng(0).random((40, 40, 3)) * 255).astype(np.uint8)).save(img)
    out = tmp_path / "out"
    assert main(["explain", str(img), "--model", "tinymodels:tiny_classifier", "--resolution", "7", "--out", str(out),
                 "--set", "iterations=1", "steps=2"]) == 0
    doc = json.loads((out / "results.json").read_text())
    assert doc["method"] == RECOMMENDED[7] and np.load(out / "a.npy").shape == (7, 7)
