"""The checks' section of ``igos report``: model-randomisation sanity checks (``sanity.json`` of ``igos sanity``) and
known answers (``known-answer.json`` of ``igos sanity --known-answer``), each with its verdict in plain words.

A sanity result passes the cascading check when the mean Spearman correlation of ``|map|`` after the last step
(every block randomised) is at most :data:`CASCADE_PASS`; a known-answer result passes when the mean share of
positive map mass within reach of the region the model sees (on cells whose upsampled footprint touches it) is at
least :data:`KNOWN_ANSWER_PASS` (the bars of issue 21). A file written before the share in reach was recorded is
judged on its share on the region's own cells, the stricter measure.
A file is recognised by its content, not its name: a dict with ``steps`` of similarity records, or with
``mean_share``.
"""

from __future__ import annotations

import html
import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from .tablefmt import to_html

__all__ = ["CASCADE_PASS", "KNOWN_ANSWER_PASS", "Checks", "find_checks", "sanity_verdict", "known_answer_verdict",
           "known_answer_judged", "known_answer_passes",
           "cascade_svg", "checks_html"]

#: the largest mean Spearman of |map| after the whole cascade at which a method passes the check
CASCADE_PASS = 0.3
#: the smallest mean share of positive mass within reach of the visible region at which a method passes
KNOWN_ANSWER_PASS = 0.95
#: the measures drawn, with their colours
SERIES = {"spearman_abs": "#1f77b4", "spearman": "#ff7f0e", "ssim": "#2ca02c", "hog": "#9467bd"}


class Checks:
    """The check results found: ``sanity`` and ``known`` as ``(path, content)`` pairs, in path order."""

    def __init__(self) -> None:
        self.sanity: list[tuple[Path, dict]] = []
        self.known: list[tuple[Path, dict]] = []

    def __bool__(self) -> bool:
        return bool(self.sanity or self.known)

    def add(self, path: Path) -> None:
        """Read ``path`` and keep it if it is a check result (anything else is skipped: JSON of other kinds, or
        files that do not parse)."""
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return
        if not isinstance(data, dict):
            return
        steps = data.get("steps")
        if isinstance(steps, list) and steps and all(isinstance(s, dict) and "spearman_abs" in s for s in steps):
            self.sanity.append((path, data))
        elif "mean_share" in data and "method" in data:
            self.known.append((path, data))


def find_checks(paths: Iterable[str | Path], names: Sequence[str] = ("sanity.json", "known-answer.json")) -> Checks:
    """The check results among ``paths``: a file is read as it is; a folder is searched (recursively) for files
    called one of ``names``."""
    found = Checks()
    seen: set[Path] = set()
    for p in map(Path, paths):
        files = sorted(f for n in names for f in p.rglob(n)) if p.is_dir() else [p]
        for f in files:
            if f.resolve() not in seen:
                seen.add(f.resolve())
                found.add(f)
    return found


def _cascade(data: dict) -> list[dict]:
    return [s for s in data["steps"] if s.get("mode", "cascading") == "cascading"]


def _label(data: dict) -> str:
    res = data.get("resolution")
    res = "native" if res in (None, "native") else (f"{res}×{res}" if isinstance(res, int) else str(res))
    return f"{data.get('method', '?')} at {res}"


def sanity_verdict(data: dict) -> str:
    """The cascading check's verdict in one sentence (``data``: a ``sanity.json``)."""
    steps = _cascade(data)
    if not steps:
        return f"{_label(data)}: no cascading steps recorded."
    last = steps[-1]
    final = last.get("spearman_abs")
    constant = sum(int(s.get("constant") or 0) for s in steps)
    extra = f"; {constant} map(s) came out constant along the cascade and were not scored" if constant else ""
    if final is None or final != final:  # NaN: every map of the last step was constant
        return f"{_label(data)}: no map of the last step could be scored{extra}."
    passed = final <= CASCADE_PASS
    return (f"{_label(data)} {'passes' if passed else 'does not pass'} the cascading check: with every block "
            f"randomised (last: {last.get('randomised')}) its maps keep a Spearman correlation of |map| of "
            f"{final:.2f} with the trained model's ({'at most' if passed else 'above'} {CASCADE_PASS}){extra}.")


def known_answer_judged(data: dict) -> tuple[float | None, bool]:
    """The share a ``known-answer.json`` is judged on (in reach of the region, or, in files without it, on the
    region's own cells) and whether the check read the share in reach."""
    reach = data.get("mean_in_reach")
    if reach is not None:
        return reach, True
    return data.get("mean_share"), False


def known_answer_passes(data: dict) -> bool:
    """Whether a ``known-answer.json`` passes: its judged share (:func:`known_answer_judged`) at least
    :data:`KNOWN_ANSWER_PASS`."""
    share, _ = known_answer_judged(data)
    return share is not None and share >= KNOWN_ANSWER_PASS


def known_answer_verdict(data: dict) -> str:
    """The known-answer check's verdict in one sentence (``data``: a ``known-answer.json``)."""
    judged, in_reach = known_answer_judged(data)
    share = data.get("mean_share")
    where = f"the {data.get('region', 'region')} the model sees (the rest: {data.get('fill', '?')})"
    if judged is None:
        return f"{_label(data)}: no map had positive mass inside or outside {where}."
    passed = known_answer_passes(data)
    low = data.get("min_in_reach") if in_reach else data.get("min_share")
    ref, far = data.get("reference"), data.get("mean_out_of_sight")
    bar = (f"({'at least' if passed else 'below'} {100 * KNOWN_ANSWER_PASS:.0f} %"
           + (f"; the lowest photo {100 * low:.1f} %" if low is not None else "") + ")")
    if in_reach:
        head = (f"{_label(data)} {'passes' if passed else 'does not pass'} the known-answer check: "
                f"{100 * judged:.1f} % of its positive mass lies on cells that reach {where} {bar}; "
                f"{100 * (1 - judged):.1f} % on cells out of sight, where no deletion can matter.")
        if share is not None and share < judged - 5e-4:
            head += (f" On the region's own cells: {100 * share:.1f} %; the rest is on the ring of cells along its "
                     "border, whose bilinear footprint reaches into it.")
    else:
        head = (f"{_label(data)} {'passes' if passed else 'does not pass'} the known-answer check: "
                f"{100 * judged:.1f} % of its positive mass lies inside {where} {bar}.")
        if far is not None:
            head += (f" {100 * far:.1f} % lies on cells out of sight (their upsampled footprint misses the region); "
                     "the rest of the mass outside is on the cells along its border, which still reach into it.")
    if ref is not None and ref < 0.9995:
        head += (f" The region itself, pooled to the map's cells, scores {100 * ref:.1f} % on them: its border "
                 "cuts cells.")
    reach = data.get("reach_reference")
    if reach is not None and reach < 0.9995:
        head += (f" A map removing the whole region as far as the mask's cells reach (the ring along its border "
                 f"included) would score {100 * reach:.1f} % on the region's own cells.")
    return head


def cascade_svg(data: dict, width: int = 420, height: int = 170) -> str:
    """The similarity measures along the cascade as an inline SVG (y from −1 to 1, the pass bar dashed)."""
    steps = _cascade(data)
    n = max(len(steps), 2)
    left, right, top, bottom = 34, 8, 8, 22
    w, h = width - left - right, height - top - bottom

    def xy(i: int, v: float) -> str:
        return f"{left + w * i / (n - 1):.1f},{top + h * (1 - (max(min(v, 1.0), -1.0) + 1) / 2):.1f}"

    parts = [f'<svg width="{width}" height="{height}" viewBox="0 0 {width} {height}" class="cascade">',
             f'<rect x="{left}" y="{top}" width="{w}" height="{h}" fill="#fafafa" stroke="#ddd"/>']
    for v in (-1, 0, 1):
        y = xy(0, v).split(",")[1]
        parts.append(f'<text x="{left - 4}" y="{float(y) + 3:.1f}" font-size="9" text-anchor="end">{v}</text>')
    bar = xy(0, CASCADE_PASS).split(",")[1]
    parts.append(f'<line x1="{left}" x2="{left + w}" y1="{bar}" y2="{bar}" stroke="#999" stroke-dasharray="3,3"/>')
    for key, colour in SERIES.items():
        pts = [(i, s.get(key)) for i, s in enumerate(steps)]
        pts = [(i, v) for i, v in pts if v is not None and v == v]
        if pts:
            parts.append(f'<polyline points="{" ".join(xy(i, v) for i, v in pts)}" fill="none" stroke="{colour}" '
                         f'stroke-width="1.5"><title>{key}</title></polyline>')
    for k, (key, colour) in enumerate(SERIES.items()):
        parts.append(f'<text x="{left + 6 + 95 * k}" y="{height - 6}" font-size="9" fill="{colour}">{key}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _number(v: Any) -> str:
    return "–" if v is None or v != v else f"{v:.3f}"


def checks_html(checks: Checks) -> str:
    """The report's "Checks" section: per sanity result its verdict, the cascade's curves and a table of every
    step; the known-answer results in one table with a verdict per row."""
    if not checks:
        return ""
    out = ["<h2>Checks</h2>"]
    if checks.sanity:
        out.append("<h3>Model-randomisation sanity checks</h3><p class=\"note\">Each row randomises one more block "
                   "from the output down (cascading) or one block alone (independent); values are the similarity "
                   "of the maps to the trained model's, means over the photos. A map that ignores the model keeps "
                   f"a high similarity; the check passes at a final Spearman of |map| ≤ {CASCADE_PASS}. The dashed "
                   "line is that bar.</p>")
        for path, data in checks.sanity:
            out.append(f"<p><b>{html.escape(sanity_verdict(data))}</b> <span class=\"note\">"
                       f"({html.escape(str(path))}, {len(data.get('photos') or [])} photos)</span></p>")
            out.append(cascade_svg(data))
            rows = [*data["steps"], *([data["random_logit"]] if data.get("random_logit") else [])]
            body = [[str(s.get("randomised")), str(s.get("mode", "")), *(_number(s.get(k)) for k in SERIES),
                     str(s.get("constant", 0))] for s in rows]
            out.append(to_html(["randomised", "mode", *SERIES, "constant maps"], body))
    if checks.known:
        out.append("<h3>Known answers</h3><p class=\"note\">The model is wrapped so that it sees only a region of "
                   "each photo; a faithful map puts all of its positive mass on the cells that reach it (a bilinear "
                   "cell just outside the border still changes the pixels along it). The check passes at "
                   f"{100 * KNOWN_ANSWER_PASS:.0f} % or more in reach; the share on the region's own cells is "
                   "shown beside it.</p>")
        body = [[_label(d), str(d.get("region")), str(d.get("fill")), _number(d.get("mean_in_reach")),
                 _number(d.get("min_in_reach")), _number(d.get("mean_share")), str(len(d.get("per_photo") or {})),
                 "pass" if known_answer_passes(d) else "fail"] for _, d in checks.known]
        out.append(to_html(["method", "region", "outside", "mean share in reach", "lowest", "on the region's cells",
                            "photos", "verdict"], body))
        out.extend(f"<p class=\"note\">{html.escape(known_answer_verdict(d))}</p>" for _, d in checks.known)
    return "".join(out)
