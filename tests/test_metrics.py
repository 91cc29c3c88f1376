import numpy as np
import pytest
import torch
from conftest import LinearScore

from igos.metrics import curve_steps, deletion_insertion


def test_curve_steps_follow_protocol():
    assert curve_steps(784)[:3] == [0, 15, 30] and curve_steps(784)[-2:] == [765, 784]
    assert len(curve_steps(784)) == 53
    assert len(curve_steps(224 * 224)) == 51
    assert curve_steps(49) == list(range(50))  # chunk 1: 0..49
    assert curve_steps(3) == [0, 1, 2, 3]


def reference_auc(weight, image, baseline, saliency, mode):
    """Independent numpy implementation of the protocol for the LinearScore model."""
    h, w = image.shape[-2:]
    sh, sw = saliency.shape
    n = sh * sw
    order = np.argsort(-saliency.flatten(), kind="stable")
    chunk = max(1, n // 50)
    steps = [k * chunk for k in range(n // chunk)] + [n]
    ys = []
    for k in steps:
        cells = np.zeros(n)
        cells[order[:k]] = 1
        # nearest-neighbour blocks: pixel (i, j) belongs to cell (i*sh//h, j*sw//w)
        rows = (np.arange(h) * sh) // h
        cols = (np.arange(w) * sw) // w
        m = cells.reshape(sh, sw)[rows][:, cols]
        x = image * (1 - m) + baseline * m if mode == "deletion" else baseline * (1 - m) + image * m
        s = (x * weight).sum()
        ys.append(1 / (1 + np.exp(-s)))
    xs = np.array(steps) / n
    return float(np.sum((xs[1:] - xs[:-1]) * (np.array(ys[1:]) + np.array(ys[:-1])) / 2)), ys


@pytest.mark.parametrize("sal_shape", [(4, 4), (3, 5), (12, 12)])
def test_exact_auc_on_a_known_score(sal_shape):
    g = torch.Generator().manual_seed(0)
    weight = torch.randn(1, 3, 12, 12, generator=g, dtype=torch.float64) * 0.3
    model = LinearScore(weight)
    image = torch.rand(1, 3, 12, 12, generator=g, dtype=torch.float64)
    baseline = torch.rand(1, 3, 12, 12, generator=g, dtype=torch.float64)
    saliency = torch.rand(1, *sal_shape, generator=g, dtype=torch.float64)
    saliency[0, 0, :2] = 0.5  # ties, resolved in row-major order
    scores = deletion_insertion(model, image, saliency, 0, baseline=baseline, batch_size=7)
    for mode in ("deletion", "insertion"):
        ref, ys = reference_auc(weight[0].numpy(), image[0].numpy(), baseline[0].numpy(), saliency[0].numpy(), mode)
        assert getattr(scores, mode).item() == pytest.approx(ref, abs=1e-12)
        curve = getattr(scores, f"{mode}_curve")[0].numpy()
        np.testing.assert_allclose(curve, ys, atol=1e-12)
    # the curve ends: deletion starts at the clean score and ends at the baseline's, insertion the reverse
    assert scores.deletion_curve[0, 0] == pytest.approx(scores.insertion_curve[0, -1])
    assert scores.deletion_curve[0, -1] == pytest.approx(scores.insertion_curve[0, 0])


def test_batched_equals_one_by_one(tiny_net, images):
    sal = torch.rand(3, 7, 7, generator=torch.Generator().manual_seed(3))
    both = deletion_insertion(tiny_net, images, sal, batch_size=5)
    for i in range(3):
        one = deletion_insertion(tiny_net, images[i : i + 1], sal[i : i + 1], batch_size=64)
        assert one.deletion.item() == pytest.approx(both.deletion[i].item(), abs=1e-6)
        assert one.insertion.item() == pytest.approx(both.insertion[i].item(), abs=1e-6)


def test_bad_saliency_shapes_are_refused(tiny_net, images):
    with pytest.raises(ValueError, match="saliency must have shape"):
        deletion_insertion(tiny_net, images, torch.rand(2, 7, 7))
    with pytest.raises(ValueError, match="impossible"):
        deletion_insertion(tiny_net, images, torch.rand(3, 64, 64))
    with pytest.raises(ValueError, match="NaN"):
        deletion_insertion(tiny_net, images, torch.full((3, 7, 7), float("nan")))


def test_targets_out_of_range_are_refused(tiny_net, images):
    with pytest.raises(ValueError, match="out of range"):
        deletion_insertion(tiny_net, images, torch.rand(3, 7, 7), target=5)
