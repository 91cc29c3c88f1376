"""Method options written as text (``KEY=VALUE``, ``METHOD.KEY=VALUE``), for the CLI and config files."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = ["parse_value", "parse_options", "parse_method_options", "parse_size", "parse_targets"]


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


def parse_targets(text: str | None) -> int | list[int] | None:
    """``--target``: ``None``, ``"281"`` -> 281, ``"281,17"`` -> ``[281, 17]`` (one per image)."""
    if text is None:
        return None
    try:
        values = [int(t) for t in text.split(",")]
    except ValueError:
        raise ValueError(f"--target expects a class index or a comma-separated list, got {text!r}") from None
    return values[0] if len(values) == 1 else values
