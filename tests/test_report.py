"""Figures and the HTML report, the report checked in a real headless Chromium."""

import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from igos.bench import BenchSpec, run_bench
from igos.cli import main
from igos.figures import animate_curves, curve_svg, save_explanation_figure
from igos.overlay import colormap, overlay
from igos.report import build_report

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture
def bench_run(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(Path(__file__).parent))
    d = tmp_path / "images"
    d.mkdir()
    rng = np.random.default_rng(0)
    for i in range(3):
        Image.fromarray((rng.random((50, 50, 3)) * 255).astype(np.uint8)).save(d / f"im{i}.png")
    run = tmp_path / "run"
    run_bench(BenchSpec(d, ["tinymodels:tiny_classifier"], ["gradient", "igos"], [7, 14], limit=3,
                        options={"igos": {"iterations": 2, "steps": 3}}), run)
    return run


def test_colormaps_and_overlay():
    v = np.linspace(0, 1, 5)
    vir = colormap(v, "viridis")
    assert vir.shape == (5, 3) and np.allclose(vir[0], [0x44 / 255, 0x01 / 255, 0x54 / 255], atol=0.01)
    assert np.allclose(colormap(np.array([0.5]), "jet")[0], [0.5, 1.0, 0.5])
    img = overlay(torch.zeros(3, 20, 20), torch.rand(5, 5), alpha=1.0)
    assert img.size == (20, 20)
    with pytest.raises(ValueError, match="alpha"):
        overlay(torch.zeros(3, 20, 20), torch.rand(5, 5), alpha=2)


def test_figure_and_animation_files(tmp_path):
    img, base = torch.rand(3, 32, 32), torch.zeros(3, 32, 32)
    sal = torch.rand(4, 4)
    x = [i / 16 for i in range(17)]
    curve = [1 - t for t in x]
    save_explanation_figure(tmp_path / "f.png", img, sal, title="cat", x=x, deletion_curve=curve,
                            insertion_curve=x, deletion=0.5, insertion=0.5)
    assert Image.open(tmp_path / "f.png").size[0] > 800
    animate_curves(tmp_path / "a.gif", img, base, sal, x, curve, x)
    gif = Image.open(tmp_path / "a.gif")
    assert gif.n_frames == 17  # one frame per curve point
    svg = curve_svg(x, curve, "#f00")
    assert svg.startswith("<svg") and "http" not in svg.replace("http://www.w3.org", "")


def test_report_is_self_contained(bench_run):
    path = build_report(bench_run)
    text = path.read_text()
    assert not re.search(r"""(src|href)\s*=\s*["'](https?:)?//""", text)
    assert "<script" not in text and "@import" not in text and "url(http" not in text
    assert text.count('class="imgrow"') == 3
    assert "lower is better" in text and "higher is better" in text
    assert path.stat().st_size < 2_000_000


def test_figures_for_every_bench_row(bench_run):
    assert main(["report", str(bench_run), "--figures"]) == 0
    figs = sorted((bench_run / "figures").glob("*.png"))
    assert len(figs) == 9  # 3 images x (gradient + igos 7 + igos 14)
    assert any("__igos__14" in f.name for f in figs)


@pytest.mark.slow
def test_report_of_an_explain_folder(tmp_path, capsys):
    import skimage

    photo = Path(skimage.__file__).parent / "data" / "coffee.png"
    out = tmp_path / "ex"
    assert main(["explain", str(photo), "--out", str(out), "--method", "gradcam", "--evaluate", "--figure"]) == 0
    assert (out / "coffee_figure.png").exists()
    assert main(["report", str(out)]) == 0
    text = (out / "report.html").read_text()
    assert "coffee.png" in text and text.count("<svg") >= 2


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (.ci/run installs it)")
def test_report_in_headless_chromium(bench_run, tmp_path):
    playwright = pytest.importorskip("playwright.sync_api")
    path = build_report(bench_run)
    errors = []
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"],
        )
        page = browser.new_page(viewport={"width": 1366, "height": 768})
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        requests = []
        page.on("request", lambda r: requests.append(r.url))
        page.goto(path.as_uri())
        page.wait_for_load_state("load")
        assert page.locator(".imgrow").count() == 3
        assert page.locator("table.t").count() == 5  # main, I-GOS's paired wins, flat maps, completeness, runtime
        # 3 originals + 3 images x (gradient 32² + igos 7² + igos 14²) thumbnails, all decoded
        thumbs = page.locator(".imgrow img")
        assert thumbs.count() == 12
        widths = page.eval_on_selector_all(".imgrow img", "els => els.map(e => e.naturalWidth)")
        assert all(w == 224 for w in widths)
        thumbs.nth(1).click()
        assert page.locator(".lb:target img").is_visible()
        page.screenshot(path=str(tmp_path / "report.png"), full_page=False)
        browser.close()
    assert not errors, errors
    assert all(u.startswith(("file:", "data:")) for u in requests)
    assert Image.open(tmp_path / "report.png").size == (1366, 768)


def _sanity_json(method, resolution, finals, constant=0):
    """A hand-made sanity.json: a cascade whose Spearman of |map| falls from 0.9 to ``finals[-1]``."""
    steps = [{"randomised": name, "mode": "cascading", "spearman_abs": v, "spearman": v / 2, "ssim": v,
              "hog": v / 3, "constant": constant if name == "stem" else 0}
             for name, v in zip(["head", "blocks.1", "blocks.0", "stem"], finals)]
    steps.append({"randomised": "head", "mode": "independent", "spearman_abs": 0.5, "spearman": 0.1, "ssim": 0.4,
                  "hog": 0.2, "constant": 0})
    return {"method": method, "resolution": resolution, "photos": ["a.png", "b.png"], "steps": steps,
            "random_logit": {"randomised": "random logit", "mode": "random-logit", "spearman_abs": 0.4,
                             "spearman": 0.0, "ssim": 0.3, "hog": 0.1, "constant": 0}}


def test_the_report_shows_the_checks_with_their_verdicts(bench_run, tmp_path):
    """sanity.json under the run is found by itself; a known-answer.json folder and a sanity file of another
    name come from --checks; each gets the verdict its numbers call for (bars 0.3 and 95 %)."""
    import json

    from igos.report_checks import find_checks

    (bench_run / "sanity").mkdir()
    (bench_run / "sanity" / "sanity.json").write_text(json.dumps(_sanity_json("igos", 28, [0.9, 0.6, 0.4, 0.21])))
    other = tmp_path / "gradcam-checks.json"
    other.write_text(json.dumps(_sanity_json("gradcam", None, [0.95, 0.9, 0.8, 0.62], constant=1)))
    ka = tmp_path / "ka"
    ka.mkdir()
    (ka / "known-answer.json").write_text(json.dumps(
        {"method": "igospp", "resolution": 14, "region": "quadrant", "fill": "blur", "mean_share": 0.8,
         "min_share": 0.7, "no_positive_mass": 0, "per_photo": {"a": 0.7, "b": 0.9}}))
    (ka / "unrelated.json").write_text("{not json")
    (ka / "sanity.json").write_text(json.dumps({"method": "x", "steps": []}))  # no steps: not a result
    found = find_checks([bench_run, ka, other])
    assert [d["method"] for _, d in found.sanity] == ["igos", "gradcam"] and len(found.known) == 1
    assert main(["report", str(bench_run), "--checks", str(ka), str(other)]) == 0
    text = (bench_run / "report.html").read_text()
    assert "<h2>Checks</h2>" in text and text.index("<h2>Checks</h2>") < text.index("<h2>Per image</h2>")
    assert "igos at 28×28 passes the cascading check" in text and "0.21" in text
    assert "gradcam at native does not pass the cascading check" in text and "0.62" in text
    assert "1 map(s) came out constant" in text
    assert "igospp at 14×14 does not pass the known-answer check: 80.0 %" in text and "70.0 %" in text
    assert text.count('class="cascade"') == 2 and text.count("<polyline") >= 8
    with pytest.raises(FileNotFoundError, match="missing.json"):
        build_report(bench_run, checks=[tmp_path / "missing.json"])


def test_check_verdicts_at_the_bars_and_without_scores():
    from igos.report_checks import CASCADE_PASS, KNOWN_ANSWER_PASS, known_answer_verdict, sanity_verdict

    at_bar = _sanity_json("igos", 7, [0.9, 0.5, 0.4, CASCADE_PASS])
    assert "igos at 7×7 passes" in sanity_verdict(at_bar)
    above = _sanity_json("igos", 7, [0.9, 0.5, 0.4, CASCADE_PASS + 0.01])
    assert "does not pass" in sanity_verdict(above)
    nan = _sanity_json("igos", 7, [0.9, 0.5, 0.4, float("nan")])
    assert "no map of the last step could be scored" in sanity_verdict(nan)
    base = {"method": "igos", "resolution": 28, "region": "box", "fill": "grey", "min_share": None}
    assert "passes the known-answer check: 95.0 %" in known_answer_verdict({**base, "mean_share": KNOWN_ANSWER_PASS})
    assert "does not pass" in known_answer_verdict({**base, "mean_share": 0.949})
    assert "pooled to the map's cells, scores 93.0 %" in known_answer_verdict({**base, "mean_share": 0.9,
                                                                               "reference": 0.93})
    assert "pooled" not in known_answer_verdict({**base, "mean_share": 0.9, "reference": 1.0})
    assert "2.0 % lies on cells out of sight" in known_answer_verdict({**base, "mean_share": 0.9,
                                                                       "mean_out_of_sight": 0.02})
    assert "would score 87.1 %" in known_answer_verdict({**base, "mean_share": 0.9, "reach_reference": 196 / 225})
    assert "would score" not in known_answer_verdict({**base, "mean_share": 0.9, "reach_reference": 1.0})
    assert "no map had positive mass" in known_answer_verdict({**base, "mean_share": None})
    # files with the share in reach are judged on it; the share on the region's own cells is shown beside it
    reach = {**base, "mean_share": 0.871, "mean_in_reach": 0.984, "min_in_reach": 0.93, "mean_out_of_sight": 0.016}
    assert "passes the known-answer check: 98.4 % of its positive mass lies on cells that reach" in \
        known_answer_verdict(reach)
    assert "On the region's own cells: 87.1 %" in known_answer_verdict(reach)
    assert "the lowest photo 93.0 %" in known_answer_verdict(reach)
    assert "does not pass" in known_answer_verdict({**reach, "mean_in_reach": 0.949, "mean_share": 0.99})
