"""Every error igos raises on purpose, in one hierarchy.

``except igos.IgosError`` catches all of them; each also keeps the built-in base it always had
(``ValueError``, ``RuntimeError``, ``TypeError``, ``ImportError``), so older ``except`` clauses still work.
A leaf module: it imports nothing from igos.
"""

from __future__ import annotations

import os

__all__ = ["IgosError", "InvalidOptionError", "UnknownOptionError", "ImageLoadError", "ModelLoadError",
           "ModelOutputError", "NonFiniteOutputError", "UnsupportedLayerError", "MissingDependencyError",
           "TargetError", "UnsupportedTargetError"]


class IgosError(Exception):
    """Base of every error igos raises on purpose: bad input, a model it cannot use, a missing extra."""


class InvalidOptionError(IgosError, ValueError):
    """A method option has a value it does not allow (names the option, the value and what is allowed)."""


class UnknownOptionError(IgosError, ValueError):
    """A method was given an option it does not have (names the method and lists its options)."""


class ImageLoadError(IgosError, ValueError):
    """An image file could not be read; names the file and why."""

    def __init__(self, path: str | os.PathLike | None, reason: str):
        self.path = None if path is None else str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}" if self.path else reason)


class ModelLoadError(IgosError, RuntimeError):
    """A model preset could not be built or its weights could not be loaded."""


class ModelOutputError(IgosError, TypeError):
    """The model's output holds nothing igos can score (no ``[N, classes]`` logits)."""


class NonFiniteOutputError(IgosError, RuntimeError):
    """The model returned NaN or infinite values."""


class UnsupportedLayerError(IgosError, TypeError):
    """The network has an operation a method (Excitation Backprop) has no rule for."""


class MissingDependencyError(IgosError, ImportError):
    """An optional extra a method or command needs is not installed (says what to install)."""


class TargetError(IgosError, ValueError):
    """A target does not fit the model or the photo: a class out of range, a box outside the photo, a mask of the
    wrong size, a label the detector does not output there (names the target, the image and what is expected)."""


class UnsupportedTargetError(IgosError, ValueError):
    """A method cannot honestly explain this kind of target (says why, and which methods can)."""
