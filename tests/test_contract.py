"""One contract for every registered method, driven through the call ``igos explain`` makes
(the pipeline: baseline, resolution, targets, seed, batch vs one by one), and the registry itself."""

import inspect
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from agreement import TOL, assert_maps_agree
from conftest import TinyNet
from PIL import Image

import igos
from igos.cli import main
from igos.methods import METHODS, MethodSpec, register
from igos.methods.registry import COMMON_INPUTS, REGISTRY, methods_markdown_table
from igos.models import Classifier, ModelPreset

# options that keep each method cheap on a 32×32 tiny net; a new method adds one line here or runs at defaults
FAST = {
    "igos": dict(iterations=3, steps=4),
    "igospp": dict(iterations=2, steps=3),
    "mask": dict(iterations=10),
    "ig": dict(steps=8),
    "rise": dict(masks=64, grid=4),
}
DOCS = Path(__file__).parent.parent / "docs" / "methods.md"


@pytest.fixture
def tiny_preset():
    model = Classifier(TinyNet().eval(), (0.5, 0.5, 0.5), (0.25, 0.25, 0.25))
    return ModelPreset("tiny", model, (32, 32), ["a", "b", "c", "d", "e"], gradcam_layer="net.features.2")


@pytest.mark.parametrize("name", list(METHODS))
def test_every_method_through_the_pipeline_batched_equals_one_by_one(name, tiny_preset, images):
    """The same public call for every method: explicit targets, a seed, a resolution, evaluation."""
    targets = [1, 3, 0]
    both = igos.explain(images, tiny_preset, name, resolution=7, target=targets, seed=2, evaluate=True,
                        images_per_batch=3, **FAST.get(name, {}))
    assert [e.target for e in both] == targets and not both.failures
    spec = METHODS[name]
    for i, e in enumerate(both):
        sal = e.saliency
        assert sal.dim() == 2 and torch.isfinite(sal).all() and e.method == name
        if spec.resolutions == "any":
            assert tuple(sal.shape) == (7, 7)
        elif spec.resolutions == "input":
            assert tuple(sal.shape) == (32, 32)
        assert 0.0 <= e.deletion <= 1.0 and 0.0 <= e.insertion <= 1.0
        assert e.settings["seed"] == 2 and set(spec.options) <= set(e.settings)
        one = igos.explain(images[i : i + 1], tiny_preset, name, resolution=7, target=targets[i], seed=2,
                           evaluate=True, **FAST.get(name, {}))[0]
        # batched against one by one in float32: compared by what a user sees (tests/agreement.py)
        assert_maps_agree(one.saliency.unsqueeze(0), sal.unsqueeze(0))
        assert one.deletion == pytest.approx(e.deletion, abs=TOL)
        assert one.insertion == pytest.approx(e.insertion, abs=TOL)


@pytest.mark.parametrize("name", list(METHODS))
def test_an_unknown_option_fails_for_every_method_naming_the_valid_ones(name, tiny_preset, images):
    spec = METHODS[name]
    with pytest.raises(ValueError, match=rf"unknown option.*'iteratons'.*method '{name}'") as err:
        igos.explain(images, tiny_preset, name, iteratons=3)
    for option in spec.options:
        assert f"{option}=" in str(err.value)
    with pytest.raises(ValueError, match="unknown option"):  # the registry call itself, not only the API
        spec(tiny_preset.model, images, iteratons=3)


@pytest.mark.parametrize("name", list(METHODS))
def test_a_typo_in_set_fails_in_the_cli_for_every_method(name, tmp_path, capsys):
    img = tmp_path / "a.png"
    Image.fromarray((np.random.default_rng(0).random((40, 40, 3)) * 255).astype(np.uint8)).save(img)
    out = tmp_path / "out"
    code = main(["explain", str(img), "--model", "tinymodels:tiny_classifier", "--method", name, "--out", str(out),
                 "--set", "batch_sise=4"])
    err = capsys.readouterr().err
    assert code == 2 and "'batch_sise'" in err and f"method '{name}'" in err and "batch_size=16" in err
    assert not out.exists()  # nothing was written
    code = main(["bench", str(tmp_path), "--models", "tinymodels:tiny_classifier", "--methods", name,
                 "--out", str(tmp_path / "run"), "--set", f"{name}.batch_sise=4"])
    assert code == 2 and "'batch_sise'" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_the_registry_reads_options_and_inputs_from_the_signature():
    spec = METHODS["igos"]
    assert spec.inputs == COMMON_INPUTS
    assert spec.options["iterations"] == 15 and "seed" not in spec.options and "baseline" not in spec.options
    assert METHODS["gradcam"].inputs == () and METHODS["rise"].inputs == ("baseline", "seed")
    resolved = spec.effective_options({}, 224)
    assert (resolved["l1"], resolved["tv"]) == (1.0, 160.0)
    assert spec.effective_options({"tv": 5.0}, 7)["tv"] == 5.0


def test_a_method_that_swallows_options_or_lacks_batch_size_is_refused():
    def sloppy(model, images, target=None, *, batch_size=16, **_):
        raise AssertionError

    def no_batch(model, images, target=None, *, seed=0):
        raise AssertionError

    with pytest.raises(TypeError, match="kwargs"):
        MethodSpec("sloppy", sloppy, "Sloppy", "input")
    with pytest.raises(TypeError, match="batch_size"):
        MethodSpec("nobatch", no_batch, "No batch", "input")
    with pytest.raises(ValueError, match="already registered"):
        register(MethodSpec("igos", METHODS["igos"].fn, "again", "any"))


def test_a_registered_method_reaches_cli_choices_tables_and_docs(monkeypatch, tiny_preset, images):
    def centre(model, images, target=None, *, resolution=28, batch_size=16):
        """A toy method: the centre cell is the most important."""
        s = resolution if isinstance(resolution, int) else resolution[0]
        yy, xx = torch.meshgrid(torch.arange(s), torch.arange(s), indexing="ij")
        sal = -((yy - s // 2) ** 2 + (xx - s // 2) ** 2).float()
        return igos.Attribution(sal.expand(images.shape[0], s, s).clone())

    monkeypatch.setitem(REGISTRY, "centre", MethodSpec("centre", centre, "Centre", "any", "a toy", "0 / 0"))
    from igos import cli, tables

    assert "centre" in cli.build_parser()._subparsers._group_actions[0].choices["explain"]._option_string_actions[
        "--method"].choices
    assert tables.display_name("centre") == "Centre" and tables.method_order(["centre", "igos"])[-1] == "centre"
    assert "| `centre` | a toy |" in methods_markdown_table()
    e = igos.explain(images[:1], tiny_preset, "centre", resolution=5, evaluate=True)[0]
    assert e.saliency.shape == (5, 5) and int(e.saliency.argmax()) == 12


def test_docs_table_is_the_registry():
    text = DOCS.read_text()
    assert methods_markdown_table() in text, "docs/methods.md's table differs from the registry: paste " \
                                             "igos.methods.registry.methods_markdown_table() into it"
    assert "## Adding a method" in text
    for name in METHODS:
        assert re.search(rf"`{name}`", text)


def test_every_method_documents_its_options():
    for spec in METHODS.values():
        doc = inspect.getdoc(spec.fn) or ""
        assert doc, f"{spec.name} has no docstring"
