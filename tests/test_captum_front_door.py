"""``igos.captum``: Captum's ``attribute`` call, Captum's own visualisation on the result, and the same
heatmap as igos on pixel images, normalised inputs included."""

import numpy as np
import pytest
import torch
from agreement import assert_same_explanation
from conftest import TinyNet, squares

import igos
from igos.captum import IGOS, IGOSPP, Mask, quantus_explain

OPTS = dict(resolution=4, iterations=3, steps=4)


def test_attribute_is_shaped_like_captum_and_equals_igos(images):
    net = TinyNet().eval()
    attr = IGOS(net).attribute(images, target=[1, 2, 0], **OPTS)
    assert attr.shape == (3, 1, 32, 32) and attr.dtype == images.dtype and attr.device == images.device
    direct = igos.get_method("igos")(net, images, [1, 2, 0], **OPTS).saliency
    # each heatmap cell is an 8×8 block of equal values (nearest-neighbour, like LayerAttribution.interpolate)
    torch.testing.assert_close(attr[:, 0, ::8, ::8], direct)
    torch.testing.assert_close(attr[:, 0], direct.repeat_interleave(8, 1).repeat_interleave(8, 2))


def test_normalised_inputs_give_the_heatmap_of_the_pixel_images(images):
    net = TinyNet().eval()
    mean, std = (0.4, 0.5, 0.6), (0.2, 0.25, 0.3)
    m, s = torch.tensor(mean).view(1, 3, 1, 1), torch.tensor(std).view(1, 3, 1, 1)

    def normalised_net(x):  # what a user's model looks like: it takes normalised inputs
        return net(x * s + m)

    attr = IGOS(normalised_net, mean=mean, std=std).attribute((images - m) / s, target=1, **OPTS)
    pixel = IGOS(net).attribute(images, target=1, **OPTS)
    # normalising and back is not bit-exact, and the optimiser amplifies it: compared as a user would
    assert_same_explanation(net, images, attr[:, 0, ::8, ::8], pixel[:, 0, ::8, ::8], 1)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):  # normalised inputs without their normalisation
        IGOS(normalised_net).attribute((images - m) / s * 4, target=1, **OPTS)


def test_other_methods_options_and_baselines(images):
    net = TinyNet().eval()
    a = IGOSPP(net).attribute(images[:1], target=0, resolution=4, iterations=1, steps=2)
    b = Mask(net).attribute(images[:1], target=0, baselines=torch.zeros_like(images[:1]), resolution=4, iterations=5)
    assert a.shape == b.shape == (1, 1, 32, 32)
    with pytest.raises(ValueError, match="unknown option"):
        IGOS(net).attribute(images[:1], target=0, iteratons=3)


def test_captum_visualisation_takes_the_result_unchanged(images):
    viz = pytest.importorskip("captum.attr", reason="Captum is the reference").visualization
    import matplotlib

    matplotlib.use("Agg")
    net, x = squares(0.005)  # a model whose evidence is a square: the map is not flat
    attr = IGOS(net).attribute(x[:1], target=0, resolution=8, iterations=5, steps=5)
    assert float(attr.max()) > 0.1
    fig, ax = viz.visualize_image_attr(attr[0].permute(1, 2, 0).numpy(), x[0].permute(1, 2, 0).numpy(),
                                       method="blended_heat_map", sign="positive", use_pyplot=False)
    assert fig is not None and ax is not None


def test_quantus_explain_func_shape(images):
    out = quantus_explain(TinyNet().eval(), images.numpy(), np.array([0, 1, 2]), **OPTS)
    assert isinstance(out, np.ndarray) and out.shape == (3, 1, 32, 32)


def test_a_quantus_metric_takes_the_explain_func(images):
    quantus = pytest.importorskip("quantus", reason="Quantus imports torchvision, which does not import beside "
                                                    "this machine's torch 2.13 CPU build: run in the side environment")
    net, x = squares(0.005)  # maps that move (a flat map has no correlation to measure)
    metric = quantus.FaithfulnessCorrelation(nr_runs=5, subset_size=16, return_aggregate=False,
                                             disable_warnings=True)
    scores = metric(model=net, x_batch=x.numpy(), y_batch=np.array([0, 0]), a_batch=None,
                    explain_func=quantus_explain,
                    explain_func_kwargs=dict(resolution=8, iterations=5, steps=5), device="cpu")
    assert len(scores) == 2 and all(np.isfinite(scores))
