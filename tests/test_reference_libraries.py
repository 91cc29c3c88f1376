"""igos' hand-written baselines against reference libraries: Captum (CI), zennit (where it imports),
and a hand-computed Excitation Backprop."""

import pytest
import torch
from torch import nn

from igos.methods import get_method
from igos.methods.ebp import winning_probabilities
from igos.methods.layers import resolve_layer

captum_attr = pytest.importorskip("captum.attr", reason="Captum is the reference for GradCAM and the gradient")


@pytest.fixture(scope="module")
def photos(lite0):
    from pathlib import Path

    import skimage

    from igos.images import load_image

    data = Path(skimage.__file__).parent / "data"
    return torch.stack([load_image(data / f, 224) for f in ("chelsea.png", "coffee.png")])


@pytest.mark.slow
def test_gradcam_equals_captum_layer_gradcam_on_the_embedded_model(lite0, photos):
    target = torch.tensor([285, 967])
    ours = get_method("gradcam")(lite0.model, photos, target, layer=lite0.gradcam_layer).saliency
    layer = resolve_layer(lite0.model, lite0.gradcam_layer)
    ref = captum_attr.LayerGradCam(lite0.model, layer).attribute(photos, target, relu_attributions=True)
    assert ref.shape == (2, 1, 7, 7)
    torch.testing.assert_close(ours, ref[:, 0].detach(), atol=1e-5, rtol=1e-4)


@pytest.mark.slow
def test_gradient_equals_captum_saliency_on_the_embedded_model(lite0, photos):
    """igos' gradient is Simonyan et al.'s max over colour channels of |∂p/∂x|: Captum's
    Saliency(abs=True) of the softmax probability, reduced over channels the same way."""
    target = torch.tensor([285, 967])
    ours = get_method("gradient")(lite0.model, photos, target).saliency
    ref = captum_attr.Saliency(lambda x: lite0.model(x).softmax(1)).attribute(photos.clone(), target, abs=True)
    torch.testing.assert_close(ours, ref.amax(1), atol=1e-5, rtol=1e-4)


class TwoLayer(nn.Module):
    def __init__(self, w1, w2):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(6, 3, bias=False), nn.Linear(3, 2, bias=False)
        with torch.no_grad():
            self.fc1.weight.copy_(w1)
            self.fc2.weight.copy_(w2)

    def forward(self, x):
        return self.fc2(torch.relu(self.fc1(x.flatten(1))))


def test_excitation_backprop_equals_the_hand_computed_marginal_winning_probabilities():
    w1 = torch.tensor([[0.5, -1.0, 2.0, 0.0, 1.0, 0.3], [1.0, 1.0, -0.5, 0.2, 0.0, 0.4],
                       [-0.3, 0.8, 0.6, 1.0, -1.0, 0.1]])
    w2 = torch.tensor([[1.0, -2.0, 0.5], [0.3, 0.7, -1.0]])
    x = torch.tensor([0.2, 0.9, 0.4, 0.7, 0.1, 0.6]).view(1, 3, 1, 2)
    p = winning_probabilities(TwoLayer(w1, w2), x, torch.tensor([0])).flatten()
    # by hand: P(h_i) ∝ w2[0, i]⁺ h_i; P(x_j) = Σ_i P(h_i) x_j w1[i, j]⁺ / Σ_j' x_j' w1[i, j']⁺
    xv = x.flatten()
    h = torch.relu(w1 @ xv)
    top = w2[0].clamp(min=0) * h
    p_h = top / top.sum()
    contrib = xv.view(1, -1) * w1.clamp(min=0)  # [3, 6]
    expected = (p_h.view(-1, 1) * contrib / contrib.sum(1, keepdim=True)).sum(0)
    torch.testing.assert_close(p, expected, atol=1e-6, rtol=1e-5)
    assert float(p.sum()) == pytest.approx(1.0, abs=1e-6)


def test_excitation_backprop_equals_zennit_zplus_on_a_relu_cnn():
    zennit = pytest.importorskip("zennit", reason="zennit imports torchvision, which does not import beside "
                                                  "this machine's torch 2.13 CPU build: run in the side environment")
    from zennit.core import Composite
    from zennit.rules import Norm, ZPlus
    from zennit.types import AvgPool, Convolution, Linear

    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 4, 3, padding=1), nn.ReLU(),
                        nn.AvgPool2d(4), nn.Flatten(), nn.Linear(16, 3)).eval()
    with torch.no_grad():  # Excitation Backprop ignores biases: compare on a network without them
        for m in net.modules():
            if getattr(m, "bias", None) is not None:
                m.bias.zero_()

    def rule(ctx, name, module):  # z⁺ for weights (MWP's excitatory rule), Norm for pooling (MWP's x_j / Σ x)
        return ZPlus() if isinstance(module, (Convolution, Linear)) else Norm() if isinstance(module, AvgPool) else None

    x = torch.rand(2, 3, 8, 8)
    target = torch.tensor([0, 2])
    ours = winning_probabilities(net, x, target)
    composite = Composite(module_map=rule)
    xr = x.clone().requires_grad_(True)
    with composite.context(net) as modified:
        out = modified(xr)
        (rel,) = torch.autograd.grad(out, xr, grad_outputs=torch.eye(3)[target])
    # ZPlus relevance and MWP are the same redistribution (z⁺ rule); inputs ≥ 0, so x w⁺ = (x w)⁺
    torch.testing.assert_close(ours, rel, atol=1e-5, rtol=1e-4)
    assert zennit is not None
