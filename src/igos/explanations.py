"""Explanation records, and the explain folder: ``results.json`` plus one ``<stem>.npy`` heatmap and one
``<stem>.png`` overlay per image. ``igos explain`` writes such a folder with :class:`ExplanationWriter`,
``igos report`` reads it with :func:`load_explanations`; Python users get the same with
:func:`save_explanations`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from torch import Tensor

from .records import Explanation, Explanations, Failure, target_text

__all__ = ["Explanation", "Explanations", "Failure", "ExplanationWriter", "save_explanations",
           "load_explanations", "ExplainFolder", "RESULTS_JSON"]

RESULTS_JSON = "results.json"


class ExplanationWriter:
    """Writes an explain folder as records arrive: heatmap ``.npy`` (float32) and overlay ``.png`` at once,
    ``results.json`` rewritten atomically by :meth:`flush` (so an interrupted run leaves a valid file).

    ``figure`` / ``animate`` also write ``<stem>_figure.png`` (overlay, heatmap, both curves) and
    ``<stem>_curves.gif`` for evaluated records (they need ``igos[viz]``). ``view(path)`` gives the photo
    to draw the overlay on (default with a ``preset``: :func:`igos.images.view_for`, the original at its own
    aspect ratio, cut as the model's input was); without either, or for tensor inputs, the model's input.
    """

    def __init__(self, folder: str | os.PathLike, meta: dict[str, Any] | None = None, *, cmap: str = "viridis",
                 alpha: float = 0.5, figure: bool = False, animate: bool = False,
                 view: Callable[[str], Tensor] | None = None, preset: Any = None, resize: str | None = None):
        from .images import view_for
        from .overlay import check_style

        check_style(cmap, alpha)
        if view is None and preset is not None:  # the photo as the preset (or, on Ray, its name) cut it
            view = view_for(preset, resize)
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.meta = dict(meta or {})
        self.cmap, self.alpha, self.figure, self.animate, self.view = cmap, alpha, figure, animate, view
        self.records: list[dict[str, Any]] = []
        self.failures: list[dict[str, str]] = []
        self._stems: dict[str, int] = {}
        self._flushed = float("-inf")

    def _stem(self, path: str | None) -> str:
        stem = Path(path).stem if path else f"image{len(self.records):04d}"
        n = self._stems.get(stem, 0)
        self._stems[stem] = n + 1
        return stem if n == 0 else f"{stem}-{n}"

    def add(self, e: Explanation) -> dict[str, Any]:
        """Write one record's files; returns its ``results.json`` entry."""
        from .overlay import draw_outline, overlay

        stem = self._stem(e.path)
        np.save(self.folder / f"{stem}.npy", e.saliency.numpy().astype(np.float32))
        picture = overlay(self._photo(e), e.saliency, self.alpha, self.cmap)
        draw_outline(picture, e.outline, tuple(e.image.shape[-2:])).save(self.folder / f"{stem}.png")
        rec = {**e.summary(), "saliency_file": f"{stem}.npy", "overlay_file": f"{stem}.png"}
        if e.curves is not None:
            rec.update(self._figures(e, stem))
        self.records.append(rec)
        return rec

    def _photo(self, e: Explanation) -> Tensor:
        if self.view is not None and e.path is not None:
            try:
                return self.view(e.path)
            except ValueError:  # an ImageLoadError: the model's input is still there
                pass
        return e.image

    def _figures(self, e: Explanation, stem: str) -> dict[str, str]:
        from .figures import animate_curves, save_explanation_figure
        from .perturb import blurred_baseline

        out, c = {}, e.curves
        if self.figure:
            title = f"{target_text(e.target_name, e.target)} p={e.probability:.3f} · {e.method} " \
                    f"{e.resolution[0]}×{e.resolution[1]}"
            save_explanation_figure(self.folder / f"{stem}_figure.png", e.image, e.saliency, title=title, x=c["x"],
                                    deletion_curve=c["deletion"], insertion_curve=c["insertion"],
                                    deletion=e.deletion, insertion=e.insertion, cmap=self.cmap, alpha=self.alpha)
            out["figure_file"] = f"{stem}_figure.png"
        if self.animate:
            baseline = blurred_baseline(e.image.unsqueeze(0))[0]
            animate_curves(self.folder / f"{stem}_curves.gif", e.image, baseline, e.saliency, c["x"], c["deletion"],
                           c["insertion"])
            out["animation_file"] = f"{stem}_curves.gif"
        return out

    def add_failure(self, failure: Failure) -> None:
        self.failures.append(failure.summary())

    def flush_if_due(self, every: float = 30.0) -> None:
        """:meth:`flush` when the last one is ``every`` seconds old: a long run keeps a recent ``results.json``
        without rewriting the whole file after every batch."""
        import time

        if time.monotonic() - self._flushed >= every:
            self.flush()

    def flush(self) -> Path:
        """Write ``results.json`` (atomically); returns its path."""
        import time

        self._flushed = time.monotonic()
        from ._version import __version__
        from .resources import peak_memory

        doc = {"igos_version": __version__, **self.meta, "peak_memory": peak_memory(), "images": self.records,
               "failures": self.failures}
        tmp = self.folder / (RESULTS_JSON + ".tmp")
        tmp.write_text(json.dumps(doc, indent=1))
        os.replace(tmp, self.folder / RESULTS_JSON)
        return self.folder / RESULTS_JSON


def save_explanations(folder: str | os.PathLike, explanations: Iterable[Explanation], *,
                      failures: Iterable[Any] = (), cmap: str = "viridis", alpha: float = 0.5) -> Path:
    """Write an explain folder (the one ``igos explain`` writes and ``igos report`` reads); returns
    the path of its ``results.json``. ``failures``: the run's :class:`Failure` records."""
    explanations = list(explanations)
    first = explanations[0] if explanations else None
    meta = {} if first is None else {"model": first.model, "method": first.method,
                                     "resolution": list(first.resolution), "seed": first.settings.get("seed")}
    writer = ExplanationWriter(folder, meta, cmap=cmap, alpha=alpha)
    for e in explanations:
        writer.add(e)
    for f in failures:
        writer.add_failure(f)
    return writer.flush()


@dataclass
class ExplainFolder:
    """What :func:`load_explanations` reads: the folder's settings (``meta``), one record per image
    (the ``results.json`` entry plus ``saliency``, its heatmap as float32 ``[h, w]``) and the failures."""

    folder: Path
    meta: dict[str, Any]
    records: list[dict[str, Any]] = field(default_factory=list)
    failures: list[dict[str, str]] = field(default_factory=list)


def load_explanations(folder: str | os.PathLike) -> ExplainFolder:
    """Read an explain folder; ``FileNotFoundError``/``ValueError`` name the file that is missing or broken."""
    folder = Path(folder)
    path = folder / RESULTS_JSON
    if not path.exists():
        raise FileNotFoundError(f"{folder}: no {RESULTS_JSON} here; is this a folder written by 'igos explain'?")
    try:
        doc = json.loads(path.read_text())
        records = list(doc["images"])
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise ValueError(f"{path}: not a results file of igos explain ({exc})") from None
    for rec in records:
        npy = folder / rec["saliency_file"]
        if not npy.exists():
            raise FileNotFoundError(f"{npy}: heatmap listed in {path} is missing")
        rec["saliency"] = np.load(npy).astype(np.float32)
    meta = {k: v for k, v in doc.items() if k not in ("images", "failures")}
    return ExplainFolder(folder, meta, records, list(doc.get("failures", [])))
