"""Store size of the issue-4 dev run's 540 rows with maps as float16 (igos ≤ 0.1.0) and as float32 (now).

The rows have the run's exact structure: 20 photos × (I-GOS, Mask and Excitation Backprop at 224, 112,
28, 14, 7; Integrated Gradients, RISE and gradient at 224×224; GradCAM at 7×7) + the ablation (3 I-GOS
variants at 224 and 28) + the objective (Mask under I-GOS's λ at 224 and 28) = 540 rows, each with its
real settings, curves of the metric's length, and a map of its real shape (values drawn at random:
the size of a BLOB depends only on its shape and dtype). Prints both sizes and their ratio.

    python benchmarks/store_size.py
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

from igos.bench import BenchSpec, plan_jobs, settings_of
from igos.metrics import curve_steps
from igos.store import ResultStore, settings_hash

NATIVE = {"ig": 224, "rise": 224, "gradient": 224, "gradcam": 7}


def rows(dtype: type) -> list[dict]:
    spec = BenchSpec(Path("."), ["efficientnet-lite0"], ["igos", "mask", "ig", "gradcam", "rise", "ebp", "gradient"],
                     [224, 112, 28, 14, 7], ablation=True, objective=True)
    spec.resolutions = [224, 112, 28, 14, 7]
    jobs = [j for j in plan_jobs(spec) if j.variant == "default" or j.resolution in (224, 28)]
    rng = np.random.default_rng(0)
    out = []
    for i in range(20):
        for job in jobs:
            side = job.resolution or NATIVE[job.method]
            n = len(curve_steps(side * side))
            sal = rng.random((side, side)).astype(dtype)
            settings = settings_of(spec, job)
            out.append({"image": f"{i:03d}.JPEG", "model": "efficientnet-lite0", "method": job.method,
                        "variant": job.variant, "resolution": job.resolution,
                        "settings_hash": settings_hash(settings), "settings": settings, "target": 1,
                        "target_name": "x", "probability": 0.5, "deletion": 0.1, "insertion": 0.5,
                        "x": np.linspace(0, 1, n).tolist(), "deletion_curve": rng.random(n).tolist(),
                        "insertion_curve": rng.random(n).tolist(), "seconds": 1.0, "evaluation_seconds": 0.1,
                        "forward_images": 10, "backward_images": 10, "final_objective": None,
                        "saliency": sal.tobytes(), "saliency_shape": [side, side], "version": "0.1.0",
                        "created": time.time()})
    return out


def size(dtype: type) -> tuple[int, int]:
    with tempfile.TemporaryDirectory() as d:
        store = ResultStore(d)
        data = rows(dtype)
        for r in data:
            store.add(r)
        store.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        store.close()
        return len(data), sum(f.stat().st_size for f in Path(d).iterdir())


if __name__ == "__main__":
    n16, s16 = size(np.float16)
    n32, s32 = size(np.float32)
    print(f"{n16} rows: float16 maps {s16 / 1e6:.1f} MB, float32 maps {s32 / 1e6:.1f} MB ({s32 / s16:.2f}×)")
