"""Heatmap colouring and overlays with Pillow and numpy only (no matplotlib needed)."""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageDraw
from torch import Tensor

__all__ = ["colormap", "normalise", "overlay", "heatmap_image", "upsample_for_display", "to_pil", "COLORMAPS",
           "check_style", "draw_outline"]

COLORMAPS = ("viridis", "jet", "gray")


@lru_cache(maxsize=1)
def _viridis() -> np.ndarray:
    text = resources.files("igos").joinpath("data/viridis.txt").read_text()
    rows = [line for line in text.splitlines() if line and not line.startswith("#")]
    return np.array([[int(r[i : i + 2], 16) for i in (0, 2, 4)] for r in rows], dtype=np.float64) / 255


def _jet(v: np.ndarray) -> np.ndarray:
    # the classic piecewise-linear jet
    r = np.clip(1.5 - np.abs(4 * v - 3), 0, 1)
    g = np.clip(1.5 - np.abs(4 * v - 2), 0, 1)
    b = np.clip(1.5 - np.abs(4 * v - 1), 0, 1)
    return np.stack([r, g, b], axis=-1)


def check_style(cmap: str, alpha: float) -> None:
    """``ValueError`` unless ``cmap`` is one of ``COLORMAPS`` and ``alpha`` (heatmap opacity) is in ``[0, 1]``."""
    if cmap not in COLORMAPS:
        raise ValueError(f"unknown colormap {cmap!r}; choose one of {', '.join(COLORMAPS)}")
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")


def colormap(values: np.ndarray, name: str = "viridis") -> np.ndarray:
    """Map values in ``[0, 1]`` (any shape) to RGB floats in ``[0, 1]`` (shape + ``(3,)``)."""
    v = np.clip(np.asarray(values, dtype=np.float64), 0, 1)
    if name == "viridis":
        table = _viridis()
        pos = v * (len(table) - 1)
        lo = np.floor(pos).astype(int)
        hi = np.minimum(lo + 1, len(table) - 1)
        t = (pos - lo)[..., None]
        return table[lo] * (1 - t) + table[hi] * t
    if name == "jet":
        return _jet(v)
    if name == "gray":
        return np.repeat(v[..., None], 3, axis=-1)
    raise ValueError(f"unknown colormap {name!r}; choose one of {', '.join(COLORMAPS)}")


def normalise(saliency: Tensor | np.ndarray) -> np.ndarray:
    """Min-max scale one map to ``[0, 1]`` (a constant map becomes zeros)."""
    s = saliency.detach().cpu().numpy() if isinstance(saliency, Tensor) else np.asarray(saliency)
    s = s.astype(np.float64)
    lo, hi = float(s.min()), float(s.max())
    return np.zeros_like(s) if hi - lo < 1e-12 else (s - lo) / (hi - lo)


def to_pil(image: Tensor) -> Image.Image:
    """``[3, H, W]`` in ``[0, 1]`` to an RGB PIL image."""
    arr = (image.detach().cpu().clamp(0, 1).permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    return Image.fromarray(arr)


def upsample_for_display(values: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bilinear upsampling (align_corners=True, like the masks) of a 2-D map to ``(H, W)``."""
    t = torch.from_numpy(np.ascontiguousarray(values, dtype=np.float32))[None, None]
    if tuple(t.shape[-2:]) == tuple(size):
        return values
    return torch.nn.functional.interpolate(t, size=size, mode="bilinear", align_corners=True)[0, 0].numpy()


def heatmap_image(saliency: Tensor | np.ndarray, size: tuple[int, int], cmap: str = "viridis",
                  scale: tuple[float, float] | None = None) -> Image.Image:
    """The coloured heatmap alone at display ``size`` (``(H, W)``); own min-max unless ``scale``."""
    s = saliency.detach().cpu().numpy() if isinstance(saliency, Tensor) else np.asarray(saliency, dtype=np.float64)
    v = normalise(s) if scale is None else np.clip((s - scale[0]) / max(scale[1] - scale[0], 1e-12), 0, 1)
    rgb = colormap(upsample_for_display(v, size), cmap)
    return Image.fromarray((rgb * 255).round().astype(np.uint8))


def overlay(image: Tensor, saliency: Tensor | np.ndarray, alpha: float = 0.5, cmap: str = "viridis",
            scale: tuple[float, float] | None = None) -> Image.Image:
    """The image with its heatmap blended over it (``alpha`` = heatmap weight, 0 … 1)."""
    check_style(cmap, alpha)
    base = to_pil(image)
    heat = heatmap_image(saliency, (base.height, base.width), cmap, scale)
    return Image.blend(base, heat, alpha)


#: the colour targets' outlines are drawn in (white, visible on every colour map)
OUTLINE = (255, 255, 255)


def draw_outline(img: Image.Image, outline: tuple[str, Any] | None, input_size: tuple[int, int]) -> Image.Image:
    """``img`` with the explained box or region's outline drawn on it (:attr:`igos.Explanation.outline`, in the
    input's ``(H, W)`` pixels, scaled to ``img``); ``img`` itself when there is none."""
    if outline is None:
        return img
    kind, value = outline
    sx, sy = img.width / input_size[1], img.height / input_size[0]
    out = img.copy()
    if kind == "box":
        x1, y1, x2, y2 = value
        width = max(1, round(min(img.size) / 150))
        ImageDraw.Draw(out).rectangle([x1 * sx, y1 * sy, x2 * sx - 1, y2 * sy - 1], outline=OUTLINE, width=width)
        return out
    m = np.asarray(value, dtype=bool)
    m = np.asarray(Image.fromarray(m.astype(np.uint8) * 255).resize(img.size, Image.NEAREST)) > 0
    inner = m.copy()  # the region minus its two-pixel border
    for _ in range(2):
        inner[1:, :] &= inner[:-1, :].copy()
        inner[:-1, :] &= inner[1:, :].copy()
        inner[:, 1:] &= inner[:, :-1].copy()
        inner[:, :-1] &= inner[:, 1:].copy()
    pixels = np.asarray(out).copy()
    pixels[m & ~inner] = OUTLINE
    return Image.fromarray(pixels)
