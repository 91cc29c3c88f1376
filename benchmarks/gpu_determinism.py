"""Is a seeded explanation the same from one call to the next on this device? Runs each optimiser twice on the same
two photos (skimage's coffee and chelsea) with the same seed, in one process, and prints the largest cell
difference of the two maps, under four settings: igos as it is (the mask's bilinear upsampling as two matrix
products), the same with cuDNN's deterministic algorithms, with the model's ``deterministic`` option (PyTorch's
deterministic mode as well: ``index_add_`` without atomics), and the upsampling by ``F.interpolate`` (whose CUDA
backward adds with atomics), then the seconds per image (the two calls, each setting's first call included).

    python benchmarks/gpu_determinism.py [--side 28] [--methods auto igos igospp mask]
"""

from __future__ import annotations

import argparse
import os
import time

import torch
from gpu_check import photos
from upsample_cost import COFFEE_CHELSEA, interpolate_upsample, use

import igos
import igos.perturb as perturb
from igos.methods.recommended import recommended


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--side", type=int, default=28)
    ap.add_argument("--methods", nargs="+", default=["auto", "igos", "igospp", "mask"])
    ap.add_argument("--cpu", action="store_true")
    args = ap.parse_args()
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # before CUDA starts: cuBLAS's deterministic mode
    device = torch.device("cpu" if args.cpu or not torch.cuda.is_available() else "cuda")
    x = photos(2, device, names=COFFEE_CHELSEA)
    model = igos.load_model("efficientnet-lite0", device=device).model
    matmul = perturb.upsample
    print(f"device {device}, side {args.side}: max |map 2 - map 1| over max |map 1|, seconds per image")
    print("method | matmul upsampling | + cudnn.deterministic | deterministic=True | F.interpolate upsampling")
    for name in args.methods:
        method, options = recommended(args.side) if name == "auto" else (name, {})
        run = igos.get_method(method)
        run(model, x, resolution=args.side, **options)  # warm-up: the first call at a shape is slow on CUDA
        cells = []
        for setting in ("matmul", "cudnn", "model", "interpolate"):
            use(interpolate_upsample if setting == "interpolate" else matmul)
            torch.backends.cudnn.deterministic = setting == "cudnn"
            model.deterministic = setting == "model"
            maps, t = [], time.perf_counter()
            for _ in range(2):
                maps.append(run(model, x, resolution=args.side, seed=0, **options).saliency.float().cpu())
            seconds = (time.perf_counter() - t) / (2 * len(x))
            diff = float((maps[1] - maps[0]).abs().max() / maps[0].abs().max())
            cells.append(f"{diff:.2e} ({seconds:.2f} s)")
        use(matmul)
        torch.backends.cudnn.deterministic = model.deterministic = False
        print(f"{name} | " + " | ".join(cells), flush=True)


if __name__ == "__main__":
    main()
