"""``igos report``: one self-contained HTML page for a bench run or an ``igos explain`` folder.

Everything is inlined (JPEG thumbnails as data URIs, curves as SVG, CSS); no scripts, fonts or
styles are fetched, so the page opens offline. Thumbnails are 224 px JPEGs shown at 112 px;
clicking one enlarges it (a CSS ``:target`` lightbox, no JavaScript).
"""

from __future__ import annotations

import base64
import html
import io
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from . import tables
from .explanations import RESULTS_JSON, load_explanations
from .figures import curve_svg
from .images import ImageLoadError, load_image
from .overlay import draw_outline, overlay, to_pil
from .records import target_text
from .report_checks import checks_html, find_checks
from .store import DB_NAME, ResultStore, saliency_from_row
from .tablefmt import to_html

__all__ = ["build_report", "write_run_figures"]

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:1.2em;color:#222;max-width:1400px}
h1{font-size:1.4em}h2{font-size:1.15em;margin-top:1.6em}h3{font-size:1em}
table.t{border-collapse:collapse;font-size:.85em;margin:.6em 0}
table.t td,table.t th{border:1px solid #ccc;padding:3px 6px;text-align:left}
table.t th{background:#f3f3f3}
.imgrow{display:flex;flex-wrap:wrap;gap:8px;border-top:1px solid #ddd;padding:8px 0;align-items:flex-start}
.cell{width:124px;font-size:.72em;text-align:center;overflow-wrap:anywhere}
.cell img{width:112px;height:112px;border:1px solid #ccc;display:block;margin:0 auto}
.cell svg{display:block;margin:2px auto}
.lb{display:none;position:fixed;inset:0;background:rgba(0,0,0,.8);z-index:9;align-items:center;justify-content:center}
.lb:target{display:flex}.lb img{width:448px;height:448px;image-rendering:auto;border:2px solid #fff}
.lb span{color:#fff;position:absolute;top:1em;left:1em;font-size:.9em}
.note{color:#666;font-size:.85em}
"""


def _jpeg(img: Image.Image, size: int = 224, quality: int = 82) -> str:
    buf = io.BytesIO()
    img.convert("RGB").resize((size, size), Image.BILINEAR).save(buf, format="JPEG", quality=quality)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode()


class _Page:
    def __init__(self) -> None:
        self.parts: list[str] = []
        self.boxes: list[str] = []

    def thumb(self, uri: str, caption: str) -> str:
        n = len(self.boxes)
        self.boxes.append(f'<a class="lb" id="z{n}" href="#_"><img src="{uri}" alt="{html.escape(caption)}">'
                          f"<span>{html.escape(caption)}</span></a>")
        return f'<a href="#z{n}"><img src="{uri}" alt="{html.escape(caption)}" loading="lazy"></a>'

    def render(self, title: str) -> str:
        return ("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
                f"<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\"><title>{html.escape(title)}"
                f"</title><style>{CSS}</style></head><body>{''.join(self.parts)}{''.join(self.boxes)}</body></html>")


def _cell_html(page: _Page, image, sal: np.ndarray, label: str, rec: dict[str, Any], cmap: str, alpha: float) -> str:
    spec = rec.get("target_spec") or {}
    picture = overlay(image, sal, alpha, cmap)
    if spec.get("kind") == "box" and spec.get("input"):
        picture = draw_outline(picture, ("box", spec["box"]), tuple(spec["input"]))
    uri = _jpeg(picture)
    caption = f"{label}: deletion {rec['deletion']:.4f} (lower is better), insertion {rec['insertion']:.4f} " \
              "(higher is better)"
    out = [f'<div class="cell">{page.thumb(uri, caption)}<div>{html.escape(label)}</div>']
    if rec.get("x"):
        out.append(curve_svg(rec["x"], rec["deletion_curve"], "#c0392b", 112, 36))
        out.append(curve_svg(rec["x"], rec["insertion_curve"], "#2c6fbb", 112, 36))
    out.append(f"<div>del↓ {rec['deletion']:.3f} · ins↑ {rec['insertion']:.3f}</div></div>")
    return "".join(out)


def _from_bench(run_dir: Path, page: _Page, cmap: str, alpha: float, max_images: int | None) -> str:
    with ResultStore.open_existing(run_dir) as store:
        rows, _ = tables.latest_settings(store.rows())
        runs = list(store.db.execute("SELECT command, images_dir FROM runs"))
        failures = store.failures()
    images_dir = next((Path(r[1]) for r in reversed(runs) if r[1]), None)
    models = sorted({r["model"] for r in rows})
    page.parts.append(f"<h1>igos benchmark report</h1><p class=\"note\">{html.escape(str(run_dir))}: "
                      f"{len(rows)} results, {len({r['image'] for r in rows})} images, models "
                      f"{html.escape(', '.join(models))}. Deletion: lower is better; insertion: higher is better.</p>")
    if runs:
        page.parts.append(f"<p class=\"note\">command: <code>{html.escape(runs[-1][0] or '')}</code></p>")
    for title, header, body in tables.sections(rows):
        page.parts.append(f"<h3>{html.escape(title)}</h3>{to_html(header, body)}")
    if failures:
        page.parts.append(f"<p class=\"note\">{len(failures)} failure(s): "
                          + html.escape("; ".join(f.line() for f in failures[:30])) + "</p>")
    by_image: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for r in rows:
        by_image[(r["image"], r["model"])].append(r)
    page.parts.append("<h2>Per image</h2>")
    for k, ((name, model), rs) in enumerate(sorted(by_image.items())):
        if max_images is not None and k >= max_images:
            page.parts.append(f"<p class=\"note\">… {len(by_image) - k} more images not shown</p>")
            break
        try:
            if images_dir is None:
                raise ImageLoadError(name, "the run does not record its images folder")
            image = load_image(images_dir / name, 224)
        except ImageLoadError:
            image = None
        head = f"<b>{html.escape(name)}</b><br>{html.escape(target_text(rs[0]['target_name'], rs[0]['target']))}, " \
               f"p={rs[0]['probability']:.3f}<br>{html.escape(model)}"
        out = ['<div class="imgrow"><div class="cell">']
        if image is not None:
            out.append(page.thumb(_jpeg(to_pil(image)), name))
        out.append(f"{head}</div>")
        order = {m: i for i, m in enumerate(tables.method_order(r["method"] for r in rs))}
        for r in sorted(rs, key=lambda r: (order[r["method"]], r["variant"], -tables.area(tables.column(r)))):
            label = tables.display_name(r["method"]) + \
                    ("" if r["variant"] == "default" else f" {r['variant']}") + f" {tables.label(tables.column(r))}"
            if image is not None:
                out.append(_cell_html(page, image, saliency_from_row(r), label, r, cmap, alpha))
        out.append("</div>")
        page.parts.append("".join(out))
    return "igos benchmark report"


def _from_explain(folder: Path, page: _Page, cmap: str, alpha: float, max_images: int | None) -> str:
    saved = load_explanations(folder)
    recs, meta = saved.records, saved.meta
    page.parts.append(f"<h1>igos explanations</h1><p class=\"note\">{html.escape(str(folder))}: model "
                      f"{html.escape(str(meta.get('model')))}, method {html.escape(str(meta.get('method')))}, "
                      f"{len(recs)} images. Deletion: lower is better; insertion: higher is better.</p>")
    header = ["image", "class", "probability", "deletion (lower is better)", "insertion (higher is better)",
              "seconds"]
    names = [Path(r["path"]).name if r.get("path") else f"image {k}" for k, r in enumerate(recs)]
    body = [[name, target_text(r['target_name'], r['target']), f"{r['probability']:.3f}",
             f"{r['deletion']['auc']:.4f}" if "deletion" in r else "–",
             f"{r['insertion']['auc']:.4f}" if "insertion" in r else "–", f"{r['seconds']:.2f}"]
            for name, r in zip(names, recs)]
    page.parts.append("<h3>Summary</h3>" + to_html(header, body))
    if saved.failures:
        page.parts.append("<p class=\"note\">failed: " + html.escape("; ".join(
            f"{f['path']}: {f['error']}" for f in saved.failures)) + "</p>")
    page.parts.append("<h2>Per image</h2>")
    for r in recs[:max_images]:
        try:
            image = load_image(r["path"] or "", 224)
        except ImageLoadError:
            continue  # a tensor input, or a file since moved: the table above still lists it
        curves = r.get("curves") or {}
        rec = {"deletion": r.get("deletion", {}).get("auc", float("nan")),
               "insertion": r.get("insertion", {}).get("auc", float("nan")),
               "x": curves.get("x"), "deletion_curve": curves.get("deletion"),
               "insertion_curve": curves.get("insertion")}
        label = f"{r['method']} {tables.label(tuple(r['resolution']))}"
        page.parts.append(f'<div class="imgrow"><div class="cell">{page.thumb(_jpeg(to_pil(image)), r["path"])}'
                          f"<b>{html.escape(Path(r['path']).name)}</b><br>{html.escape(r['target_name'])} "
                          f"p={r['probability']:.3f}</div>"
                          f"{_cell_html(page, image, r['saliency'], label, rec, cmap, alpha)}</div>")
    return "igos explanations"


def build_report(source: str | Path, out: str | Path | None = None, *, cmap: str = "viridis", alpha: float = 0.5,
                 max_images: int | None = None, checks: Sequence[str | Path] = ()) -> Path:
    """Write the HTML report of a bench run folder or an ``igos explain`` folder; returns its path. Sanity and
    known-answer results (``sanity.json``, ``known-answer.json``) found under ``source`` or in ``checks`` (files, or
    folders searched for them) get a "Checks" section with their verdicts (:mod:`igos.report_checks`)."""
    source = Path(source)
    for c in checks:
        if not Path(c).exists():
            raise FileNotFoundError(f"{c}: no such check result (a sanity.json, a known-answer.json, or a folder)")
    page = _Page()
    if (source / DB_NAME).exists():
        title = _from_bench(source, page, cmap, alpha, max_images)
    elif (source / RESULTS_JSON).exists():
        title = _from_explain(source, page, cmap, alpha, max_images)
    else:
        raise FileNotFoundError(f"{source}: neither a bench run ({DB_NAME}) nor an explain folder (results.json)")
    found = find_checks([source, *checks])
    if found:  # before the per-image part: the verdicts belong next to the tables
        at = next((i for i, p in enumerate(page.parts) if p.startswith("<h2>Per image")), len(page.parts))
        page.parts.insert(at, checks_html(found))
    path = Path(out) if out else source / "report.html"
    path.write_text(page.render(title), encoding="utf-8")
    return path


def write_run_figures(run_dir: str | Path, out_dir: str | Path | None = None, *, cmap: str = "viridis",
                      alpha: float = 0.5) -> list[Path]:
    """One figure in the paper's layout (overlay, heatmap, deletion and insertion curves) per
    result row of a bench run, named ``<image>__<model>__<method>[-variant]__<side>.png``."""
    from .figures import save_explanation_figure

    run_dir = Path(run_dir)
    with ResultStore.open_existing(run_dir) as store:
        rows, _ = tables.latest_settings(store.rows())
        images_dir = next((Path(r[0]) for r in store.db.execute("SELECT images_dir FROM runs") if r[0]), None)
    out = Path(out_dir) if out_dir else run_dir / "figures"
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for r in rows:
        if images_dir is None:
            break
        try:
            image = load_image(images_dir / r["image"], 224)
        except ImageLoadError:
            continue
        side = tables.column(r)
        variant = "" if r["variant"] == "default" else f"-{r['variant']}"
        stem = f"{Path(r['image']).stem}__{r['model']}__{r['method']}{variant}__{side}"
        stem = stem.replace("/", "_").replace(":", "_")
        title = (f"{target_text(r['target_name'], r['target'])} p={r['probability']:.3f} · {r['method']}{variant} "
                 f"{tables.label(side)}")
        written.append(save_explanation_figure(out / f"{stem}.png", image, saliency_from_row(r), title=title,
                                               x=r["x"], deletion_curve=r["deletion_curve"],
                                               insertion_curve=r["insertion_curve"], deletion=r["deletion"],
                                               insertion=r["insertion"], cmap=cmap, alpha=alpha))
    return written
