"""``igos sanity``'s cascading randomisation against Quantus' ``MPRT`` on the same photos and method (issue 21,
item 5). Runs in the side environment (Quantus imports torchvision):

    /tmp/side/bin/pip install quantus
    /tmp/side/bin/python benchmarks/sanity_reference.py --images ../shared/data/imagenet-dev --limit 4

Quantus randomises every module that has ``reset_parameters`` (each convolution, BatchNorm and linear layer,
about 130 in EfficientNet-Lite0) one more at a time from the output, re-initialising it by PyTorch's default
initialisation (BatchNorm: weight 1, bias 0, its running statistics reset); igos randomises 18 blocks, drawing
each parameter from N(0, its trained σ²) and keeping BatchNorm's running statistics. Both end with every
parameter random; the table compares Spearman's correlation of |map| with the trained model's map at the end.
"""

from __future__ import annotations

import argparse
import statistics
import warnings

import numpy as np
import torch

import igos
from igos.captum import quantus_explain
from igos.images import find_images, load_image
from igos.sanity import sanity_check


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", default="../shared/data/imagenet-dev")
    ap.add_argument("--every", type=int, default=25)
    ap.add_argument("--limit", type=int, default=4)
    ap.add_argument("--method", default="gradient")
    args = ap.parse_args()
    warnings.filterwarnings("ignore")
    import quantus

    preset = igos.load_model("efficientnet-lite0")
    model = preset.model
    files = find_images([args.images])[:: args.every][: args.limit]
    x = torch.stack([load_image(f, 224) for f in files])
    ours = sanity_check(model, x, args.method, modes=("cascading",))
    steps = [s for s in ours.steps if s["mode"] == "cascading"]
    with torch.no_grad():
        y = model(x).argmax(1).numpy()
    mprt = quantus.MPRT(return_last_correlation=True, disable_warnings=True, layer_order="top_down")
    scores = mprt(model=model, x_batch=x.numpy(), y_batch=y, a_batch=None, explain_func=quantus_explain,
                  explain_func_kwargs={"method": args.method}, device="cpu", softmax=False)
    theirs = np.asarray(scores, dtype=float).flatten()
    print(f"{len(files)} photos, {args.method}, EfficientNet-Lite0; Spearman of |map| with the trained model's map")
    print("igos cascading steps: " + ", ".join(f"{s['randomised']} {s['spearman_abs']:.3f}" for s in steps))
    print(f"fully randomised, per photo: igos {[round(v, 3) for v in steps[-1]['per_photo']['spearman_abs']]}, "
          f"Quantus MPRT (last layer) {[round(float(v), 3) for v in theirs]}")
    layers = sum(1 for _, m in model.named_modules() if hasattr(m, "reset_parameters"))
    print(f"means: igos {steps[-1]['spearman_abs']:.3f} after {len(steps)} blocks, Quantus "
          f"{statistics.mean(theirs.tolist()):.3f} after {layers} layers")


if __name__ == "__main__":
    main()
