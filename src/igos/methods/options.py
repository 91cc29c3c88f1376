"""The options schema: one frozen dataclass per method is the single source of its options.

Each field is an option; its default is the field's default; the class docstring's ``Attributes:`` section
documents every field (a contract test checks it); ``resolved(size)`` fills the options whose default depends
on the mask size (``None`` until then). A value the method does not allow fails when the options are made,
before any image is read, with an :class:`~igos.errors.InvalidOptionError` naming the option, the value and what
is allowed. The method receives the resolved options and :class:`~igos.methods.common.Attribution` returns them:
that is what ``results.json`` and the bench's settings hash record.

``HASH_NEUTRAL``: options added after bench rows were stored, each with the value at which the method behaves
as before; while an option holds it, the bench's settings hash leaves it out, so stored rows stay valid.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

from ..errors import InvalidOptionError

__all__ = ["MethodOptions", "Checks", "Size"]

Size = tuple[int, int]
O = TypeVar("O", bound="MethodOptions")  # noqa: E741


class Checks:
    """Collects what is wrong with a set of options, then raises once, naming every problem."""

    def __init__(self, options: MethodOptions):
        self.options = options
        self.problems: list[str] = []

    def need(self, ok: bool, name: str, allowed: str) -> None:
        """Records ``name``'s value as a problem unless ``ok``; ``allowed`` says what it may be."""
        if not ok:
            self.problems.append(f"{name} must be {allowed}, got {getattr(self.options, name)!r}")

    def at_least(self, minimum: float, *names: str, optional: bool = False) -> None:
        """Each of ``names`` is ≥ ``minimum`` (or ``None`` when ``optional``)."""
        for name in names:
            value = getattr(self.options, name)
            if value is None and optional:
                continue
            self.need(isinstance(value, (int, float)) and not isinstance(value, bool) and value >= minimum, name,
                      f"≥ {minimum:g}" + (" or None" if optional else ""))

    def within(self, name: str, lo: float, hi: float, *, open_lo: bool = False, open_hi: bool = False,
               optional: bool = False) -> None:
        """``name`` lies in the interval ``[lo, hi]`` (ends open as asked; ``None`` allowed when ``optional``)."""
        value = getattr(self.options, name)
        if value is None and optional:
            return
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        ok = ok and (value > lo if open_lo else value >= lo) and (value < hi if open_hi else value <= hi)
        interval = f"{'(' if open_lo else '['}{lo:g}, {hi:g}{')' if open_hi else ']'}"
        self.need(ok, name, f"in {interval}" + (" or None" if optional else ""))

    def one_of(self, name: str, choices: tuple[Any, ...]) -> None:
        self.need(getattr(self.options, name) in choices, name, f"one of {', '.join(map(str, choices))}")

    def flag(self, *names: str, optional: bool = False) -> None:
        """Each of ``names`` is ``True`` or ``False`` (or ``None`` when ``optional``)."""
        for name in names:
            value = getattr(self.options, name)
            self.need(isinstance(value, bool) or (optional and value is None), name,
                      "true or false" + (" or None" if optional else ""))

    def done(self) -> None:
        if self.problems:
            method = type(self.options).__name__
            raise InvalidOptionError(f"{method}: " + "; ".join(self.problems))


@dataclass(frozen=True)
class MethodOptions:
    """Options every method has.

    Attributes:
        batch_size: images per model call inside the method (path points, trials and masks are chunked by it);
            ``"auto"`` (the default): the largest that fits in the device's free memory by a measured per-image
            cost on CUDA, 16 on a CPU (:func:`igos.resources.auto_batch_size`), resolved when the method runs.
            It changes the maps only by float rounding, so it is not part of a stored result's identity.
    """

    batch_size: int | str = "auto"

    #: option -> the value at which the method behaves as before the option existed (left out of the hash)
    HASH_NEUTRAL: ClassVar[Mapping[str, Any]] = {}

    def __post_init__(self) -> None:
        checks = Checks(self)
        b = self.batch_size
        checks.need(b == "auto" or (isinstance(b, int) and not isinstance(b, bool) and b >= 1), "batch_size",
                    'an integer ≥ 1 or "auto"')
        self.check(checks)
        checks.done()

    def check(self, checks: Checks) -> None:
        """Adds this method's own checks (a subclass extends it and calls ``super().check``)."""

    def resolved(self: O, size: Size | None) -> O:
        """The options a run at mask size ``size`` (``None``: the method's native size) uses: every
        per-resolution default filled in. The base has none."""
        return self

    @classmethod
    def defaults(cls) -> dict[str, Any]:
        """Every option with its default, in field order."""
        return {f.name: f.default for f in dataclasses.fields(cls)}

    @classmethod
    def make(cls: type[O], method: str, options: Mapping[str, Any]) -> O:
        """The options from ``options`` (the rest at their defaults); an unknown name is an
        :class:`~igos.errors.UnknownOptionError` naming ``method`` and listing every option with its default."""
        from ..errors import UnknownOptionError

        valid = cls.defaults()
        unknown = [k for k in options if k not in valid]
        if unknown:
            hint = ""
            common = [k for k in unknown if k in ("baseline", "resolution", "seed", "target")]
            if common:
                hint = f" ({', '.join(common)} is not an option: it is given to every method by the call itself)"
            listing = ", ".join(f"{k}={v!r}" for k, v in valid.items())
            raise UnknownOptionError(f"unknown option(s) {', '.join(map(repr, unknown))} for method {method!r}"
                                     f"{hint}; its options are: {listing}")
        return cls(**options)

    def as_dict(self) -> dict[str, Any]:
        """Every option and its value, in field order (JSON-able for the built-in methods)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    def hashed(self) -> dict[str, Any]:
        """:meth:`as_dict` less the options that hold their :attr:`HASH_NEUTRAL` value; the batch size, which
        changes a map only by float rounding, always as 16 (the default stores were made with, so their rows
        stay valid whatever batch a later run takes)."""
        out = {k: v for k, v in self.as_dict().items()
               if not (k in self.HASH_NEUTRAL and v == self.HASH_NEUTRAL[k])}
        if "batch_size" in out:
            out["batch_size"] = 16
        return out

    def replace(self: O, **changes: Any) -> O:
        """A copy with ``changes`` (validated again)."""
        return dataclasses.replace(self, **changes)
