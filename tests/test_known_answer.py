"""Known answers (igos.known_answer): a model that sees only a region has its whole correct map there."""

import pytest
import torch

from igos.known_answer import (
    SeesOnly,
    inside_share,
    known_answer,
    out_of_sight_share,
    reach_reference,
    region_mask,
    region_reference,
)


def test_the_wrapped_model_ignores_everything_outside_its_region(tiny_net, images):
    r = region_mask("quadrant", (32, 32))
    wrapped = SeesOnly(tiny_net, r, torch.full((3, 32, 32), 0.5))
    x = images[:1].clone().requires_grad_(True)
    wrapped(x)[0, 0].backward()
    assert float(x.grad[..., 16:, :].abs().max()) == 0 and float(x.grad[..., :, 16:].abs().max()) == 0
    assert float(x.grad[..., :16, :16].abs().max()) > 0
    changed = images[:1].clone()
    changed[..., 20:, 20:] = 0  # outside: the output does not move
    assert torch.equal(wrapped(changed), wrapped(images[:1]))


def test_regions_and_the_share_inside_by_hand():
    q = region_mask("quadrant", (224, 224))
    assert q.sum() == 112 * 112 and q[:112, :112].all()
    boxes = [region_mask("box", (224, 224), seed=3, index=i) for i in range(5)]
    assert all(74 * 74 <= b.sum() <= 112 * 112 for b in boxes) and len({int(b.sum()) for b in boxes}) > 1
    assert torch.equal(boxes[0], region_mask("box", (224, 224), seed=3, index=0))  # seeded
    with pytest.raises(ValueError, match="quadrant, box"):
        region_mask("circle", (8, 8))
    sal = torch.zeros(4, 4)
    sal[0, 0], sal[3, 3], sal[1, 2] = 3.0, 1.0, -5.0  # negative values carry no mass
    assert inside_share(sal, q) == pytest.approx(0.75)
    assert inside_share(torch.full((7, 7), 1.0), q) == pytest.approx(0.25)  # the 4th row/column: half a cell each
    assert inside_share(-torch.ones(4, 4), q) is None


def test_the_region_pooled_to_the_cells_scores_one_only_when_its_border_runs_along_them():
    assert region_reference(region_mask("quadrant", (224, 224)), (28, 28)) == pytest.approx(1.0)
    box = torch.zeros(16, 16)
    box[:6, :6] = 1  # 4-pixel cells: coverage 1, 0.5, 0.5, 0.25 -> (1 + 0.25 + 0.25 + 0.0625) / 2.25
    assert region_reference(box, (4, 4)) == pytest.approx(1.5625 / 2.25)
    with pytest.raises(ValueError, match="empty"):
        region_reference(torch.zeros(8, 8), (4, 4))


def test_out_of_sight_counts_only_cells_whose_upsampled_footprint_misses_the_region():
    q = region_mask("quadrant", (32, 32))  # 16 pixels; 8 cells upsampled with align_corners: cell c sits at 4.43·c
    sal = torch.zeros(8, 8)
    sal[0, 0], sal[0, 4], sal[0, 5] = 1.0, 1.0, 2.0  # cell 4 still reaches pixels 14 and 15, cell 5 does not
    assert out_of_sight_share(sal, q) == pytest.approx(0.5)
    assert inside_share(sal, q) == pytest.approx(0.25)  # by area, cell 4 lies outside
    assert out_of_sight_share(torch.zeros(8, 8), q) is None


def test_the_whole_region_as_far_as_the_cells_reach_scores_below_one():
    """The quadrant of a 224 input: at 28×28 the 14×14 cells inside and the ring of 29 cells just outside (whose
    bilinear footprint reaches 4 pixels in): 196 / 225; at 7×7 the border halves the 4th row and column, and the 5th
    does not reach in: 4×4 cells scoring (9 + 6·0.5 + 0.25) / 16; on the input's own pixels, exactly 1."""
    q = region_mask("quadrant", (224, 224))
    assert reach_reference(q, (28, 28)) == pytest.approx(196 / 225)
    assert reach_reference(q, (7, 7)) == pytest.approx(12.25 / 16)
    assert reach_reference(q, (224, 224)) == pytest.approx(1.0)
    assert reach_reference(q, (28, 28)) < region_reference(q, (28, 28)) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="empty"):
        reach_reference(torch.zeros(8, 8), (4, 4))


def test_the_correct_map_passes_the_check_that_the_share_on_the_regions_own_cells_would_fail():
    """The map that deletes all a quadrant-only model sees, as far as 28×28 bilinear cells reach: 196 / 225 of its
    mass on the quadrant's own cells, all of it in reach; a map with a tenth of its mass far away fails."""
    from igos.known_answer import KnownAnswerResult, cell_reach
    from igos.report_checks import known_answer_passes, known_answer_verdict

    q = region_mask("quadrant", (224, 224))
    correct = (cell_reach((28, 28), q) > 0).float()
    leaky = correct.clone()
    leaky[27, 27] = float(correct.sum()) / 9  # a tenth of the mass on the far corner, which no deletion can justify
    result = KnownAnswerResult("igos", 28, "quadrant", "blur", ["correct", "leaky"])
    for m in (correct, leaky):
        result.shares.append(inside_share(m, q))
        result.out_of_sight.append(out_of_sight_share(m, q))
    assert result.in_reach() == pytest.approx([1.0, 0.9])
    assert result.shares[0] == pytest.approx(196 / 225)
    one = KnownAnswerResult("igos", 28, "quadrant", "blur", ["correct"], result.shares[:1], [], [],
                            result.out_of_sight[:1]).summary()
    assert one["mean_in_reach"] == pytest.approx(1.0) and one["mean_share"] == pytest.approx(196 / 225)
    assert known_answer_passes(one) and "On the region's own cells: 87.1 %" in known_answer_verdict(one)
    both = result.summary()
    assert both["mean_in_reach"] == pytest.approx(0.95) and both["min_in_reach"] == pytest.approx(0.9)
    assert known_answer_passes(both)
    worse = {**both, "mean_in_reach": 0.949}
    assert not known_answer_passes(worse) and "does not pass" in known_answer_verdict(worse)
    assert "5.1 % on cells out of sight" in known_answer_verdict(worse)


def test_the_gradient_puts_all_its_mass_inside_and_a_control_does_not(tiny_net, images):
    got = known_answer(tiny_net, images, "gradient", region="quadrant")
    assert got.shares == [1.0, 1.0, 1.0] and got.summary()["mean_share"] == 1.0
    assert got.references == [1.0, 1.0, 1.0]  # the quadrant of a 32-pixel input on its own pixels
    assert got.out_of_sight == [0.0, 0.0, 0.0] and got.summary()["mean_out_of_sight"] == 0.0
    assert got.in_reach() == [1.0, 1.0, 1.0] and got.summary()["mean_in_reach"] == 1.0
    assert got.summary()["reach_reference"] == pytest.approx(1.0)  # the input's own pixels reach nothing else
    centre = known_answer(tiny_net, images, "center", resolution=8, region="quadrant", fill="grey")
    assert all(0.2 < s < 0.3 for s in centre.shares)  # a centred blob ignores the model: a quarter of it
    opt = known_answer(tiny_net, images[:1], "igos", resolution=8, region="box", iterations=3, steps=3)
    assert 0 <= opt.shares[0] <= 1 and opt.maps[0].shape == (8, 8)


def test_the_command_writes_known_answer_json(tmp_path, capsys):
    import json

    from PIL import Image

    from igos.cli import main

    photo = tmp_path / "p.png"
    pixels = torch.rand(40, 40, 3, generator=torch.Generator().manual_seed(0)) * 255
    Image.fromarray(pixels.byte().numpy()).save(photo)
    out = tmp_path / "k"
    code = main(["sanity", str(photo), "--model", "tinymodels:sized_classifier", "--method", "gradient",
                 "--known-answer", "quadrant", "--out", str(out)])
    assert code == 0
    doc = json.loads((out / "known-answer.json").read_text())
    assert doc["method"] == "gradient" and doc["region"] == "quadrant" and doc["mean_share"] == pytest.approx(1.0)
    assert doc["mean_in_reach"] == pytest.approx(1.0) and doc["min_in_reach"] == pytest.approx(1.0)
    assert doc["resolution"] == 224  # the gradient's own side (the input's), not the 28 the command asks for by default
    assert ("gradient at 224×224 passes the known-answer check: 100.0 % of its positive mass lies on cells that reach "
            "the quadrant") in capsys.readouterr().out
