"""The model-blind controls: exact maps on hand-built photos, per-photo seeding, and a model they ignore."""

import pytest
import torch
from scipy import ndimage

from igos.methods import METHODS
from igos.methods.controls import sobel_magnitude
from igos.perturb import cell_pool


class _Counting(torch.nn.Module):
    """Two classes; counts the images it sees."""

    def __init__(self):
        super().__init__()
        self.seen = 0
        self.w = torch.nn.Parameter(torch.zeros(3))

    def forward(self, x):
        self.seen += x.shape[0]
        s = (x.mean((2, 3)) * self.w).sum(1)
        return torch.stack([s, -s], 1)


def test_center_is_a_centred_gaussian_of_a_quarter_side():
    x = torch.rand(2, 3, 32, 32)
    m = METHODS["center"](_Counting(), x, resolution=(8, 4)).saliency
    assert m.shape == (2, 8, 4) and torch.equal(m[0], m[1])
    yy = torch.arange(8) + 0.5 - 4
    xx = torch.arange(4) + 0.5 - 2
    want = torch.exp(-0.5 * ((yy / 2).view(-1, 1) ** 2 + (xx / 1).view(1, -1) ** 2))  # σ = 8/4 and 4/4 cells
    torch.testing.assert_close(m[0], want)
    assert torch.equal(m[0], m[0].flip(0)) and torch.equal(m[0], m[0].flip(1))  # symmetric about the centre


def test_edges_is_the_sobel_magnitude_per_cell():
    x = torch.zeros(1, 3, 32, 32, dtype=torch.float64)
    x[..., 16:] = 1.0  # a vertical edge between columns 15 and 16
    g = x[0].mean(0).numpy()
    want = torch.from_numpy((ndimage.sobel(g, axis=1, mode="nearest") ** 2
                              + ndimage.sobel(g, axis=0, mode="nearest") ** 2) ** 0.5).unsqueeze(0)
    torch.testing.assert_close(sobel_magnitude(x), want)  # SciPy's Sobel, replicated borders
    m = METHODS["edges"](_Counting().double(), x, resolution=8).saliency
    torch.testing.assert_close(m, cell_pool(want, (8, 8), "mean"))
    assert int(m[0].sum(0).argmax()) in (3, 4)  # the edge's cells (columns 12–15 and 16–19)
    assert float(m[0, :, 0].abs().max()) == 0.0 and float(m[0, :, 7].abs().max()) == 0.0


def test_cell_pool_means_and_sums_the_metrics_blocks():
    maps = torch.arange(2 * 6 * 4, dtype=torch.float64).view(2, 6, 4)
    s = cell_pool(maps, (3, 2), "sum")
    m = cell_pool(maps, (3, 2), "mean")
    torch.testing.assert_close(s, maps.view(2, 3, 2, 2, 2).sum((2, 4)))
    torch.testing.assert_close(m, s / 4)
    with pytest.raises(ValueError, match="reduce"):
        cell_pool(maps, (3, 2), "max")


def test_random_is_seeded_per_photo_and_ignores_the_model():
    x = torch.rand(3, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    net = _Counting()
    both = METHODS["random"](net, x, resolution=7, seed=2).saliency
    assert net.seen == 3  # the target's forward pass only: the map never asks the model
    one = METHODS["random"](net, x[1:2], resolution=7, seed=2).saliency
    assert torch.equal(one[0], both[1])  # the same photo, the same map, in any batch
    assert not torch.equal(both[0], both[1])  # another photo, another map
    assert not torch.equal(METHODS["random"](net, x, resolution=7, seed=3).saliency, both)
    assert float(both.min()) >= 0 and float(both.max()) < 1
