"""The paper's baselines: exact values, axioms, seeds, and the contract every method shares."""

import pytest
import torch
from conftest import armijo_checked
from torch import nn

from igos.methods import METHODS
from igos.methods.ebp import UnsupportedLayerError, excitation_backprop, winning_probabilities
from igos.methods.gradcam import gradcam
from igos.methods.integrated_gradients import integrated_gradients
from igos.methods.mask import mask
from igos.methods.rise import rise

FAST = {
    "igos": dict(resolution=7, iterations=3, steps=4),
    "igospp": dict(resolution=7, iterations=2, steps=3),
    "mask": dict(resolution=7, iterations=10),
    "ig": dict(steps=8),
    "gradcam": dict(layer="features.2"),
    "rise": dict(masks=64, grid=4),
    "gradient": {},
    "ebp": dict(resolution=8),
    "random": dict(resolution=7),
    "center": dict(resolution=7),
    "edges": dict(resolution=7),
}


@pytest.mark.parametrize("name", sorted(METHODS))
def test_every_method_returns_b_h_w_and_batched_equals_one_by_one(name, tiny_net, images):
    """In float64, where another split of the kernels' sums by the batch size cannot flip an optimiser's
    decision; on float32 inputs the map stays float32."""
    fn = METHODS[name]
    assert fn(tiny_net, images[:1], seed=1, **FAST[name]).saliency.dtype == torch.float32
    tiny_net, images = tiny_net.double(), images.double()
    both = fn(tiny_net, images, seed=1, **FAST[name])
    assert both.saliency.dim() == 3 and both.saliency.shape[0] == 3
    assert both.saliency.device == images.device and torch.isfinite(both.saliency).all()
    kind = METHODS[name].resolutions
    if kind == "input":
        assert tuple(both.saliency.shape[1:]) == (32, 32)
    for i in range(3):
        one = fn(tiny_net, images[i : i + 1], seed=1, **FAST[name])
        torch.testing.assert_close(one.saliency[0], both.saliency[i], atol=1e-10, rtol=1e-8)


@pytest.mark.parametrize("name", sorted(METHODS))
def test_every_method_rejects_out_of_range_targets_and_leaves_no_hooks(name, tiny_net, images):
    with pytest.raises(ValueError, match="out of range"):
        METHODS[name](tiny_net, images, target=7, **FAST[name])
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in tiny_net.modules())
    assert all(p.grad is None for p in tiny_net.parameters())


def test_ig_completeness(tiny_net, images):
    """Attributions sum to p(x) − p(x0); with 64 Gauss–Legendre points the error is below 1e-4."""
    r = integrated_gradients(tiny_net.double(), images.double(), target=[0, 1, 2], steps=64)
    from igos.perturb import blurred_baseline

    x0 = blurred_baseline(images.double())
    with torch.no_grad():
        px = tiny_net(images.double()).softmax(1)[torch.arange(3), torch.tensor([0, 1, 2])]
        p0 = tiny_net(x0).softmax(1)[torch.arange(3), torch.tensor([0, 1, 2])]
    sums = r.saliency.flatten(1).sum(1)
    torch.testing.assert_close(sums, px - p0, atol=1e-4, rtol=0)
    assert all(abs(t["delta"]) < 1e-4 for t in r.trace)
    # the trace's completeness figures are the measured ones
    torch.testing.assert_close(torch.tensor([t["path_delta"] for t in r.trace], dtype=torch.double), px - p0,
                               atol=1e-6, rtol=0)
    torch.testing.assert_close(torch.tensor([t["attribution_sum"] for t in r.trace], dtype=torch.double), sums,
                               atol=1e-6, rtol=0)


class TwoChannel(nn.Module):
    """A hand-built GradCAM case: features = identity (2 channels of a 2x2 map), logit = linear."""

    def __init__(self):
        super().__init__()
        self.features = nn.Identity()
        self.fc = nn.Linear(2, 2, bias=False)
        with torch.no_grad():
            self.fc.weight.copy_(torch.tensor([[1.0, -2.0], [0.5, 3.0]]))

    def forward(self, x):
        a = self.features(x[:, :2])  # [B, 2, 2, 2]
        return self.fc(a.mean((2, 3)))


def test_gradcam_exact_values_on_a_hand_built_net():
    x = torch.zeros(1, 3, 2, 2)
    x[0, 0] = torch.tensor([[0.4, 0.0], [0.8, 0.4]])
    x[0, 1] = torch.tensor([[0.1, 0.2], [0.0, 0.1]])
    net = TwoChannel()
    # class 0: dy/dA_k = w_k / 4 everywhere -> weights (1/4, -2/4); cam = relu(A0/4 - A1/2)
    r = gradcam(net, x, target=0, layer="features")
    expected = torch.relu(x[0, 0] / 4 - x[0, 1] / 2)
    torch.testing.assert_close(r.saliency[0], expected)
    r1 = gradcam(net, x, target=1, layer=net.features)
    torch.testing.assert_close(r1.saliency[0], torch.relu(0.5 * x[0, 0] / 4 + 3 * x[0, 1] / 4))


def test_gradcam_finds_the_last_spatial_layer_and_removes_hooks_after_errors(tiny_net, images):
    r = gradcam(tiny_net, images)
    assert r.saliency.shape == (3, 2, 2)  # the 2x2 adaptive pool is the last spatial output
    with pytest.raises(ValueError, match="no layer named"):
        gradcam(tiny_net, images, layer="nope")

    class Boom(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 2, 1)

        def forward(self, x):
            self.conv(x)
            raise RuntimeError("boom")

    net = Boom()
    with pytest.raises(RuntimeError, match="boom"):
        gradcam(net, images, target=0, layer="conv")
    assert not net.conv._forward_hooks


def test_rise_is_reproducible_under_a_seed(tiny_net, images):
    a = rise(tiny_net, images, masks=50, grid=4, seed=3)
    b = rise(tiny_net, images, masks=50, grid=4, seed=3)
    c = rise(tiny_net, images, masks=50, grid=4, seed=4)
    assert torch.equal(a.saliency, b.saliency)
    assert not torch.equal(a.saliency, c.saliency)


class RegionScore(nn.Module):
    """Score = mean of a known pixel region (rows 4..11, cols 20..27); logit 1 = 0."""

    def forward(self, x):
        s = 20 * (x[:, :, 4:12, 20:28].mean((1, 2, 3)) - 0.5)
        return torch.stack([s, torch.zeros_like(s)], 1)


def test_rise_peaks_on_the_region_that_drives_the_score():
    x = torch.ones(1, 3, 32, 32)
    r = rise(RegionScore(), x, target=0, baseline=torch.zeros_like(x), masks=1500, grid=4, seed=0)
    sal = r.saliency[0]
    inside = sal[4:12, 20:28].mean()
    outside = torch.cat([sal[16:, :].flatten(), sal[:, :12].flatten()]).mean()
    assert inside > outside * 1.3
    peak = divmod(int(sal.argmax()), 32)
    assert 2 <= peak[0] <= 13 and 18 <= peak[1] <= 29


def test_mask_objective_decreases_and_deletes_the_region():
    x = torch.ones(2, 3, 32, 32)
    r = mask(RegionScore(), x, target=0, baseline=torch.zeros_like(x), resolution=8, iterations=80)
    for t in r.trace:
        first = sum(t["objective"][:5]) / 5
        last = sum(t["objective"][-5:]) / 5
        assert last < first - 0.3
        assert t["final_objective"] < t["objective"][0]
    assert float(r.mask.min()) >= 0 and float(r.mask.max()) <= 1
    # the deleted cells (high saliency) are those over the region rows 4..11, cols 20..27 (cells 1-2, 5-6)
    sal = r.saliency[0]
    assert sal[1:3, 5:7].mean() > sal[5:, :4].mean() + 0.3


class TinyReLU(nn.Module):
    def __init__(self):
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.conv = nn.Conv2d(3, 4, 3, padding=1, bias=False)
        self.conv2 = nn.Conv2d(4, 4, 3, padding=1, bias=False)
        self.fc = nn.Linear(4 * 4, 3, bias=False)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=g).abs() * (1 + torch.rand(p.shape, generator=g)) - 0.2)

    def forward(self, x):
        h = torch.relu(self.conv(x))
        h = h + torch.relu(self.conv2(h))  # a residual sum
        h = nn.functional.avg_pool2d(h, 2)
        h = nn.functional.max_pool2d(h, 2)
        return self.fc(h.flatten(1))


def test_ebp_probabilities_are_non_negative_and_conserve_mass():
    net = TinyReLU().eval()
    x = torch.rand(2, 3, 8, 8, generator=torch.Generator().manual_seed(1))
    p = winning_probabilities(net, x, torch.tensor([0, 2]))
    assert float(p.min()) >= 0
    torch.testing.assert_close(p.sum((1, 2, 3)), torch.ones(2), atol=1e-5, rtol=0)
    # cells at a coarser resolution hold the mass of their pixels
    r = excitation_backprop(net, x, target=[0, 2], resolution=4)
    torch.testing.assert_close(r.saliency.sum((1, 2)), torch.ones(2), atol=1e-5, rtol=0)


def test_ebp_mass_is_conserved_layer_to_layer():
    """Checked by hand at the first layer: P(input) equals the conv rule applied to P(conv output)."""
    net = TinyReLU().eval()
    x = torch.rand(1, 3, 8, 8, generator=torch.Generator().manual_seed(2))
    seen = []
    import igos.methods.ebp as ebp

    original = ebp._Rule.backward

    def spy(ctx, p_out):
        out = original(ctx, p_out)
        seen.append((float(p_out.sum()), float(out[0].sum())))
        return out

    ebp._Rule.backward = staticmethod(spy)
    try:
        winning_probabilities(net, x, torch.tensor([1]))
    finally:
        ebp._Rule.backward = staticmethod(original)
    assert len(seen) >= 4
    for before, after in seen:
        assert after == pytest.approx(before, abs=1e-5)


def test_ebp_names_the_layer_it_cannot_handle(images):
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Sigmoid(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2))
    with pytest.raises(UnsupportedLayerError, match=r"sigmoid.*1 \(Sigmoid\)"):
        excitation_backprop(net, images, target=0)


def test_igospp_masks_and_armijo(tiny_net, images):
    from igos.methods.igos import FLAT_TOLERANCE
    from igos.methods.igospp import igospp

    r = igospp(tiny_net, images, resolution=6, iterations=4, steps=3, accelerated=False)  # the line search
    assert r.saliency.shape == (3, 6, 6)
    assert float(r.mask.min()) >= 0 and float(r.mask.max()) <= 1
    # the saliency is 1 − M; a mask with no order gets the tie order, at most 1e-3 (FULL["tie_break"])
    extra = r.saliency - (1 - r.mask)
    assert float(extra.abs().max()) <= 1e-3 + 1e-7
    for i in range(3):
        if float(r.mask[i].max() - r.mask[i].min()) >= FLAT_TOLERANCE:
            assert float(extra[i].abs().max()) == 0.0
    assert armijo_checked(r.trace) > 3
    fast = igospp(tiny_net, images, resolution=6, iterations=4, l1=0.0, tv=0.0, accelerated=True)
    assert fast.options.accelerated and fast.options.nesterov and fast.options.steps == 3
    assert float(fast.mask.min()) >= 0 and float(fast.mask.max()) <= 1 and float(fast.mask.min()) < 0.9
