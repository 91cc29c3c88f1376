"""igos: faithful saliency maps for PyTorch image classifiers (I-GOS, iGOS++ and baselines),
with the deletion and insertion metrics that test them."""

from .api import Explanation, Explanations, evaluate, explain, explain_stream
from .explanations import load_explanations, save_explanations
from .images import ImageLoadError, load_image
from .methods import METHODS, Attribution, MethodSpec, get_method, register
from .metrics import Scores, deletion_insertion
from .models import ModelLoadError, ModelPreset, load_model

__version__ = "0.1.0"

__all__ = [
    "Attribution",
    "Explanation",
    "Explanations",
    "ImageLoadError",
    "METHODS",
    "MethodSpec",
    "ModelLoadError",
    "ModelPreset",
    "Scores",
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
