"""What a map keeps when the model is random (issue 21, item 6): the photo's own blur residual.

The masks of I-GOS and iGOS++ move only where deleting or inserting a cell changes the composite
``I⊙M + blur(I)⊙(1−M)``, that is where the photo differs from its blur. On a flat patch ``I ≈ blur(I)`` and the
score's gradient with respect to the cell is near zero for any weights. So part of a map's layout is the
photo's, not the model's. This script measures that part: for each photo it explains the class with the trained
model and with the fully randomised one (every block of :func:`igos.sanity.parameter_blocks`, the last step of
``igos sanity --mode cascading``, same seed), and prints the Spearman correlation of |map| of each with the
blur residual ``mean_c |I − blur(I)|`` averaged over the map's cells, and of the two maps with each other
(the cascade's final Spearman of |map|), and that last one with the residual held fixed (a partial correlation).

    python benchmarks/sanity_residual.py --images ../shared/data/imagenet-dev --limit 10 --resolution 112

``--method rise --reference rise-masks`` does the same for RISE, whose map is ``Σ_i s_i m_i / (N p)`` over seeded
masks shared by every photo: for a score that does not depend on the input that is the masks' own mean, and the
reference is that mean.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import time

import torch

from igos.api import resolve_model
from igos.images import find_images
from igos.methods import get_method
from igos.methods.recommended import resolve
from igos.methods.rise import rise_masks
from igos.options import parse_options
from igos.perturb import blurred_baseline, cell_pool
from igos.sanity import parameter_blocks, randomised, similarity


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", default="../shared/data/imagenet-dev")
    ap.add_argument("--limit", type=int, default=10, help="the first N photos in sorted order (as igos sanity)")
    ap.add_argument("--method", default="auto")
    ap.add_argument("--resolution", type=int, default=112)
    ap.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="the method's options")
    ap.add_argument("--model", default="efficientnet-lite0")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--reference", default="residual", choices=["residual", "rise-masks"],
                    help="what the maps are compared with: the blur residual, or (for RISE) the mean of its own "
                         "seeded masks, the map RISE gives for a score that does not depend on the input")
    ap.add_argument("--json", default=None, help="write the per-photo figures here")
    args = ap.parse_args()
    if args.reference == "rise-masks" and args.method != "rise":
        ap.error(f"--reference rise-masks is RISE's own masks' mean: it needs --method rise, got {args.method!r}")

    preset = resolve_model(args.model, "cpu", {})
    name, options = resolve(args.method, args.resolution, parse_options(args.set))
    spec = get_method(name)
    files = find_images([args.images])[: args.limit]
    x = torch.stack([preset.read(f) for f in files])
    size = tuple(x.shape[-2:])
    side = (args.resolution, args.resolution)
    if args.reference == "residual":
        reference = cell_pool((x - blurred_baseline(x)).abs().mean(1), side, "mean")
    else:  # RISE's map is sum_i s_i m_i / (N p): for a constant score, its masks' mean (the same for every photo)
        o = spec.make_options(options)
        mean = sum(m.sum(0) for m in rise_masks(o.masks, size, o.grid, o.p, seed=args.seed))[0] / o.masks
        reference = mean.expand(len(x), *size)
    t0 = time.perf_counter()
    first = spec(preset.model, x, None, resolution=args.resolution, seed=args.seed, **options)
    trained = first.saliency.detach().cpu()
    blind = randomised(preset.model, [n for n, _ in parameter_blocks(preset.model)], args.seed)
    rand = spec(blind, x, first.target, resolution=args.resolution, seed=args.seed, **options).saliency.detach().cpu()
    seconds = time.perf_counter() - t0

    def rho(a: torch.Tensor, b: torch.Tensor) -> float:
        return similarity(a, b, size)["spearman_abs"]

    def partial(xy: float, xz: float, yz: float) -> float:
        """The correlation of x and y with z held fixed (from the three rank correlations)."""
        return (xy - xz * yz) / math.sqrt(max((1 - xz * xz) * (1 - yz * yz), 1e-12))

    rows = []
    for i, f in enumerate(files):
        r = {"photo": str(f), "trained_vs_reference": rho(trained[i], reference[i]),
             "random_vs_reference": rho(rand[i], reference[i]), "trained_vs_random": rho(trained[i], rand[i])}
        r["trained_vs_random_given_reference"] = partial(r["trained_vs_random"], r["trained_vs_reference"],
                                                        r["random_vs_reference"])
        rows.append(r)
    print(f"{name} {options} at {args.resolution}×{args.resolution}, {len(files)} photos, {seconds:.0f} s; "
          "Spearman of |map| (per photo, then the mean)")
    keys = ("trained_vs_reference", "random_vs_reference", "trained_vs_random", "trained_vs_random_given_reference")
    print("photo | " + " | ".join(keys))
    for r in rows:
        print(r["photo"].rsplit("/", 1)[-1][:24] + " | " + " | ".join(f"{r[k]:.3f}" for k in keys))
    means = {k: statistics.fmean(r[k] for r in rows) for k in keys}
    print("mean | " + " | ".join(f"{means[k]:.3f}" for k in keys))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"method": name, "options": options, "resolution": args.resolution,
                       "reference": args.reference, "rows": rows, "means": means}, fh, indent=1, default=str)


if __name__ == "__main__":
    main()
