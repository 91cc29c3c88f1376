import pytest
import torch
from conftest import LinearScore, armijo_checked, squares
from tinymodels import indifferent

from igos.methods.defaults import default_regularisation
from igos.methods.igos import igos
from igos.methods.optim import path_gradient, project_direction, upsample_adjoint
from igos.perturb import blurred_baseline, composite, upsample

OPTS = dict(resolution=7, iterations=6, steps=5, batch_size=8)
PAPER = dict(OPTS, start=1.0)  # the paper's start, M = 1, where a mask can stall


def test_masks_stay_in_unit_interval_and_saliency_is_one_minus_mask(tiny_net, images):
    r = igos(tiny_net, images, **OPTS)
    assert r.saliency.shape == (3, 7, 7) and r.mask.shape == (3, 7, 7)
    assert float(r.mask.min()) >= 0.0 and float(r.mask.max()) <= 1.0
    torch.testing.assert_close(r.saliency, 1 - r.mask, atol=1e-3 + 1e-7, rtol=0)  # + the tie order
    exact = igos(tiny_net, images, tie_break=0.0, **OPTS)
    torch.testing.assert_close(exact.saliency, 1 - exact.mask)
    assert r.mask.min() < 1.0  # something was deleted


def test_armijo_condition_holds_for_every_accepted_step(tiny_net, images):
    r = igos(tiny_net, images, resolution=7, iterations=8, steps=5, early_stop=None)
    assert armijo_checked(r.trace) > 5


@pytest.mark.parametrize("search_points", [0, 3])
def test_armijo_holds_for_both_line_search_objectives(tiny_net, images, search_points):
    r = igos(tiny_net, images, resolution=5, iterations=4, steps=4, search_points=search_points)
    assert armijo_checked(r.trace) > 3


def test_integrated_gradient_matches_a_loop_over_path_points(tiny_net, images):
    """The batched path gradient equals autograd through U(M) one path point at a time."""
    torch.manual_seed(0)
    x, x0 = images[:2].double(), blurred_baseline(images[:2]).double()
    net = tiny_net.double()
    mask = torch.rand(2, 1, 5, 5, dtype=torch.float64)
    targets = torch.tensor([1, 3])
    k = 6
    alphas = torch.arange(1, k + 1, dtype=torch.float64) / k
    noise = torch.randn(k, 3, 32, 32, dtype=torch.float64) * 0.05
    grad_up, probs = path_gradient(net, x0, x, upsample(mask, (32, 32)), targets, alphas, noise, batch_size=5)
    ours = upsample_adjoint(mask, grad_up)

    leaf = mask.clone().requires_grad_(True)
    total = torch.zeros(2, dtype=torch.float64)
    for i in range(k):
        xi = composite(x, x0, alphas[i] * upsample(leaf, (32, 32))) + noise[i]
        p = net(xi).softmax(1).gather(1, targets.view(-1, 1)).squeeze(1)
        total = total + p / k
        assert torch.allclose(probs[:, i], p.detach())
    total.sum().backward()
    torch.testing.assert_close(ours, leaf.grad, rtol=1e-9, atol=1e-12)


def test_integrated_gradient_matches_finite_differences(tiny_net, images):
    net = tiny_net.double()
    x, x0 = images[:1].double(), blurred_baseline(images[:1]).double()
    mask = torch.full((1, 1, 3, 3), 0.6, dtype=torch.float64)
    alphas = torch.tensor([0.5, 1.0], dtype=torch.float64)
    t = torch.tensor([2])
    grad_up, _ = path_gradient(net, x0, x, upsample(mask, (32, 32)), t, alphas, None, batch_size=4)
    g = upsample_adjoint(mask, grad_up)

    def f(m):
        return sum(
            net(composite(x, x0, a * upsample(m, (32, 32)))).softmax(1)[0, 2] for a in alphas
        ) / len(alphas)

    # the score is saturated (p ≈ 0.9998): a central difference at 1e-6 carries rounding error of ~1e-5 of these
    # derivatives (~1e-5); at 1e-4 both its rounding and truncation errors are below 2e-7 of them
    eps = 1e-4
    for i, j in [(0, 0), (1, 2), (2, 1)]:
        d = torch.zeros_like(mask)
        d[0, 0, i, j] = eps
        fd = (f(mask + d) - f(mask - d)) / (2 * eps)
        assert g[0, 0, i, j].item() == pytest.approx(fd.item(), rel=1e-5, abs=1e-10)


def test_batched_equals_one_by_one(tiny_net, images):
    """In float64, where the batch size's other split of the kernels' sums cannot flip a line-search decision."""
    net, x = tiny_net.double(), images.double()
    both = igos(net, x, seed=3, **OPTS)
    for i in range(3):
        one = igos(net, x[i : i + 1], seed=3, **OPTS)
        torch.testing.assert_close(one.saliency[0], both.saliency[i], atol=1e-10, rtol=0)
        assert one.trace[0]["iterations"] == both.trace[i]["iterations"]


def test_same_seed_same_heatmap_other_seed_other_heatmap(tiny_net, images):
    a = igos(tiny_net, images, seed=7, **OPTS)
    b = igos(tiny_net, images, seed=7, **OPTS)
    c = igos(tiny_net, images, seed=8, **OPTS)
    assert torch.equal(a.saliency, b.saliency)
    assert not torch.equal(a.saliency, c.saliency)


def test_targets_top1_default_and_explicit(tiny_net, images):
    top1 = tiny_net(images).argmax(1)
    r = igos(tiny_net, images, **OPTS)
    assert torch.equal(r.target, top1)
    r2 = igos(tiny_net, images, target=[0, 1, 2], **OPTS)
    assert r2.target.tolist() == [0, 1, 2]


@pytest.mark.parametrize("target", [5, -1, [0, 9, 1]])
def test_targets_out_of_range_raise(tiny_net, images, target):
    with pytest.raises(ValueError, match="out of range"):
        igos(tiny_net, images, target=target, **OPTS)


def test_wrong_number_of_targets_raises(tiny_net, images):
    with pytest.raises(ValueError, match="targets for 3 images"):
        igos(tiny_net, images, target=[0, 1], **OPTS)


@pytest.mark.parametrize("resolution", [0, 33, -7])
def test_impossible_resolutions_raise(tiny_net, images, resolution):
    with pytest.raises(ValueError, match="resolution"):
        igos(tiny_net, images, resolution=resolution, iterations=1, steps=2)


@pytest.mark.parametrize(
    "bad,match",
    [(torch.rand(2, 4, 32, 32), "shape"), (torch.rand(2, 3, 32, 32) * 255, r"\[0, 1\]"),
     (torch.randint(0, 2, (1, 3, 8, 8)), "float")],
)
def test_bad_images_raise(tiny_net, bad, match):
    with pytest.raises(ValueError, match=match):
        igos(tiny_net, bad, **OPTS)


def test_nan_model_raises_clear_error(images):
    class NaNNet(torch.nn.Module):
        def forward(self, x):
            return torch.full((x.shape[0], 3), float("nan"))

    from igos.methods.common import NonFiniteOutputError

    with pytest.raises(NonFiniteOutputError, match="NaN"):
        igos(NaNNet(), images, **OPTS)


def test_model_is_left_untouched(tiny_net, images):
    tiny_net.train()
    before = {k: v.clone() for k, v in tiny_net.state_dict().items()}
    igos(tiny_net, images, **OPTS)
    assert tiny_net.training
    assert all(p.requires_grad for p in tiny_net.parameters())
    assert all(p.grad is None for p in tiny_net.parameters())
    for k, v in tiny_net.state_dict().items():
        assert torch.equal(v, before[k])


def test_trace_counts_images(tiny_net, images):
    r = igos(tiny_net, images, resolution=7, iterations=3, steps=5, early_stop=None, batch_size=4)
    # 3 iterations x 5 path points x 3 images forward+backward
    assert r.backward_images == 3 * 5 * 3
    assert r.forward_images > 0
    for t in r.trace:
        assert t["iterations"] == 3 and len(t["step"]) == 3 and len(t["objective"]) == 3


def test_default_regularisation_per_resolution():
    assert default_regularisation(28) == (1.0, 20.0)
    assert default_regularisation(112) == (1.0, 60.0)
    assert default_regularisation(5) == default_regularisation(7)
    assert default_regularisation(500) == default_regularisation(224)
    l1, tv = default_regularisation(40)  # between 28 (1, 20) and 56 (1, 40), log-linear
    assert l1 == 1.0 and 20.0 < tv < 40.0


def test_projected_direction_zeroes_only_blocked_components_and_keeps_the_trial_masks():
    mask = torch.tensor([[[[1.0, 1.0, 0.5], [0.0, 0.0, 0.3]]]])
    g = torch.tensor([[[[-2.0, 3.0, -1.0], [4.0, -5.0, 0.0]]]])
    p = project_direction(mask, g)
    # at M = 1 a negative g would raise M, at M = 0 a positive g would lower it: both blocked
    torch.testing.assert_close(p, torch.tensor([[[[0.0, 3.0, -1.0], [0.0, -5.0, 0.0]]]]))
    for a in (1e-3, 0.1, 1.0, 100.0):
        torch.testing.assert_close((mask - a * p).clamp(0, 1), (mask - a * g).clamp(0, 1))
    assert float(p.pow(2).sum()) == 3.0**2 + 1.0 + 5.0**2


def test_a_mask_that_cannot_move_is_reported_as_stalled(images):
    flat = igos(indifferent(), images[:2], **PAPER)
    assert [t["stalled"] for t in flat.trace] == [True, True]
    assert float((1 - flat.mask).abs().max()) < 1e-3
    # a bright square that the model scores (p = 0.82): deleting it pays, so the mask moves
    x = torch.zeros(2, 3, 32, 32)
    x[0, :, 4:14, 4:14] = 1
    x[1, :, 18:28, 16:26] = 1
    w = torch.zeros(3, 32, 32)
    w[:, 4:14, 4:14] = w[:, 18:28, 16:26] = 0.005
    moved = igos(LinearScore(w), x, target=0, **PAPER)
    assert [t["stalled"] for t in moved.trace] == [False, False]
    assert float((1 - moved.mask).flatten(1).max(1).values.min()) > 0.05


def test_stall_retries_relax_lambda_until_the_mask_moves():
    net, x = squares(0.003)  # p = 0.71: at λ = (1, 1) no step pays, at 0.3 × λ it does
    plain = igos(net, x, target=0, **PAPER)
    assert all(t["stalled"] and t["retries"] == 0 for t in plain.trace)
    relaxed = igos(net, x, target=0, stall_retries=2, **PAPER)
    assert [(t["stalled"], t["retries"], t["l1"], t["tv"]) for t in relaxed.trace] == [(False, 1, 0.3, 0.3)] * 2
    assert float((1 - relaxed.mask).flatten(1).max(1).values.min()) > 0.5
    assert relaxed.forward_images > plain.forward_images  # the retry is counted
    net, x = net.double(), x.double()  # batched against one by one: in float64, as test_batched_equals_one_by_one
    relaxed = igos(net, x, target=0, stall_retries=2, **PAPER)
    one = [igos(net, x[i : i + 1], target=0, stall_retries=2, **PAPER) for i in range(2)]
    torch.testing.assert_close(relaxed.mask, torch.cat([o.mask for o in one]), atol=1e-10, rtol=0)


def test_stall_retries_give_up_after_the_limit(images):
    r = igos(indifferent(), images[:1], stall_retries=2, **PAPER)
    t = r.trace[0]
    assert t["stalled"] and t["retries"] == 2 and abs(t["l1"] - 0.09) < 1e-9
    with pytest.raises(ValueError, match="stall_relax"):
        igos(indifferent(), images[:1], stall_retries=1, stall_relax=1.5, **PAPER)
    with pytest.raises(ValueError, match="stall_retries"):  # checked before any work, stalled or not
        igos(indifferent(), images[:1], stall_retries=-1, **PAPER)


# --- issue 11: the score, the start, the tie order ------------------------------------------------------------

def test_log_odds_is_the_target_logit_against_the_rest():
    from igos.methods.common import class_probability, class_score

    net, x = squares(0.004)
    s = class_score(net, x, torch.zeros(2, dtype=torch.long), "log-odds")
    torch.testing.assert_close(s, (x * net.weight).flatten(1).sum(1))  # two classes: log-odds = logit 0 − logit 1
    four = indifferent()  # logits (2, 0, −1, 0.5) whatever the image
    t = torch.tensor([0, 1])
    p = class_probability(four, x, t)
    torch.testing.assert_close(class_score(four, x, t, "log-odds"), torch.log(p) - torch.log1p(-p))
    torch.testing.assert_close(torch.sigmoid(class_score(four, x, t, "log-odds")), p)
    with pytest.raises(ValueError, match="score must be one of probability, log-odds"):
        class_score(four, x, t, "logit")


def _square_cells(x, side=7):
    """Cells of a ``side × side`` mask at least half covered by each image's bright square."""
    cover = torch.nn.functional.adaptive_avg_pool2d(x[:, :1], side)[:, 0]
    return cover >= 0.5


def test_a_start_inside_the_box_lets_the_mask_move_both_ways():
    net, x = squares(0.003)  # from M = 1 no step pays at λ = (1, 1): the map stalls (test above)
    r = igos(net, x, target=0, start=0.5, **OPTS)
    assert float(r.mask.min()) >= 0.0 and float(r.mask.max()) <= 1.0
    assert not any(t["stalled"] or t["flat"] for t in r.trace)
    # the empty background went up to 1 (kept), the squares' cells stayed lower (deleted first)
    square = _square_cells(x)
    for i in range(2):
        assert float(r.mask[i][~square[i]].mean()) > 0.98 > 0.95 > float(r.mask[i][square[i]].mean())
    top = r.saliency.flatten(1).argmax(1)
    assert all(bool(square[i].flatten()[top[i]]) for i in range(2))
    net, x = net.double(), x.double()  # batched against one by one: in float64, as test_batched_equals_one_by_one
    r = igos(net, x, target=0, start=0.5, **OPTS)
    one = [igos(net, x[i : i + 1], target=0, start=0.5, **OPTS) for i in range(2)]
    torch.testing.assert_close(r.mask, torch.cat([o.mask for o in one]), atol=1e-10, rtol=0)


def test_flat_is_judged_on_the_map_and_stalled_from_the_start(images):
    # nothing lowers the score: from 0.5 the L1 term raises every cell to 1, the mask moved but says nothing
    r = igos(indifferent(), images[:1], start=0.5, **OPTS)
    assert not r.trace[0]["stalled"] and r.trace[0]["flat"]
    assert float(r.mask.min()) > 0.999
    with pytest.raises(ValueError, match="start"):
        igos(indifferent(), images[:1], start=1.5, **OPTS)


def test_tie_break_orders_the_cells_a_stalled_mask_leaves_equal():
    net, x = squares(0.003)
    plain = igos(net, x, target=0, start=1.0, tie_break=0.0, **OPTS)
    assert all(t["stalled"] and t["flat"] for t in plain.trace)
    tied = igos(net, x, target=0, start=1.0, tie_break=1e-3, **OPTS)
    assert all(t["stalled"] for t in tied.trace)
    _assert_tie_order(plain, tied, x)


def _assert_tie_order(plain, tied, x):
    """``tied`` is ``plain`` (flat maps) with the tie order: the same mask, maps no longer flat, at most 1e-3
    added, and the order the integrated gradient's (the squares' cells first)."""
    torch.testing.assert_close(tied.mask, plain.mask)  # the optimisation itself is unchanged
    assert not any(t["flat"] for t in tied.trace)
    extra = tied.saliency - plain.saliency
    assert float(extra.abs().max()) <= 1e-3 + 1e-9  # below the order of any cell the mask moved
    square = _square_cells(x)
    for i in range(x.shape[0]):
        assert float(extra[i][square[i]].min()) > float(extra[i][~square[i]].max())


def test_igospp_full_search_orders_a_map_it_leaves_flat_by_default():
    # the full search (lean=False) has the tie order on by default, as I-GOS and the lean search
    from igos.methods.igospp import igospp

    net, x = squares(3e-4)  # a signal too weak to pay for moving any cell against λ1 and λ2
    kw = dict(resolution=7, iterations=4, steps=3, batch_size=8, target=0, start=1.0, lean=False)
    plain = igospp(net, x, tie_break=0.0, **kw)
    assert all(t["flat"] for t in plain.trace)
    _assert_tie_order(plain, igospp(net, x, **kw), x)


def test_normalise_divides_the_score_by_its_drop_from_image_to_baseline():
    from igos.methods.common import class_probability
    from igos.perturb import blurred_baseline

    net, x = squares(0.003)
    t = torch.zeros(2, dtype=torch.long)
    drop = class_probability(net, x, t) - class_probability(net, blurred_baseline(x), t)
    kw = dict(OPTS, iterations=1, start=1.0, noise=0.0)
    plain = igos(net, x, target=0, **kw)
    normal = igos(net, x, target=0, normalise=True, **kw)
    for a, b, d in zip(plain.trace, normal.trace, drop.tolist()):  # at M = 1 the regulariser is 0
        assert b["armijo"][0][0] == pytest.approx(a["armijo"][0][0] / d, rel=1e-5)
