"""The automatic batch size and the peak memory a run reports (igos.resources)."""

import pytest

import igos
from igos.resources import CPU_BATCH, MAX_BATCH, batch_for_memory, peak_memory


def test_the_batch_that_fits_is_the_free_memory_share_over_the_cost_of_one_image():
    gib, mib = 2**30, 2**20
    assert batch_for_memory(10 * gib, 100 * mib) == 61  # ⌊0.6 · 10240 / 100⌋
    assert batch_for_memory(10 * gib, 100 * mib, fraction=0.3) == 30
    assert batch_for_memory(80 * gib, 10 * mib) == MAX_BATCH  # capped
    assert batch_for_memory(50 * mib, 100 * mib) == 1  # never 0: one image is tried, and backs off no further
    assert batch_for_memory(gib, 0) == MAX_BATCH


def test_auto_is_the_default_and_resolves_on_the_cpu(tiny_net, images):
    r = igos.get_method("gradient")(tiny_net, images)
    assert r.options.batch_size == CPU_BATCH
    r = igos.get_method("igos")(tiny_net, images, resolution=4, iterations=1, steps=2, batch_size=5)
    assert r.options.batch_size == 5


@pytest.mark.parametrize("bad", [0, -3, "many", 2.5, True])
def test_a_bad_batch_size_is_named(tiny_net, images, bad):
    with pytest.raises(ValueError, match=r'batch_size.*integer ≥ 1 or "auto"'):
        igos.get_method("igos")(tiny_net, images, batch_size=bad)


def test_the_batch_size_is_not_part_of_a_stored_result_identity():
    spec = igos.get_method("igos")
    hashes = {str(sorted(spec.hashed_options({"batch_size": b}, 28).items())) for b in ("auto", 4, 16, 64)}
    assert len(hashes) == 1 and spec.hashed_options({}, 28)["batch_size"] == 16  # as stores were made before


def test_peak_memory_reports_the_resident_set():
    peak = peak_memory("cpu")
    assert peak["rss_mb"] > 10 and "cuda_mb" not in peak


def test_the_cli_takes_auto_or_a_positive_batch_size(capsys):
    from igos.cli import _batch_size

    assert _batch_size("auto") == "auto" and _batch_size("8") == 8
    import argparse

    for bad in ("0", "x"):
        with pytest.raises(argparse.ArgumentTypeError, match="positive integer or 'auto'"):
            _batch_size(bad)
