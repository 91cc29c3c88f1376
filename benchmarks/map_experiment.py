"""The shared part of the map experiments for the controls bar (``proximity_order.py``, ``seed_average.py``): the
photos, the model, a JSON cache of maps and scores, scoring under blur and ROAD, and the table of means, paired wins
and the photos on which a map beats all three model-blind controls on both removals."""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import torch

import igos
from igos.metrics import deletion_insertion
from igos.road import road

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from igos_variants import photo_set  # noqa: E402

CONTROLS = ("random", "center", "edges")


def add_arguments(ap: argparse.ArgumentParser) -> None:
    """The photos, side, method and cache every map experiment takes."""
    ap.add_argument("--images", default="../shared/data/imagenet-dev")
    ap.add_argument("--every", type=int, default=None)
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--resolution", type=int, default=28)
    ap.add_argument("--method", default="auto")
    ap.add_argument("--cache", default=None, help="JSON of maps and scores (default: none)")


def scores(model, x: torch.Tensor, maps: torch.Tensor) -> dict[str, list[float]]:
    """Per photo: blur deletion and insertion, ROAD's MoRF and LeRF of ``maps``."""
    blur = deletion_insertion(model, x, maps)
    r = road(model, x, maps)
    return {"deletion": blur.deletion.tolist(), "insertion": blur.insertion.tolist(),
            "morf": r.morf.tolist(), "lerf": r.lerf.tolist()}


def both(s: dict[str, list[float]]) -> tuple[list[float], list[float]]:
    """Per photo: insertion − deletion and ROAD's combined score."""
    return ([i - d for d, i in zip(s["deletion"], s["insertion"])],
            [(le - mo) / 2 for mo, le in zip(s["morf"], s["lerf"])])


class MapExperiment:
    """The photos of ``args`` on EfficientNet-Lite0, with a cache of maps and scores keyed by side and photos."""

    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.files = photo_set(args.images, args.every, args.limit)
        print(f"{len(self.files)} photos: {', '.join(f.name[:3] for f in self.files)}; {args.method} at "
              f"{args.resolution}")
        self.cache_path = Path(args.cache) if args.cache else None
        self.cache = (json.loads(self.cache_path.read_text()) if self.cache_path and self.cache_path.exists()
                      else {})
        self.tag = f"{args.resolution}|{','.join(f.name for f in self.files)}"
        self.preset = igos.load_model("efficientnet-lite0")
        self.x = torch.stack([self.preset.read(f) for f in self.files])

    def save(self) -> None:
        if self.cache_path:
            self.cache_path.write_text(json.dumps(self.cache))

    def maps(self, method: str, seed: int = 0) -> torch.Tensor:
        """``method``'s maps of the photos at the side (``auto`` resolved there), computed once."""
        key = f"maps|{method}|{self.tag}" + (f"|seed={seed}" if seed else "")
        if key not in self.cache:
            t0 = time.perf_counter()
            out = igos.explain(self.x, self.preset, method, resolution=self.args.resolution, images_per_batch=5,
                               seed=seed)
            self.cache[key] = [r.saliency.tolist() for r in out]
            print(f"{method}, seed {seed}: {(time.perf_counter() - t0) / len(self.files):.1f} s an image",
                  flush=True)
            self.save()
        return torch.tensor(self.cache[key], dtype=torch.float32)

    def scored(self, name: str, key: str, maps: torch.Tensor) -> dict[str, list[float]]:
        """The :func:`scores` of ``maps``, cached under ``key`` + the side and photos."""
        key = f"{key}|{self.tag}"
        if key not in self.cache:
            t0 = time.perf_counter()
            self.cache[key] = scores(self.preset.model, self.x, maps)
            print(f"scored {name}: {(time.perf_counter() - t0) / len(self.files):.1f} s an image", flush=True)
            self.save()
        return self.cache[key]

    def controls(self) -> dict[str, dict[str, list[float]]]:
        """The scores of the three model-blind controls."""
        return {c: self.scored(c, f"scores|{c}|0.0|0.0", self.maps(c)) for c in CONTROLS}

    def table(self, results: dict[str, dict[str, list[float]]], base: str) -> None:
        """Means, paired wins against ``base`` and the photos on which each map beats all three controls on both
        removals (``results`` holds the controls' scores too)."""
        base_blur, base_road = both(results[base])
        controls = [both(results[c]) for c in CONTROLS]
        print(f"\n| map | del / ins (ins − del) | MoRF / LeRF (combined) | wins vs {base}, blur / ROAD | "
              "beats all 3 controls on both |\n|---|---|---|---|---|")
        for name, s in results.items():
            blur, rd = both(s)
            wins = "–" if name == base else (f"{sum(a > b for a, b in zip(blur, base_blur))} / "
                                             f"{sum(a > b for a, b in zip(rd, base_road))}")
            beats = sum(all(blur[i] > cb[i] and rd[i] > cr[i] for cb, cr in controls) for i in range(len(blur)))
            print(f"| {name} | {statistics.mean(s['deletion']):.4f} / {statistics.mean(s['insertion']):.4f} "
                  f"({statistics.mean(blur):.4f}) | {statistics.mean(s['morf']):.4f} / "
                  f"{statistics.mean(s['lerf']):.4f} ({statistics.mean(rd):.4f}) | {wins} | {beats} of {len(blur)} |")
