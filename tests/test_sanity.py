"""Model-randomisation sanity checks (igos.sanity, ``igos sanity``): the blocks, the randomisation (the user's
model untouched), the similarity measures on maps with known answers, a model-blind control failing the check,
constant maps counted apart, and the command line."""

from __future__ import annotations

import json

import pytest
import tinymodels as tm
import torch

pytest.importorskip("skimage", reason="the sanity checks need scikit-image")

from igos.cli import main  # noqa: E402
from igos.models import Classifier  # noqa: E402
from igos.sanity import merge_summaries, parameter_blocks, randomised, sanity_check, similarity  # noqa: E402


def test_efficientnet_blocks_go_from_the_head_down_to_the_stem():
    import igos

    preset = igos.load_model("efficientnet-lite0")
    names = [n for n, _ in parameter_blocks(preset.model)]
    assert names == ["head", *[f"blocks.{i}" for i in range(15, -1, -1)], "stem"]


def test_other_networks_randomise_their_children_from_the_last():
    net = tm.tiny_classifier()  # Sequential: pool, conv, relu, pool, flatten, linear
    assert [n for n, _ in parameter_blocks(Classifier(net, (0.0,) * 3, (1.0,) * 3))] == ["5", "1"]


def test_randomising_copies_and_changes_only_the_named_blocks():
    model = Classifier(tm.tiny_classifier(), (0.0,) * 3, (1.0,) * 3)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    copy = randomised(model, ["5"], seed=0)
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())  # the user's model is kept
    after = copy.state_dict()
    assert not torch.equal(after["net.5.weight"], before["net.5.weight"])
    assert torch.equal(after["net.1.weight"], before["net.1.weight"])
    assert torch.equal(randomised(model, ["5"], seed=0).state_dict()["net.5.weight"], after["net.5.weight"])
    with pytest.raises(ValueError, match="unknown block"):
        randomised(model, ["head"])


def test_similarity_measures_on_known_maps():
    a = torch.rand(14, 14, generator=torch.Generator().manual_seed(0)) - 0.5
    same = similarity(a, a, (64, 64))
    assert all(v == pytest.approx(1.0) for v in same.values())
    flipped = similarity(a, -a, (64, 64))
    assert flipped["spearman"] == pytest.approx(-1.0) and flipped["spearman_abs"] == pytest.approx(1.0)
    other = similarity(a, torch.rand(14, 14, generator=torch.Generator().manual_seed(1)), (64, 64))
    assert abs(other["spearman"]) < 0.3 and other["ssim"] < 0.5


def test_a_model_blind_control_fails_the_check_and_the_gradient_passes_it():
    model = Classifier(tm.sized_classifier(width=8), (0.0,) * 3, (1.0,) * 3)
    x = torch.rand(3, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    blind = sanity_check(model, x, "edges", resolution=8)
    assert {s["randomised"] for s in blind.steps} == {"4", "0"} and len(blind.steps) == 4
    assert all(s["spearman_abs"] == pytest.approx(1.0) and s["ssim"] == pytest.approx(1.0) for s in blind.steps)
    grad = sanity_check(model, x, "gradient", modes=("cascading",))
    assert blind.resolution == 8 and sanity_check(model, x, "gradient", resolution=8, modes=()).resolution is None
    last = [s for s in grad.steps if s["mode"] == "cascading"][-1]
    assert last["randomised"] == "0" and last["spearman_abs"] < 0.9 and last["constant"] == 0
    assert len(last["per_photo"]["spearman"]) == 3
    rl = grad.random_logit
    assert all(c != o for c, o in zip(rl["classes"], rl["original_classes"], strict=True))


def test_runs_on_parts_of_the_photos_merge_into_the_run_on_all_of_them():
    model = Classifier(tm.sized_classifier(width=8), (0.0,) * 3, (1.0,) * 3)
    x = torch.rand(3, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    names = ["a", "b", "c"]
    whole = sanity_check(model, x, "gradient", modes=("cascading",), names=names).summary()
    parts = [sanity_check(model, x[sl], "gradient", modes=("cascading",), names=names[sl]).summary()
             for sl in (slice(0, 2), slice(2, 3))]
    merged = merge_summaries(parts)
    assert merged["photos"] == whole["photos"] and len(merged["steps"]) == len(whole["steps"])
    for got, want in zip(merged["steps"], whole["steps"], strict=True):
        assert got["randomised"] == want["randomised"] and got["constant"] == want["constant"]
        assert got["spearman_abs"] == pytest.approx(want["spearman_abs"], abs=1e-5)
        assert got["per_photo"]["ssim"] == pytest.approx(want["per_photo"]["ssim"], abs=1e-5)
    assert len(merged["random_logit"]["classes"]) == 3 and len(merged["random_logit"]["per_photo"]["hog"]) == 3
    with pytest.raises(ValueError, match="different methods"):
        merge_summaries([parts[0], {**parts[1], "method": "ig"}])
    with pytest.raises(ValueError, match="different steps"):
        merge_summaries([parts[0], {**parts[1], "steps": parts[1]["steps"][:1]}])


def test_constant_maps_are_counted_apart_never_scored():
    model = Classifier(tm.indifferent(), (0.0,) * 3, (1.0,) * 3)
    x = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    r = sanity_check(model, x, "gradient", modes=("cascading",))
    assert all(s["constant"] == 2 and s["spearman_abs"] is None for s in r.steps)
    assert r.random_logit["constant"] == 2


def test_the_command_writes_sanity_json_and_the_figure(photo, tmp_path):
    out = tmp_path / "s"
    code = main(["sanity", str(photo), "--model", "tinymodels:sized_classifier", "--method", "gradient",
                 "--out", str(out)])
    assert code == 0
    doc = json.loads((out / "sanity.json").read_text())
    assert doc["method"] == "gradient" and [s["mode"] for s in doc["steps"]].count("cascading") == 2
    for key in ("randomised", "spearman_abs", "spearman", "ssim", "hog", "constant", "per_photo"):
        assert key in doc["steps"][0]
    assert (out / "sanity.png").stat().st_size > 1000


def test_the_logit_mode_runs_only_the_random_logit_check(photo, tmp_path):
    out = tmp_path / "s"
    code = main(["sanity", str(photo), "--model", "tinymodels:sized_classifier", "--method", "gradient",
                 "--mode", "logit", "--out", str(out)])
    assert code == 0
    doc = json.loads((out / "sanity.json").read_text())
    assert doc["steps"] == [] and not (out / "sanity.png").exists()
    rl = doc["random_logit"]
    assert rl["classes"] != rl["original_classes"] and -1.0 <= rl["spearman_abs"] <= 1.0
