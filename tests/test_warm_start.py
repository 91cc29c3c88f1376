"""The warm start (``init``): another method's map seeds the deletion mask, ``M_0 = start · (1 − depth · m̂)``."""

import pytest
import torch
from conftest import squares

from igos.errors import InvalidOptionError
from igos.methods import igos, igospp
from igos.methods.controls import center_map
from igos.methods.warm import resample


def test_resample_averages_areas_down_and_interpolates_up():
    maps = torch.arange(2 * 14 * 14, dtype=torch.float64).view(2, 14, 14)
    down = resample(maps, (7, 7))
    assert torch.allclose(down, maps.view(2, 7, 2, 7, 2).mean((2, 4)))
    assert torch.equal(resample(maps, (14, 14)), maps)
    up = resample(torch.full((1, 7, 7), 3.0), (28, 28))
    assert up.shape == (1, 28, 28) and torch.allclose(up, torch.full_like(up, 3.0))


def test_with_no_iteration_the_mask_is_the_warm_start(tiny_net, images):
    """``iterations=0`` returns the start itself: ``start · (1 − depth · m / max m)`` of the centre control's map."""
    blob = center_map(tiny_net, images, resolution=7).saliency.double()
    expected = 0.5 * (1 - 0.8 * blob / blob.flatten(1).amax(1).view(-1, 1, 1))
    a = igos(tiny_net, images, resolution=7, iterations=0, start=0.5, init="center", init_depth=0.8,
             tie_break=0)
    assert torch.allclose(a.mask.double(), expected, atol=1e-6)
    assert all(t["init"] == "center" and t["stalled"] for t in a.trace)  # it never left *its* start
    assert a.mask.min() >= 0 and a.mask.max() <= 1


def test_igospp_warm_starts_the_deletion_mask_only(tiny_net, images):
    blob = center_map(tiny_net, images, resolution=7).saliency.double()
    m_d = 0.5 * (1 - blob / blob.flatten(1).amax(1).view(-1, 1, 1))
    a = igospp(tiny_net, images, resolution=7, iterations=0, start=0.5, init="center", tie_break=0)
    assert torch.allclose(a.mask.double(), m_d * 0.5, atol=1e-6)  # M = M_d ⊙ M_i, M_i at the start


def test_depth_zero_is_the_plain_start_and_a_warm_start_changes_the_map():
    model, x = squares(0.01)
    plain = igos(model, x, target=0, resolution=8, iterations=3)
    zero = igos(model, x, target=0, resolution=8, iterations=3, init="gradient", init_depth=0.0)
    assert torch.allclose(plain.saliency, zero.saliency, atol=1e-6)
    warm = igos(model, x, target=0, resolution=8, iterations=3, init="gradient")
    assert (warm.saliency - plain.saliency).abs().max() > 0.1


def test_the_warm_start_is_where_the_score_lives_and_its_images_are_counted():
    """On a model that weighs only two squares' pixels (the same two for both images), the gradient's warm start
    lowers exactly the cells that hold square pixels, by their share of them; the gradient's one forward+backward
    image per photo is part of the cost."""
    model, x = squares(0.01)
    cold = igos(model, x, target=0, resolution=8, iterations=0)
    warm = igos(model, x, target=0, resolution=8, iterations=0, init="gradient", start=1.0, tie_break=0)
    # of each 4×4-pixel cell, the share of its pixels in a square (rows × columns 4–13 × 4–13 and 18–27 × 16–25)
    share = torch.zeros(8, 8)
    share[1:3, 1:3], share[1:3, 3], share[3, 1:3], share[3, 3] = 1, 0.5, 0.5, 0.25
    share[5:7, 4:6], share[5:7, 6], share[4, 4:6], share[4, 6] = 1, 0.5, 0.5, 0.25
    assert torch.allclose(warm.mask, (1 - share).expand(2, 8, 8), atol=1e-6)
    assert warm.backward_images == cold.backward_images + 2


@pytest.mark.parametrize("bad", [dict(init="nonsense"), dict(init_depth=1.5), dict(init_depth=-0.1)])
def test_bad_warm_starts_are_named(tiny_net, images, bad):
    with pytest.raises(InvalidOptionError, match=next(iter(bad))):
        igos(tiny_net, images, resolution=7, **bad)


def test_batched_warm_starts_equal_one_by_one(tiny_net, images):
    both = igos(tiny_net, images, resolution=7, iterations=3, init="gradient", seed=3)
    for i in range(images.shape[0]):
        one = igos(tiny_net, images[i:i + 1], resolution=7, iterations=3, init="gradient", seed=3)
        assert torch.allclose(one.saliency[0], both.saliency[i], atol=1e-5)


def test_a_refused_warm_start_falls_back_to_init_fallback_and_says_so(tiny_net, images):
    """Excitation Backprop has no rule for GELU: ``init="ebp"`` raises there, and with ``init_fallback`` the
    mask starts from the fallback's map instead, exactly as if it had been asked for; the traces name the method
    that ran. Where Excitation Backprop runs, the fallback is not used."""
    from torch import nn

    from igos.errors import UnsupportedLayerError

    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.GELU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                        nn.Linear(4, 3)).eval()
    x = torch.rand(2, 3, 32, 32)
    with pytest.raises(UnsupportedLayerError):
        igos(net, x, resolution=7, iterations=1, init="ebp")
    fell = igos(net, x, resolution=7, iterations=1, init="ebp", init_fallback="gradcam")
    asked = igos(net, x, resolution=7, iterations=1, init="gradcam")
    assert torch.equal(fell.mask, asked.mask) and torch.equal(fell.saliency, asked.saliency)
    assert [t["init"] for t in fell.trace] == ["gradcam", "gradcam"]
    plain = igos(net, x, resolution=7, iterations=1)
    assert not torch.equal(fell.mask, plain.mask)  # the fallback's map did seed the mask
    ran = igospp(tiny_net, images, resolution=7, iterations=0, init="ebp", init_fallback="gradcam")
    assert all(t["init"] == "ebp" for t in ran.trace)
    with pytest.raises(InvalidOptionError, match="init_fallback"):
        igos(net, x, resolution=7, iterations=1, init="ebp", init_fallback="nope")
