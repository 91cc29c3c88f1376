"""What a user sees, compared: two saliency maps of the same image agree when their deletion and insertion
differ by at most ``tol``, their Spearman rank correlation is at least ``rho``, and their top cells are the
same. Optimiser output computed in another process, at another thread count or batch size, or on another
machine, is compared this way: the line search's accept/reject decisions amplify float rounding, so exact
equality holds only in float64 under one thread (tests/test_reference64.py).

``TOL`` = 5e-3: I-GOS at 28×28 on coffee.png gave maps of Spearman 0.999997 under one and two threads, whose
insertion differed by 1.1e-3 (nearly tied cells swap places in the ranking); methods that differ in quality
differ by 1e-2 to 1e-1."""

from __future__ import annotations

import torch
from scipy.stats import spearmanr

from igos.metrics import deletion_insertion

TOL = 5e-3


def spearman(a: torch.Tensor, b: torch.Tensor) -> float:
    """Spearman's rank correlation of two maps' cells (ties get their average rank)."""
    rho = spearmanr(a.detach().double().flatten().cpu().numpy(), b.detach().double().flatten().cpu().numpy())[0]
    return float(rho)


def top_overlap(a: torch.Tensor, b: torch.Tensor, share: float = 0.05, slack: float = 1e-3) -> float:
    """The share of ``a``'s top cells (the highest ``share`` of them, at least one) that are top cells of ``b``
    too: valued in ``b`` at least its ``k``-th largest value less ``slack`` × its range (so that cells tied at
    the top, as masks clamped at 0 have, count whichever order they come in)."""
    a, b = a.detach().double().flatten(), b.detach().double().flatten()
    k = max(1, int(share * a.numel()))
    kth = b.topk(k).values[-1]
    floor = kth - slack * float(b.max() - b.min())
    return float((b[a.topk(k).indices] >= floor).double().mean())


def assert_maps_agree(a: torch.Tensor, b: torch.Tensor, *, rho: float = 0.99, top: float = 0.9) -> None:
    """Every map of ``a`` ``[B, h, w]`` agrees with ``b``'s by rank correlation and top cells."""
    assert a.shape == b.shape
    for i in range(a.shape[0]):
        flat = [float(m[i].max() - m[i].min()) < 1e-9 for m in (a, b)]
        if any(flat):  # a map with no order agrees only with another one of the same value
            assert all(flat), f"map {i}: one map is flat, the other is not"
            torch.testing.assert_close(a[i].double(), b[i].double(), atol=1e-5, rtol=0)
            continue
        r, o = spearman(a[i], b[i]), top_overlap(a[i], b[i])
        assert r >= rho, f"map {i}: Spearman {r:.4f} < {rho}"
        assert o >= top, f"map {i}: only {o:.0%} of the top cells agree"


def assert_scores_agree(model, images, a, b, target=None, *, tol: float = TOL) -> None:
    """Deletion and insertion of the maps ``a`` and ``b`` differ by at most ``tol`` per image."""
    sa = deletion_insertion(model, images, a, target)
    sb = deletion_insertion(model, images, b, target)
    torch.testing.assert_close(sa.deletion, sb.deletion, atol=tol, rtol=0)
    torch.testing.assert_close(sa.insertion, sb.insertion, atol=tol, rtol=0)


def assert_same_explanation(model, images, a, b, target=None, *, tol: float = TOL, rho: float = 0.99,
                            top: float = 0.9) -> None:
    """``a`` and ``b`` ``[B, h, w]`` explain ``images`` alike: scores within ``tol``, ranks, top cells."""
    assert_maps_agree(a, b, rho=rho, top=top)
    assert_scores_agree(model, images, a, b, target, tol=tol)


def assert_runs_agree(a: dict, b: dict, *, tol: float = TOL) -> None:
    """Two runs' rows agree: the same keys, and per key the same target, deletion and insertion within ``tol``
    and maps that agree (each row a dict with ``target``, ``deletion``, ``insertion`` and ``saliency``)."""
    assert a.keys() == b.keys()
    assert a, "no rows to compare"
    for key in a:
        ra, rb = a[key], b[key]
        assert ra["target"] == rb["target"], key
        for metric in ("deletion", "insertion"):
            assert abs(ra[metric] - rb[metric]) <= tol, (key, metric, ra[metric], rb[metric])
        sa, sb = (torch.as_tensor(r["saliency"]).unsqueeze(0) for r in (ra, rb))
        assert_maps_agree(sa, sb)


def store_rows(run_dir) -> dict:
    """A bench run's rows keyed by (image, model, method, variant, resolution, settings hash)."""
    from igos.store import ResultStore, saliency_from_row

    store = ResultStore.open_existing(run_dir)
    try:
        rows = store.rows()
    finally:
        store.close()
    keys = ("image", "model", "method", "variant", "resolution", "settings_hash")
    return {tuple(r[k] for k in keys): {**r, "saliency": saliency_from_row(r)} for r in rows}
