"""Loading image files into ``[3, H, W]`` tensors in ``[0, 1]``."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch import Tensor

from .errors import ImageLoadError, MissingDependencyError
from .targets import Geometry

__all__ = ["ImageLoadError", "load_image", "load_view", "find_images", "demo_images", "view_for", "photo_geometry",
           "IMAGE_EXTENSIONS"]

IMAGE_EXTENSIONS = {
    ".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".pbm",
    ".jfif", ".ico", ".tga",
}


def _to_float_rgb(img: Image.Image) -> np.ndarray | None:
    """Float RGB array in [0, 1] for high-bit-depth modes; None for modes Pillow converts itself."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I;16N"):
        scale = 65535.0
    elif img.mode == "I":
        arr = np.asarray(img, dtype=np.float64)
        scale = 65535.0 if arr.max(initial=0) > 255 else 255.0
    elif img.mode == "F":
        arr = np.asarray(img, dtype=np.float64)
        scale = 1.0 if arr.max(initial=0) <= 1.0 else 255.0
    else:
        return None
    arr = np.asarray(img, dtype=np.float64) / scale
    arr = np.clip(arr, 0.0, 1.0)
    return np.repeat(arr[..., None], 3, axis=2)


FILTERS = {"bilinear": Image.BILINEAR, "bicubic": Image.BICUBIC, "nearest": Image.NEAREST,
           "lanczos": Image.LANCZOS}


def _resize_float(arr: np.ndarray, size: tuple[int, int], resample: int) -> np.ndarray:
    chans = [
        np.asarray(Image.fromarray(arr[..., c].astype(np.float32), mode="F").resize(size, resample))
        for c in range(arr.shape[2])
    ]
    return np.stack(chans, axis=2)


def _center_crop_box(w: int, h: int, out_w: int, out_h: int, fraction: float) -> tuple[int, int, int, int]:
    # resize the shorter side to out / fraction (0.875: the usual 256 -> 224), then crop the centre.
    scale = max(out_w, out_h) / fraction / min(w, h)
    rw, rh = max(out_w, round(w * scale)), max(out_h, round(h * scale))
    left, top = (rw - out_w) // 2, (rh - out_h) // 2
    return rw, rh, left, top


def load_image(
    path: str | os.PathLike, size: int | tuple[int, int] = 224, resize: str = "squash", *,
    crop_fraction: float = 0.875, interpolation: str = "bilinear",
) -> Tensor:
    """Read an image file into a ``[3, H, W]`` float tensor in ``[0, 1]``.

    Any file Pillow reads (RGB, grayscale, RGBA, palette, CMYK, 16-bit) is converted to RGB.
    ``resize="squash"`` (the reference protocol) resizes the whole image to ``size`` (an int or
    ``(H, W)``) with Pillow's ``interpolation`` filter (antialiased when shrinking); ``resize="crop"``
    resizes the shorter side to ``size / crop_fraction`` and takes the centre crop.

    Raises:
        ImageLoadError: the file is missing, not an image, truncated or corrupt (names the file).
    """
    out_h, out_w = (size, size) if isinstance(size, int) else size
    if resize not in ("squash", "crop"):
        raise ValueError(f"resize must be 'squash' or 'crop', got {resize!r}")
    if interpolation not in FILTERS or not 0 < crop_fraction <= 1:
        raise ValueError(f"interpolation must be one of {', '.join(FILTERS)} and crop_fraction in (0, 1], got "
                         f"{interpolation!r}, {crop_fraction}")
    resample = FILTERS[interpolation]
    path = Path(path)
    if not path.exists():
        raise ImageLoadError(path, "no such file")
    if path.is_dir():
        raise ImageLoadError(path, "is a folder, expected an image file")
    try:
        with Image.open(path) as img:
            img.load()
            arr = _to_float_rgb(img)
            rgb = None if arr is not None else img.convert("RGB")
    except UnidentifiedImageError:
        raise ImageLoadError(path, "not an image Pillow can read") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageLoadError(path, f"truncated or corrupt image ({exc})") from None
    w, h = (arr.shape[1], arr.shape[0]) if arr is not None else rgb.size
    if w < 1 or h < 1:
        raise ImageLoadError(path, f"empty image ({w}x{h})")
    if resize == "squash":
        target, box = (out_w, out_h), None
    else:
        rw, rh, left, top = _center_crop_box(w, h, out_w, out_h, crop_fraction)
        target, box = (rw, rh), (left, top, left + out_w, top + out_h)
    if arr is not None:
        out = _resize_float(arr, target, resample)
        if box:
            out = out[box[1] : box[3], box[0] : box[2]]
        data = torch.from_numpy(np.ascontiguousarray(out, dtype=np.float32))
    else:
        rgb = rgb.resize(target, resample)
        if box:
            rgb = rgb.crop(box)
        data = torch.from_numpy(np.asarray(rgb, dtype=np.float32) / 255.0)
    return data.permute(2, 0, 1).contiguous().clamp_(0.0, 1.0)


def photo_geometry(path: str | os.PathLike, size: int | tuple[int, int] = 224, resize: str = "squash", *,
                   crop_fraction: float = 0.875) -> Geometry:
    """How :func:`load_image` maps the photo's pixels to the input's (for boxes and masks given on the photo)."""
    out_h, out_w = (size, size) if isinstance(size, int) else size
    try:
        with Image.open(path) as img:
            w, h = img.size
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageLoadError(path, f"cannot be read ({exc})") from None
    if resize == "squash":
        return Geometry((w, h), (out_w, out_h), (out_w / w, out_h / h))
    rw, rh, left, top = _center_crop_box(w, h, out_w, out_h, crop_fraction)
    return Geometry((w, h), (out_w, out_h), (rw / w, rh / h), (left, top))


def find_images(inputs: Iterable[str | os.PathLike], recursive: bool = True) -> list[Path]:
    """Expand files and folders into a sorted list of image files (folders by extension)."""
    found: list[Path] = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            pattern = "**/*" if recursive else "*"
            found.extend(sorted(f for f in p.glob(pattern) if f.is_file() and f.suffix.lower() in IMAGE_EXTENSIONS))
        else:
            found.append(p)  # missing files are reported by load_image, naming them
    return found


def load_view(path: str | os.PathLike, size: int | tuple[int, int] = 224, resize: str = "squash", *,
              crop_fraction: float = 0.875, max_side: int = 640) -> Tensor:
    """The part of a photo the model saw, at the photo's own aspect ratio, for drawing heatmaps on:
    the whole photo for ``resize="squash"`` (the model saw it squashed), the centre crop's region of
    the original for ``"crop"``. The longer side is at most ``max_side`` pixels. ``[3, h, w]`` in ``[0, 1]``.
    """
    out_h, out_w = (size, size) if isinstance(size, int) else size
    path = Path(path)
    try:
        with Image.open(path) as img:
            rgb = img.convert("RGB")
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageLoadError(path, f"cannot be read for display ({exc})") from None
    w, h = rgb.size
    if resize == "crop":
        rw, rh, left, top = _center_crop_box(w, h, out_w, out_h, crop_fraction)
        sx, sy = w / rw, h / rh  # the crop box in the original's pixels
        rgb = rgb.crop((round(left * sx), round(top * sy), round((left + out_w) * sx), round((top + out_h) * sy)))
    scale = min(1.0, max_side / max(rgb.size))
    if scale < 1:
        rgb = rgb.resize((max(1, round(rgb.width * scale)), max(1, round(rgb.height * scale))), Image.BILINEAR)
    return torch.from_numpy(np.asarray(rgb, dtype=np.float32) / 255.0).permute(2, 0, 1).contiguous()


def demo_images() -> list[str]:
    """Sample photos inside scikit-image's wheel (chelsea the cat, a coffee cup, a rocket)."""
    try:
        import skimage
    except ImportError:
        raise MissingDependencyError("igos demo needs scikit-image for its sample photos: pip install 'igos[demo]'"
                                     ) from None
    data = Path(skimage.__file__).parent / "data"
    return [str(data / name) for name in ("chelsea.png", "coffee.png", "rocket.jpg") if (data / name).exists()]


def view_for(preset: Any, resize: str | None = None) -> Callable[[str], Tensor]:
    """The overlay's photo: the original at its own aspect ratio, cut as the model's input was."""
    from functools import partial

    if isinstance(preset, str):  # on Ray the driver has no preset: the input as squashed
        return partial(load_view, resize=resize or "squash")
    return partial(load_view, size=preset.input_size, resize=resize or preset.resize,
                   crop_fraction=preset.crop_fraction)
