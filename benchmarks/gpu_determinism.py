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

import skimage
import torch
import torch.nn.functional as F

import igos
import igos.methods.igos as m_igos
import igos.methods.igospp as m_igospp
import igos.methods.mask as m_mask
import igos.methods.optim as m_optim
import igos.perturb as perturb
from igos.images import load_image
from igos.methods.recommended import recommended

USERS = (perturb, m_igos, m_igospp, m_mask, m_optim)  # the modules that call upsample


def interpolate_upsample(mask, size):
    if mask.dim() == 3:
        mask = mask.unsqueeze(1)
    if tuple(mask.shape[-2:]) == tuple(size):
        return mask
    return F.interpolate(mask, size=size, mode="bilinear", align_corners=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--side", type=int, default=28)
    ap.add_argument("--methods", nargs="+", default=["auto", "igos", "igospp", "mask"])
    ap.add_argument("--cpu", action="store_true")
    args = ap.parse_args()
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # before CUDA starts: cuBLAS's deterministic mode
    device = torch.device("cpu" if args.cpu or not torch.cuda.is_available() else "cuda")
    folder = os.path.join(os.path.dirname(skimage.__file__), "data")
    x = torch.stack([load_image(os.path.join(folder, f), 224) for f in ("coffee.png", "chelsea.png")]).to(device)
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
            for mod in USERS:
                mod.upsample = interpolate_upsample if setting == "interpolate" else matmul
            torch.backends.cudnn.deterministic = setting == "cudnn"
            model.deterministic = setting == "model"
            maps, t = [], time.perf_counter()
            for _ in range(2):
                maps.append(run(model, x, resolution=args.side, seed=0, **options).saliency.float().cpu())
            seconds = (time.perf_counter() - t) / (2 * len(x))
            diff = float((maps[1] - maps[0]).abs().max() / maps[0].abs().max())
            cells.append(f"{diff:.2e} ({seconds:.2f} s)")
        for mod in USERS:
            mod.upsample = matmul
        torch.backends.cudnn.deterministic = model.deterministic = False
        print(f"{name} | " + " | ".join(cells), flush=True)


if __name__ == "__main__":
    main()
