"""One command for a CUDA machine (issue 23, item 4): runs the GPU-marked tests, then times I-GOS, iGOS++ and the
deletion/insertion metric at 224×224 and 28×28 on a ResNet-50-sized classifier (random weights, built by
HuggingFace transformers: no download, no torchvision) in float32 and bfloat16, printing seconds per image and
peak memory (CUDA: the maximum allocated; CPU: the resident set).

    python benchmarks/gpu_check.py                      # on a CUDA machine
    python benchmarks/gpu_check.py --cpu --photos 1 --iterations 2    # the same on this CPU (a dry run of the script)
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
from igos.images import load_image
from igos.metrics import deletion_insertion
from igos.models import Classifier

ROOT = Path(__file__).resolve().parents[1]


def resnet50_sized() -> Classifier:
    """A ResNet-50 layout (bottlenecks 3-4-6-3, 1000 classes, 25.6 M parameters) with random weights."""
    from transformers import ResNetConfig, ResNetForImageClassification

    torch.manual_seed(0)
    config = ResNetConfig(depths=[3, 4, 6, 3], hidden_sizes=[256, 512, 1024, 2048], layer_type="bottleneck",
                          num_labels=1000)
    return Classifier(ResNetForImageClassification(config).eval(), (0.485, 0.456, 0.406), (0.229, 0.224, 0.225))


def photos(n: int, device: torch.device) -> torch.Tensor:
    import skimage

    folder = Path(skimage.__file__).parent / "data"
    names = ["astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg"]
    return torch.stack([load_image(folder / names[i % len(names)], 224) for i in range(n)]).to(device)


def peak_reset(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)


def peak_mb(device: torch.device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # the process's peak so far


def run_tests() -> int:
    print("== GPU-marked tests: python -m pytest -m gpu", flush=True)
    env = {**os.environ, "PYTHONPATH": str(ROOT / "tests")}
    return subprocess.call([sys.executable, "-m", "pytest", "-m", "gpu", "-p", "no:cacheprovider", "-rA"],
                           cwd=ROOT, env=env)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cpu", action="store_true", help="run on the CPU (where there is no CUDA)")
    ap.add_argument("--photos", type=int, default=8)
    ap.add_argument("--iterations", type=int, default=None, help="cap the optimisers' iterations (a quick run)")
    ap.add_argument("--no-tests", action="store_true")
    args = ap.parse_args()
    if not torch.cuda.is_available() and not args.cpu:
        print("no CUDA here: nothing to check (python benchmarks/gpu_check.py --cpu runs the timings on the CPU)")
        return
    device = torch.device("cpu" if args.cpu else "cuda")
    status = 0 if args.no_tests or device.type == "cpu" else run_tests()
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    print(f"== timings on {name}, torch {torch.__version__}, {args.photos} photos at 224x224, ResNet-50-sized "
          "classifier with random weights; seconds per image; peak memory")
    model = resnet50_sized().to(device)
    x = photos(args.photos, device)
    extra = {} if args.iterations is None else {"iterations": args.iterations}
    print("dtype | method | resolution | method s/img | metric s/img | peak MB | deletion | insertion")
    for dtype in ("float32", "bfloat16"):
        model.dtype = dtype
        for method in ("igos", "igospp"):
            for size in (224, 28):
                peak_reset(device)
                spec = igos.get_method(method)
                spec(model, x[:1], resolution=size, **extra)  # warm-up (kernels, allocator)
                t0 = time.perf_counter()
                r = spec(model, x, resolution=size, **extra)
                if device.type == "cuda":
                    torch.cuda.synchronize(device)
                t1 = time.perf_counter()
                s = deletion_insertion(model, x, r.saliency)
                if device.type == "cuda":
                    torch.cuda.synchronize(device)
                t2 = time.perf_counter()
                n = len(x)
                print(f"{dtype} | {method} | {size} | {(t1 - t0) / n:.3f} | {(t2 - t1) / n:.3f} | "
                      f"{peak_mb(device):.0f} | {float(s.deletion.mean()):.4f} | {float(s.insertion.mean()):.4f}",
                      flush=True)
    sys.exit(status)


if __name__ == "__main__":
    main()
