"""igos table: cells, confidence intervals, best-per-column marks and the runtime table, on
hand-built rows with known values."""

import math

from igos import tables


def row(method, res, deletion, insertion, seconds, variant="default", created=1.0, settings="h", shape=None):
    return {"model": "m", "method": method, "variant": variant, "resolution": res, "deletion": deletion,
            "insertion": insertion, "seconds": seconds, "created": created, "settings_hash": settings,
            "saliency_shape": shape or [res, res], "final_objective": None}


ROWS = [
    row("igos", 28, 0.1, 0.5, 1.0), row("igos", 28, 0.2, 0.7, 2.0), row("igos", 28, 0.3, 0.6, 30.0),
    row("mask", 28, 0.05, 0.4, 10.0), row("mask", 28, 0.15, 0.4, 12.0), row("mask", 28, 0.1, 0.4, 11.0),
    row("gradcam", 0, 0.4, 0.3, 0.5, shape=[7, 7]),
]


def test_cells_mean_t_interval_and_median_seconds():
    cells = tables.summarise(ROWS)
    c = cells[("m", "igos", "default", 28)]
    assert c.n == 3
    assert math.isclose(c.deletion, 0.2) and math.isclose(c.insertion, 0.6)
    # sample sd of (0.1, 0.2, 0.3) is 0.1; t(0.975, df=2) = 4.303
    assert math.isclose(c.deletion_ci, 4.303 * 0.1 / math.sqrt(3), rel_tol=1e-9)
    assert math.isclose(c.seconds, 11.0) and c.seconds_median == 2.0
    assert ("m", "gradcam", "default", 7) in cells  # native resolution: the map's side
    assert math.isnan(cells[("m", "gradcam", "default", 7)].deletion_ci)  # n = 1: no interval


def test_best_per_column_is_marked_and_runtime_shows_median_then_mean():
    cells = tables.summarise(ROWS)
    header, body = tables.main_table(cells, "m")
    assert header == ["method", "28×28", "7×7"]
    from igos.tablefmt import markdown, to_csv, to_html

    md = {line.split(" | ")[0].strip("| "): line for line in markdown(header, body).splitlines()[2:]}
    assert "| **0.1000" in md["Mask"] and "/ 0.4000" in md["Mask"]  # best deletion, bold
    assert "| 0.2000" in md["I-GOS"] and "/ **0.6000" in md["I-GOS"]  # best insertion, bold
    assert "**" not in md["GradCAM"].split(" | ")[2]  # alone in its column: nothing to beat
    assert "**" not in to_csv(header, body) and "0.1000" in to_csv(header, body)  # CSV: plain values
    assert "<b>0.1000" in to_html(header, body) and "<b>0.6000" in to_html(header, body)
    _, rt = tables.runtime_table(cells, "m")
    rt = {line[0]: line for line in rt}
    assert rt["I-GOS"][1] == "2.00 (11.00)" and rt["Mask"][1] == "11.00 (11.00)" and rt["I-GOS"][2] == "–"


def test_latest_settings_keeps_one_hash_per_cell():
    rows = ROWS + [row("igos", 28, 0.9, 0.1, 1.0, created=0.5, settings="old")]
    kept, older = tables.latest_settings(rows)
    assert older == 1 and all(r["settings_hash"] == "h" for r in kept)


def test_t_critical_falls_back_to_normal():
    assert tables.t_critical(2) == 12.706 and tables.t_critical(31) == 2.042 and tables.t_critical(500) == 1.96


def test_ablation_table_lists_variants_with_n():
    rows = ROWS + [row("igos", 28, 0.5, 0.2, 1.0, variant="no-tv"), row("igos", 28, 0.3, 0.4, 1.0, variant="no-tv")]
    header, body = tables.ablation_table(tables.summarise(rows), "m")
    assert header == ["I-GOS variant", "28×28"]
    assert [line[0] for line in body] == ["full", "without TV"]
    assert body[1][1].startswith("0.4000 ±") and body[1][1].endswith("(n=2)") and body[0][1].endswith("(n=3)")
    assert tables.ablation_table(tables.summarise(ROWS), "m") is None  # no variants: no table


def test_objective_table_pairs_igos_with_mask_under_the_same_lambda():
    rows = [{**row("igos", 28, 0.1, 0.5, 1.0), "final_objective": v} for v in (0.5, 0.7)]
    rows += [{**row("mask", 28, 0.1, 0.5, 1.0, variant="same-lambda"), "final_objective": v} for v in (0.4, 0.4)]
    header, body = tables.objective_table(tables.summarise(rows), "m")
    assert header == ["method", "28×28"]
    assert body[0][1] == f"0.6000 ± {12.706 * math.sqrt(0.02) / math.sqrt(2):.4f} (n=2)"
    assert body[1][0].startswith("Mask") and body[1][1] == "0.4000 ± 0.0000 (n=2)"


def test_paired_wins_count_photo_by_photo_and_flat_maps_are_counted():
    import numpy as np

    def r(method, image, d, i, values):
        out = row(method, 2, d, i, 1.0)
        out.update(image=image, saliency=np.asarray(values, dtype=np.float32).tobytes(), saliency_shape=[2, 2])
        return out

    rows = [r("igos", "a", 0.1, 0.6, [0, 1, 2, 3]), r("igos", "b", 0.3, 0.5, [0, 0, 0, 1e-7]),
            r("igos", "c", 0.2, 0.4, [1, 2, 3, 4]),
            r("mask", "a", 0.2, 0.5, [1, 1, 1, 1]), r("mask", "b", 0.1, 0.7, [0, 1, 0, 1]),
            r("mask", "c", 0.25, 0.45, [3, 3, 3, 3]),
            r("mask", "d", 0.0, 1.0, [0, 1, 2, 3])]  # d has no I-GOS row: not paired
    header, body = tables.paired_table(rows, "m")
    # a: del and ins won, gap 0.5 > 0.3; b: both lost; c: del won, ins lost, gap −0.2 < 0.2 lost
    assert header == ["I-GOS against", "2×2"] and body == [["Mask", "2 / 1 / 1 of 3"]]
    header, body = tables.flat_table(rows, "m")
    assert {line[0]: line[1] for line in body} == {"Mask": "2 of 4", "I-GOS": "1 of 3"}
    titles = [t for t, _, _ in tables.sections(rows)]
    assert any(t.startswith("Paired wins of I-GOS") for t in titles) and any(t.startswith("Flat maps") for t in titles)
    titles = [t for t, _, _ in tables.sections(rows, paired=["igos", "mask"])]
    assert sum(t.startswith("Paired wins of") for t in titles) == 2
    header, body = tables.paired_table(rows, "m", reference="mask")
    # c: both gaps are 0.2, a tie, which is no win
    assert header == ["Mask against", "2×2"] and body == [["I-GOS", "1 / 2 / 1 of 3"]]


def test_completeness_table_is_the_mean_and_range_of_sum_over_change():
    def r(method, image, total, change):
        out = row(method, 28, 0.1, 0.5, 1.0)
        out.update(image=image, direction_sum=total, path_delta=change)
        return out

    rows = [r("igos", "a", 0.5, 1.0), r("igos", "b", 0.9, 0.9), r("igos", "c", 3.0, 0.001),  # c: change < 0.01
            r("ig", "a", 0.8, 0.8), r("mask", "a", None, None)]
    header, body = tables.completeness_table(rows, "m")
    assert header == ["method", "28×28"]
    by = {line[0]: line[1] for line in body}
    assert by == {"I-GOS": "0.75 (0.50 – 1.00, n=2)", "Integrated Gradients": "1.00 (1.00 – 1.00, n=1)"}
    assert any(t.startswith("Completeness") for t, _, _ in tables.sections(rows))
    assert tables.completeness_table([r("mask", "a", None, None)], "m") is None


def test_the_controls_table_flags_a_method_that_does_not_beat_them():
    def r(method, image, deletion, insertion):
        return {**row(method, 28, deletion, insertion, 1.0), "image": image}

    rows = [r("igos", "a", 0.1, 0.6), r("igos", "b", 0.2, 0.5),          # better means than both controls
            r("ebp", "a", 0.3, 0.6), r("ebp", "b", 0.1, 0.2),            # deletion mean 0.2 = edges': not better
            r("center", "a", 0.4, 0.3), r("center", "b", 0.4, 0.3),
            r("edges", "a", 0.2, 0.3), r("edges", "b", 0.2, 0.3)]
    header, body = tables.controls_table(rows, "m")
    from igos.tablefmt import markdown

    md = markdown(header, body)
    line = {b[0]: b[1].text() for b in body}
    assert header == ["method", "28×28"]
    assert line["I-GOS"] == "center 2/2 of 2 / edges 1/2 of 2 / beats both"  # a tie (0.2 = 0.2) is no win
    assert line["Excitation BP"] == "center 2/1 of 2 / edges 1/1 of 2 / does not beat the deletion of edges"
    assert "**does not beat the deletion of edges" in md  # flagged in bold
    assert tables.controls_table(rows[:4], "m") is None  # no control rows: no table
