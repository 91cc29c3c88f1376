"""``auto``: the recommended method per heatmap side, for igos.explain and igos explain."""

import json

import numpy as np
import pytest
from PIL import Image

from igos.cli import main
from igos.methods import METHODS, get_method
from igos.methods.recommended import (
    RECOMMENDED,
    RECOMMENDED_OPTIONS,
    recommended,
    recommended_method,
    resolve,
    resolve_method,
)
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


def test_auto_carries_the_options_of_its_side_and_the_callers_options_win():
    assert set(RECOMMENDED_OPTIONS) <= set(RECOMMENDED)
    for side, preset in RECOMMENDED_OPTIONS.items():
        get_method(RECOMMENDED[side]).check_options(preset)  # every recommended option is one the method takes
    at14 = {"accelerated": True, "momentum": False, "steps": 2, "start": 1.0, "init": "ebp",
            "init_fallback": "gradcam", "init_depth": 0.5}
    assert recommended(14) == ("igospp", at14)
    assert recommended(12) == recommended(14) and recommended((14, 10)) == recommended(14)
    assert recommended(28) == ("igospp", {"accelerated": True, "momentum": False, "steps": 2})
    assert recommended(7) == ("igos", {}) and recommended(112) == ("igospp", {})
    # 28's fixed step up to 39; from 40 (nearer 56 on a log scale) the line search, which won at 56 (tuning photos)
    assert recommended(39) == recommended(28) and recommended(40) == recommended(56) == ("igospp", {})
    assert resolve("auto", 14, {"init_depth": 0.25, "iterations": 3}) == (
        "igospp", at14 | {"init_depth": 0.25, "iterations": 3})
    assert resolve("auto", 14, {"init": None})[1]["init"] is None  # the warm start turned off
    assert resolve("igospp", 14, {"steps": 2}) == ("igospp", {"steps": 2})  # a named method gets no preset
    task = Task.make("auto", 14)
    assert task.method == "igospp" and dict(task.options) == at14
    assert dict(Task.make("igospp", 14).options) == {}


def test_a_caller_who_chooses_the_search_gets_none_of_the_recommended_search():
    """``accelerated=false`` at 14×14 is the line search at its own defaults (its start, K, momentum), warm from the
    recommended map; the options stay valid, which the fixed step's ``momentum=false`` alone would not be."""
    name, options = resolve("auto", 14, {"accelerated": False})
    assert name == "igospp" and options == {"accelerated": False, "init": "ebp", "init_fallback": "gradcam",
                                            "init_depth": 0.5}
    get_method(name).check_options(options)
    assert resolve("auto", 14, {"nesterov": True})[1].get("momentum", True) is True
    assert resolve("auto", 14, {"start": 0.5})[1]["accelerated"] is True  # other options leave the search as it is
    assert resolve("auto", 28, {"accelerated": False}) == ("igospp", {"accelerated": False})  # the line search
    opts = get_method("igospp").make_options(resolve("auto", 14)[1]).resolved((14, 14))
    assert opts.nesterov and not opts.momentum and opts.steps == 2 and opts.start == 1.0


def _explain_tiny(tmp_path, monkeypatch, side: int) -> dict:
    """``igos explain`` without a method on a random 40×40 photo and the tiny classifier: results.json."""
    monkeypatch.syspath_prepend(str(__import__("pathlib").Path(__file__).parent))
    img = tmp_path / "a.png"
    Image.fromarray((np.random.default_rng(0).random((40, 40, 3)) * 255).astype(np.uint8)).save(img)
    out = tmp_path / "out"
    assert main(["explain", str(img), "--model", "tinymodels:tiny_classifier", "--resolution", str(side),
                 "--out", str(out), "--set", "iterations=1", "steps=2"]) == 0
    assert np.load(out / "a.npy").shape == (side, side)
    return json.loads((out / "results.json").read_text())


def test_cli_explain_without_method_records_the_recommended_one(tmp_path, monkeypatch):
    doc = _explain_tiny(tmp_path, monkeypatch, 7)
    assert doc["method"] == RECOMMENDED[7]


def test_cli_explain_at_14_records_the_recommended_warm_start(tmp_path, monkeypatch):
    doc = _explain_tiny(tmp_path, monkeypatch, 14)
    settings = doc["images"][0]["settings"]
    assert doc["method"] == "igospp" and settings["init"] == "ebp" and settings["init_depth"] == 0.5
    assert settings["iterations"] == 1 and settings["steps"] == 2 and settings["start"] == 1.0


def test_cli_explain_at_28_records_the_fixed_step(tmp_path, monkeypatch):
    settings = _explain_tiny(tmp_path, monkeypatch, 28)["images"][0]["settings"]
    assert settings["accelerated"] is True and settings["momentum"] is False and settings["nesterov"] is True
    assert settings["init"] is None and settings["start"] == 1.0
