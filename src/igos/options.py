"""Method options written as text (``KEY=VALUE``, ``METHOD.KEY=VALUE``), for the CLI and config files."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .targets import Target

__all__ = ["parse_value", "parse_options", "parse_method_options", "parse_size", "parse_targets", "TARGET_FORMS"]


def parse_value(text: str) -> Any:
    """``"3"`` -> 3, ``"0.5"`` -> 0.5, ``"none"`` -> None, ``"true"`` -> True, else the string."""
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return {"none": None, "true": True, "false": False}.get(text.lower(), text)


def _split(pair: str, form: str) -> tuple[str, Any]:
    key, sep, value = pair.partition("=")
    if not sep or not key:
        raise ValueError(f"--set expects {form}, got {pair!r}")
    return key, parse_value(value)


def parse_options(pairs: Sequence[str]) -> dict[str, Any]:
    """``["iterations=10", "l1=3"]`` -> ``{"iterations": 10, "l1": 3}`` (dashes in keys become underscores)."""
    out = {}
    for pair in pairs:
        key, value = _split(pair, "KEY=VALUE (e.g. iterations=10)")
        out[key.replace("-", "_")] = value
    return out


def parse_method_options(pairs: Sequence[str]) -> dict[str, dict[str, Any]]:
    """``["igos.iterations=10"]`` -> ``{"igos": {"iterations": 10}}``."""
    out: dict[str, dict[str, Any]] = {}
    for pair in pairs:
        key, value = _split(pair, "METHOD.KEY=VALUE (e.g. igos.iterations=10)")
        method, dot, name = key.partition(".")
        if not dot or not method or not name:
            raise ValueError(f"--set expects METHOD.KEY=VALUE (e.g. igos.iterations=10), got {pair!r}")
        out.setdefault(method, {})[name.replace("-", "_")] = value
    return out


def parse_size(text: str | int) -> int | tuple[int, int]:
    """``"28"`` -> 28, ``"14x28"`` (height × width) -> ``(14, 28)``; ``ValueError`` naming the text otherwise."""
    if isinstance(text, int):
        return text
    parts = str(text).lower().replace("×", "x").split("x")
    try:
        values = [int(v) for v in parts]
    except ValueError:
        raise ValueError(f"expected a size like 28 or 14x28 (height x width), got {text!r}") from None
    if len(values) not in (1, 2) or min(values) < 1:
        raise ValueError(f"expected a size like 28 or 14x28 (height x width), positive, got {text!r}")
    return values[0] if len(values) == 1 or values[0] == values[1] else (values[0], values[1])


TARGET_FORMS = ("281 (one class for all)", "281,17,3 (one class per image)", "151-268 or 151+207+208 (a set)",
                "box=X1,Y1,X2,Y2[@LABEL] (a detector's box, in the photo's pixels)",
                "region=MASK.png[@CLASS] (a segmentation region: the mask's non-zero pixels, at the photo's size)",
                "several separated by ';' (one per image)")


def _one_target(text: str, score: str | None) -> Target:
    from .targets import Box, Classes, Region

    text = text.strip()
    kind, _, rest = text.partition("=")
    if kind in ("box", "region") and rest:
        spec, _, label = rest.rpartition("@") if "@" in rest else (rest, "", "")
        try:
            label_value = int(label) if label else None
        except ValueError:
            raise ValueError(f"--target {text!r}: the part after '@' is a class index, got {label!r}") from None
        if kind == "box":
            try:
                box = [float(v) for v in spec.split(",")]
            except ValueError:
                raise ValueError(f"--target {text!r}: a box is X1,Y1,X2,Y2 in pixels") from None
            return Box(box, label_value)
        return Region(label_value, spec, score or "softmax")
    try:
        if "-" in text[1:]:
            lo, hi = (int(v) for v in text.split("-", 1))
            if hi < lo:
                raise ValueError
            return Classes(range(lo, hi + 1), score or "softmax")
        return Classes([int(v) for v in text.split("+")], score or "softmax")
    except ValueError:
        raise ValueError(f"--target {text!r} is not one of: {'; '.join(TARGET_FORMS)}") from None


def parse_targets(text: str | None, score: str | None = None) -> Any:
    """``--target`` (forms: ``TARGET_FORMS``) with ``--score``: ``None`` (top-1), one target for all images, or a
    list (one per image). ``"281"`` -> 281 and ``"281,17"`` -> ``[281, 17]`` as plain classes when no score is
    given; sets, boxes and regions become :mod:`igos.targets` targets."""
    from .targets import Classes, TopClass

    if text is None:
        return TopClass(score) if score else None
    if ";" in text:
        return [_one_target(t, score) for t in text.split(";") if t.strip()]
    head = text.split("=", 1)[0]
    if "," in text and head not in ("box", "region"):
        try:
            values = [int(t) for t in text.split(",")]
        except ValueError:
            raise ValueError(f"--target {text!r} is not one of: {'; '.join(TARGET_FORMS)}") from None
        return values if score is None else [Classes(v, score) for v in values]
    target = _one_target(text, score)
    if score is None and isinstance(target, Classes) and len(target.indices) == 1 and "+" not in text:
        return target.indices[0]
    return target
