"""Targets beyond a class (issue 22), measured:

* ``dogs``: on the development set's dog photos (classes 151–268), the recommended method's 28×28 map of the
  top-1 breed and of the set "dog" (``Classes(range(151, 269))``: the sum of the 118 breeds' probabilities);
  deletion and insertion of each map under each score, how alike the two maps are (Spearman, shared top cells).
* ``known``: known answers on tiny models whose scores depend only on known pixels (tests/tinymodels.py): the
  share of each method's positive map mass inside the pixels the score looks at, per target kind.
* ``seconds``: seconds per image of the gradient and of I-GOS at 28×28 per output kind: the embedded classifier
  (one class, a set, sigmoid, a callable) and, where torchvision imports, a Faster R-CNN and a DeepLabV3 with
  random weights at 224×224 (box, region).

    python benchmarks/targets.py dogs --images ../shared/data/imagenet-dev
    python benchmarks/targets.py known
    python benchmarks/targets.py seconds --images ../shared/data/imagenet-dev
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import torch

import igos
from igos.images import find_images, load_image
from igos.metrics import deletion_insertion
from igos.targets import Box, Classes, Region, Score, bind

DOGS = range(151, 269)


def spearman(a: torch.Tensor, b: torch.Tensor) -> float:
    ra = a.flatten().argsort().argsort().double()
    rb = b.flatten().argsort().argsort().double()
    ra, rb = ra - ra.mean(), rb - rb.mean()
    return float((ra * rb).sum() / (ra.norm() * rb.norm()))


def top_overlap(a: torch.Tensor, b: torch.Tensor, share: float = 0.1) -> float:
    k = max(1, round(share * a.numel()))
    ta, tb = set(a.flatten().topk(k).indices.tolist()), set(b.flatten().topk(k).indices.tolist())
    return len(ta & tb) / k


def dogs(args: argparse.Namespace) -> None:
    preset = igos.load_model("efficientnet-lite0")
    files = [f for f in find_images([args.images]) if f.name[:3].isdigit() and int(f.name[:3]) in DOGS]
    dog = Classes(DOGS)
    print(f"{len(files)} dog photos; method auto (iGOS++) at {args.resolution}x{args.resolution}, EfficientNet-Lite0")
    print("photo | top-1 breed p | set p(dog) | map of breed: del/ins under breed, under set | map of dog: del/ins "
          "under breed, under set | Spearman | top-10% overlap | s breed | s dog")
    rows = []
    for f in files:
        x = load_image(f, 224).unsqueeze(0)
        t0 = time.perf_counter()
        breed_map = igos.get_method("igospp")(preset.model, x, None, resolution=args.resolution).saliency
        t1 = time.perf_counter()
        dog_map = igos.get_method("igospp")(preset.model, x, dog, resolution=args.resolution).saliency
        t2 = time.perf_counter()
        scored, r = bind(preset.model, x, None)
        breed = int(scored.bound.labels()[0])
        with torch.no_grad():
            p_breed = float(scored.score(x, r))
            p_dog = float(bind(preset.model, x, dog)[0].score(x, r))
        s = {(m, t): deletion_insertion(preset.model, x, sal, tgt)
             for m, sal in (("breed", breed_map), ("dog", dog_map)) for t, tgt in (("breed", breed), ("dog", dog))}
        row = {"p_breed": p_breed, "p_dog": p_dog, "spearman": spearman(breed_map, dog_map),
               "overlap": top_overlap(breed_map, dog_map), "s_breed": t1 - t0, "s_dog": t2 - t1}
        for (m, t), v in s.items():
            row[f"{m}|{t}|del"], row[f"{m}|{t}|ins"] = float(v.deletion), float(v.insertion)
        rows.append(row)
        print(f"{f.name[:28]:28s} | {preset.class_name(breed)[:18]} {p_breed:.3f} | {p_dog:.3f} | "
              f"{row['breed|breed|del']:.3f}/{row['breed|breed|ins']:.3f}, {row['breed|dog|del']:.3f}/"
              f"{row['breed|dog|ins']:.3f} | {row['dog|breed|del']:.3f}/{row['dog|breed|ins']:.3f}, "
              f"{row['dog|dog|del']:.3f}/{row['dog|dog|ins']:.3f} | {row['spearman']:.3f} | {row['overlap']:.2f} | "
              f"{row['s_breed']:.1f} | {row['s_dog']:.1f}", flush=True)
    mean = {k: statistics.mean(r[k] for r in rows) for k in rows[0]}
    print("\nmeans over the photos (deletion: lower is better, insertion: higher is better)")
    print(f"top-1 breed probability {mean['p_breed']:.3f}; set probability p(dog) {mean['p_dog']:.3f}")
    for t in ("breed", "dog"):
        print(f"scored as {t:5s}: map of the breed del {mean[f'breed|{t}|del']:.4f} ins {mean[f'breed|{t}|ins']:.4f}"
              f" | map of dog del {mean[f'dog|{t}|del']:.4f} ins {mean[f'dog|{t}|ins']:.4f}")
    wins = sum(r["dog|dog|ins"] - r["dog|dog|del"] > r["breed|dog|ins"] - r["breed|dog|del"] for r in rows)
    print(f"under the set score, the map of dog beats the map of the breed (ins - del) on {wins}/{len(rows)} photos")
    wins = sum(r["breed|breed|ins"] - r["breed|breed|del"] > r["dog|breed|ins"] - r["dog|breed|del"] for r in rows)
    print(f"under the breed score, the map of the breed beats the map of dog (ins - del) on {wins}/{len(rows)} photos")
    print(f"maps alike: Spearman {mean['spearman']:.3f}, top-10% cells shared {mean['overlap']:.2f}")
    print(f"seconds per photo: breed {mean['s_breed']:.1f}, dog {mean['s_dog']:.1f}")


def known(args: argparse.Namespace) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    import test_targets as tt  # the tests' tiny models and photos

    x = tt.photos(3)
    methods = ("igos", "igospp", "mask", "rise", "ig", "gradient")
    print(f"share of positive map mass inside the pixels the score looks at, {len(x)} photos "
          f"(astronaut, chelsea, coffee) at {tt.SIDE}x{tt.SIDE}, maps 8x8; chance = the region's area")
    print("kind | area | " + " | ".join(methods))
    for kind, (model, target, (rows, cols)) in tt.known_answer_cases().items():
        area = (rows.stop - rows.start) * (cols.stop - cols.start) / tt.SIDE**2
        cells = []
        for m in methods:
            options = {"masks": 400} if m == "rise" else {}
            sal = igos.get_method(m)(model, x, target, resolution=8, seed=0, **options).saliency
            share = tt.quadrant_share(sal, rows, cols)
            cells.append(f"{float(share.min()):.3f}–{float(share.max()):.3f}")
        print(f"{kind} | {area:.2f} | " + " | ".join(cells), flush=True)


def _time(fn, repeats: int) -> float:
    fn()  # warm-up
    t0 = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - t0) / repeats


def seconds(args: argparse.Namespace) -> None:
    preset = igos.load_model("efficientnet-lite0")
    files = find_images([args.images])[:: args.every][: args.limit]
    x = torch.stack([load_image(f, 224) for f in files])
    kinds = {
        "class (top-1)": (preset.model, None),
        "set (151-268)": (preset.model, Classes(DOGS)),
        "sigmoid (one class)": (preset.model, Classes(281, score="sigmoid")),
        "callable (margin)": (preset.model, Score(lambda out: out[:, 281] - out[:, 285], "margin")),
    }
    try:
        from torchvision.models import detection, segmentation

        torch.manual_seed(0)
        det = detection.fasterrcnn_mobilenet_v3_large_fpn(weights=None, weights_backbone=None, num_classes=5,
                                                          box_score_thresh=0.0)
        det.transform.min_size, det.transform.max_size = (224,), 224
        det_model = igos.models.Classifier(det.eval(), (0.0,) * 3, (1.0,) * 3)
        with torch.no_grad():
            outs = det_model(x)
        boxes = [Box(o["boxes"][int(o["scores"].argmax())].tolist(), int(o["labels"][int(o["scores"].argmax())]))
                 for o in outs]
        kinds["box (Faster R-CNN MobileNetV3, random)"] = (det_model, boxes)
        seg = segmentation.deeplabv3_mobilenet_v3_large(weights=None, weights_backbone=None, num_classes=4,
                                                        aux_loss=False).eval()
        seg_model = igos.models.Classifier(seg, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
        with torch.no_grad():
            cls = int(seg_model(x).argmax(1).flatten().bincount().argmax())
        kinds["region (DeepLabV3 MobileNetV3, random)"] = (seg_model, Region(cls))
    except Exception as exc:
        print(f"(no detector or segmenter: torchvision does not import here: {str(exc).splitlines()[0][:80]})")
    print(f"{len(x)} photos at 224x224, {torch.get_num_threads()} threads; seconds per image (mean of "
          f"{args.repeats} runs after a warm-up); I-GOS with its defaults at {args.resolution}x{args.resolution}")
    print("kind | forward ms/img | gradient s/img | igos s/img | igos images/img")
    for name, (model, target) in kinds.items():
        with torch.no_grad():
            fwd = _time(lambda m=model: m(x), args.repeats) / len(x)
        grad = _time(lambda m=model, t=target: igos.get_method("gradient")(m, x, t), args.repeats) / len(x)
        runs = []
        ig = _time(lambda m=model, t=target, out=runs: out.append(
            igos.get_method("igos")(m, x, t, resolution=args.resolution)), 1) / len(x)
        r = runs[-1]
        images = (r.forward_images + r.backward_images) / len(x)
        print(f"{name} | {1000 * fwd:.1f} | {grad:.3f} | {ig:.2f} | {images:.0f}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="command", required=True)
    d = sub.add_parser("dogs")
    d.add_argument("--images", default="../shared/data/imagenet-dev")
    d.add_argument("--resolution", type=int, default=28)
    sub.add_parser("known")
    s = sub.add_parser("seconds")
    s.add_argument("--images", default="../shared/data/imagenet-dev")
    s.add_argument("--every", type=int, default=25)
    s.add_argument("--limit", type=int, default=4)
    s.add_argument("--repeats", type=int, default=2)
    s.add_argument("--resolution", type=int, default=28)
    args = ap.parse_args()
    os.environ.setdefault("PYTHONHASHSEED", "0")
    {"dogs": dogs, "known": known, "seconds": seconds}[args.command](args)


if __name__ == "__main__":
    main()
