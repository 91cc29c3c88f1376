"""Failures never stop a grid and are never hidden: the plain bench records a failing unit and goes on as the
Ray bench does, counts failures per task and exits non-zero when a task produced no rows; the store keeps one
failure per image, model and stage, and a later success clears it; the CLI shows one line, or the traceback
with --debug."""

import sys
from pathlib import Path

import pytest
import torch

import igos
from igos.bench import BenchSpec, run_bench
from igos.cli import main
from igos.errors import IgosError, UnsupportedLayerError
from igos.records import Failure
from igos.store import ResultStore

TESTS = Path(__file__).parent


@pytest.fixture
def on_path(monkeypatch):
    monkeypatch.syspath_prepend(str(TESTS))


def test_a_method_that_fails_on_every_image_is_recorded_and_the_grid_goes_on(tmp_path, image_dir, on_path, capsys):
    """EBP raises UnsupportedLayerError (a TypeError) on this net: every image fails in that task, the gradient
    task still writes its rows, the failures are stored once each, and the command exits 1 naming the task."""
    args = ["bench", str(image_dir), "--models", "tinymodels:sigmoid_classifier", "--methods", "ebp", "gradient",
            "--out", str(tmp_path / "run"), "--images-per-batch", "2"]
    assert main(args) == 1
    captured = capsys.readouterr()
    assert "6 rows written" in captured.out  # gradient on the 6 readable images
    assert "ebp 28: 6 image(s) failed, 0 row(s) written" in captured.err and "sigmoid" in captured.err
    assert "ebp 28 produced no rows" in captured.err
    with ResultStore.open_existing(tmp_path / "run") as store:
        failures = store.failures()
        assert {f.stage for f in failures} == {"load", "ebp 28"} and len(failures) == 7  # broken.png + 6 × ebp
        assert len(store.rows(method="gradient")) == 6 and store.rows(method="ebp") == []
    # a resume meets the same failures: stored once each, not again
    assert main(args) == 1
    with ResultStore.open_existing(tmp_path / "run") as store:
        assert len(store.failures()) == 7


def test_a_later_success_clears_the_failure(tmp_path, image_dir, on_path, monkeypatch):
    spec = BenchSpec(image_dir, ["tinymodels:tiny_classifier"], ["gradient"], [7], limit=3)
    run = tmp_path / "run"
    import dataclasses

    from igos.methods import REGISTRY

    def broken(model, images, targets, *, baseline, size, seed, options):
        raise RuntimeError("out of memory (simulated)")

    monkeypatch.setitem(REGISTRY, "gradient", dataclasses.replace(REGISTRY["gradient"], fn=broken))
    summary = run_bench(spec, run)
    assert summary.rows_written == 0 and summary.task_failures["gradient"] == 2 and summary.empty_tasks()
    with ResultStore.open_existing(run) as store:
        assert sorted(f.stage for f in store.failures()) == ["gradient", "gradient", "load"]
    monkeypatch.undo()
    monkeypatch.syspath_prepend(str(TESTS))
    again = run_bench(spec, run)
    assert again.rows_written == 2 and not again.empty_tasks()
    with ResultStore.open_existing(run) as store:
        assert [f.stage for f in store.failures()] == ["load"]  # broken.png is still broken


def test_non_strict_pipeline_turns_any_error_into_failures(image_dir, on_path):
    from igos.pipeline import Item, Task, run
    from igos.sources import load_model

    preset = load_model("tinymodels:sigmoid_classifier")
    items = [Item(str(p), p) for p in sorted(image_dir.glob("img*.png"))[:3]]
    records = list(run(items, preset, [Task.make("ebp"), Task.make("gradient")], strict=False))
    failures = [r for r in records if isinstance(r, Failure)]
    assert len(failures) == 3 and all(f.stage == "ebp" and "sigmoid" in f.error for f in failures)
    assert sum(not isinstance(r, Failure) for r in records) == 3
    with pytest.raises(UnsupportedLayerError):  # strict (the API's default): the error itself
        list(run(items, preset, [Task.make("ebp")]))


def test_the_cli_shows_one_line_or_with_debug_the_traceback(tmp_path, capsys):
    missing = str(tmp_path / "nothing-here")
    assert main(["bench", missing, "--out", str(tmp_path / "r")]) == 2
    assert capsys.readouterr().err.strip() == f"igos: {missing} is not a folder"
    with pytest.raises(ValueError, match="is not a folder"):
        main(["--debug", "bench", missing, "--out", str(tmp_path / "r")])


def test_every_error_igos_raises_on_purpose_is_an_igos_error():
    import igos

    for name in ("ImageLoadError", "ModelLoadError", "ModelOutputError", "NonFiniteOutputError",
                 "UnsupportedLayerError", "UnknownOptionError", "InvalidOptionError", "MissingDependencyError"):
        assert issubclass(getattr(igos, name), IgosError), name
    assert issubclass(igos.UnsupportedLayerError, TypeError) and issubclass(igos.ModelLoadError, RuntimeError)


def test_an_empty_label_file_is_a_clear_error(tmp_path, image_dir, capsys):
    labels = tmp_path / "labels.csv"
    labels.write_text("\n")
    assert main(["bench", str(image_dir), "--labels", str(labels), "--out", str(tmp_path / "r")]) == 2
    assert f"label file {labels} is empty" in capsys.readouterr().err


def test_ray_stops_what_it_started_when_the_stream_stops_early(image_dir, on_path, monkeypatch):
    ray = pytest.importorskip("ray", reason="Ray is the optional extra igos[ray]")
    from igos.distributed import RayOptions, make_units, ray_stream
    from igos.pipeline import Item, Task

    monkeypatch.setenv("PYTHONPATH", str(TESTS) + ":" + ":".join(sys.path))
    if ray.is_initialized():
        ray.shutdown()
    items = [Item(str(p), p.resolve()) for p in sorted(image_dir.glob("img*.png"))]
    units = make_units(items, "tinymodels:slow_classifier", [Task.make("gradient")], 1)
    stream = ray_stream(units, RayOptions(workers=1))
    first = next(stream)
    assert first.path is not None and ray.is_initialized()
    stream.close()  # a consumer that stops reading: the rest is cancelled, the Ray it started shut down
    assert not ray.is_initialized()


def test_a_missing_optional_package_fails_before_any_work(tmp_path, image_dir, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "captum", None)
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "captum" else real(name, *a))
    assert main(["bench", str(image_dir), "--methods", "ig", "gradient", "--out", str(tmp_path / "r")]) == 2
    assert "method 'ig' needs captum: pip install 'igos[baselines]'" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


class _Roomy(torch.nn.Module):
    """A classifier that runs out of memory on more than ``limit`` images at once (as a GPU would)."""

    def __init__(self, limit: int):
        super().__init__()
        self.limit = limit
        self.conv = torch.nn.Conv2d(3, 4, 3, padding=1)
        torch.nn.init.normal_(self.conv.weight, generator=torch.Generator().manual_seed(0))
        torch.nn.init.zeros_(self.conv.bias)
        self.batches: list[int] = []

    def forward(self, x):
        self.batches.append(x.shape[0])
        if x.shape[0] > self.limit:
            raise torch.OutOfMemoryError(f"CUDA out of memory ({x.shape[0]} images)")
        return self.conv(x).mean((2, 3))


@pytest.mark.parametrize("method", ["igos", "gradient", "rise"])
def test_out_of_memory_backs_off_to_a_batch_that_fits(method):
    x = torch.rand(8, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    options = {"igos": {"iterations": 2, "steps": 4}, "rise": {"masks": 40, "grid": 4}}.get(method, {})
    model = _Roomy(limit=5)
    with pytest.warns(ResourceWarning, match="out of memory at batch_size=16; running again at 8"):
        result = igos.get_method(method)(model, x, 0, resolution=4, batch_size=16, **options)
    assert result.options.batch_size == 4  # 16 -> 8 -> 4, the first that fits
    same = igos.get_method(method)(_Roomy(limit=5), x, 0, resolution=4, batch_size=4, **options)
    assert torch.allclose(result.saliency, same.saliency, atol=1e-6)
    with pytest.raises(torch.OutOfMemoryError):  # nothing fits: the error, not a loop
        igos.get_method(method)(_Roomy(limit=0), x, 0, resolution=4, batch_size=2, **options)
