"""Rendering the tables: Markdown, CSV and HTML from ``(header, body)``, a body cell a string or an
:class:`Entry` whose parts may be marked best (bold in Markdown and HTML, plain in CSV)."""

from __future__ import annotations

import csv
import html
import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["Entry", "markdown", "to_csv", "to_html", "write"]


@dataclass(frozen=True)
class Entry:
    """A table cell in parts (``(text, best)``), joined by ``" / "``, then ``suffix``: e.g. a deletion and an
    insertion, each marked when it is the best of its column."""

    parts: tuple[tuple[str, bool], ...]
    suffix: str = ""

    def text(self, bold: Callable[[str], str] = lambda s: s, escape: Callable[[str], str] = lambda s: s) -> str:
        return " / ".join(bold(escape(p)) if best else escape(p) for p, best in self.parts) + escape(self.suffix)


def _cell(c: Any, fmt: str) -> str:
    if not isinstance(c, Entry):
        return html.escape(str(c)) if fmt == "html" else str(c)
    if fmt == "markdown":
        return c.text(lambda s: f"**{s}**")
    if fmt == "html":
        return c.text(lambda s: f"<b>{s}</b>", html.escape)
    return c.text()


def markdown(header: list[str], body: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_cell(c, "markdown") for c in row) + " |" for row in body]
    return "\n".join(lines)


def to_csv(header: list[str], body: list[list[str]]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")  # one line ending in the whole file (titles are "\n")
    w.writerow(header)
    w.writerows([[_cell(c, "csv") for c in row] for row in body])
    return buf.getvalue()


def to_html(header: Sequence[str], body: Sequence[Sequence[Any]]) -> str:
    """An HTML table (the report's); best parts in bold."""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    rows = "".join("<tr>" + "".join(f"<td>{_cell(c, 'html')}</td>" for c in row) + "</tr>" for row in body)
    return f'<table class="t"><tr>{head}</tr>{rows}</table>'


def write(folder: str | Path, text: str, csv_text: str) -> tuple[Path, Path]:
    """``table.md`` and ``table.csv`` of :func:`render` in ``folder`` (made if missing); returns their paths."""
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    (out / "table.md").write_text(text + "\n")
    (out / "table.csv").write_text(csv_text)
    return out / "table.md", out / "table.csv"
