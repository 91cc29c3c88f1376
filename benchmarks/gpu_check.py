"""One command for a CUDA machine (issue 23, item 4): runs the GPU-marked tests, then times I-GOS, iGOS++ (the line
search), ``auto`` and the deletion/insertion metric at 224×224 and 28×28 on a ResNet-50-sized classifier (random
weights, built by HuggingFace transformers: no download, no torchvision) in float32 (IEEE), tf32 and bfloat16,
then every method on the embedded EfficientNet-Lite0 (where it is installed) with the metric and ROAD, printing
seconds per image and peak memory (CUDA: the maximum allocated; CPU: the resident set); stderr says as each step
ends how long it took.

    python benchmarks/gpu_check.py                      # on a CUDA machine
    python benchmarks/gpu_check.py --cpu --photos 1 --iterations 2 --masks 200    # a dry run of the script here
    python benchmarks/gpu_check.py --sections lite0     # one part: tests, resnet, lite0
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import torch

import igos
from igos.core import frozen
from igos.images import load_image
from igos.methods.recommended import recommended
from igos.metrics import deletion_insertion
from igos.models import Classifier

ROOT = Path(__file__).resolve().parents[1]
SECTIONS = ("tests", "resnet", "lite0")
OPTIMISERS = ("igos", "igospp", "mask")
#: I-GOS first: every later row's "x I-GOS" needs its seconds, and each row is printed as soon as it is measured (a
#: lease's time limit then still leaves the rows done; on the first H200 lease the rows waited for the whole side)
LITE0_METHODS = ("igos", "auto", "igospp", "gradcam", "ebp", "gradient", "ig", "mask", "rise")
#: methods whose map does not depend on the heatmap side: timed at the first side only
NATIVE = ("ig", "gradcam", "rise", "gradient")


def resnet50_sized() -> Classifier:
    """A ResNet-50 layout (bottlenecks 3-4-6-3, 1000 classes, 25.6 M parameters) with random weights."""
    from transformers import ResNetConfig, ResNetForImageClassification

    torch.manual_seed(0)
    config = ResNetConfig(depths=[3, 4, 6, 3], hidden_sizes=[256, 512, 1024, 2048], layer_type="bottleneck",
                          num_labels=1000)
    return Classifier(ResNetForImageClassification(config).eval(), (0.485, 0.456, 0.406), (0.229, 0.224, 0.225))


def photos(n: int, device: torch.device | str = "cpu",
           names: tuple[str, ...] = ("astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg")) -> torch.Tensor:
    """``n`` photos that ship inside scikit-image, 224×224, taken from ``names`` in turn, on ``device``."""
    import skimage

    folder = Path(skimage.__file__).parent / "data"
    return torch.stack([load_image(folder / names[i % len(names)], 224) for i in range(n)]).to(device)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def peak_reset(device: torch.device) -> None:
    sync(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def peak_mb(device: torch.device) -> float:
    sync(device)
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # the process's peak so far


def run_tests() -> int:
    print("== GPU-marked tests: python -m pytest -m gpu", flush=True)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "tests"), str(ROOT / "src"),
                                                         os.environ.get("PYTHONPATH", "")])}
    return subprocess.call([sys.executable, "-m", "pytest", "-m", "gpu", "-p", "no:cacheprovider", "-rA",
                            "--continue-on-collection-errors"], cwd=ROOT, env=env)


def method_call(name: str, size: int, args: argparse.Namespace) -> tuple[str, dict]:
    """The registered method and options for ``name`` (``auto``: the recommended one at ``size``), with the dry
    run's caps."""
    method, options = recommended(size) if name == "auto" else (name, {})
    if args.iterations is not None and method in OPTIMISERS:
        options["iterations"] = args.iterations
    if args.masks is not None and method == "rise":
        options["masks"] = args.masks
    return method, options


def progress(text: str) -> None:
    """A line on stderr as each step ends (a run stopped at a time limit shows where its time went)."""
    print(f"  [{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def timed(model, x, name: str, size: int, args: argparse.Namespace, device: torch.device, road: bool = False):
    """(method s/img, metric s/img, ROAD s/img or None, peak MB, scores) for one method at one side; the method is
    warmed up on one photo first (kernels, the allocator, the automatic batch's probe)."""
    method, options = method_call(name, size, args)
    spec = igos.get_method(method)
    t = time.perf_counter()
    spec(model, x[:1], resolution=size, **options)
    sync(device)
    progress(f"{name} {size}: warm-up on one photo took {time.perf_counter() - t:.1f} s")
    for round_ in range(1, args.repeat + 1):  # the row reports the last round; stderr shows each
        peak_reset(device)
        t0 = time.perf_counter()
        r = spec(model, x, resolution=size, **options)
        sync(device)
        t1 = time.perf_counter()
        progress(f"{name} {size}: the method took {t1 - t0:.1f} s for {len(x)} photos (round {round_})")
    s = deletion_insertion(model, x, r.saliency)
    sync(device)
    t2 = time.perf_counter()
    progress(f"{name} {size}: the metric took {t2 - t1:.1f} s")
    road_s = None
    if road:
        from igos.road import road as road_scores

        road_scores(model, x, r.saliency)
        sync(device)
        road_s = (time.perf_counter() - t2) / len(x)
        progress(f"{name} {size}: ROAD took {road_s * len(x):.1f} s")
    n = len(x)
    return (t1 - t0) / n, (t2 - t1) / n, road_s, peak_mb(device), s


def resnet_section(args: argparse.Namespace, device: torch.device) -> None:
    print(f"== ResNet-50-sized classifier, random weights: {args.photos} photos at 224x224; seconds per image; "
          "peak memory", flush=True)
    model = resnet50_sized().to(device)
    x = photos(args.photos, device)
    print("dtype | method | resolution | method s/img | metric s/img | peak MB | deletion | insertion")
    for dtype in ("float32", "tf32", "bfloat16"):
        model.dtype = dtype
        for name in ("igos", "igospp", "auto"):
            for size in (224, 28):
                m, e, _, peak, s = timed(model, x, name, size, args, device)
                print(f"{dtype} | {name} | {size} | {m:.3f} | {e:.3f} | {peak:.0f} | {float(s.deletion.mean()):.4f} "
                      f"| {float(s.insertion.mean()):.4f}", flush=True)
    del model


def memory_formats(model: Classifier, x: torch.Tensor, device: torch.device, batch: int = 32) -> None:
    """Milliseconds per image of one forward+backward pass (input gradient) at ``batch`` images, in the
    channels-last memory format (the preset's, chosen on CPUs) and in the contiguous one."""
    xs = x.repeat((batch + len(x) - 1) // len(x), 1, 1, 1)[:batch].clone().requires_grad_(True)
    cells = []
    for fmt, last in (("channels-last", True), ("contiguous", False)):
        model.net.to(memory_format=torch.channels_last if last else torch.contiguous_format)
        model.channels_last = last
        times = []
        with frozen(model):  # as the methods run it: no weight gradients, IEEE float32
            for _ in range(6):  # one warm-up, five timed
                sync(device)
                t = time.perf_counter()
                torch.autograd.grad(model(xs).max(1).values.sum(), xs)
                sync(device)
                times.append(time.perf_counter() - t)
        cells.append(f"{fmt} {1000 * min(times[1:]) / batch:.2f} ms")
    model.net.to(memory_format=torch.channels_last)
    model.channels_last = True
    print(f"Lite0 forward+backward per image at batch {batch}: {', '.join(cells)}", flush=True)


def lite0_section(args: argparse.Namespace, device: torch.device) -> None:
    try:
        preset = igos.load_model("efficientnet-lite0", device=device)
    except Exception as e:  # noqa: BLE001 - the section is skipped with the reason
        print(f"== EfficientNet-Lite0: skipped ({e})")
        return
    model = preset.model
    model.dtype = args.dtype
    x = photos(args.photos, device)
    memory_formats(model, x, device)
    print(f"== EfficientNet-Lite0 (the embedded model), {args.dtype}: every method, {args.photos} photos at 224x224; "
          "seconds per image; x I-GOS = the method's seconds over I-GOS's at that side; ROAD for auto only; "
          f"{', '.join(NATIVE)} make the same map at every side and are timed at 224 only",
          flush=True)
    print("method | resolution | method s/img | x I-GOS | metric s/img | ROAD s/img | peak MB | deletion | "
          "insertion | ins - del")
    for size in args.sides:
        base = float("nan")
        for name in args.methods:
            if name in NATIVE and size != 224:
                continue
            try:
                m, e, road_s, peak, s = timed(model, x, name, size, args, device, road=name == "auto")
            except Exception as err:  # noqa: BLE001 - a method that cannot run here is reported, not fatal
                print(f"{name} | {size} | failed: {type(err).__name__}: {err}", flush=True)
                continue
            base = m if name == "igos" else base
            d, i = float(s.deletion.mean()), float(s.insertion.mean())
            road_text = "" if road_s is None else f"{road_s:.3f}"
            print(f"{name} | {size} | {m:.3f} | {m / base:.2f} | {e:.3f} | {road_text} | {peak:.0f} | {d:.4f} | "
                  f"{i:.4f} | {i - d:.4f}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cpu", action="store_true", help="run on the CPU (where there is no CUDA)")
    ap.add_argument("--photos", type=int, default=8)
    ap.add_argument("--iterations", type=int, default=None, help="cap the optimisers' iterations (a quick run)")
    ap.add_argument("--masks", type=int, default=None, help="RISE's masks (a quick run)")
    ap.add_argument("--sections", nargs="+", choices=SECTIONS, default=list(SECTIONS))
    ap.add_argument("--no-tests", action="store_true", help="the same as leaving tests out of --sections")
    ap.add_argument("--repeat", type=int, default=1,
                    help="time each method this many times on the same photos (is the first call slow?)")
    ap.add_argument("--cudnn-benchmark", action="store_true",
                    help="let cuDNN time its convolution algorithms per shape (torch.backends.cudnn.benchmark)")
    ap.add_argument("--dtype", default="float32", choices=["float32", "tf32", "bfloat16"],
                    help="Lite0's precision (float32: IEEE; is the first call per shape slow in tf32 too?)")
    ap.add_argument("--sides", type=int, nargs="+", default=[224, 28, 7], help="Lite0's heatmap sides")
    ap.add_argument("--methods", nargs="+", default=list(LITE0_METHODS), help="Lite0's methods, in this order")
    args = ap.parse_args()
    if not torch.cuda.is_available() and not args.cpu:
        print("no CUDA here: nothing to check (python benchmarks/gpu_check.py --cpu runs the timings on the CPU)")
        return
    device = torch.device("cpu" if args.cpu else "cuda")
    torch.backends.cudnn.benchmark = args.cudnn_benchmark
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    print(f"== {name}, torch {torch.__version__}, CUDA {torch.version.cuda}", flush=True)
    run = [s for s in args.sections if not (s == "tests" and (args.no_tests or device.type == "cpu"))]
    status = run_tests() if "tests" in run else 0
    if "resnet" in run:
        resnet_section(args, device)
    if "lite0" in run:
        lite0_section(args, device)
    sys.exit(status)


if __name__ == "__main__":
    main()
