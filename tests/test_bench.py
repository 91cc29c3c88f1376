"""igos bench: the results store, resuming after SIGKILL, tables."""

import importlib
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from agreement import assert_runs_agree, store_rows

from igos.bench import BenchSpec, plan_jobs, read_labels, run_bench
from igos.cli import main
from igos.store import ResultStore

TESTS = Path(__file__).parent
SRC = TESTS.parent / "src"


def bench_args(image_dir, out, model="tinymodels:tiny_classifier"):
    return ["bench", str(image_dir), "--models", model, "--methods", "igos", "gradient",
            "--resolutions", "7", "--out", str(out), "--images-per-batch", "1",
            "--set", "igos.iterations=3", "igos.steps=4", "igos.batch_size=4"]


def env():
    e = dict(os.environ)
    e["PYTHONPATH"] = os.pathsep.join([str(SRC), str(TESTS), e.get("PYTHONPATH", "")])
    return e


def rows_of(run_dir):
    con = sqlite3.connect(Path(run_dir) / "results.sqlite")
    rows = con.execute("SELECT image, model, method, variant, resolution, settings_hash, target, deletion, insertion "
                       "FROM results ORDER BY image, method").fetchall()
    con.close()
    return rows


def test_plan_jobs_per_method_kind():
    spec = BenchSpec(Path("."), ["m"], ["igos", "gradcam", "ig"], [224, 28], ablation=True, objective=True)
    labels = {j.label for j in plan_jobs(spec)}
    assert {"igos", "gradcam", "ig", "igos/no-tv", "igos/no-noise", "igos/fixed-step", "mask/same-lambda"} == labels
    jobs = plan_jobs(spec)
    assert sum(1 for j in jobs if j.method == "gradcam") == 1 and any(j.resolution == 0 for j in jobs)
    with pytest.raises(ValueError, match="unknown method"):
        plan_jobs(BenchSpec(Path("."), ["m"], ["nope"], [7]))


def test_killed_run_resumes_to_the_rows_of_an_uninterrupted_run(tmp_path, image_dir):
    """The slow model (10 ms a call) leaves time to kill the run mid-way on any machine; rows computed in
    separate processes are compared by what a user sees (tests/agreement.py), not bit for bit."""
    slow = "tinymodels:slow_classifier"
    full = tmp_path / "full"
    subprocess.run([sys.executable, "-m", "igos.cli", *bench_args(image_dir, full, slow)], env=env(), check=True,
                   capture_output=True, timeout=600)
    expected = store_rows(full)
    assert len(expected) == 12  # 6 readable images x 2 methods

    run = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-m", "igos.cli", *bench_args(image_dir, run, slow)], env=env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    db = run / "results.sqlite"
    deadline = time.time() + 300
    killed_at = None
    while time.time() < deadline and proc.poll() is None:
        if db.exists():
            try:
                n = len(rows_of(run))
            except sqlite3.Error:
                n = 0
            if 2 <= n < 12:
                proc.send_signal(signal.SIGKILL)
                killed_at = n
                break
        time.sleep(0.02)
    proc.wait(timeout=60)
    assert killed_at is not None, "the run finished before it could be killed"
    partial = rows_of(run)
    assert 2 <= len(partial) < 12

    out = subprocess.run([sys.executable, "-m", "igos.cli", *bench_args(image_dir, run, slow)], env=env(),
                         check=True, capture_output=True, text=True, timeout=600)
    assert f"{12 - len(partial)} rows written, {len(partial)} already there" in out.stdout
    resumed = store_rows(run)
    assert_runs_agree(resumed, expected)  # none lost, none doubled, the same explanations

    # a third run computes nothing
    again = subprocess.run([sys.executable, "-m", "igos.cli", *bench_args(image_dir, run, slow)], env=env(),
                           check=True, capture_output=True, text=True, timeout=600)
    assert "0 rows written" in again.stdout
    assert {k: r["created"] for k, r in store_rows(run).items()} == {k: r["created"] for k, r in resumed.items()}


def test_changed_settings_make_new_rows_and_tables_read_them(tmp_path, image_dir, monkeypatch, capsys):
    monkeypatch.syspath_prepend(str(TESTS))
    run = tmp_path / "run"
    spec = BenchSpec(image_dir, ["tinymodels:tiny_classifier"], ["gradient"], [7], limit=4)  # broken.png first
    s1 = run_bench(spec, run)
    assert s1.rows_written == 3 and s1.images_failed == 1
    spec.options = {"gradient": {"batch_size": 2}}
    s2 = run_bench(spec, run)
    assert s2.rows_written == 3  # a new settings hash: new rows, old ones kept
    store = ResultStore(run)
    assert len(store.rows()) == 6
    store.close()
    assert main(["table", str(run), "--per-image"]) == 0
    text = capsys.readouterr().out
    assert "lower is better" in text and "higher is better" in text and "Gradient" in text
    assert "broken.png" in text  # failures are listed
    assert "3 row(s) computed under earlier settings" in text and "(n=3)" in text and "(n=6)" not in text
    assert (run / "table.md").exists() and (run / "table.csv").exists()
    raw = (run / "table.csv").read_bytes()
    assert b"\r" not in raw and raw.count(b"\n") > 3  # one line ending throughout
    # --paired names a method the run does not hold: an error naming it and what the run holds
    assert main(["table", str(run), "--paired", "igospp", "gradient"]) == 2
    err = capsys.readouterr().err
    assert "--paired igospp:" in err and "it holds gradient" in err


def test_a_changed_library_default_makes_new_rows(tmp_path, image_dir, monkeypatch):
    """Rows record every parameter a method ran with, defaults included: changing a default
    (here I-GOS's λ at 7×7) must not reuse rows computed under the old one."""
    igos_module = importlib.import_module("igos.methods.defaults")  # I-GOS's tuned per-resolution defaults
    monkeypatch.syspath_prepend(str(TESTS))
    old = igos_module.REGULARISATION[7]
    run = tmp_path / "run"
    spec = BenchSpec(image_dir, ["tinymodels:tiny_classifier"], ["igos"], [7], limit=3,
                     options={"igos": {"iterations": 2, "steps": 3}})
    assert run_bench(spec, run).rows_written == 2
    assert run_bench(spec, run).rows_written == 0  # same defaults: nothing new
    monkeypatch.setitem(igos_module.REGULARISATION, 7, (0.5, 2.5))
    assert run_bench(spec, run).rows_written == 2
    store = ResultStore(run)
    params = sorted((r["settings"]["parameters"]["l1"], r["settings"]["parameters"]["tv"]) for r in store.rows())
    store.close()
    assert params == sorted([(0.5, 2.5), (0.5, 2.5), old, old])


def test_failures_are_recorded_and_an_all_failed_run_exits_nonzero(tmp_path, capsys):
    d = tmp_path / "bad"
    d.mkdir()
    (d / "a.png").write_text("nope")
    code = main(["bench", str(d), "--models", "tinymodels:tiny_classifier", "--methods", "gradient",
                 "--out", str(tmp_path / "r")])
    assert code == 1
    assert "every image failed" in capsys.readouterr().err


def test_label_file(tmp_path):
    f = tmp_path / "labels.csv"
    f.write_text("file,label\nimg0.png,3\nimg1,n01443537\n")
    assert read_labels(f) == {"img0.png": 3, "img1": 1}
    f.write_text("img0.png,4\nimg1.png,banana\n")
    with pytest.raises(ValueError, match="line 2"):
        read_labels(f)


def test_bench_lists_flat_igos_maps(tmp_path, image_dir, monkeypatch, capsys):
    monkeypatch.syspath_prepend(str(TESTS))
    code = main(["bench", str(image_dir), "--models", "tinymodels:indifferent", "--methods", "igos",
                 "--resolutions", "7", "--limit", "3", "--out", str(tmp_path / "r"),
                 "--set", "igos.iterations=2", "igos.steps=3"])
    out = capsys.readouterr().out
    assert code == 0
    assert "warning: 2 I-GOS map(s) are flat" in out and "img0.png (igos 7)" in out  # broken.png sorts first
    assert "igos.stall_retries=2" in out


def test_rows_carry_completeness_and_older_stores_are_migrated(tmp_path, image_dir, monkeypatch):
    from igos.store import SCHEMA_VERSION

    monkeypatch.syspath_prepend(str(TESTS))
    run = tmp_path / "run"
    with ResultStore(run) as store:  # made into a store of the first version: no completeness, failures unkeyed
        store.db.execute("ALTER TABLE results DROP COLUMN direction_sum")
        store.db.execute("ALTER TABLE results DROP COLUMN path_delta")
        store.db.executescript("DROP TABLE failures; CREATE TABLE failures (image TEXT NOT NULL, model TEXT NOT "
                               "NULL, stage TEXT NOT NULL, error TEXT NOT NULL, created REAL);")
        for t in (1.0, 2.0):  # what two runs of an older igos left
            store.db.execute("INSERT INTO failures VALUES ('broken.png', 'm', 'load', ?, ?)", (f"error {t}", t))
        store.db.execute("PRAGMA user_version = 0")
        store.db.commit()
    with ResultStore(run) as store:
        assert store.db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert [(f.name, f.error) for f in store.failures()] == [("broken.png", "error 2.0")]  # the latest, once
    spec = BenchSpec(image_dir, ["tinymodels:tiny_classifier"], ["igos", "gradient"], [7], limit=3,
                     options={"igos": {"iterations": 2, "steps": 3}})
    assert run_bench(spec, run).rows_written == 4
    with ResultStore(run) as store:
        rows = store.rows()
    for r in rows:
        if r["method"] == "igos":  # the first direction's sum and the probability change along its path
            assert r["direction_sum"] is not None and -1 <= r["path_delta"] <= 1 and r["path_delta"] != 0
        else:
            assert r["direction_sum"] is None and r["path_delta"] is None


def test_bench_takes_the_model_options_explain_takes_and_hashes_them(tmp_path, image_dir, monkeypatch, capsys):
    """--model-arg and --input-size reach the model; other values make other rows (not --compile, which changes no
    value); Ray units carry them."""
    monkeypatch.syspath_prepend(str(TESTS))
    run = tmp_path / "run"
    base = ["bench", str(image_dir), "--models", "tinymodels:sized_classifier", "--methods", "gradient",
            "--out", str(run), "--limit", "3"]
    assert main([*base, "--model-arg", "classes=3", "--input-size", "24"]) == 0
    with ResultStore.open_existing(run) as store:
        rows = store.rows()
    assert len(rows) == 2 and all(r["saliency_shape"] == [24, 24] and 0 <= r["target"] < 3 for r in rows)
    assert rows[0]["settings"]["model_options"] == {"input_size": 24, "model_args": {"classes": 3}}
    assert main([*base, "--model-arg", "classes=3", "--input-size", "24"]) == 0
    assert "0 rows written" in capsys.readouterr().out
    assert main([*base, "--model-arg", "classes=3", "--input-size", "24", "--compile"]) == 0  # same values: resumed
    assert "0 rows written" in capsys.readouterr().out
    assert main([*base, "--model-arg", "classes=2", "--input-size", "24"]) == 0  # another model: new rows
    with ResultStore.open_existing(run) as store:
        assert len(store.rows()) == 4
    assert main([*base, "--model-arg", "classes=2", "--input-size", "24", "--dtype", "tf32"]) == 0  # another
    with ResultStore.open_existing(run) as store:  # precision: new rows
        assert len(store.rows()) == 6
    import igos.distributed as distributed

    sent = []

    def capture(units, *args, **kwargs):  # what the bench sends to Ray, without starting it
        sent.extend(units)
        return iter(())

    monkeypatch.setattr(distributed, "ray_stream", capture)
    spec = BenchSpec(image_dir, ["tinymodels:sized_classifier"], ["gradient"], [7], limit=2,
                     model_options={"model_args": {"classes": 3}})
    run_bench(spec, tmp_path / "ray", ray=distributed.RayOptions(workers=1))
    assert sent and all(dict(u.model_options) == {"dtype": "float32", "model_args": (("classes", 3),)}
                        for u in sent)
