import sys
import types

import pytest
import torch

import igos
from igos.core import frozen
from igos.models import Classifier, ModelLoadError, imagenet_classes
from igos.sources import load_model


def test_imagenet_classes():
    names = imagenet_classes()
    assert len(names) == 1000 and names[0] == "tench" and names[281] == "tabby"


def test_frozen_restores_mode_and_flags():
    net = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Dropout())
    net.train()
    net[0].bias.requires_grad_(False)
    with frozen(net):
        assert not net.training and not any(p.requires_grad for p in net.parameters())
    assert net.training and net[0].weight.requires_grad and not net[0].bias.requires_grad


def make_linear():  # a factory for the package.module:factory form
    return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 8 * 8, 4))


def test_factory_with_weights_file(tmp_path):
    # "test_models:make_linear" imports this module: pytest puts tests/ on sys.path (rootdir conftest)
    net = make_linear()
    weights = tmp_path / "w.pt"
    torch.save(net.state_dict(), weights)
    preset = load_model("test_models:make_linear", weights=weights, input_size=8, class_names=list("abcd"))
    assert isinstance(preset.model, Classifier)
    x = torch.rand(2, 3, 8, 8)
    torch.testing.assert_close(preset.model.net(x), net(x))
    assert preset.class_name(2) == "c"


def test_weights_that_need_code_are_refused(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    bad = tmp_path / "evil.pt"
    torch.save({"x": Evil()}, bad)
    with pytest.raises(ModelLoadError, match="weights_only"):
        load_model("test_models:make_linear", weights=bad)


def test_missing_weights_file():
    with pytest.raises(ModelLoadError, match="not found"):
        load_model("test_models:make_linear", weights="/no/such/file.pt")


def test_bad_factory():
    with pytest.raises(ModelLoadError, match="cannot import"):
        load_model("no_such_module_xyz:factory")


def test_torchvision_names_fail_clearly_without_torchvision(monkeypatch):
    monkeypatch.setitem(sys.modules, "torchvision", None)  # an import of it fails, whatever is installed
    monkeypatch.setitem(sys.modules, "torchvision.models", None)
    with pytest.raises(ModelLoadError, match=r"torchvision model.*pip install 'igos\[torchvision\]'"):
        load_model("resnet50")


def test_torchvision_names_fail_clearly_offline(monkeypatch):
    """A stand-in for torchvision.models whose download fails as it does offline; the network is built once."""
    built = []

    def builder(weights=None):
        built.append(weights)
        if weights is not None:
            raise OSError("[Errno -3] Temporary failure in name resolution")
        return make_linear()

    fake = types.ModuleType("torchvision.models")
    fake.get_model_builder = lambda name: builder
    fake.get_model_weights = lambda name: types.SimpleNamespace(DEFAULT=None)
    monkeypatch.setitem(sys.modules, "torchvision", types.ModuleType("torchvision"))
    monkeypatch.setitem(sys.modules, "torchvision.models", fake)
    sys.modules["torchvision"].models = fake
    with pytest.raises(ModelLoadError, match="offline, pass a local state dict with --weights"):
        load_model("resnet50")
    assert built == ["DEFAULT"]


@pytest.mark.slow
def test_lite0_preset_is_embedded_and_works_offline(lite0):
    assert lite0.name == "efficientnet-lite0" and lite0.input_size == (224, 224)
    assert lite0.gradcam_layer == "net._bn1"
    assert not lite0.model.training
    with torch.no_grad():
        out = lite0.model(torch.rand(1, 3, 224, 224))
    assert out.shape == (1, 1000) and torch.isfinite(out).all()


def test_version_is_written_once():
    from importlib.metadata import version

    assert igos.__version__ == version("igos")  # the installed distribution reads igos/_version.py


def test_compile_inference_compiles_only_the_passes_without_gradients():
    """``--compile``: a gradient-free pass goes through torch.compile (same values up to rounding), a pass with
    gradients stays eager (its gradient exact), the compiled network is no submodule (state_dict, children), a
    copy compiles its own, and ``compile_inference(False)`` is eager again."""
    import copy

    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1),
                              torch.nn.Flatten(), torch.nn.Linear(4, 5))
    torch.manual_seed(0)
    model = Classifier(net, (0.5,) * 3, (0.5,) * 3).eval()
    x = torch.rand(2, 3, 16, 16)
    with torch.no_grad():
        eager = model(x)
    keys = list(model.state_dict())
    assert model.compile_inference() is model and model.compiled
    xi = x.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(model(xi)[:, 1].sum(), xi)
    assert model._inference is None  # the pass with gradients did not compile anything
    xe = x.clone().requires_grad_(True)
    (want,) = torch.autograd.grad(Classifier(net, (0.5,) * 3, (0.5,) * 3)(xe)[:, 1].sum(), xe)
    assert torch.equal(grad, want)
    with torch.no_grad():
        compiled = model(x)
    assert model._inference is not None and model._inference is not model.net
    torch.testing.assert_close(compiled, eager, atol=1e-5, rtol=1e-5)
    assert list(model.state_dict()) == keys and [n for n, _ in model.named_children()] == ["net"]
    twin = copy.deepcopy(model)
    assert twin.compiled and twin._inference is None  # compiles its own network on first use
    assert model.compile_inference(False)._inference is None and not model.compiled
    with torch.no_grad():
        assert torch.equal(model(x), eager)
    assert load_model("efficientnet-lite0", compile=True).model.compiled  # compiled lazily: nothing runs here


def test_a_deterministic_model_runs_deterministic_algorithms_inside_igos_and_the_process_setting_comes_back():
    """``deterministic=True`` (load_model, --deterministic) turns on PyTorch's deterministic mode (warn-only) and
    cuDNN's, without timing algorithms, while igos runs the model; a default model leaves the process's settings
    as they are."""
    cudnn = torch.backends.cudnn
    seen: list = []

    def setting() -> tuple:
        return (cudnn.deterministic, cudnn.benchmark, torch.are_deterministic_algorithms_enabled(),
                torch.is_deterministic_algorithms_warn_only_enabled())

    class Probe(torch.nn.Module):
        def forward(self, x):
            seen.append(setting())
            return x.flatten(1)[:, :3] * 1.0

    saved = setting()
    try:
        cudnn.deterministic, cudnn.benchmark = False, True  # a process that asked cuDNN to time algorithms
        x = torch.rand(1, 3, 8, 8)
        for deterministic, expected in ((True, (True, False, True, True)), (False, (False, True, False, False))):
            seen.clear()
            model = Classifier(Probe(), (0.0,) * 3, (1.0,) * 3)
            model.deterministic = deterministic
            igos.get_method("gradient")(model, x, 0)
            assert seen and all(s == expected for s in seen), (deterministic, seen)
            assert setting() == (False, True, False, False)
    finally:
        cudnn.deterministic, cudnn.benchmark = saved[:2]
        torch.use_deterministic_algorithms(saved[2], warn_only=saved[3])
    assert igos.load_model("efficientnet-lite0", deterministic=True).model.deterministic is True
    assert igos.load_model("efficientnet-lite0").model.deterministic is False


@pytest.mark.parametrize("method", ["igos", "igospp", "mask", "rise", "gradcam", "ebp"])
def test_deterministic_mode_changes_nothing_on_the_cpu_and_warns_of_no_operation(method):
    """Every operation a method and the metric use has a deterministic implementation (PyTorch's deterministic
    mode warns of any that has not), and on the CPU the maps and scores are the very same."""
    import warnings

    from igos.metrics import deletion_insertion

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(8, 8, 3, padding=1),
                              torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(8, 5))
    x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    options = {"iterations": 3} if method in ("igos", "igospp", "mask") else {"masks": 40} if method == "rise" else {}
    runs = []
    for deterministic in (False, True):
        model = Classifier(net, (0.5,) * 3, (0.5,) * 3)
        model.deterministic = deterministic
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            r = igos.get_method(method)(model, x, resolution=8, **options)
            s = deletion_insertion(model, x, r.saliency, r.target)
        assert not [w for w in caught if "deterministic" in str(w.message)], [str(w.message) for w in caught]
        runs.append((r.saliency, s.deletion, s.insertion))
    for a, b in zip(*runs):
        assert torch.equal(a, b)


def test_igos_runs_cuda_float32_math_as_ieee_unless_the_model_asks_for_tf32():
    """PyTorch runs cuDNN's float32 convolutions in TF32 by default; inside igos's calls float32 means IEEE float32
    (the setting a model sees during its forward pass), tf32 opts in, and the process's setting comes back."""
    from igos.core import _tf32_flags, frozen

    def setting() -> list:
        return [getattr(owner, name) for owner, name, _ in _tf32_flags()]

    seen: list = []

    class Probe(torch.nn.Module):
        def forward(self, x):
            seen.append(setting())
            return x.flatten(1)[:, :3] * 1.0

    before = setting()
    ieee = [off for _, _, (_, off) in _tf32_flags()]
    tf32 = [on for _, _, (on, _) in _tf32_flags()]
    x = torch.rand(1, 3, 8, 8)
    for dtype, expected in (("float32", ieee), ("tf32", tf32), ("bfloat16", ieee)):
        seen.clear()
        model = Classifier(Probe(), (0.0,) * 3, (1.0,) * 3, dtype=dtype)
        igos.get_method("gradient")(model, x, 0)
        assert seen and all(s == expected for s in seen), (dtype, seen)
        assert setting() == before
    with frozen(Classifier(Probe(), (0.0,) * 3, (1.0,) * 3, dtype="tf32")):
        with frozen(torch.nn.Linear(2, 2)):  # a plain module: IEEE inside, the outer model's setting after
            assert setting() == ieee
        assert setting() == tf32
    assert setting() == before
