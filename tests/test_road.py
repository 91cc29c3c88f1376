"""ROAD: the imputation against a direct sparse solve of the textbook system, the ranking and the scores against an
independent implementation of the definition (numpy + SciPy), the noise only on imputed pixels."""

import numpy as np
import pytest
import scipy.sparse as sp
import scipy.sparse.linalg as spla
import torch
from conftest import TinyNet

from igos.road import FRACTIONS, impute, road, road_order

SIDES = {(0, 1): 1 / 6, (0, -1): 1 / 6, (1, 0): 1 / 6, (-1, 0): 1 / 6,
         (1, 1): 1 / 12, (1, -1): 1 / 12, (-1, 1): 1 / 12, (-1, -1): 1 / 12}


def direct_impute(image: np.ndarray, unknown: np.ndarray) -> np.ndarray:
    """The reference system, built pixel by pixel: for each unknown i, Σ_n w_n x_n − (Σ_n w_n) x_i = 0 over the
    neighbours inside the image, known neighbours moved to the right-hand side; one sparse solve, C columns."""
    c, h, w = image.shape
    idx = -np.ones((h, w), dtype=int)
    cells = list(zip(*np.nonzero(unknown)))
    for k, (y, x) in enumerate(cells):
        idx[y, x] = k
    a = sp.lil_matrix((len(cells), len(cells)))
    b = np.zeros((len(cells), c))
    for k, (y, x) in enumerate(cells):
        for (dy, dx), wt in SIDES.items():
            ny, nx = y + dy, x + dx
            if not (0 <= ny < h and 0 <= nx < w):
                continue
            a[k, k] -= wt
            if idx[ny, nx] >= 0:
                a[k, idx[ny, nx]] += wt
            else:
                b[k] -= wt * image[:, ny, nx]
    sol = spla.spsolve(a.tocsc(), b)
    out = image.copy()
    for k, (y, x) in enumerate(cells):
        out[:, y, x] = sol[k]
    return out


@pytest.mark.parametrize("solver", ["direct", "cg"])
@pytest.mark.parametrize("share", [0.3, 0.9])
def test_imputation_equals_a_direct_sparse_solve(share, solver):
    g = torch.Generator().manual_seed(0)
    images = torch.rand(3, 3, 16, 20, generator=g, dtype=torch.float64)
    unknown = torch.rand(3, 1, 16, 20, generator=g) < share
    unknown[1, 0, :, :10] = True  # a large hole touching the border
    got = impute(images, unknown, solver=solver)
    for i in range(3):
        want = direct_impute(images[i].numpy(), unknown[i, 0].numpy())
        np.testing.assert_allclose(got[i].numpy(), want, atol=1e-5, rtol=0)
    assert torch.equal(got[~unknown.expand_as(got)], images[~unknown.expand_as(images)])  # known pixels kept


def reference_road(net, image: torch.Tensor, saliency: np.ndarray, target: int, seed: int = 0):
    """The definition, independently: bilinear upsampling (align_corners=False) done by torch, the rest numpy."""
    h, w = image.shape[-2:]
    up = torch.nn.functional.interpolate(torch.as_tensor(saliency)[None, None].double(), size=(h, w),
                                         mode="bilinear", align_corners=False)[0, 0].numpy().ravel()
    scaled = (up - up.min()) / max(up.max() - up.min(), 1e-12)
    tie = torch.randn(h * w, generator=torch.Generator().manual_seed(seed), dtype=torch.float64).numpy()
    order = np.argsort(-(scaled + 1e-4 * tie), kind="stable")
    curves = {"morf": [], "lerf": []}
    for p in FRACTIONS:
        top = np.zeros(h * w, dtype=bool)
        top[order[: int(np.floor(p * h * w))]] = True
        for name, unknown in (("morf", top), ("lerf", ~top)):
            filled = direct_impute(image.double().numpy(), unknown.reshape(h, w))
            with torch.no_grad():
                prob = net(torch.as_tensor(filled)[None].float()).softmax(1)[0, target]
            curves[name].append(float(prob))
    return np.mean(curves["morf"]), np.mean(curves["lerf"])


def test_road_scores_agree_with_an_independent_implementation():
    net = TinyNet().eval()
    images = torch.rand(2, 3, 24, 24, generator=torch.Generator().manual_seed(3))
    sal = torch.rand(2, 6, 6, generator=torch.Generator().manual_seed(4))
    got = road(net, images, sal, target=[1, 3], noise=0.0, seed=5)
    for i, t in enumerate((1, 3)):
        morf, lerf = reference_road(net, images[i], sal[i].numpy(), t, seed=5)
        assert float(got.morf[i]) == pytest.approx(morf, abs=1e-5)
        assert float(got.lerf[i]) == pytest.approx(lerf, abs=1e-5)
    torch.testing.assert_close(got.combined, (got.lerf - got.morf) / 2)
    assert got.morf_curve.shape == (2, 9) and got.fractions.tolist() == list(FRACTIONS)


def test_the_ranking_puts_the_most_relevant_first_and_breaks_ties_by_seed():
    sal = torch.zeros(1, 2, 2)
    sal[0, 0, 1] = 1.0  # the top-right cell
    ranks = road_order(sal, (8, 8), seed=0).view(8, 8)
    # bilinear (align_corners=False) keeps the value 1 on the corner's 2×2 pixels: they come first, in the
    # tie-breaker's order
    assert sorted(ranks[:2, 6:].flatten().tolist()) == [0, 1, 2, 3]
    flat = road_order(torch.zeros(1, 4, 4), (8, 8), seed=0)
    assert torch.equal(flat, road_order(torch.zeros(1, 4, 4), (8, 8), seed=0))
    assert not torch.equal(flat, road_order(torch.zeros(1, 4, 4), (8, 8), seed=1))


def test_noise_falls_on_imputed_pixels_only_and_is_seeded():
    class Constant(torch.nn.Module):
        def forward(self, x):
            return torch.zeros(x.shape[0], 2)

    net, x = Constant(), torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    a = road(net, x, torch.rand(1, 4, 4), target=0, seed=2)
    b = road(net, x, torch.rand(1, 4, 4), target=0, seed=2)
    assert torch.allclose(a.morf, torch.tensor([0.5], dtype=torch.float64))  # a constant model: p = 1/2 always
    torch.testing.assert_close(a.morf_curve, b.morf_curve)


def test_explain_scores_every_removal_asked_for_and_writes_them(tmp_path, image_dir, monkeypatch):
    import json

    from igos.cli import main

    monkeypatch.syspath_prepend(str(__import__("pathlib").Path(__file__).parent))
    out = tmp_path / "out"
    files = [str(image_dir / "img0.png"), str(image_dir / "img1.png")]
    assert main(["explain", *files, "--model", "tinymodels:tiny_classifier", "--input-size", "32",
                 "--method", "gradient", "--removal", "blur", "road", "mean", "zero", "--out", str(out)]) == 0
    rec = json.loads((out / "results.json").read_text())["images"][0]
    assert {"deletion", "insertion", "road", "mean", "zero"} <= set(rec)
    assert rec["road"]["directions"]["morf"] == "lower is better" and len(rec["road"]["curves"]["morf"]) == 9
    assert rec["road"]["combined"] == pytest.approx((rec["road"]["lerf"] - rec["road"]["morf"]) / 2)
    assert 0 <= rec["mean"]["deletion"] <= 1 and rec["zero"]["directions"]["insertion"] == "higher is better"
    import igos

    small = {"input_size": 32}
    with pytest.raises(ValueError, match="unknown removal"):
        igos.explain(files, "tinymodels:tiny_classifier", "gradient", evaluate=True, removal=["blurr"],
                     model_options=small)
    only = igos.explain(files[:1], "tinymodels:tiny_classifier", "gradient", evaluate=True, removal="road",
                        model_options=small)[0]
    assert only.deletion is None and set(only.removals) == {"road"}


def test_the_bench_stores_removals_and_scores_older_rows_from_their_maps(tmp_path, image_dir, monkeypatch, capsys):
    import json
    import sqlite3

    from igos.cli import main
    from igos.store import ResultStore

    monkeypatch.syspath_prepend(str(__import__("pathlib").Path(__file__).parent))
    run = tmp_path / "run"
    base = ["bench", str(image_dir), "--models", "tinymodels:tiny_classifier", "--input-size", "32",
            "--methods", "gradient", "center", "--resolutions", "7", "--limit", "4", "--out", str(run)]
    assert main(base) == 0
    with ResultStore.open_existing(run) as store:
        assert all(r["removals"] is None for r in store.rows())
        before = {(r["image"], r["method"]): r["created"] for r in store.rows()}
    assert main([*base, "--removal", "blur", "road"]) == 0
    out = capsys.readouterr().out
    assert "0 rows written" in out and "6 stored rows scored with the new removal(s)" in out
    with ResultStore.open_existing(run) as store:
        rows = store.rows()
    assert {(r["image"], r["method"]): r["created"] for r in rows} == before  # the methods did not run again
    for r in rows:
        assert 0 <= r["removals"]["road"]["morf"] <= 1 and len(r["removals"]["road"]["curves"]["lerf"]) == 9
    # the stored scores are those a fresh evaluation of the stored map gives
    fresh = tmp_path / "fresh"
    assert main([*base[:-1], str(fresh), "--removal", "blur", "road"]) == 0
    con = sqlite3.connect(fresh / "results.sqlite")
    query = "SELECT image, method, removals FROM results"
    new = {(i, m): json.loads(v)["road"]["morf"] for i, m, v in con.execute(query)}
    con.close()
    for r in rows:
        assert r["removals"]["road"]["morf"] == pytest.approx(new[(r["image"], r["method"])], abs=1e-6)
    assert main(["table", str(run)]) == 0
    assert "ROAD (noisy linear imputation): morf (lower is better) / lerf (higher is better)" in capsys.readouterr().out
