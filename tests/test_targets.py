"""Targets beyond a class index (igos.targets): exact scores on hand-built outputs, known answers on tiny models
whose outputs depend on known pixels only, batched = one by one, clear errors, and the CLI and bench forms."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import skimage
import tinymodels as tm
import torch
from PIL import Image
from torch import nn

import igos
from igos.cli import main
from igos.core import ImageCounter, class_probability
from igos.errors import ModelOutputError, TargetError, UnsupportedLayerError, UnsupportedTargetError
from igos.images import load_image
from igos.labels import read_labels
from igos.methods import get_method
from igos.metrics import deletion_insertion
from igos.models import Classifier, ModelPreset
from igos.options import parse_targets
from igos.perturb import blurred_baseline
from igos.store import ResultStore
from igos.targets import Box, Classes, Region, Score, TopClass, bind

SIDE = 64
PHOTOS = ("astronaut.png", "chelsea.png", "coffee.png")


def photos(n: int = 2) -> torch.Tensor:
    folder = os.path.join(os.path.dirname(skimage.__file__), "data")
    return torch.stack([load_image(os.path.join(folder, name), SIDE) for name in PHOTOS[:n]])


def plain(net: nn.Module) -> Classifier:
    """A tiny model in pixel space, as igos runs it (no normalisation)."""
    return Classifier(net, (0.0, 0.0, 0.0), (1.0, 1.0, 1.0)).eval()


class FixedLogits(nn.Module):
    """Returns the given logits (any shape) for every batch, still a function of the input (times 0)."""

    def __init__(self, logits: torch.Tensor):
        super().__init__()
        self.register_buffer("logits", logits)

    def forward(self, x):
        extra = 0.0 * x.flatten(1).sum(1).view(-1, *([1] * (self.logits.dim() - 1)))
        return self.logits[: x.shape[0]] + extra


def quadrant_share(saliency: torch.Tensor, rows: slice = slice(0, SIDE // 2), cols: slice = slice(0, SIDE // 2)
                   ) -> torch.Tensor:
    """Per map, the share of its positive mass inside ``rows × cols`` of the input."""
    s = torch.nn.functional.interpolate(saliency.unsqueeze(1).float(), size=(SIDE, SIDE), mode="nearest")[:, 0]
    s = s.clamp(min=0)
    return s[:, rows, cols].sum((1, 2)) / s.sum((1, 2)).clamp(min=1e-12)


def inside_beats_outside(saliency: torch.Tensor, rows: slice, cols: slice) -> torch.Tensor:
    s = torch.nn.functional.interpolate(saliency.unsqueeze(1).float(), size=(SIDE, SIDE), mode="nearest")[:, 0]
    inside = torch.zeros(SIDE, SIDE, dtype=torch.bool)
    inside[rows, cols] = True
    return s[:, inside].mean(1) > s[:, ~inside].mean(1)


# -- exact scores --------------------------------------------------------------------------------------------------

Z = torch.tensor([[2.0, 0.0, -1.0, 0.5], [0.0, 1.0, 2.0, 3.0]])


@pytest.mark.parametrize("score", ["softmax", "log_softmax", "logit", "sigmoid", "raw"])
def test_a_class_set_scores_the_sum_of_its_classes(score):
    x = torch.rand(2, 3, 8, 8)
    scored, rows = bind(FixedLogits(Z), x, Classes([0, 3], score=score))
    p = Z.softmax(1)[:, [0, 3]].sum(1)
    expected = {"softmax": p, "log_softmax": p.log(), "logit": Z[:, [0, 3]].sum(1),
                "sigmoid": torch.sigmoid(Z[:, [0, 3]]).sum(1), "raw": Z[:, [0, 3]].sum(1)}[score]
    assert torch.allclose(scored.score(x, rows), expected, atol=1e-6)
    assert torch.allclose(scored.score(x, rows, "logit"), Z[:, [0, 3]].sum(1), atol=1e-6)
    if score == "softmax":  # log-odds of the set's probability
        assert torch.allclose(scored.score(x, rows, "log-odds"), (p / (1 - p)).log(), atol=1e-5)


def test_one_class_scores_as_the_classic_probability_and_log_odds():
    x = torch.rand(2, 3, 8, 8)
    scored, rows = bind(FixedLogits(Z), x, [1, 3])
    bare = FixedLogits(Z)
    assert torch.equal(scored.score(x, rows), class_probability(bare, x, torch.tensor([1, 3])))
    p = Z.softmax(1)[[0, 1], [1, 3]]
    assert torch.allclose(scored.score(x, rows, "log-odds"), (p / (1 - p)).log(), atol=1e-5)
    sig, _ = bind(FixedLogits(Z), x, Classes(2, score="sigmoid"))
    assert torch.allclose(sig.score(x, rows, "log-odds"), Z[:, 2], atol=1e-6)  # a sigmoid's log-odds: its logit


def test_the_default_target_is_the_top1_class_under_its_score():
    x = torch.rand(2, 3, 8, 8)
    scored, rows = bind(FixedLogits(Z), x, None)
    assert scored.bound.labels() == [0, 3]
    scored, rows = bind(FixedLogits(Z), x, TopClass("sigmoid"))
    assert scored.bound.labels() == [0, 3]
    assert torch.allclose(scored.score(x, rows), torch.sigmoid(Z[[0, 1], [0, 3]]))


def test_a_region_is_the_mean_probability_over_the_upsampled_output():
    # a 2x2 output upsampled to 4x4 (bilinear, align_corners=False): the top-left 2x2 block's values are
    # a, .75a+.25b, .75a+.25c and .5625a+.1875b+.1875c+.0625d of class 1's probabilities [[a, b], [c, d]]
    logits = torch.zeros(1, 2, 2, 2)
    logits[0, 1] = torch.tensor([[1.0, -1.0], [0.5, 2.0]])
    q = torch.sigmoid(logits[0, 1])  # softmax over (0, l) = sigmoid(l)
    a, b, c, d = q.flatten()
    mask = torch.zeros(4, 4, dtype=torch.bool)
    mask[:2, :2] = True
    x = torch.rand(1, 3, 4, 4)
    scored, rows = bind(FixedLogits(logits), x, Region(1, mask))
    expected = (3.0625 * a + 0.4375 * b + 0.4375 * c + 0.0625 * d) / 4
    assert torch.allclose(scored.score(x, rows), expected.view(1), atol=1e-6)
    whole, _ = bind(FixedLogits(logits), x, Region(1, torch.ones(4, 4)))
    assert torch.allclose(whole.score(x, rows), q.mean().view(1), atol=1e-6)  # bilinear keeps the mean


def test_a_box_scores_the_best_iou_times_score_of_its_label():
    dets = [{"boxes": torch.tensor([[0.0, 0.0, 10.0, 10.0], [0.0, 0.0, 10.0, 5.0], [0.0, 0.0, 10.0, 10.0]]),
             "labels": torch.tensor([1, 1, 2]), "scores": torch.tensor([0.5, 0.9, 0.8])}]

    class Fixed(nn.Module):
        def forward(self, x):
            return [{k: v + 0 * x.sum() if v.is_floating_point() else v for k, v in d.items()} for d in dets]

    x = torch.rand(1, 3, 20, 20)
    scored, rows = bind(Fixed(), x, Box([0, 0, 10, 10], 1))
    assert float(scored.score(x, rows)) == pytest.approx(max(0.5 * 1.0, 0.9 * 0.5))
    scored, rows = bind(Fixed(), x, Box([0, 0, 10, 10]))  # no label: the best-matching detection's (label 2: 0.8)
    assert scored.bound.labels() == [2]
    assert float(scored.score(x, rows)) == pytest.approx(0.8)


# -- clear errors, before any work -----------------------------------------------------------------------------------

def test_bad_targets_are_named():
    x = photos(1)
    det, seg, clf = plain(tm.tiny_detector()), plain(tm.tiny_segmenter()), plain(tm.tiny_classifier())
    cases = [
        (clf, Classes(9), "class 9 .*out of range: the model has 4 classes"),
        (clf, [Classes(1)] * 2, "2 targets for 1 images"),
        (plain(tm.tiny_regressor()), Classes(0), "single output: its softmax is constant"),
        (det, Box([0, 0, 80, 10], 1), "outside the input \\(64x64"),
        (det, Box([0, 0, 10, 10], 7), "no detection labelled 7 .*labels it outputs there: \\[1, 2, 3\\]"),
        (seg, Region(1, torch.ones(10, 10)), "is 10x10, the input 64x64"),
        (seg, Region(5), "region class 5 .*out of range"),
        (seg, Region(1, torch.zeros(64, 64)), "is empty"),
        (plain(tm.tiny_segmenter()), Region(1), None),  # fine: predicted somewhere on a photo
        (clf, Region(1), "needs a segmentation output"),
        (clf, Box([0, 0, 10, 10], 1), "needs a detector's output"),
        (clf, Score(lambda out: out), "must return a tensor \\[N\\]"),
    ]
    for model, target, words in cases:
        if words is None:
            bind(model, x, target)
            continue
        with pytest.raises(TargetError, match=words):
            bind(model, x, target)
    with pytest.raises(ModelOutputError, match="a detector's boxes; explain one box"):
        bind(det, x, 1)
    with pytest.raises(TargetError, match="predicts class 1 nowhere"):
        bind(seg, torch.zeros(1, 3, SIDE, SIDE), Region(1))  # a black photo: no energy, class 0 everywhere
    for bad, words in ((lambda: Classes([]), "empty set"), (lambda: Classes(1, score="tanh"), "score must be"),
                       (lambda: Box([5, 0, 1, 10]), "empty"), (lambda: Box([0, 1, 2]), "four"),
                       (lambda: Region(None), "class, its mask")):
        with pytest.raises(TargetError, match=words):
            bad()


def test_a_bad_box_on_a_file_fails_before_the_model_runs(tmp_path):
    path = tmp_path / "p.png"
    Image.fromarray((np.random.default_rng(0).random((30, 40, 3)) * 255).astype(np.uint8)).save(path)
    preset = ModelPreset("det", plain(tm.tiny_detector()), (SIDE, SIDE))
    counter = ImageCounter()
    with counter.watch(preset.model), pytest.raises(TargetError, match="outside the photo .*p.png \\(40x30"):
        igos.explain([path, path], preset, "gradient", target=[Box([0, 0, 20, 20], 1), Box([0, 0, 41, 20], 1)])
    assert counter.forward_images == counter.backward_images == 0


def test_excitation_backprop_refuses_what_is_not_output_units_and_starts_a_set_from_its_units():
    x = photos(1)
    with pytest.raises(UnsupportedTargetError, match="box target is not a set of output units"):
        get_method("ebp")(plain(tm.tiny_detector()), x, Box([0, 0, 32, 32], 1))
    with pytest.raises(UnsupportedLayerError, match="no rule for 'pow'"):  # behind ``**``: still named
        get_method("ebp")(plain(tm.tiny_regressor()), x, Classes(0, score="raw"))
    clf = plain(tm.tiny_classifier())
    one = [get_method("ebp")(clf, x, c).saliency for c in (0, 2)]
    both = get_method("ebp")(clf, x, Classes([0, 2])).saliency
    assert torch.allclose(both, (one[0] + one[1]) / 2, atol=1e-6)  # winning probability is linear in the start
    assert float(both.sum()) <= 1 + 1e-4


# -- known answers: the map's mass where the score's pixels are ------------------------------------------------------

TOP_LEFT = (slice(0, SIDE // 2), slice(0, SIDE // 2))
EXACT = ("ig", "gradient")  # their maps are zero wherever the score's gradient is
OPTIMISED = ("igos", "igospp")


def known_answer_cases():
    mask = torch.zeros(SIDE, SIDE, dtype=torch.bool)
    mask[TOP_LEFT] = True
    return {
        "box": (plain(tm.tiny_detector()), Box([0, 0, SIDE // 2, SIDE // 2], 1), TOP_LEFT),
        "region": (plain(tm.tiny_segmenter(full=True)), Region(1, mask), TOP_LEFT),
        "raw": (plain(tm.tiny_regressor()), Classes(0, score="raw"), TOP_LEFT),
        "sigmoid": (plain(tm.tiny_multilabel()), Classes(0, score="sigmoid"), (slice(0, SIDE), slice(0, SIDE // 3))),
    }


@pytest.mark.parametrize("kind", ["box", "region", "raw", "sigmoid"])
def test_maps_of_any_target_lie_where_its_score_looks(kind):
    model, target, (rows, cols) = known_answer_cases()[kind]
    x = photos(2)
    area = (rows.stop - rows.start) * (cols.stop - cols.start) / SIDE**2
    for method in EXACT + OPTIMISED + ("mask", "rise"):
        options = {"masks": 400} if method == "rise" else {}
        sal = get_method(method)(model, x, target, resolution=8, seed=0, **options).saliency
        assert torch.isfinite(sal).all(), method
        share = quadrant_share(sal, rows, cols)
        if method in EXACT:  # signed maps: all their mass, positive and negative, inside
            assert float(share.min()) > 0.999, (kind, method, share)
            assert float(quadrant_share(-sal, rows, cols).min()) > 0.999 or float(sal.min()) >= 0
            continue
        assert bool(inside_beats_outside(sal, rows, cols).all()), (kind, method)
        if method in OPTIMISED:
            assert float(share.min()) > min(0.6, 2.4 * area), (kind, method, share)


def test_per_image_targets_batched_equal_one_by_one():
    det, x = plain(tm.tiny_detector()), photos(2)
    targets = [Box([0, 0, 32, 32], 1), Box([32, 32, 64, 64], 2)]
    for method in ("igos", "gradient"):
        together = get_method(method)(det, x, targets, resolution=8).saliency
        alone = torch.cat([get_method(method)(det, x[i : i + 1], [t], resolution=8).saliency
                           for i, t in enumerate(targets)])
        assert torch.allclose(together, alone, atol=1e-5), method
        assert float(quadrant_share(together[1:], slice(32, 64), slice(32, 64))) > 0.6
    clf = plain(tm.tiny_classifier())  # targets of different kinds in one batch
    mixed = [Classes([1, 2]), Score(lambda out: out[:, 3] - out[:, 0], "margin")]
    together = get_method("gradient")(clf, x, mixed).saliency
    alone = torch.cat([get_method("gradient")(clf, x[i : i + 1], [t]).saliency for i, t in enumerate(mixed)])
    assert torch.allclose(together, alone, atol=1e-6)


def test_integrated_gradients_are_complete_for_a_box_and_the_metric_scores_the_same_target():
    # no score threshold: a detection dropped under it makes the score jump, which no path integral sees
    det, x = plain(tm._Detector(threshold=0.0)), photos(2)
    target = Box([0, 0, 32, 32], 1)
    r = get_method("ig")(det, x, target, steps=32)
    for t in r.trace:
        assert t["attribution_sum"] == pytest.approx(t["path_delta"], abs=2e-3 + 0.02 * abs(t["path_delta"]))
    scored, rows = bind(det, x, target)
    clean = scored.score(x, rows)
    blurred = scored.score(blurred_baseline(x), rows)
    assert torch.allclose(torch.tensor([t["path_delta"] for t in r.trace]).float(), clean - blurred, atol=1e-5)
    s = deletion_insertion(det, x, r.saliency, target)
    assert torch.allclose(s.deletion_curve[:, 0].float(), clean, atol=1e-6)
    assert torch.allclose(s.insertion_curve[:, 0].float(), blurred, atol=1e-6)
    assert s.target.tolist() == [1, 1]


# -- command line, label files, records --------------------------------------------------------------------------------

TINY = ["--mean", "0", "0", "0", "--std", "1", "1", "1", "--input-size", str(SIDE)]


def test_parse_targets_forms():
    assert parse_targets(None) is None and parse_targets("281") == 281 and parse_targets("3,17") == [3, 17]
    assert parse_targets("151-154") == Classes([151, 152, 153, 154])
    assert parse_targets("1+5", "sigmoid") == Classes([1, 5], "sigmoid")
    assert parse_targets("7", "raw") == Classes(7, "raw")
    assert parse_targets(None, "sigmoid") == TopClass("sigmoid")
    assert parse_targets("box=1,2,30,40@3") == Box([1, 2, 30, 40], 3)
    assert parse_targets("box=1,2,30,40") == Box([1, 2, 30, 40])
    r = parse_targets("region=m.png@2")
    assert r.cls == 2 and r.mask.name == "m.png"
    assert parse_targets("box=0,0,5,5@1; 4") == [Box([0, 0, 5, 5], 1), Classes(4)]
    for bad in ("cat", "5-2", "box=1,2,x,4", "box=1,2,3,4@dog"):
        with pytest.raises(ValueError, match="--target"):
            parse_targets(bad)


def astronaut(tmp_path):
    src = os.path.join(os.path.dirname(skimage.__file__), "data", "astronaut.png")
    path = tmp_path / "a.png"
    Image.open(src).save(path)
    return path  # 512x512


def test_cli_explains_a_box_a_region_and_a_set(tmp_path, capsys):
    photo = astronaut(tmp_path)
    out = tmp_path / "box"
    assert main(["explain", str(photo), "--model", "tinymodels:tiny_detector", *TINY, "--resolution", "8",
                 "--target", "box=0,0,256,256@1", "--evaluate", "--method", "igos", "--out", str(out)]) == 0
    rec = json.loads((out / "results.json").read_text())["images"][0]
    assert rec["target_spec"] == {"kind": "box", "box": [0.0, 0.0, 32.0, 32.0], "label": 1, "input": [64, 64]}
    assert rec["target"] == 1 and rec["deletion"]["auc"] < rec["insertion"]["auc"]
    picture = np.asarray(Image.open(out / rec["overlay_file"]))
    assert (picture[5:250, 254] == 255).all()  # the box's right edge, drawn in white at the photo's scale

    mask = np.zeros((512, 512), np.uint8)
    mask[:256, :256] = 255
    Image.fromarray(mask).save(tmp_path / "mask.png")
    out = tmp_path / "region"
    assert main(["explain", str(photo), "--model", "tinymodels:tiny_segmenter", "--model-arg", "full=true", *TINY,
                 "--resolution", "8", "--target", f"region={tmp_path / 'mask.png'}@1", "--method", "gradient",
                 "--out", str(out)]) == 0
    rec = json.loads((out / "results.json").read_text())["images"][0]
    assert rec["target_spec"]["kind"] == "region" and rec["target_spec"]["pixels"] == 32 * 32
    sal = torch.from_numpy(np.load(out / rec["saliency_file"]))
    assert float(quadrant_share(sal.unsqueeze(0))) > 0.999

    out = tmp_path / "set"
    assert main(["explain", str(photo), "--model", "tinymodels:tiny_multilabel", *TINY, "--resolution", "8",
                 "--target", "0+1", "--score", "sigmoid", "--method", "gradient", "--out", str(out)]) == 0
    rec = json.loads((out / "results.json").read_text())["images"][0]
    assert rec["target"] == -1 and rec["target_name"] == "2 classes 0–1"
    assert rec["target_spec"] == {"kind": "classes", "classes": [0, 1], "score": "sigmoid"}
    capsys.readouterr()

    for target, words in (("box=0,0,600,10@1", "outside the photo"), ("box=0,0,10,10@9", "no detection labelled 9")):
        assert main(["explain", str(photo), "--model", "tinymodels:tiny_detector", *TINY, "--target", target,
                     "--method", "gradient", "--out", str(tmp_path / "bad")]) == 2
        assert words in capsys.readouterr().err
    out = tmp_path / "each"  # one box per photo
    Image.open(photo).save(tmp_path / "b.png")
    assert main(["explain", str(photo), str(tmp_path / "b.png"), "--model",
                 "tinymodels:tiny_detector", *TINY, "--resolution", "8", "--method", "gradient", "--out", str(out),
                 "--target", "box=0,0,256,256@1;box=256,256,512,512@2"]) == 0
    recs = json.loads((out / "results.json").read_text())["images"]
    assert [r["target_spec"]["label"] for r in recs] == [1, 2]
    assert recs[1]["target_spec"]["box"] == [32.0, 32.0, 64.0, 64.0]
    Image.fromarray(mask[:100]).save(tmp_path / "small.png")
    assert main(["explain", str(photo), "--model", "tinymodels:tiny_segmenter", *TINY, "--target",
                 f"region={tmp_path / 'small.png'}@1", "--out", str(tmp_path / "bad")]) == 2
    assert "is 512x100 pixels, the photo" in capsys.readouterr().err


def test_a_label_file_gives_each_photo_its_target_kind(tmp_path):
    d = tmp_path / "photos"
    d.mkdir()
    for name in ("a", "b", "c"):
        Image.open(astronaut(tmp_path)).save(d / f"{name}.png")
    mask = np.zeros((512, 512), np.uint8)
    mask[256:, 256:] = 255
    Image.fromarray(mask).save(tmp_path / "br.png")
    labels = tmp_path / "labels.csv"
    labels.write_text('name,box,region,score\na.png,"0,0,256,256@1",,\nb.png,"256,256,512,512@2",,\nc.png,,,\n')
    assert read_labels(labels) == {"a.png": Box([0, 0, 256, 256], 1), "b.png": Box([256, 256, 512, 512], 2),
                                   "c.png": None}
    run = tmp_path / "run"
    code = main(["bench", str(d), "--models", "tinymodels:tiny_detector", *TINY, "--methods", "gradient",
                 "--labels", str(labels), "--out", str(run)])
    assert code == 0
    with ResultStore(run) as store:
        rows = {r["image"]: r for r in store.rows()}
    assert rows["a.png"]["target_spec"]["box"] == [0.0, 0.0, 32.0, 32.0]
    assert rows["b.png"]["target"] == 2
    assert "c.png" not in rows  # a detector has no top-1 class: the photo without a box is a failure
    labels.write_text("name,classes,score\nx.png,151-153,\ny.png,4,sigmoid\nz.png,,raw\n")
    assert read_labels(labels) == {"x.png": Classes([151, 152, 153]), "y.png": Classes(4, "sigmoid"),
                                   "z.png": TopClass("raw")}
    labels.write_text("name,box,label\nx.png,\"0,0,1,1\",3\n")
    with pytest.raises(ValueError, match="line 2: give one target per row"):
        read_labels(labels)


def test_outputs_of_every_form_are_scored():
    from collections import OrderedDict

    from igos.outputs import model_output

    z = torch.randn(2, 5)
    seg = torch.randn(2, 3, 4, 4)
    dets = [{"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.long), "scores": torch.zeros(0)}] * 2

    class Out:  # an object with .logits, as a ModelOutput
        logits = z

    for out, expected in ((z, z), ((z, z * 0), z), ([z], z), ({"logits": z, "aux": 1}, z), (Out(), z),
                          (OrderedDict(out=seg, aux=seg * 0), seg), ({"logits": seg}, seg)):
        assert model_output(out) is expected
    assert model_output(dets) is dets
    with pytest.raises(ModelOutputError, match="keys \\['features'\\]"):
        model_output({"features": z})


def test_gradcam_takes_sets_and_callables():
    clf, x = plain(tm.tiny_classifier()), photos(2)
    layer = "net.1"  # the tiny classifier's convolution
    one = get_method("gradcam")(clf, x, 2, layer=layer).saliency
    assert torch.equal(get_method("gradcam")(clf, x, Classes([2]), layer=layer).saliency, one)
    for target in (Classes([0, 2]), Score(lambda out: out[:, 1] - out[:, 0], "margin")):
        sal = get_method("gradcam")(clf, x, target, layer=layer).saliency
        assert sal.shape == one.shape and torch.isfinite(sal).all() and (sal >= 0).all()
