"""igos: faithful saliency maps for PyTorch image classifiers (I-GOS, iGOS++ and baselines),
with the deletion and insertion metrics that test them."""

from ._version import __version__
from .api import evaluate, explain, explain_stream
from .errors import (
    IgosError,
    ImageLoadError,
    InvalidOptionError,
    MissingDependencyError,
    ModelLoadError,
    ModelOutputError,
    NonFiniteOutputError,
    UnknownOptionError,
    UnsupportedLayerError,
)
from .explanations import load_explanations, save_explanations
from .images import load_image
from .methods import METHODS, Attribution, MethodOptions, MethodSpec, get_method, register
from .metrics import Scores, deletion_insertion
from .models import ModelPreset
from .records import Explanation, Explanations, Failure
from .sources import load_model

__all__ = [
    "Attribution",
    "Explanation",
    "Explanations",
    "Failure",
    "IgosError",
    "ImageLoadError",
    "InvalidOptionError",
    "METHODS",
    "MethodOptions",
    "MethodSpec",
    "MissingDependencyError",
    "ModelLoadError",
    "ModelOutputError",
    "ModelPreset",
    "NonFiniteOutputError",
    "Scores",
    "UnknownOptionError",
    "UnsupportedLayerError",
    "deletion_insertion",
    "evaluate",
    "explain",
    "explain_stream",
    "get_method",
    "load_explanations",
    "load_image",
    "load_model",
    "register",
    "save_explanations",
    "__version__",
]
