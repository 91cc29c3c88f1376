"""Labels of a folder of images: a label file (``name,label`` per line, a class index or a WordNet id; or named
columns for sets, boxes and regions: ``COLUMNS``), or the folder an image is in (``--imagefolder``)."""

from __future__ import annotations

import csv
from functools import lru_cache
from pathlib import Path
from typing import Any

from .models import imagenet_wnids

__all__ = ["read_labels", "label_for", "COLUMNS"]


@lru_cache(maxsize=1)
def _wnid_index() -> dict[str, int]:
    return {w: i for i, w in enumerate(imagenet_wnids())}


#: a label file's columns, by header name: the image, then at most one target per row (an empty cell: none)
COLUMNS = {
    "name": "the image: a path relative to the images folder, a file name or a stem (also: image, file)",
    "label": "one class: an index or a WordNet id",
    "classes": "a set of classes: 151-268 or 151+207+208 (scored as the sum of their probabilities)",
    "box": "a detector's box: X1,Y1,X2,Y2 in the photo's pixels, optionally @LABEL (quote it in a CSV file)",
    "region": "a segmentation region: a mask image (non-zero pixels, at the photo's size, relative to the label "
              "file's folder), optionally @CLASS",
    "score": "how a class target is scored: softmax (default), log_softmax, logit, sigmoid, raw",
}
_NAMES = ("name", "image", "file")


def read_labels(path: Path) -> dict[str, Any]:
    """A label file: ``name,label`` or ``name<TAB>label`` per line (header optional); ``name`` is a path relative
    to the images folder or a file stem; ``label`` a class index or a WordNet id. With a header, the columns
    are named (``COLUMNS``): ``name``, then ``label``, ``classes``, ``box`` or ``region`` (one per row) and an
    optional ``score``; those rows' targets are :mod:`igos.targets` targets."""
    wnid_index = _wnid_index()
    out: dict[str, Any] = {}
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"label file {path}: cannot be read ({exc})") from None
    lines = text.splitlines()
    if not any(line.strip() for line in lines):
        raise ValueError(f"label file {path} is empty: expected name,label per line (a class index or WordNet id)")
    dialect = "excel-tab" if "\t" in lines[0] else "excel"
    rows = list(csv.reader(lines, dialect=dialect))
    header = [c.strip().lower() for c in rows[0]] if rows else []
    if header and header[0] in _NAMES and any(c in ("classes", "box", "region", "score") for c in header[1:]):
        return _read_columns(Path(path), header, rows[1:])
    for n, row in enumerate(rows, start=1):
        if len(row) < 2 or not row[0].strip():
            continue
        name, label = row[0].strip(), row[1].strip()
        if label.isdigit():
            out[name] = int(label)
        elif label in wnid_index:
            out[name] = wnid_index[label]
        elif n == 1:
            continue  # a header
        else:
            raise ValueError(f"{path}, line {n}: label {label!r} is neither a class index nor a WordNet id")
    return out


def _read_columns(path: Path, header: list[str], rows: list[list[str]]) -> dict[str, Any]:
    from .options import _one_target, parse_targets
    from .targets import Classes, Region

    unknown = [c for c in header[1:] if c and c not in COLUMNS]
    if unknown:
        raise ValueError(f"label file {path}: unknown column(s) {', '.join(unknown)}; the columns are "
                         f"{', '.join(COLUMNS)}")
    out: dict[str, Any] = {}
    for n, row in enumerate(rows, start=2):
        cells = {c: (row[i].strip() if i < len(row) else "") for i, c in enumerate(header)}
        name = row[0].strip() if row else ""
        if not name:
            continue
        given = [c for c in ("label", "classes", "box", "region") if cells.get(c)]
        if len(given) > 1:
            raise ValueError(f"{path}, line {n}: give one target per row, got {', '.join(given)}")
        score = cells.get("score") or None
        if not given:
            out[name] = None if score is None else parse_targets(None, score)
            continue
        kind, value = given[0], cells[given[0]]
        try:
            if kind == "label":
                index = int(value) if value.isdigit() else _wnid_index().get(value)
                if index is None:
                    raise ValueError(f"label {value!r} is neither a class index nor a WordNet id")
                out[name] = index if score is None else Classes(index, score)
            elif kind == "classes":
                out[name] = _one_target(value, score)
            elif kind == "box":
                out[name] = parse_targets(f"box={value}", score)
            else:
                mask, _, cls = value.rpartition("@") if "@" in value else (value, "", "")
                out[name] = Region(int(cls) if cls else None, path.parent / mask, score or "softmax")
        except ValueError as exc:
            raise ValueError(f"{path}, line {n}: {exc}") from None
    return out


def label_for(rel: str, labels: dict[str, Any] | None, imagefolder: bool) -> Any:
    """The class of the image at ``rel`` (its path relative to the images folder): from ``labels`` by path, file
    name or stem, or with ``imagefolder`` from its folder's name (an index or a WordNet id); ``None``: top-1."""
    if labels is not None:
        for key in (rel, Path(rel).name, Path(rel).stem):
            if key in labels:
                return labels[key]
        return None
    if imagefolder:
        parent = Path(rel).parent.name
        if parent.isdigit():
            return int(parent)
        return _wnid_index().get(parent)
    return None
