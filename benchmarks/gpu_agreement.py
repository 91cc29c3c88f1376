"""How far a method's 28×28 map on CUDA is from the CPU's, beside how far another seed moves it on the CPU (the
scale the cross-device tolerance of tests/test_gpu.py should be read against). Prints, per method and photo:
Spearman, the top-cell overlap and |Δ deletion|, |Δ insertion| for CUDA against CPU and for seed 1 against seed 0
(CPU); for the non-optimising methods the largest cell difference over the map's largest cell.

    python benchmarks/gpu_agreement.py [--methods auto igos igospp mask gradient]
"""

from __future__ import annotations

import argparse
import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
from agreement import spearman, top_overlap  # noqa: E402
from gpu_check import photos  # noqa: E402
from upsample_cost import COFFEE_CHELSEA  # noqa: E402

import igos  # noqa: E402
from igos.methods.recommended import recommended  # noqa: E402
from igos.metrics import deletion_insertion  # noqa: E402

OPTIMISERS = ("auto", "igos", "igospp", "mask")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--methods", nargs="+", default=["auto", "igos", "igospp", "mask", "gradient"])
    args = ap.parse_args()
    x = photos(2, names=COFFEE_CHELSEA)
    cpu = igos.load_model("efficientnet-lite0").model
    cuda = igos.load_model("efficientnet-lite0", device="cuda").model if torch.cuda.is_available() else None
    print("method | photo | pair | Spearman | top overlap | |Δ deletion| | |Δ insertion| | max |Δ cell| / max cell")
    for name in args.methods:
        method, options = recommended(28) if name == "auto" else (name, {})
        run = igos.get_method(method)
        base = run(cpu, x, resolution=28, **options).saliency
        pairs = []
        if cuda is not None:
            pairs.append(("cuda vs cpu", run(cuda, x.cuda(), resolution=28, **options).saliency.cpu()))
        if name in OPTIMISERS:
            pairs.append(("seed 1 vs 0 (cpu)", run(cpu, x, resolution=28, seed=1, **options).saliency))
        a = deletion_insertion(cpu, x, base)
        for label, other in pairs:
            b = deletion_insertion(cpu, x, other)
            for i in range(len(x)):
                cell = float((other[i] - base[i]).abs().max() / base[i].abs().max())
                rho, top = spearman(other[i], base[i]), top_overlap(base[i], other[i])
                d_del = abs(float(a.deletion[i] - b.deletion[i]))
                d_ins = abs(float(a.insertion[i] - b.insertion[i]))
                print(f"{name} | {i} | {label} | {rho:.4f} | {top:.2f} | {d_del:.4f} | {d_ins:.4f} | {cell:.2e}",
                      flush=True)


if __name__ == "__main__":
    main()
