"""igos's ROAD against pytorch-grad-cam's (``grad-cam`` on PyPI, ``pytorch_grad_cam.metrics.road``) on the same
maps (issue 21, item 5). Runs in the side environment (pytorch-grad-cam imports torchvision):

    /tmp/side/bin/pip install grad-cam
    /tmp/side/bin/python benchmarks/road_reference.py --images ../shared/data/imagenet-dev --limit 5

Both are given the same input: the photo in [0, 1] (the model normalises inside, so both impute pixels and add
their noise, σ = 0.01, to pixels) and, as pytorch-grad-cam's ``cam``, the map igos ranks by (I-GOS 28×28,
upsampled bilinearly, min-max scaled, with igos's tie-breaker). pytorch-grad-cam reports score differences
(after − before), so igos's MoRF and LeRF are compared after subtracting the clean photo's probability.
"""

from __future__ import annotations

import argparse
import statistics

import numpy as np
import torch
import torch.nn.functional as F

import igos
from igos.images import find_images, load_image
from igos.road import road


def ranked_map(saliency: torch.Tensor, size: tuple[int, int], seed: int = 0) -> np.ndarray:
    """The values igos ranks pixels by (igos.road.road_order before the ranking)."""
    up = F.interpolate(saliency[None, None].double(), size=size, mode="bilinear", align_corners=False)[0, 0]
    flat = up.flatten()
    scaled = (flat - flat.min()) / (flat.max() - flat.min()).clamp_min(1e-12)
    tie = torch.randn(flat.shape[0], generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return (scaled + 1e-4 * tie).view(size).numpy()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", default="../shared/data/imagenet-dev")
    ap.add_argument("--every", type=int, default=20)
    ap.add_argument("--limit", type=int, default=5)
    ap.add_argument("--noiseless", action="store_true",
                    help="both without the imputation noise: what is left is the solve and the ranking")
    args = ap.parse_args()
    import pytorch_grad_cam.metrics.road as reference
    from pytorch_grad_cam.metrics.road import ROADLeastRelevantFirstAverage, ROADMostRelevantFirstAverage
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputSoftmaxTarget

    noise = 0.0 if args.noiseless else 0.01
    if args.noiseless:  # its imputer's noise is a default argument
        defaults = list(reference.NoisyLinearImputer.__init__.__defaults__)
        defaults[0] = 0.0
        reference.NoisyLinearImputer.__init__.__defaults__ = tuple(defaults)
    preset = igos.load_model("efficientnet-lite0")
    model = preset.model
    files = find_images([args.images])[:: args.every][: args.limit]
    rows = []
    print(f"imputation noise σ = {noise}")
    print("photo | clean p | igos MoRF-p, LeRF-p | pytorch-grad-cam MoRF, LeRF | difference MoRF, LeRF")
    for f in files:
        x = load_image(f, 224).unsqueeze(0)
        sal = igos.get_method("igos")(model, x, resolution=28).saliency
        with torch.no_grad():
            p = model(x).softmax(1)
        cls = int(p.argmax())
        clean = float(p[0, cls])
        ours = road(model, x, sal, cls, noise=noise)
        cam = ranked_map(sal[0], (224, 224))[None].astype(np.float32)
        target = [ClassifierOutputSoftmaxTarget(cls)]
        torch.manual_seed(0)
        theirs_morf = float(ROADMostRelevantFirstAverage()(x, cam, target, model)[0])
        theirs_lerf = float(ROADLeastRelevantFirstAverage()(x, cam, target, model)[0])
        morf, lerf = float(ours.morf[0]) - clean, float(ours.lerf[0]) - clean
        rows.append((morf, lerf, theirs_morf, theirs_lerf))
        print(f"{f.name[:30]} | {clean:.4f} | {morf:+.4f}, {lerf:+.4f} | {theirs_morf:+.4f}, {theirs_lerf:+.4f} | "
              f"{morf - theirs_morf:+.4f}, {lerf - theirs_lerf:+.4f}", flush=True)
    dm = [abs(r[0] - r[2]) for r in rows]
    dl = [abs(r[1] - r[3]) for r in rows]
    print(f"{len(rows)} photos: mean |difference| MoRF {statistics.mean(dm):.4f} (max {max(dm):.4f}), LeRF "
          f"{statistics.mean(dl):.4f} (max {max(dl):.4f}); difference of the means MoRF "
          f"{statistics.mean(r[0] for r in rows) - statistics.mean(r[2] for r in rows):+.4f}, LeRF "
          f"{statistics.mean(r[1] for r in rows) - statistics.mean(r[3] for r in rows):+.4f}")


if __name__ == "__main__":
    main()
