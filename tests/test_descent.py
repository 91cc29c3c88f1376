"""The shared descent driver: the explanations of the code before it (masks recorded from commit c611467, the
last one with the separate I-GOS/iGOS++ loops), validated settings, the line search's acceptance record.
Exact reproduction of every method is held by float64 snapshots (test_reference64.py)."""

import math
from pathlib import Path

import pytest
import torch
from conftest import squares

from igos.methods import get_method, igos, igospp
from igos.methods.descent import DescentOptions
from igos.methods.igos import IGOSOptions
from igos.methods.igospp import IGOSppOptions
from igos.methods.optim import line_search

DATA = Path(__file__).parent / "data"
# the snapshots predate issue 11's defaults: the mask starts at 1 and ties stay unordered, as in the paper
PAPER = dict(start=1.0, tie_break=0.0)
# iGOS++ as the authors set it
PAPER_PP = dict(l1=10.0, tv=20.0, steps=10, early_stop=None, start=1.0, lean=False, tie_break=0.0)


@pytest.mark.slow
@pytest.mark.parametrize("photo", ["chelsea.png", "coffee.png"])
def test_the_driver_explains_real_photos_as_the_previous_code_did(photo, lite0):
    """Against masks recorded by the code before the shared driver (commit c611467) on another machine: the
    line search's decisions amplify float rounding, so the maps are compared by what a user sees (deletion and
    insertion within 1e-3, rank correlation ≥ 0.99, the same top cells), not cell by cell."""
    import skimage
    from agreement import assert_same_explanation

    from igos.images import load_image

    ref = torch.load(DATA / "descent_reference_lite0.pt")[photo]
    x = load_image(Path(skimage.__file__).parent / "data" / photo, 224).unsqueeze(0)
    a = igos(lite0.model, x, resolution=28, **PAPER)
    assert_same_explanation(lite0.model, x, a.saliency, 1 - ref["igos28"].view(1, 28, 28), a.target)
    b = igospp(lite0.model, x, resolution=14, iterations=3, **PAPER_PP)
    assert_same_explanation(lite0.model, x, b.saliency, 1 - ref["igospp14_3it"].view(1, 14, 14), b.target)


@pytest.mark.parametrize("bad, match", [
    (dict(steps=0), "steps"), (dict(iterations=-1), "iterations"), (dict(step_decay=1.5), "step_decay"),
    (dict(min_step=10.0, first_step=1.0), "min_step"), (dict(noise=-0.1), "noise"), (dict(patience=0), "patience"),
])
def test_descent_options_are_validated_once(bad, match):
    for schema in (DescentOptions, IGOSOptions, IGOSppOptions):
        with pytest.raises(ValueError, match=match):
            schema(**bad)


def test_a_retry_is_the_same_options_with_smaller_lambda():
    s = IGOSOptions(l1=2.0, tv=10.0, stall_retries=2, stall_relax=0.5, iterations=7, steps=3)
    r = s.relaxed()
    assert (r.l1, r.tv, r.stall_retries) == (1.0, 5.0, 1)
    assert (r.iterations, r.steps, r.stall_relax) == (7, 3, 0.5)
    with pytest.raises(ValueError, match="stall_relax"):
        IGOSOptions(stall_relax=1.0)


def test_line_search_accepts_the_largest_armijo_step_and_records_refusals():
    """F(m) = Σ (m − c)² per image: the exact accepted steps are known."""
    target = torch.tensor([[0.2, 0.4], [0.9, 0.9]]).view(2, 1, 1, 2)

    def objective(masks, rows):
        f = (masks - target[rows]).pow(2).flatten(1).sum(1)
        return f, -f

    mask = torch.ones(2, 1, 1, 2)
    value, _ = objective(mask, torch.arange(2))
    direction = 2 * (mask - target)  # the gradient
    res = line_search(objective, mask, direction, value, torch.tensor([10.0, 10.0]), decay=0.5, armijo=1e-4,
                      min_step=1e-3, trials_per_batch=3)
    gnorm2 = direction.flatten(1).pow(2).sum(1)
    for i in range(2):
        assert bool(res.accepted[i])
        a = float(res.step[i])
        assert float(res.value[i]) <= float(value[i]) - 1e-4 * a * float(gnorm2[i])
        if a == 10.0:  # the first trial passed
            continue
        bigger = a / 0.5  # the previous trial failed the test
        f_big, _ = objective((mask[i : i + 1] - bigger * direction[i : i + 1]).clamp(0, 1), torch.tensor([i]))
        assert float(f_big) > float(value[i]) - 1e-4 * bigger * float(gnorm2[i])
    assert res.step.tolist() == [10.0, 0.625]
    # a direction of ascent: nothing passes, min_step is taken and the refusal is recorded
    half = mask * 0.5
    res = line_search(objective, half, -2 * (half - target), objective(half, torch.arange(2))[0],
                      torch.tensor([1.0, 1.0]), decay=0.5, min_step=1e-2, trials_per_batch=2)
    assert not res.accepted.any() and torch.allclose(res.step, torch.tensor([1e-2, 1e-2]))
    assert torch.isfinite(res.value).all() and (res.trials == 8).all()  # 7 trials down to 1/64 … + the fallback


def test_traces_record_acceptance_per_iteration(tiny_net, images):
    r = igos(tiny_net, images, resolution=7, iterations=4, steps=4, early_stop=None)
    for t in r.trace:
        assert len(t["accepted"]) == t["iterations"] == 4 and all(isinstance(a, bool) for a in t["accepted"])


@pytest.mark.parametrize("grid", ["uniform", "adaptive"])
def test_textbook_direction_is_complete_on_a_smooth_model(grid):
    """Σ M ⊙ g_IG = p(M) − p(I0) for textbook integrated gradients (no noise, fine quadrature)."""
    net, x = squares(0.004)
    r = igos(net, x, target=0, resolution=8, iterations=3, steps=64 if grid == "uniform" else 24, noise=0.0,
             direction="ig", grid=grid, early_stop=None, start=1.0)
    for t in r.trace:
        assert len(t["ig_sum"]) == len(t["path_delta"]) == t["iterations"] == 3
        for got, want in zip(t["ig_sum"], t["path_delta"]):
            assert abs(want) > 0.05 and got == pytest.approx(want, rel=0.02)
    paper = igos(net, x, target=0, resolution=8, iterations=1, steps=64, noise=0.0, early_stop=None, start=1.0)
    for t, ref in zip(paper.trace, r.trace):  # the paper's α-weighted sum is smaller: p(1) − ∫p dα < p(1) − p(0)
        assert 0 < t["ig_sum"][0] < ref["path_delta"][0]


def test_adaptive_grid_puts_points_where_p_rises():
    from igos.methods.optim import adaptive_grid

    p = torch.tensor([[0.0, 0.0, 0.9, 0.95, 1.0, 1.0], [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]])  # α = 0, 0.2, …, 1
    alphas, weights = adaptive_grid(p, 10)
    assert ((alphas[0] > 0.2) & (alphas[0] < 0.4)).sum() >= 4  # the jump gets about half the points
    torch.testing.assert_close(alphas[1], (torch.arange(10) + 0.5) / 10)  # linear p: the uniform midpoints
    torch.testing.assert_close(weights.sum(1), torch.ones(2))


def test_the_trace_says_why_a_run_stopped_and_every_trial(tiny_net, images):
    r = igos(tiny_net, images, resolution=5, iterations=4, steps=3)
    for t in r.trace:
        assert t["stopped"].startswith(("early stop", "ran all"))
        assert len(t["tried"]) == t["iterations"]
        for it, tried in enumerate(t["tried"]):
            assert len(tried) == t["trials"][it] and (t["step"][it], t["objective"][it]) in tried
    pp = igospp(tiny_net, images, resolution=5, iterations=2, steps=3, early_stop=None, accelerated=False)
    for t in pp.trace:
        assert t["stopped"] == "ran all 2 iterations"
        assert {"ig_sum_deletion", "path_delta_insertion", "ig_sum_insertion_mi"} <= set(t)


def test_igospp_starts_both_masks_at_the_per_resolution_start(tiny_net, images):
    spec = get_method("igospp")
    assert spec.effective_options({}, 7)["start"] == 0.5 and spec.effective_options({}, 28)["start"] == 1.0
    assert spec.effective_options({"start": 0.8}, 7)["start"] == 0.8
    # no iteration: the map is 1 − M_d ⊙ M_i = 1 − start², exactly
    r = igospp(tiny_net, images, resolution=5, iterations=0, start=0.5)
    torch.testing.assert_close(r.saliency, torch.full_like(r.saliency, 0.75))
    r = igospp(tiny_net, images, resolution=5, iterations=0)  # default at 5×5: 0.5
    torch.testing.assert_close(r.saliency, torch.full_like(r.saliency, 0.75))
    with pytest.raises(ValueError, match="start must be in"):
        igospp(tiny_net, images, resolution=5, start=1.5)


def _quadratic(target):
    def objective(masks, rows):
        f = (masks - target[rows]).pow(2).flatten(1).sum(1)
        return f, -f
    return objective


def test_line_search_stops_after_max_trials():
    """An ascent direction: without a cap the ladder runs down to min_step; with one, after max_trials."""
    target = torch.tensor([[0.2, 0.4]]).view(1, 1, 1, 2)
    objective = _quadratic(target)
    half = torch.full((1, 1, 1, 2), 0.5)
    value = objective(half, torch.arange(1))[0]
    kw = dict(decay=0.5, min_step=1e-2, trials_per_batch=2)
    full = line_search(objective, half, -2 * (half - target), value, torch.tensor([1.0]), **kw)
    capped = line_search(objective, half, -2 * (half - target), value, torch.tensor([1.0]), max_trials=3, **kw)
    assert int(full.trials[0]) == 8 and int(capped.trials[0]) == 3 + 1  # 3 candidates + the min_step fallback
    assert [s for s, _ in capped.tried[0]] == pytest.approx([1.0, 0.5, 0.25, 1e-2])
    assert not capped.accepted[0] and float(capped.step[0]) == pytest.approx(1e-2)
    # a descent direction whose step passes within the cap is unaffected
    one, near = torch.ones(1, 1, 1, 2), torch.full((1, 1, 1, 2), 0.9)
    objective = _quadratic(near)
    a = line_search(objective, one, 2 * (one - near), objective(one, torch.arange(1))[0], torch.tensor([10.0]),
                    decay=0.5, min_step=1e-3, trials_per_batch=3, max_trials=6)
    assert bool(a.accepted[0]) and float(a.step[0]) == 0.625 and int(a.trials[0]) == 6
    with pytest.raises(ValueError, match="max_trials"):
        DescentOptions(max_trials=0)


def test_stop_on_failure_ends_a_run_whose_line_search_finds_no_step(tiny_net, images):
    """An impossible Armijo constant: the first search fails; the run stops there."""
    kw = dict(resolution=5, iterations=4, steps=3, armijo=1e9, early_stop=None, start=1.0, accelerated=False)
    going = igospp(tiny_net, images, **kw)
    stopped = igospp(tiny_net, images, stop_on_failure=True, **kw)
    for g, s in zip(going.trace, stopped.trace):
        assert not any(g["accepted"]) and g["iterations"] == 4
        assert s["iterations"] == 1 and s["stopped"].startswith("line search: no step")
        assert s["step"] == pytest.approx([1e-5]) and s["objective"][0] == pytest.approx(g["objective"][0])
    assert stopped.backward_images < going.backward_images


def test_the_next_search_grows_only_after_a_first_trial_pass(tiny_net, images):
    """With grow_only_on_first, a search starts at the last accepted step unless that was its first trial."""
    for grow in (False, True):
        r = igos(tiny_net, images, resolution=5, iterations=6, steps=3, early_stop=None, trials_per_batch=1,
                 grow_only_on_first=grow)
        for t in r.trace:
            for it in range(1, t["iterations"]):
                first_tried = t["tried"][it][0][0]
                prev, prev_first = t["step"][it - 1], t["tried"][it - 1][0][0]
                grew = not grow or prev == prev_first
                want = min(1000.0, prev / 0.2) if grew else prev
                assert first_tried == pytest.approx(want, rel=1e-6)


def test_igospp_single_mask_paths_may_use_fewer_points(tiny_net, images):
    line = dict(early_stop=None, accelerated=False)
    full = igospp(tiny_net, images, resolution=5, iterations=2, steps=4, **line)
    fewer = igospp(tiny_net, images, resolution=5, iterations=2, steps=4, steps_single=2, **line)
    # per iteration: 2 paths × 4 points + 2 paths × 2 points with gradients, for each of the 3 images
    assert full.backward_images == 3 * 2 * 16 and fewer.backward_images == 3 * 2 * 12
    with pytest.raises(ValueError, match="steps_single"):
        igospp(tiny_net, images, resolution=5, steps=4, steps_single=5)


def test_igospp_search_profile_per_resolution_and_the_settings_hash():
    from igos.methods.igospp import FULL, LEAN, resolve_profile

    assert resolve_profile(28, 5) == {"lean": False, **FULL} and resolve_profile(112, 5) == {"lean": True, **LEAN}
    assert resolve_profile(224, 5, max_trials=9)["max_trials"] == 9  # a given option wins over the profile
    assert resolve_profile(7, 5, lean=True)["lean"] and resolve_profile(224, 2)["steps_single"] == 2
    spec = get_method("igospp")
    line = {"accelerated": False}
    # rows stored before the lean search existed keep their hash: the neutral values are not hashed
    assert not {"lean", "max_trials", "steps_single", "stop_on_failure", "accelerated", "nesterov"} & set(
        spec.hashed_options(line, 28))
    assert spec.hashed_options(line, 28)["iterations"] == 15
    # the tie order, on by default, is hashed (rows made without it are recomputed); off, it is not
    assert spec.hashed_options(line, 28)["tie_break"] == 1e-3
    assert "tie_break" not in spec.hashed_options({"tie_break": 0.0, **line}, 28)
    # the accelerated search is a different method run: hashed with its own options; the default (the line search)
    # hashes as before
    fast = spec.hashed_options({"accelerated": True}, 14)
    assert fast["accelerated"] and fast["nesterov"] and fast["normalise_step"] and fast["fixed_step"] == 0.2
    assert (fast["iterations"], fast["steps"], fast["steps_single"]) == (15, 3, 1)
    assert spec.hashed_options({}, 14) == spec.hashed_options(line, 14)
    lean = spec.hashed_options(line, 112)
    assert lean["lean"] is True and lean["max_trials"] == 6 and lean["iterations"] == 7
    igos_spec = get_method("igos")
    assert "stop_on_failure" not in igos_spec.hashed_options({}, 28)
    assert igos_spec.hashed_options({"stop_on_failure": True}, 28)["stop_on_failure"] is True


class _Bowl:
    """A stand-in problem with a known direction: ``F(M) = ½‖M − 0.2‖²``, whose gradient is ``M − 0.2``."""

    channels = 1
    evidence = None

    def begin(self, mask):
        return self.f(mask), {}

    @staticmethod
    def f(mask):
        return 0.5 * (mask - 0.2).pow(2).flatten(1).sum(1)

    def iteration(self, mask, idx, noise, value):
        return mask - 0.2, self.f(mask), lambda m, rows: (self.f(m), self.f(m)), {}

    @staticmethod
    def regulariser(mask, idx):  # F's own curvature: 1, so stable_step caps the step at 1
        return 0.5 * (mask - 0.2).pow(2).flatten(1).sum(1)


@pytest.mark.parametrize("normalise, want", [(False, [0.6, 0.35, 0.225]), (True, [0.9, 0.775, 0.625])])
def test_nesterov_follows_the_authors_update_by_hand(normalise, want):
    """θ_k = M_k − a·g_k, M_{k+1} = θ_k + k/(k+3)·(θ_k − θ_{k−1}), by hand on F = ½(M − 0.2)², from M = 1:
    a = 0.5: θ_0 = 0.6 = M_1; θ_1 = 0.6 − 0.5·0.4 = 0.4, M_2 = 0.4 − ¼·0.2 = 0.35; θ_2 = 0.35 − 0.5·0.15 = 0.275,
    M_3 = 0.275 − ⅖·0.125 = 0.225. Normalised (a = 0.1 / |g|): M_1 = 0.9; θ_1 = 0.8, M_2 = 0.8 − ¼·0.1 = 0.775;
    θ_2 = 0.675, M_3 = 0.675 − ⅖·0.125 = 0.625."""
    from igos.methods.descent import descend, new_traces

    step = 0.1 if normalise else 0.5
    got = []
    for iterations in (1, 2, 3):
        s = DescentOptions(iterations=iterations, fixed_step=step, nesterov=True, normalise_step=normalise,
                           noise=0.0, l1=0.0, tv=0.0, start=1.0)
        mask = torch.ones(1, 1, 1, 1)
        traces = new_traces(1, search=False)
        out, value = descend(_Bowl(), mask, _Bowl.f(mask), s, torch.Generator().manual_seed(0), (3, 1, 1), traces)
        got.append(float(out))
        assert float(value) == pytest.approx(float(_Bowl.f(out)))  # F scored once, at the end
        assert traces[0]["iterations"] == iterations and traces[0]["stopped"].startswith("ran all")
    assert got == pytest.approx(want, abs=1e-6)


def test_nesterov_igospp_scores_no_candidates_and_batches_exactly(tiny_net, images):
    """Per iteration only the four paths' gradients (2·K + 2·K_single images); forward-only images are the
    paths' start scores and F once at the end (not F at the start, which the loop never reads). Batched = one by
    one; masks in [0, 1]."""
    kw = dict(resolution=5, iterations=3, steps=3, steps_single=1, fixed_step=0.2, nesterov=True,
              normalise_step=True, l1=0.0, tv=0.0, accelerated=True)  # the tiny net's score alone moves the masks
    r = igospp(tiny_net, images, **kw)
    assert r.backward_images == 3 * 3 * (2 * 3 + 2 * 1)
    # the target's clean pass, p(I) and p(I0), F at the end (4 paths × 3 points)
    assert r.forward_images == 3 * (1 + 2 + 4 * 3)
    none = igospp(tiny_net, images, **(kw | {"iterations": 0}))
    # without iterations F is scored once, at the start, and is the final F
    assert none.backward_images == 0 and none.forward_images == 3 * (1 + 2 + 4 * 3)
    assert all(math.isfinite(t["final_objective"]) and t["final_objective"] != 0 for t in none.trace)
    assert float(r.mask.min()) >= 0 and float(r.mask.max()) <= 1 and not torch.equal(r.mask, torch.ones_like(r.mask))
    for t in r.trace:
        assert t["iterations"] == 3 and "Nesterov" in t["stopped"] and not {"trials", "accepted", "armijo"} & set(t)
        assert all(abs(s) > 0 for s in t["step"]) and len(t["objective"]) == 3
    one = torch.cat([igospp(tiny_net, images[i : i + 1], **kw).saliency for i in range(3)])
    assert torch.allclose(one, r.saliency, atol=1e-5)
    with pytest.raises(ValueError, match="nesterov"):
        igospp(tiny_net, images, resolution=5, nesterov=True)


def test_paths_sharing_model_calls_give_each_path_its_own_integrated_gradient(tiny_net, images):
    """path_gradients (iGOS++'s four paths in shared batches) = path_gradient of each path alone."""
    from igos.methods.optim import path_gradient, path_gradients

    g = torch.Generator().manual_seed(0)
    x0 = images.flip(0)
    masks = [torch.rand(3, 1, 32, 32, generator=g) for _ in range(3)]
    noise = torch.randn(4, 3, 32, 32, generator=g) * 0.05
    alphas = [torch.arange(1, k + 1) / k for k in (4, 3, 1)]
    t = torch.tensor([0, 1, 2])
    specs = [(images, x0, masks[0], alphas[0], noise), (x0, images, masks[1], alphas[1], None),
             (images, x0, masks[2], alphas[2], noise[:1])]
    together = path_gradients(tiny_net, specs, t, batch_size=5)  # chunks that cut across paths
    for (start, end, mask, a, eps), (grad, probs) in zip(specs, together):
        alone, alone_probs = path_gradient(tiny_net, start, end, mask, t, a, eps, 16)
        assert torch.allclose(grad, alone, atol=1e-6) and torch.allclose(probs, alone_probs, atol=1e-6)


def _descend_bowl(iterations, **options):
    from igos.methods.descent import descend, new_traces

    s = DescentOptions(iterations=iterations, nesterov=True, noise=0.0, l1=0.0, tv=0.0, start=1.0, **options)
    mask = torch.ones(1, 1, 1, 1)
    traces = new_traces(1, search=False)
    out, _ = descend(_Bowl(), mask, _Bowl.f(mask), s, torch.Generator().manual_seed(0), (3, 1, 1), traces)
    return float(out), traces[0]


def test_without_momentum_the_fixed_step_is_plain_projected_descent_by_hand():
    """M_{k+1} = M_k − a·(M_k − 0.2) from M = 1 with a = 0.5: 0.6, 0.4, 0.3 (Nesterov's would be 0.6, 0.35,
    0.225)."""
    got = [_descend_bowl(k, fixed_step=0.5, momentum=False)[0] for k in (1, 2, 3)]
    assert got == pytest.approx([0.6, 0.4, 0.3], abs=1e-6)
    assert "no momentum" in _descend_bowl(1, fixed_step=0.5, momentum=False)[1]["stopped"]


def test_the_stable_step_is_capped_at_one_over_the_regulariser_curvature():
    """The bowl's regulariser has curvature 1: a step of 5 (unstable: M would jump to 1 − 5·0.8 < 0) is capped
    at 1, which lands on the minimum 0.2 at once; below the cap the step is the one asked for."""
    out, trace = _descend_bowl(1, fixed_step=5.0, momentum=False, stable_step=True)
    assert trace["step_cap"] == pytest.approx(1.0, rel=1e-4) and trace["step"] == pytest.approx([1.0], rel=1e-4)
    assert out == pytest.approx(0.2, abs=1e-4)
    _, trace = _descend_bowl(2, fixed_step=0.5, momentum=False, stable_step=True)
    assert trace["step"] == pytest.approx([0.5, 0.5])


def test_smoothness_is_the_largest_hessian_eigenvalue():
    """TV with β = 2 of a 1×8 mask is (1/7)·Σ d², Hessian (2/7)·DᵀD, largest eigenvalue (2/7)·(2 + 2 cos(π/8));
    I-GOS's regulariser at λ2 = 3 is 3× that (L1 adds no curvature); iGOS++'s includes its bilateral term."""
    import math

    from igos.methods.descent import smoothness
    from igos.perturb import regulariser, tv_loss

    want = 2 / 7 * (2 + 2 * math.cos(math.pi / 8))
    got = smoothness(tv_loss, (2, 1, 1, 8), torch.device("cpu"), torch.float64, iterations=200)
    assert got.tolist() == pytest.approx([want, want], rel=1e-6)
    got = smoothness(lambda m: regulariser(m, 1.0, 3.0), (1, 1, 1, 8), torch.device("cpu"), torch.float64,
                     iterations=200)
    assert float(got) == pytest.approx(3 * want, rel=1e-6)


def test_momentum_and_stable_step_need_a_fixed_step_search(tiny_net, images):
    with pytest.raises(ValueError, match="momentum"):
        igospp(tiny_net, images, resolution=5, momentum=False)  # the line search has no momentum to drop
    with pytest.raises(ValueError, match="stable_step"):
        get_method("igos")(tiny_net, images, resolution=5, stable_step=True)
    r = igospp(tiny_net, images, resolution=5, iterations=2, accelerated=True, momentum=False)
    assert r.options.stable_step and r.options.nesterov and not r.options.momentum
    assert all(t["step_cap"] > 0 and all(a <= t["step_cap"] * (1 + 1e-6) for a in t["step"]) for t in r.trace)
    assert float(r.mask.min()) >= 0 and float(r.mask.max()) <= 1
    one = torch.cat([igospp(tiny_net, images[i : i + 1], resolution=5, iterations=2, accelerated=True,
                            momentum=False).saliency for i in range(images.shape[0])])
    assert torch.allclose(one, r.saliency, atol=1e-5)


def test_a_fixed_step_that_never_moves_a_whole_step_is_stalled_and_retried_with_smaller_lambda():
    """Two bright squares that the model scores (p = 0.71) under λ = (1, 5) from M = 1: the fixed step (0.2 of the
    largest cell a step) leaves every cell within 0.2 of the start over the whole run, held by the regulariser, so
    the run is ``stalled`` (the line search's criterion, 1e-3, would not call a mask that moved 0.1 stalled). A retry
    at 0.3 × λ deletes the squares' cells."""
    from igos.methods.descent import STALL_TOLERANCE

    fixed = IGOSppOptions(accelerated=True, momentum=False).resolved((7, 7))
    assert fixed.stall_tolerance() == fixed.fixed_step == 0.2
    assert IGOSppOptions().resolved((7, 7)).stall_tolerance() == STALL_TOLERANCE == IGOSOptions().stall_tolerance()
    net, x = squares(0.003)
    opts = dict(target=0, resolution=7, iterations=6, batch_size=8, accelerated=True, momentum=False, steps=2,
                l1=1.0, tv=5.0, start=1.0)
    plain = igospp(net, x, **opts)
    moved = (1 - plain.mask).flatten(1).amax(1)
    assert all(t["stalled"] and t["retries"] == 0 for t in plain.trace)
    assert all(0.05 < float(m) < 0.2 for m in moved)  # it moved, less than one step
    again = igospp(net, x, stall_retries=1, **opts)
    assert [(t["stalled"], t["retries"], t["l1"], t["tv"]) for t in again.trace] == [(False, 1, 0.3, 1.5)] * 2
    assert float((1 - again.mask).flatten(1).amax(1).min()) > 0.5
    square = torch.nn.functional.adaptive_avg_pool2d(x[:, :1], 7)[:, 0] >= 0.5
    top = again.saliency.flatten(1).argmax(1)
    assert all(bool(square[i].flatten()[top[i]]) for i in range(2))  # the most salient cell is a square's
    assert again.forward_images + again.backward_images > plain.forward_images + plain.backward_images
    net, x = net.double(), x.double()  # the retry of a batch equals the retries one by one (float64)
    both = igospp(net, x, stall_retries=1, **opts)
    one = torch.cat([igospp(net, x[i : i + 1], stall_retries=1, **opts).saliency for i in range(2)])
    torch.testing.assert_close(both.saliency, one, atol=1e-10, rtol=0)


def test_a_stall_retry_may_start_from_a_warm_start_at_the_same_lambda():
    """``stall_init``: the retry of a stalled image is the run warm-started from that method's map, λ unchanged,
    exactly as asking for ``init`` directly on that image; images that did not stall keep their maps."""
    net, x = squares(0.003)
    opts = dict(target=0, resolution=7, iterations=6, batch_size=8, accelerated=True, momentum=False, steps=2,
                l1=1.0, tv=5.0, start=1.0)
    net, x = net.double(), x.double()
    retried = igospp(net, x, stall_retries=1, stall_init="gradient", init_depth=0.5, **opts)
    assert [(t["retries"], t["l1"], t["tv"], t["init"]) for t in retried.trace] == [(1, 1.0, 5.0, "gradient")] * 2
    warm = igospp(net, x, init="gradient", init_depth=0.5, **opts)
    torch.testing.assert_close(retried.saliency, warm.saliency, atol=1e-10, rtol=0)
    assert float((1 - retried.mask).flatten(1).amax(1).min()) > 0.2  # the warm start moved it
    moving = igospp(net, x, stall_retries=1, stall_init="gradient", **{**opts, "tv": 1.0, "l1": 0.1})
    assert [t["retries"] for t in moving.trace] == [0, 0]  # nothing stalled: no retry
    with pytest.raises(ValueError, match="stall_init"):
        igospp(net, x, stall_retries=1, stall_init="nonsense", **opts)
    assert IGOSOptions(stall_retries=2, stall_init="ebp", l1=1.0, tv=2.0).relaxed() == IGOSOptions(
        stall_retries=1, init="ebp", l1=1.0, tv=2.0)
