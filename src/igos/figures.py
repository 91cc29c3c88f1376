"""Figures in the paper's layout and deletion/insertion animations (matplotlib, Agg backend).

Needs the ``viz`` extra (matplotlib). Heatmaps are shown at their own resolution upsampled for
display and scaled per image (never re-normalised across a batch unless ``scale`` is given).
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from .errors import MissingDependencyError
from .metrics import DIRECTIONS, cell_ranks, curve_steps
from .overlay import heatmap_image, overlay, to_pil

__all__ = ["explanation_figure", "save_explanation_figure", "animate_curves", "curve_svg"]


def _plt():
    try:
        import matplotlib
    except ImportError as exc:
        raise MissingDependencyError("figures need matplotlib: pip install 'igos[viz]'") from exc
    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def explanation_figure(
    image: Tensor,
    saliency: Tensor | np.ndarray,
    *,
    title: str = "",
    x: Sequence[float] | None = None,
    deletion_curve: Sequence[float] | None = None,
    insertion_curve: Sequence[float] | None = None,
    deletion: float | None = None,
    insertion: float | None = None,
    cmap: str = "viridis",
    alpha: float = 0.5,
    scale: tuple[float, float] | None = None,
):
    """The paper's Figure-1 layout: overlay, heatmap alone, deletion curve, insertion curve."""
    plt = _plt()
    panels = 4 if deletion_curve is not None else 2
    fig, axes = plt.subplots(1, panels, figsize=(3.2 * panels, 3.4), dpi=100)
    h, w = image.shape[-2:]
    axes[0].imshow(overlay(image, saliency, alpha, cmap, scale))
    axes[0].set_title(title or "overlay", fontsize=9)
    sal = np.asarray(saliency.detach().cpu() if isinstance(saliency, Tensor) else saliency)
    axes[1].imshow(heatmap_image(sal, (h, w), cmap, scale))
    axes[1].set_title(f"heatmap {sal.shape[0]}×{sal.shape[1]}", fontsize=9)
    for ax in axes[:2]:
        ax.axis("off")
    if deletion_curve is not None:
        xs = np.asarray(x)
        for ax, curve, auc, name, colour in (
            (axes[2], deletion_curve, deletion, "deletion", "tab:red"),
            (axes[3], insertion_curve, insertion, "insertion", "tab:blue"),
        ):
            ax.plot(xs, curve, color=colour)
            ax.fill_between(xs, curve, alpha=0.2, color=colour)
            ax.set_xlim(0, 1)
            ax.set_ylim(0, 1.02)
            ax.set_xlabel("fraction of cells moved", fontsize=8)
            ax.set_ylabel("class probability", fontsize=8)
            ax.tick_params(labelsize=7)
            ax.set_title(f"{name} AUC {auc:.4f} ({DIRECTIONS[name]})", fontsize=9)
    fig.tight_layout()
    return fig


def save_explanation_figure(path: str | Path, *args, **kwargs) -> Path:
    plt = _plt()
    fig = explanation_figure(*args, **kwargs)
    try:
        fig.savefig(path)
    finally:  # a figure left open leaks its memory over a long --figures run
        plt.close(fig)
    return Path(path)


def _curve_frame(plt, xs, ys, upto, colour, title, size=(224, 224)) -> Image.Image:
    fig, ax = plt.subplots(figsize=(size[0] / 80, size[1] / 80), dpi=80)
    buf = io.BytesIO()
    try:
        ax.plot(xs[: upto + 1], ys[: upto + 1], color=colour)
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1.02)
        ax.set_title(title, fontsize=8)
        ax.tick_params(labelsize=6)
        fig.subplots_adjust(left=0.2, bottom=0.14, right=0.96, top=0.88)
        fig.savefig(buf, format="png")
    finally:
        plt.close(fig)
    buf.seek(0)
    return Image.open(buf).convert("RGB").resize(size)


def animate_curves(
    path: str | Path,
    image: Tensor,
    baseline: Tensor,
    saliency: Tensor,
    x: Sequence[float],
    deletion_curve: Sequence[float],
    insertion_curve: Sequence[float],
    *,
    duration_ms: int = 120,
    panel: int = 160,
) -> Path:
    """A GIF of the deletion and insertion sequences: each step's perturbed image beside the
    curve drawn so far (top row deletion, bottom row insertion), panels of ``panel`` pixels."""
    plt = _plt()
    sal = torch.as_tensor(saliency, dtype=torch.float64)
    sh, sw = sal.shape
    h, w = image.shape[-2:]
    side = (panel, panel)
    ranks = cell_ranks(sal.unsqueeze(0))[0]  # the metric's own ranking: stable, row-major ties
    counts = curve_steps(sh * sw)
    xs, dc, ic = np.asarray(x), np.asarray(deletion_curve), np.asarray(insertion_curve)
    frames = []
    for k, count in enumerate(counts):
        moved = (ranks < count).view(1, 1, sh, sw).float()
        m = torch.nn.functional.interpolate(moved, size=(h, w), mode="nearest")[0]
        deleted = image + (baseline - image) * m
        inserted = baseline + (image - baseline) * m
        canvas = Image.new("RGB", (2 * panel, 2 * panel), "white")
        canvas.paste(to_pil(deleted).resize(side, Image.BILINEAR), (0, 0))
        canvas.paste(_curve_frame(plt, xs, dc, k, "tab:red", "deletion", side), (panel, 0))
        canvas.paste(to_pil(inserted).resize(side, Image.BILINEAR), (0, panel))
        canvas.paste(_curve_frame(plt, xs, ic, k, "tab:blue", "insertion", side), (panel, panel))
        frames.append(canvas)
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=duration_ms, loop=0, optimize=True)
    return Path(path)


def curve_svg(x: Sequence[float], curve: Sequence[float], colour: str, width: int = 120, height: int = 60) -> str:
    """A tiny inline SVG of a curve (for HTML reports): no external resources."""
    pts = " ".join(f"{xi * width:.1f},{(1 - min(max(yi, 0), 1)) * height:.1f}" for xi, yi in zip(x, curve))
    area = f"0,{height} {pts} {width},{height}"
    return (f'<svg width="{width}" height="{height}" viewBox="0 0 {width} {height}" class="curve">'
            f'<rect width="{width}" height="{height}" fill="#fafafa" stroke="#ddd"/>'
            f'<polygon points="{area}" fill="{colour}" fill-opacity="0.2"/>'
            f'<polyline points="{pts}" fill="none" stroke="{colour}" stroke-width="1.5"/></svg>')


def save_sanity_figure(path: str | Path, result: Any, images: Any, rows: int = 4) -> Path:
    """Adebayo et al.'s figure for :func:`igos.sanity.sanity_check`: per photo (at most ``rows``), the original
    map and the map after each cascading step; below, the four similarity measures along the cascade."""
    from .sanity import MEASURES

    plt = _plt()
    names = list(result.maps)
    n = min(rows, images.shape[0])
    fig = plt.figure(figsize=(1.1 * (len(names) + 1), 1.1 * n + 2.6))
    grid = fig.add_gridspec(n + 1, len(names) + 1, height_ratios=[1] * n + [2.2])
    for i in range(n):
        ax = fig.add_subplot(grid[i, 0])
        ax.imshow(images[i].permute(1, 2, 0).numpy())
        ax.axis("off")
        for j, name in enumerate(names):
            ax = fig.add_subplot(grid[i, j + 1])
            m = result.maps[name][i].abs()
            ax.imshow((m / m.max().clamp_min(1e-12)).numpy(), cmap="gray", vmin=0, vmax=1)
            ax.axis("off")
            if i == 0:
                ax.set_title(name, fontsize=6, rotation=60)
    ax = fig.add_subplot(grid[n, :])
    steps = [s for s in result.steps if s["mode"] == "cascading"]
    for measure in MEASURES:
        ax.plot(range(1, len(steps) + 1), [s[measure] if s[measure] is not None else float("nan") for s in steps],
                marker="o", ms=3, label=measure)
    ax.set_xticks(range(1, len(steps) + 1), [s["randomised"] for s in steps], rotation=60, fontsize=6)
    ax.set_ylim(-0.4, 1.05)
    ax.axhline(0, color="#888", lw=0.5)
    ax.set_ylabel("similarity to the original map")
    ax.legend(fontsize=6, ncol=4)
    ax.set_title(f"{result.method}: cascading randomisation, from the output down", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)
