"""The paper's tables from a bench run: deletion/insertion (Tables 1–2), runtime (Table 3),
ablations (Table 4), final objective of I-GOS vs Mask (Table 5); Markdown and CSV."""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from .methods.registry import REGISTRY
from .stats import ci, paired_wins, t_critical
from .tablefmt import Entry, markdown, to_csv, write

__all__ = ["Cell", "latest_settings", "summarise", "main_table", "runtime_table", "ablation_table", "objective_table",
           "per_image_table", "t_critical", "sections", "render", "display_name", "method_order", "column", "label",
           "area", "by_image", "paired_wins", "paired_table", "flat_table", "controls_table", "CONTROLS",
           "removal_table", "REMOVAL_METRICS", "write", "DEFAULT_PAIRED"]

#: the method the paired table compares every other method with
DEFAULT_PAIRED = "igos"

def display_name(method: str) -> str:
    """The method's name in tables (from the registry; an unregistered name as it is)."""
    spec = REGISTRY.get(method)
    return spec.display if spec is not None else method


def method_order(methods: Iterable[str]) -> list[str]:
    """Registered methods in registration order, then any others sorted."""
    ms = set(methods)
    return [m for m in REGISTRY if m in ms] + sorted(ms - set(REGISTRY))


@dataclass
class Cell:
    """Mean and 95 % CI half-width of deletion and insertion over n images; mean and median seconds."""

    n: int
    deletion: float
    deletion_ci: float
    insertion: float
    insertion_ci: float
    seconds: float
    seconds_median: float
    objective: float | None = None
    objective_ci: float = float("nan")
    objective_n: int = 0


def column(row: dict[str, Any]) -> int | str:
    """A row's resolution column: the side of a square map (a method's own size for 0), ``"HxW"`` otherwise."""
    res = row["resolution"]
    if isinstance(res, str) and "x" in res:
        return res
    if int(res):
        return int(res)
    h, w = row["saliency_shape"]
    return int(h) if h == w else f"{h}x{w}"


def area(res: int | str) -> int:
    """Cells of a resolution column (for sorting: largest first)."""
    h, _, w = str(res).partition("x")
    return int(h) * int(w or h)


def label(res: int | str | tuple[int, int]) -> str:
    """``28`` -> ``28×28``, ``"14x28"`` or ``(14, 28)`` -> ``14×28``."""
    if isinstance(res, tuple):
        return f"{res[0]}×{res[1]}"
    return str(res).replace("x", "×") if isinstance(res, str) else f"{res}×{res}"


def _resolutions(keys: Iterable[tuple]) -> list[int | str]:
    return sorted({k[3] for k in keys}, key=area, reverse=True)


def _cell_key(row: dict[str, Any]) -> tuple[str, str, str, int]:
    """The table cell a row belongs to: ``(model, method, variant, resolution)``."""
    return row["model"], row["method"], row["variant"], column(row)


def latest_settings(rows: Iterable[dict[str, Any]]) -> tuple[list[dict[str, Any]], int]:
    """Keep, per (model, method, variant, resolution), only the rows of the settings used last.

    A run folder keeps the rows of every settings hash it has seen (changed settings never
    overwrite old rows); a table mixing them would average two different methods. Returns the
    kept rows and how many older rows were left out.
    """
    rows = list(rows)
    newest: dict[tuple, tuple[float, str]] = {}
    for r in rows:
        key = _cell_key(r)
        stamp = (float(r["created"] or 0.0), r["settings_hash"])
        if key not in newest or stamp > newest[key]:
            newest[key] = stamp
    kept = [r for r in rows if r["settings_hash"] == newest[_cell_key(r)][1]]
    return kept, len(rows) - len(kept)


def summarise(rows: Iterable[dict[str, Any]]) -> dict[tuple[str, str, str, int], Cell]:
    """``(model, method, variant, resolution) -> Cell``; native resolutions use the map's side."""
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for r in rows:
        groups[_cell_key(r)].append(r)
    out = {}
    for key, rs in groups.items():
        d = [r["deletion"] for r in rs]
        i = [r["insertion"] for r in rs]
        objs = [r["final_objective"] for r in rs if r.get("final_objective") is not None]
        out[key] = Cell(len(rs), statistics.mean(d), ci(d), statistics.mean(i), ci(i),
                        statistics.mean(r["seconds"] for r in rs), statistics.median(r["seconds"] for r in rs),
                        statistics.mean(objs) if objs else None, ci(objs), len(objs))
    return out


def _fmt(v: float, half_width: float) -> str:
    return f"{v:.4f}" if math.isnan(half_width) else f"{v:.4f} ± {half_width:.4f}"


def main_table(cells: dict, model: str, variant: str = "default") -> tuple[list[str], list[list[str]]]:
    """Rows = methods, columns = resolutions (high to low), cells = deletion / insertion."""
    keys = [k for k in cells if k[0] == model and k[2] == variant]
    resolutions = _resolutions(keys)
    methods = method_order({k[1] for k in keys})
    best_del = {r: min((cells[k].deletion for k in keys if k[3] == r), default=None) for r in resolutions}
    best_ins = {r: max((cells[k].insertion for k in keys if k[3] == r), default=None) for r in resolutions}
    header = ["method"] + [label(r) for r in resolutions]
    body = []
    for m in methods:
        line = [display_name(m)]
        for r in resolutions:
            c = cells.get((model, m, variant, r))
            if c is None:
                line.append("–")
                continue
            ranked = len([k for k in keys if k[3] == r]) > 1
            line.append(Entry(((_fmt(c.deletion, c.deletion_ci), ranked and c.deletion == best_del[r]),
                               (_fmt(c.insertion, c.insertion_ci), ranked and c.insertion == best_ins[r])),
                              f" (n={c.n})"))
        body.append(line)
    return header, body


def runtime_table(cells: dict, model: str) -> tuple[list[str], list[list[str]]]:
    """Seconds per image, median (mean): rows = methods, columns = resolutions (the paper's Table 3).

    The median comes first because it is robust to images that ran while something else held the
    machine; the mean is the paper's figure."""
    keys = [k for k in cells if k[0] == model and k[2] == "default"]
    resolutions = _resolutions(keys)
    header = ["method"] + [label(r) for r in resolutions]
    body = []
    for m in method_order({k[1] for k in keys}):
        line = [display_name(m)]
        for r in resolutions:
            c = cells.get((model, m, "default", r))
            line.append("–" if c is None else f"{c.seconds_median:.2f} ({c.seconds:.2f})")
        body.append(line)
    return header, body


def ablation_table(cells: dict, model: str) -> tuple[list[str], list[list[str]]] | None:
    """I-GOS variants × resolutions (the paper's Table 4); None without ablation rows."""
    from .bench import ABLATIONS

    names = {"default": "full", **{v.name: v.label for v in ABLATIONS}}
    variants = [v for v in names if any(k[0] == model and k[1] == "igos" and k[2] == v for k in cells)]
    if len(variants) < 2:
        return None
    resolutions = _resolutions(k for k in cells if k[0] == model and k[1] == "igos" and k[2] != "default")
    header = ["I-GOS variant"] + [label(r) for r in resolutions]
    body = []
    for v in variants:
        line = [names[v]]
        for r in resolutions:
            c = cells.get((model, "igos", v, r))
            cell = ("–" if c is None else
                    f"{_fmt(c.deletion, c.deletion_ci)} / {_fmt(c.insertion, c.insertion_ci)} (n={c.n})")
            line.append(cell)
        body.append(line)
    return header, body


def objective_table(cells: dict, model: str) -> tuple[list[str], list[list[str]]] | None:
    """Final objective (mean over images, lower is better) of I-GOS and Mask under the same λ."""
    from .bench import SAME_LAMBDA as same

    res = _resolutions(k for k in cells if k[0] == model and k[1] == same.method and k[2] == same.name)
    if not res:
        return None
    header = ["method"] + [label(r) for r in res]
    body = []
    for name, key in (("I-GOS", ("igos", "default")), (same.label, (same.method, same.name))):
        line = [name]
        for r in res:
            c = cells.get((model, key[0], key[1], r))
            line.append("–" if c is None or c.objective is None
                        else f"{_fmt(c.objective, c.objective_ci)} (n={c.objective_n})")
        body.append(line)
    return header, body


def by_image(rows: Iterable[dict[str, Any]], model: str) -> dict[tuple[str, str, int | str], dict[str, dict]]:
    """``(method, variant, resolution column) -> {image: row}`` of one model."""
    out: dict[tuple, dict[str, dict]] = defaultdict(dict)
    for r in rows:
        if r["model"] == model:
            out[(r["method"], r["variant"], column(r))][r["image"]] = r
    return out


def paired_table(rows: list[dict[str, Any]], model: str, reference: str = DEFAULT_PAIRED
                 ) -> tuple[list[str], list[list[str]]] | None:
    """Per-photo wins of ``reference`` against every other method at each resolution: on how many of the
    photos both explained it has the lower deletion, the higher insertion, and the larger insertion −
    deletion. Far more sensitive than two means with overlapping intervals. None without ``reference``."""
    by = by_image(rows, model)
    resolutions = sorted({k[2] for k in by if k[0] == reference and k[1] == "default"}, key=area, reverse=True)
    if not resolutions:
        return None
    others = method_order({k[0] for k in by if k[0] != reference and k[1] == "default"})
    header = [f"{display_name(reference)} against"] + [label(r) for r in resolutions]
    body = []
    for m in others:
        line = [display_name(m)]
        for r in resolutions:
            mine, theirs = by.get((reference, "default", r), {}), by.get((m, "default", r), {})
            d, ins, gap, n = paired_wins(mine, theirs)
            line.append(f"{d} / {ins} / {gap} of {n}" if n else "–")
        body.append(line)
    return header, body


#: per removal operator other than the blur: its two metrics, the first lower-is-better, the second higher
REMOVAL_METRICS = {"road": ("morf", "lerf"), "mean": ("deletion", "insertion"), "zero": ("deletion", "insertion")}


def removal_table(rows: list[dict[str, Any]], model: str, removal: str, paired: Iterable[str] = ()
                  ) -> tuple[list[str], list[list[Any]]] | None:
    """Methods × resolutions under ``removal`` (``road``: MoRF / LeRF; ``mean``, ``zero``: deletion /
    insertion): mean ± 95 % CI of each, the best per column marked, and for each method in ``paired`` its
    per-photo wins (first metric / second / their gap) against every other method. None without such scores."""
    low, high = REMOVAL_METRICS[removal]
    scored = [{**r, low: r["removals"][removal][low], high: r["removals"][removal][high]} for r in rows
              if r["model"] == model and r["variant"] == "default" and removal in (r.get("removals") or {})]
    if not scored:
        return None
    by = by_image(scored, model)
    resolutions = sorted({k[2] for k in by}, key=area, reverse=True)
    header = ["method"] + [label(r) for r in resolutions]
    means = {k: (statistics.mean(v[low] for v in got.values()), ci([v[low] for v in got.values()]),
                 statistics.mean(v[high] for v in got.values()), ci([v[high] for v in got.values()]), len(got))
             for k, got in by.items()}
    best = {r: (min(m[0] for k, m in means.items() if k[2] == r), max(m[2] for k, m in means.items() if k[2] == r))
            for r in resolutions}
    body = []
    for m in method_order({k[0] for k in by}):
        line: list[Any] = [display_name(m)]
        for r in resolutions:
            c = means.get((m, "default", r))
            ranked = c is not None and sum(k[2] == r for k in means) > 1
            line.append("–" if c is None else Entry(((_fmt(c[0], c[1]), ranked and c[0] == best[r][0]),
                                                     (_fmt(c[2], c[3]), ranked and c[2] == best[r][1])),
                                                    f" (n={c[4]})"))
        body.append(line)
    for reference in paired:
        if any(k[0] == reference for k in by):
            body.append([f"{display_name(reference)}: wins {low} / {high} / gap against"] + [""] * len(resolutions))
            for m in method_order({k[0] for k in by if k[0] != reference}):
                line = [f"  {display_name(m)}"]
                for r in resolutions:
                    d, ins, gap, n = paired_wins(by.get((reference, "default", r), {}), by.get((m, "default", r), {}),
                                                 low, high)
                    line.append(f"{d} / {ins} / {gap} of {n}" if n else "–")
                body.append(line)
    return header, body


#: the model-blind controls a method must beat (igos.methods.controls); ``random`` is shown in the main table
CONTROLS = ("center", "edges")


def controls_table(rows: list[dict[str, Any]], model: str) -> tuple[list[str], list[list[str]]] | None:
    """Every method against the controls at each resolution: per-photo wins on deletion and insertion against
    ``center`` and ``edges``, and a flag (**does not beat …**) where its mean is not better than a control's on a
    metric. A method's own resolution (``gradcam``'s, ``rise``'s) is compared with the controls at that size.
    None without control rows."""
    by = by_image(rows, model)
    resolutions = sorted({k[2] for k in by if k[0] in CONTROLS and k[1] == "default"}, key=area, reverse=True)
    if not resolutions:
        return None
    methods = method_order({k[0] for k in by if k[0] not in (*CONTROLS, "random") and k[1] == "default"})
    header = ["method"] + [label(r) for r in resolutions]
    body = []
    for m in methods:
        line = [display_name(m)]
        for r in resolutions:
            mine = by.get((m, "default", r), {})
            line.append(_against_controls(mine, {c: by.get((c, "default", r), {}) for c in CONTROLS}))
        body.append(line)
    return header, body


def _against_controls(mine: dict[str, dict], controls: dict[str, dict[str, dict]]) -> Any:
    if not mine:
        return "–"
    parts, lost = [], []
    for name, theirs in controls.items():
        d, ins, _, n = paired_wins(mine, theirs)
        if not n:
            continue
        both = sorted(set(mine) & set(theirs))
        mean = {k: statistics.mean(mine[i][k] for i in both) for k in ("deletion", "insertion")}
        other = {k: statistics.mean(theirs[i][k] for i in both) for k in ("deletion", "insertion")}
        if mean["deletion"] >= other["deletion"]:
            lost.append(f"deletion of {name}")
        if mean["insertion"] <= other["insertion"]:
            lost.append(f"insertion of {name}")
        parts.append((f"{name} {d}/{ins} of {n}", False))
    if not parts:
        return "–"
    flag = (f"does not beat the {', '.join(lost)}", True) if lost else ("beats both", False)
    return Entry((*parts, flag))


def _is_flat(row: dict[str, Any]) -> bool:
    """The row's ``flat`` column (the method's own verdict), or for older rows the stored map's range."""
    from .methods.descent import FLAT_TOLERANCE
    from .store import saliency_from_row

    if row.get("flat") is not None:
        return bool(row["flat"])
    return float(np.ptp(saliency_from_row(row))) < FLAT_TOLERANCE


def flat_table(rows: list[dict[str, Any]], model: str) -> tuple[list[str], list[list[str]]]:
    """Maps with no order (all values within ``FLAT_TOLERANCE``: they say nothing), per method and resolution."""
    by = by_image(rows, model)
    resolutions = sorted({k[2] for k in by if k[1] == "default"}, key=area, reverse=True)
    header = ["method"] + [label(r) for r in resolutions]
    body = []
    for m in method_order({k[0] for k in by if k[1] == "default"}):
        line = [display_name(m)]
        for r in resolutions:
            got = by.get((m, "default", r))
            if not got:
                line.append("–")
                continue
            flat = sum(_is_flat(row) for row in got.values())
            line.append(f"{flat} of {len(got)}")
        body.append(line)
    return header, body


def completeness_table(rows: list[dict[str, Any]], model: str) -> tuple[list[str], list[list[str]]] | None:
    """Completeness of the integrated gradients each method computes (I-GOS's first direction, iGOS++'s
    deletion path, the IG baseline's attributions): the ratio of their sum to the probability change along
    their path, 1 when complete; mean (min – max) over the photos whose change is at least 0.01. None when
    no row has the figures."""
    by = by_image(rows, model)
    have = {k for k, got in by.items() if k[1] == "default"
            and any(r.get("direction_sum") is not None and r.get("path_delta") is not None for r in got.values())}
    if not have:
        return None
    resolutions = sorted({k[2] for k in have}, key=area, reverse=True)
    header = ["method"] + [label(r) for r in resolutions]
    body = []
    for m in method_order({k[0] for k in have}):
        line = [display_name(m)]
        for r in resolutions:
            ratios = [row["direction_sum"] / row["path_delta"] for row in by.get((m, "default", r), {}).values()
                      if row.get("direction_sum") is not None and row.get("path_delta") is not None
                      and abs(row["path_delta"]) >= 0.01]
            line.append(f"{np.mean(ratios):.2f} ({min(ratios):.2f} – {max(ratios):.2f}, n={len(ratios)})"
                        if ratios else "–")
        body.append(line)
    return header, body


def per_image_table(rows: Iterable[dict[str, Any]]) -> tuple[list[str], list[list[str]]]:
    header = ["image", "model", "method", "variant", "resolution", "target", "target name", "probability",
              "deletion (lower is better)", "insertion (higher is better)", "seconds"]
    body = [[r["image"], r["model"], r["method"], r["variant"], str(column(r)), str(r["target"]), r["target_name"],
             f"{r['probability']:.4f}", f"{r['deletion']:.4f}", f"{r['insertion']:.4f}", f"{r['seconds']:.2f}"]
            for r in sorted(rows, key=lambda r: (r["image"], r["model"], r["method"], r["variant"], column(r)))]
    return header, body


def sections(rows: list[dict[str, Any]], paired: Iterable[str] = (DEFAULT_PAIRED,)
             ) -> list[tuple[str, list[str], list[list[str]]]]:
    """The tables of a run, per model: ``(title, header, body)`` for deletion/insertion, the per-photo wins
    of each method in ``paired``, flat maps, runtime and, where the run has them, the ablation and the
    final objectives. ``igos table`` and ``igos report`` both show these."""
    cells = summarise(rows)
    out = []
    for model in sorted({r["model"] for r in rows}):
        out.append((f"Deletion (lower is better) / insertion (higher is better), {model}; mean ± 95 % CI, "
                    "best per column in bold", *main_table(cells, model)))
        for reference in paired:
            table = paired_table(rows, model, reference)
            if table and table[1]:
                out.append((f"Paired wins of {display_name(reference)}, photo by photo: deletion / insertion / "
                            f"insertion − deletion, {model}", *table))
        for removal, (low, high) in REMOVAL_METRICS.items():
            table = removal_table(rows, model, removal, paired)
            if table:
                name = "ROAD (noisy linear imputation)" if removal == "road" else f"removal towards the {removal}"
                out.append((f"{name}: {low} (lower is better) / {high} (higher is better), {model}; mean ± 95 % CI, "
                            "best per column in bold; paired wins", *table))
        against = controls_table(rows, model)
        if against:
            out.append((f"Against the model-blind controls: per-photo wins deletion / insertion, and whether the "
                        f"mean beats each control on both metrics, {model}", *against))
        if rows and "saliency" in rows[0]:
            out.append((f"Flat maps (all values equal: they say nothing), {model}", *flat_table(rows, model)))
        comp = completeness_table(rows, model)
        if comp:
            out.append((f"Completeness: sum of the integrated gradients / probability change along their path "
                        f"(1 = complete), mean (min – max), {model}", *comp))
        out.append((f"Runtime, seconds per image, median (mean), {model}", *runtime_table(cells, model)))
        abl = ablation_table(cells, model)
        if abl:
            out.append((f"Ablation of I-GOS, deletion (lower is better) / insertion (higher is better), {model}",
                        *abl))
        obj = objective_table(cells, model)
        if obj:
            out.append((f"Final objective F(M) (lower is better), same λ, {model}", *obj))
    return out


def render(rows: list[dict[str, Any]], failures: list[Any], *, per_image: bool = False, older: int = 0,
           paired: Iterable[str] = (DEFAULT_PAIRED,)) -> tuple[str, str]:
    """The Markdown and CSV text of ``igos table``: every section, optionally every row, the failures."""
    md, csv_parts = [], []
    if older:
        md.append(f"{older} row(s) computed under earlier settings of the same method are left out "
                  "(each cell uses the settings its method was run with last).\n")
    parts = sections(rows, paired) + ([("Per image", *per_image_table(rows))] if per_image else [])
    for title, header, body in parts:
        md.append(f"### {title}\n\n{markdown(header, body)}\n")
        csv_parts.append(f"# {title}\n{to_csv(header, body)}")
    if failures:
        md.append(f"{len(failures)} failure(s): " + "; ".join(f.line() for f in failures[:20]))
    return "\n".join(md), "\n".join(csv_parts)
