"""Seconds per image of I-GOS at 28×28 on one photo (chelsea) for every model source that loads here,
random weights where the source has no embedded ones (timing only). Sources that cannot load here
(timm and torchvision need torchvision) are listed with the reason.

    python benchmarks/sources_timing.py
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import igos
from igos.images import demo_images


def hf_vit_base(folder: Path) -> str:
    from transformers import ViTConfig, ViTForImageClassification, ViTImageProcessor

    ViTForImageClassification(ViTConfig(num_labels=1000)).save_pretrained(folder)  # ViT-B/16, 224, random
    ViTImageProcessor().save_pretrained(folder)
    return str(folder)


def main() -> None:
    photo = demo_images()[0]
    with tempfile.TemporaryDirectory() as d:
        sources = [
            ("efficientnet-lite0", {}),
            ("efficientnet_lite_pytorch:EfficientNet.from_name", {"model_args": {"model_name": "efficientnet-lite0"},
                                                                   "weights": "random"}),
            ("resnet50", {"weights": "random"}),
            ("timm:vit_tiny_patch16_224", {"weights": "random"}),
            ("timm:convnext_atto", {"weights": "random"}),
        ]
        try:
            sources.append(("hf:local/vit-base-patch16-224", {"weights": hf_vit_base(Path(d))}))
        except Exception as exc:
            print(f"hf: skipped ({exc})")
        print("| source | input | I-GOS 28×28, s/image | forward / forward+backward images |\n|---|---|---|---|")
        for name, kw in sources:
            try:
                preset = igos.load_model(name, **kw)
            except Exception as exc:
                print(f"| `{name}` | – | not here: {str(exc).splitlines()[0][:100]} | |")
                continue
            t0 = time.perf_counter()
            r = igos.explain([photo], preset, "igos", resolution=28)[0]
            print(f"| `{name}` | {preset.input_size[0]}×{preset.input_size[1]} | {time.perf_counter() - t0:.1f} | "
                  f"{r.forward_images} / {r.backward_images} |", flush=True)


if __name__ == "__main__":
    main()
