"""The igos command's own output: summaries and warnings (the commands themselves are tested end to end in
test_end_to_end.py, test_bench.py and test_report.py)."""


def test_explain_warns_about_a_flat_map(capsys, tmp_path):
    from igos.cli import _print_summary

    rec = {"path": "a.png", "target_name": "cat", "target": 1, "probability": 0.9, "seconds": 1.0, "stalled": True,
           "flat": True}
    _print_summary([rec, {**rec, "path": "b.png", "stalled": False, "flat": False},
                    {**rec, "path": "c.png", "stalled": False, "flat": True}], [], tmp_path)
    out = capsys.readouterr().out
    assert out.count("warning: this heatmap is flat") == 2 and "stall_retries=2" in out
    assert out.count("never left its start") == 1 and out.count("moved as one") == 1
    assert "no cell of the mask moved one step" not in out  # a flat map gets the flat warning alone


def test_explain_warns_about_a_stalled_map_that_is_not_flat(capsys, tmp_path):
    """A fixed step that never moved one step (docs/results/stall-retries-28.md) leaves a map with an order, a weak
    one: the summary says so and names the retry."""
    from igos.cli import _print_summary

    rec = {"path": "a.png", "target_name": "water tower", "target": 900, "probability": 0.92, "seconds": 1.0,
           "stalled": True, "flat": False}
    _print_summary([rec, {**rec, "path": "b.png", "stalled": False}], [], tmp_path)
    out = capsys.readouterr().out
    assert out.count("no cell of the mask moved one step") == 1 and "stall_retries=1" in out
    assert "flat" not in out
