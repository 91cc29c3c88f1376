"""The mask's bilinear upsampling as two matrix products (``igos.perturb.upsample``) against ``F.interpolate``
(``align_corners=True``), on this machine: milliseconds for the forward and backward pass of 80 masks (a path
of K = 20 points for 4 photos) from 7, 28 and 112 to 224, the best of 5; then one I-GOS explanation at 28×28 of
two skimage photos with each, seconds (the best of 2) and the largest difference of the two maps.

    python benchmarks/upsample_cost.py [--threads 2]
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F
from gpu_check import photos

import igos
import igos.methods.igos as m_igos
import igos.methods.igospp as m_igospp
import igos.methods.mask as m_mask
import igos.methods.optim as m_optim
import igos.perturb as perturb

USERS = (perturb, m_igos, m_igospp, m_mask, m_optim)  # the modules that call upsample
COFFEE_CHELSEA = ("coffee.png", "chelsea.png")  # the two photos of this script and the GPU scripts


def interpolate_upsample(mask, size):
    """The upsampling igos used before the matrix products: ``F.interpolate`` (bilinear, ``align_corners=True``)."""
    if mask.dim() == 3:
        mask = mask.unsqueeze(1)
    if tuple(mask.shape[-2:]) == tuple(size):
        return mask
    return F.interpolate(mask, size=size, mode="bilinear", align_corners=True)


def use(fn) -> None:
    """Every module that calls ``upsample`` calls ``fn`` instead (``perturb.upsample``'s own function: back)."""
    for mod in USERS:
        mod.upsample = fn


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    matmul = perturb.upsample
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    print("cells -> 224 | F.interpolate ms | matrix products ms | ratio")
    g = torch.Generator().manual_seed(0)
    for cells in (7, 28, 112):
        m = torch.rand(80, 1, cells, cells, generator=g, requires_grad=True)
        w = torch.rand(80, 1, 224, 224, generator=g)
        best = []
        for fn in (interpolate_upsample, matmul):
            times = []
            for _ in range(5):
                t = time.perf_counter()
                (fn(m, (224, 224)) * w).sum().backward()
                times.append(time.perf_counter() - t)
            best.append(1000 * min(times))
        print(f"{cells} | {best[0]:.1f} | {best[1]:.1f} | {best[0] / best[1]:.2f}x", flush=True)
    x = photos(2, names=COFFEE_CHELSEA)
    model = igos.load_model("efficientnet-lite0").model
    maps, secs = [], []
    for fn in (interpolate_upsample, matmul):
        use(fn)
        times = []
        for _ in range(2):
            t = time.perf_counter()
            r = igos.get_method("igos")(model, x, resolution=28)
            times.append(time.perf_counter() - t)
        maps.append(r.saliency)
        secs.append(min(times) / len(x))
    use(matmul)
    diff = float((maps[0] - maps[1]).abs().max())
    print(f"I-GOS at 28x28, 2 photos: F.interpolate {secs[0]:.2f} s/image, matrix products {secs[1]:.2f} s/image "
          f"({secs[0] / secs[1]:.2f}x); largest map difference {diff:.2e}")


if __name__ == "__main__":
    main()
