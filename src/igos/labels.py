"""Labels of a folder of images: a label file (``name,label`` per line, a class index or a WordNet id), or the
folder an image is in (``--imagefolder``)."""

from __future__ import annotations

import csv
from functools import lru_cache
from pathlib import Path

from .models import imagenet_wnids

__all__ = ["read_labels", "label_for"]


@lru_cache(maxsize=1)
def _wnid_index() -> dict[str, int]:
    return {w: i for i, w in enumerate(imagenet_wnids())}


def read_labels(path: Path) -> dict[str, int]:
    """A label file: ``name,label`` or ``name<TAB>label`` per line (header optional); ``name`` is a
    path relative to the images folder or a file stem; ``label`` a class index or a WordNet id."""
    wnid_index = _wnid_index()
    out: dict[str, int] = {}
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"label file {path}: cannot be read ({exc})") from None
    lines = text.splitlines()
    if not any(line.strip() for line in lines):
        raise ValueError(f"label file {path} is empty: expected name,label per line (a class index or WordNet id)")
    dialect = "excel-tab" if "\t" in lines[0] else "excel"
    for n, row in enumerate(csv.reader(lines, dialect=dialect), start=1):
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


def label_for(rel: str, labels: dict[str, int] | None, imagefolder: bool) -> int | None:
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
