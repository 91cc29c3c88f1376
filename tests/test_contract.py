"""One contract for every registered method, driven through the call ``igos explain`` makes
(the pipeline: baseline, resolution, targets, seed, batch vs one by one), and the registry itself."""

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
from igos.methods.options import MethodOptions
from igos.methods.registry import REGISTRY, methods_markdown_table
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
    assert code == 2 and "'batch_sise'" in err and f"method '{name}'" in err and "batch_size='auto'" in err
    assert not out.exists()  # nothing was written
    code = main(["bench", str(tmp_path), "--models", "tinymodels:tiny_classifier", "--methods", name,
                 "--out", str(tmp_path / "run"), "--set", f"{name}.batch_sise=4"])
    assert code == 2 and "'batch_sise'" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_the_registry_reads_options_from_the_schema_and_resolves_them_as_the_call_does(tiny_net, images):
    spec = METHODS["igos"]
    assert spec.options["iterations"] == 15 and "seed" not in spec.options and "baseline" not in spec.options
    assert spec.options["l1"] is None and spec.options["start"] is None  # per-resolution: filled when resolved
    assert METHODS["gradcam"].baseline is False and METHODS["rise"].baseline is True
    resolved = spec.effective_options({}, 224)
    assert (resolved["l1"], resolved["tv"], resolved["start"]) == (1.0, 160.0, 1.0)
    assert spec.effective_options({"tv": 5.0}, 7)["tv"] == 5.0
    # what the run returns is what the bench hashes and results.json records: the same resolution
    for name, resolution in (("igos", 7), ("igospp", 7), ("igospp", 16), ("mask", 5)):
        ran = METHODS[name](tiny_net, images[:1], resolution=resolution, iterations=1)
        # all but the automatic batch size, which the run resolves on its device (16 on a CPU)
        effective = METHODS[name].effective_options({"iterations": 1}, resolution)
        assert effective.pop("batch_size") == "auto" and ran.options.batch_size == 16
        assert {k: v for k, v in ran.options.as_dict().items() if k != "batch_size"} == effective


@pytest.mark.parametrize("options, match", [
    ({"iterations": -3}, r"iterations must be ≥ 0"), ({"step_decay": 2}, r"step_decay must be in \(0, 1\)"),
    ({"start": 1.5}, r"start must be in \[0, 1\]"), ({"direction": "up"}, r"direction must be one of paper, ig"),
    ({"batch_size": 0}, r'batch_size must be an integer ≥ 1 or "auto"'),
    ({"early_stop": -1}, r"early_stop must be ≥ 0 or None"),
])
def test_a_bad_value_fails_before_any_work_naming_the_option(options, match, tmp_path, capsys):
    from igos.errors import InvalidOptionError

    with pytest.raises(InvalidOptionError, match=match):
        METHODS["igos"].check_options(options)
    with pytest.raises(InvalidOptionError, match=match):  # the API, before any image is read
        igos.explain(tmp_path / "no-such-photo.png", "tinymodels:tiny_classifier", "igos", **options)
    key, value = next(iter(options.items()))
    img = tmp_path / "a.png"
    Image.fromarray(np.zeros((8, 8, 3), dtype=np.uint8)).save(img)
    for argv in (["explain", str(img), "--method", "igos", "--out", str(tmp_path / "out"), "--set", f"{key}={value}"],
                 ["bench", str(tmp_path), "--methods", "igos", "--out", str(tmp_path / "run"),
                  "--set", f"igos.{key}={value}"]):
        assert main([*argv, "--model", "tinymodels:tiny_classifier"]) == 2
        assert re.search(match, capsys.readouterr().err)
    assert not (tmp_path / "out").exists() and not (tmp_path / "run").exists()


def test_a_method_whose_function_is_not_the_contract_is_refused():
    def sloppy(model, images, target=None, *, batch_size=16, **_):
        raise AssertionError

    def maths(model, images, targets, *, baseline, size, seed, options):
        raise AssertionError

    with pytest.raises(TypeError, match="must take"):
        MethodSpec("sloppy", sloppy, "Sloppy", "input")
    with pytest.raises(TypeError, match="MethodOptions"):
        MethodSpec("nodataclass", maths, "No options", "input", dict)
    with pytest.raises(ValueError, match="already registered"):
        register(MethodSpec("igos", METHODS["igos"].fn, "again", "any", METHODS["igos"].schema))


def test_a_registered_method_reaches_cli_choices_tables_and_docs(monkeypatch, tiny_preset, images):
    def centre(model, images, targets, *, baseline, size, seed, options):
        """A toy method: the centre cell is the most important."""
        s = size[0]
        yy, xx = torch.meshgrid(torch.arange(s), torch.arange(s), indexing="ij")
        sal = -((yy - s // 2) ** 2 + (xx - s // 2) ** 2).float()
        return igos.Attribution(sal.expand(images.shape[0], s, s).clone())

    spec = MethodSpec("centre", centre, "Centre", "any", MethodOptions, "a toy", "0 / 0", default_resolution=28)
    monkeypatch.setitem(REGISTRY, "centre", spec)
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
    """Each option is documented in the Attributes of its options dataclass or of a base it inherits it from."""
    for spec in METHODS.values():
        doc = "\n".join((c.__doc__ or "").split("Attributes:")[-1] for c in spec.schema.__mro__
                        if issubclass(c, MethodOptions) and "Attributes:" in (c.__doc__ or ""))
        for option in spec.options:
            assert re.search(rf"\b{option}\b", doc), f"{spec.name}: option {option!r} is not documented in " \
                                                     f"{spec.schema.__name__}"
