"""Every method against a float64 snapshot of itself (tests/data/record_reference64.py): under one thread and
deterministic algorithms a float64 run on the tiny net is reproducible, so refactors that should not change
results are held to 1e-9. Optimiser output in float32, or across thread counts, is compared by what a user
sees instead (tests/agreement.py)."""

from pathlib import Path

import pytest
import torch

DATA = Path(__file__).parent / "data"
REFERENCE = torch.load(DATA / "reference64.pt")


@pytest.fixture
def one_thread():
    threads, deterministic = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(deterministic)


@pytest.mark.parametrize("case", sorted(REFERENCE))
def test_every_method_reproduces_its_float64_snapshot(case, one_thread):
    import sys

    sys.path.insert(0, str(DATA))
    from record_reference64 import run_case

    ref = REFERENCE[case]
    out = run_case(case)
    assert out.saliency.dtype == torch.float64
    torch.testing.assert_close(out.saliency, ref["saliency"], atol=1e-9, rtol=0)
    assert (out.forward_images, out.backward_images) == (ref["forward"], ref["backward"])
    for mine, theirs in zip((t.get("objective") for t in out.trace), ref["objective"]):
        assert mine == pytest.approx(theirs, abs=1e-9)
