"""On CUDA (``python -m pytest -m gpu``, or ``python benchmarks/gpu_check.py``): the methods, the metric and the
targets give on the GPU what they give on the CPU, within the tolerance of tests/agreement.py; bfloat16 runs.
They skip where there is no CUDA.

Their first run (an H200, torch 2.11, docs/results/gpu-check.md) failed the CPU comparisons for two reasons, both
mended since: PyTorch's default TF32 convolutions (the gradient map moved by up to ~10 %, the metric's curves by
~5e-4), and random draws from the GPU's own generator (another stream of numbers: the optimisers' maps then
differed as much as under another seed). The second run passed 12 of 14, the metric and every method but the
gradient (cells near zero, against an absolute 1e-6) and auto (Spearman 0.976 against the 0.99 of two thread
counts). The third (2026-12-04, 15:31) failed four: auto and Mask on the top cells (87 %), iGOS++ on insertion
(7.7e-3), the gradient on one cell. Its follow-up runs (benchmarks/gpu_agreement.py, gpu_determinism.py) showed
why: with cuDNN's default algorithms a GPU run is not even the same from one call to the next (auto's largest
cell moved by 17 % between two calls of one process), so the optimisers' maps on the two devices differ as two
GPU runs do. The tolerances below are set from those figures against another seed's (docs/results/gpu-check.md,
"Third run")."""

from __future__ import annotations

import os

import pytest
import skimage
import tinymodels as tm
import torch
from agreement import TOL, assert_maps_agree

import igos
from igos.images import load_image
from igos.methods.recommended import recommended
from igos.metrics import deletion_insertion
from igos.models import Classifier
from igos.targets import Box, Region

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA: python -m pytest -m gpu")]


@pytest.fixture(scope="module")
def lite0():
    return igos.load_model("efficientnet-lite0")


def photos(side: int = 224, n: int = 2) -> torch.Tensor:
    folder = os.path.join(os.path.dirname(skimage.__file__), "data")
    return torch.stack([load_image(os.path.join(folder, f), side) for f in ("coffee.png", "chelsea.png")[:n]])


@pytest.mark.parametrize("method", ["auto", "igos", "igospp", "mask", "gradient", "gradcam", "ebp", "rise"])
def test_a_method_on_cuda_agrees_with_the_cpu(lite0, method):
    x = photos()
    cuda = igos.load_model("efficientnet-lite0", device="cuda")
    method, options = recommended(28) if method == "auto" else (method, {})
    if method == "rise":
        options["masks"] = 500
    on_cpu = igos.get_method(method)(lite0.model, x, resolution=28, **options)
    on_gpu = igos.get_method(method)(cuda.model, x.cuda(), resolution=28, **options)
    assert on_gpu.saliency.device.type == "cuda"
    if method in ("gradcam", "ebp", "rise"):  # no optimiser: the same numbers up to rounding (RISE's masks are
        # drawn on the CPU); these passed allclose on every H200 run
        scale = float(on_cpu.saliency.abs().max())
        assert torch.allclose(on_gpu.saliency.cpu(), on_cpu.saliency, rtol=1e-3, atol=1e-4 * scale)
        return
    a = deletion_insertion(lite0.model, x, on_cpu.saliency)
    b = deletion_insertion(lite0.model, x, on_gpu.saliency.cpu())
    if method == "gradient":  # its cells agreed to 1e-7 on chelsea in one run, one cell moved by 9 % of the largest
        # in another (an input gradient through ~100 layers of other convolution algorithms): the same ranking and
        # metric (measured: Spearman 1.0000, |Δ| <= 3e-4)
        assert_maps_agree(on_gpu.saliency.cpu(), on_cpu.saliency, rho=0.999)
        assert (a.insertion - b.insertion).abs().max() < TOL and (a.deletion - b.deletion).abs().max() < TOL
        return
    # the optimisers draw their noise on the CPU and run IEEE float32, but rounding that differs from one GPU call
    # to the next grows through their accept/reject decisions. Measured across devices on coffee and chelsea
    # (third run): Spearman 0.9775-1.0000, top cells 87-100 %, |Δ insertion| up to 0.027 (auto on coffee);
    # another seed on the CPU: Spearman 0.76-0.945, top cells 38-87 %, |Δ insertion| up to 0.13. So the ranking
    # tells a device from a seed (the first run's generator bug gave 0.77-0.93), the top cells do not, and the
    # metric bounds only gross errors
    assert_maps_agree(on_gpu.saliency.cpu(), on_cpu.saliency, rho=0.95, top=0.0)
    assert (a.insertion - b.insertion).abs().max() < 0.05 and (a.deletion - b.deletion).abs().max() < 0.05


@pytest.mark.parametrize("method", ["auto", "igospp", "mask", "igos"])
def test_a_deterministic_model_gives_the_same_map_twice_on_cuda(method):
    """load_model(deterministic=True): PyTorch's and cuDNN's deterministic algorithms. Measured with cuDNN's alone
    (third run, benchmarks/gpu_determinism.py): auto, iGOS++ and Mask gave the same map from two calls; I-GOS's
    largest cell still moved by 2e-3 of the largest (without the setting: 17 %, 4 %, 11 % and 7e-4). PyTorch's
    mode (index_add_ without atomics) may make I-GOS exact too: not yet run, so I-GOS is held to 1 % here."""
    x = photos().cuda()
    cuda = igos.load_model("efficientnet-lite0", device="cuda", deterministic=True)
    method, options = recommended(28) if method == "auto" else (method, {})
    first, second = (igos.get_method(method)(cuda.model, x, resolution=28, **options).saliency.cpu() for _ in "ab")
    if method == "igos":
        assert_maps_agree(second, first, rho=0.999)
        assert float((second - first).abs().max() / first.abs().max()) < 0.01
    else:
        assert torch.equal(first, second)


def test_the_metric_on_cuda_equals_the_cpu(lite0):
    x = photos()
    sal = torch.rand(2, 28, 28, generator=torch.Generator().manual_seed(0))
    cuda = igos.load_model("efficientnet-lite0", device="cuda")
    a = deletion_insertion(lite0.model, x, sal)
    b = deletion_insertion(cuda.model, x.cuda(), sal.cuda())
    assert torch.allclose(a.deletion_curve, b.deletion_curve.cpu(), atol=1e-4)
    assert torch.allclose(a.insertion_curve, b.insertion_curve.cpu(), atol=1e-4)


def test_bfloat16_and_targets_run_on_cuda():
    cuda = igos.load_model("efficientnet-lite0", device="cuda", dtype="bfloat16")
    r = igos.get_method("igos")(cuda.model, photos().cuda(), resolution=14)
    assert torch.isfinite(r.saliency).all() and r.saliency.device.type == "cuda"
    x = photos(64).cuda()
    det = Classifier(tm.tiny_detector(), (0.0,) * 3, (1.0,) * 3).cuda()
    seg = Classifier(tm.tiny_segmenter(full=True), (0.0,) * 3, (1.0,) * 3).cuda()
    mask = torch.zeros(64, 64, dtype=torch.bool, device="cuda")
    mask[:32, :32] = True
    for model, target in ((det, Box([0, 0, 32, 32], 1)), (seg, Region(1, mask))):
        sal = igos.get_method("gradient")(model, x, target).saliency
        assert sal.device.type == "cuda" and float(sal[:, 32:, :].abs().sum()) == 0.0


def test_the_automatic_batch_fits_the_free_memory_by_a_measured_cost():
    from igos.resources import MAX_BATCH, auto_batch_size, per_image_bytes

    cuda = igos.load_model("efficientnet-lite0", device="cuda")
    x = photos().cuda()
    per = per_image_bytes(cuda.model, x)
    assert 1e5 < per < 4e9  # EfficientNet-Lite0 at 224: tens of MB an image with its gradient
    n = auto_batch_size(cuda.model, x)
    free, _ = torch.cuda.mem_get_info()
    assert 1 <= n <= MAX_BATCH and (n == MAX_BATCH or n * per <= free)
    r = igos.get_method("igos")(cuda.model, x, resolution=7, iterations=2)
    assert r.options.batch_size == n


def test_road_on_cuda_by_conjugate_gradients_agrees_with_the_direct_solve_on_the_cpu(lite0):
    from igos.road import impute, road

    x = photos()
    unknown = torch.rand(2, 1, 224, 224, generator=torch.Generator().manual_seed(3)) < 0.6
    exact = impute(x, unknown, solver="direct")
    cg = impute(x.cuda(), unknown.cuda(), solver="cg", tol=1e-5)
    assert cg.device.type == "cuda" and (cg.cpu() - exact).abs().max() < 1e-3
    sal = torch.rand(2, 28, 28, generator=torch.Generator().manual_seed(0))
    cuda = igos.load_model("efficientnet-lite0", device="cuda")
    a = road(lite0.model, x, sal)  # the direct solve; CPU noise
    b = road(cuda.model, x.cuda(), sal.cuda())  # conjugate gradients; CUDA noise (another stream of numbers)
    assert abs(float(a.morf.mean() - b.morf.mean().cpu())) < 0.01
    assert abs(float(a.lerf.mean() - b.lerf.mean().cpu())) < 0.01


def test_a_real_out_of_memory_backs_off_to_a_batch_that_fits():
    """The device's memory capped at about a dozen images' forward and backward: I-GOS asked for 256 images a
    call runs out for real, halves its batch until one fits, and gives the maps of a run at that batch size."""
    from igos.resources import per_image_bytes

    cuda = igos.load_model("efficientnet-lite0", device="cuda")
    x = photos().cuda()
    per = per_image_bytes(cuda.model, x)
    torch.cuda.empty_cache()
    total = torch.cuda.get_device_properties(x.device).total_memory
    torch.cuda.set_per_process_memory_fraction((torch.cuda.memory_allocated(x.device) + 12 * per) / total, x.device)
    try:
        with pytest.warns(ResourceWarning, match="out of memory at batch_size=256; running again at 128"):
            r = igos.get_method("igos")(cuda.model, x, resolution=7, iterations=3, batch_size=256)
        fits = r.options.batch_size
        same = igos.get_method("igos")(cuda.model, x, resolution=7, iterations=3, batch_size=fits)
    finally:
        torch.cuda.set_per_process_memory_fraction(1.0, x.device)
        torch.cuda.empty_cache()
    assert 1 <= fits <= 16 and torch.isfinite(r.saliency).all()
    assert_maps_agree(r.saliency.cpu(), same.saliency.cpu(), rho=0.99, top=0.9)
