"""``igos bench --ray``: the same rows as the plain run, retries of dead workers, a resumable driver,
a two-node cluster. Ray runs locally (the tiny models need no downloads)."""

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from agreement import assert_runs_agree, store_rows

ray = pytest.importorskip("ray", reason="Ray is the optional extra igos[ray]")

from igos.bench import BenchSpec, run_bench  # noqa: E402
from igos.distributed import RayOptions  # noqa: E402
from igos.store import ResultStore  # noqa: E402

TESTS = Path(__file__).parent
SRC = TESTS.parent / "src"
OPTIONS = {"igos": {"iterations": 3, "steps": 4, "batch_size": 4}}


@pytest.fixture
def worker_env(monkeypatch):
    """Ray workers import the tests' model factories: they inherit PYTHONPATH from the driver."""
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(SRC), str(TESTS), os.environ.get("PYTHONPATH", "")]))
    yield
    ray.shutdown()


def spec_for(image_dir, model="tinymodels:tiny_classifier"):
    return BenchSpec(image_dir, [model], ["igos", "gradient"], [7, 5], images_per_batch=2, options=OPTIONS)


def table(run_dir):
    store = ResultStore.open_existing(run_dir)
    rows = store.rows()
    store.close()
    return {(r["image"], r["method"], r["variant"], r["resolution"], r["settings_hash"]): r for r in rows}


def test_two_workers_give_the_rows_of_the_plain_run(image_dir, tmp_path, worker_env):
    plain = run_bench(spec_for(image_dir), tmp_path / "plain")
    summary = run_bench(spec_for(image_dir), tmp_path / "ray", ray=RayOptions(workers=2))
    expected = 6 * 3  # 6 readable images × (igos at 7 and 5, gradient once)
    assert plain.rows_written == summary.rows_written == expected
    assert summary.ray.units_done == summary.ray.units_total == 4 * 3 and summary.ray.slots == 2  # 7 files / 2
    assert summary.images_failed == plain.images_failed == 1  # broken.png, recorded, the run went on
    for run in ("plain", "ray"):  # once, although each of its units on Ray read it
        store = ResultStore.open_existing(tmp_path / run)
        assert [f.name for f in store.failures()] == ["broken.png"]
        store.close()
    # the workers run one torch thread each, the plain run all of them: compared by what a user sees
    assert_runs_agree(store_rows(tmp_path / "plain"), store_rows(tmp_path / "ray"))
    again = run_bench(spec_for(image_dir), tmp_path / "ray", ray=RayOptions(workers=2))
    assert again.rows_written == 0 and again.rows_skipped == expected


@pytest.mark.slow
def test_a_worker_killed_mid_unit_is_retried_and_no_row_is_lost_or_doubled(image_dir, tmp_path, worker_env,
                                                                           monkeypatch):
    marker = tmp_path / "died"
    monkeypatch.setenv("IGOS_TEST_DIE_MARKER", str(marker))
    summary = run_bench(spec_for(image_dir, "tinymodels:dies_once"), tmp_path / "run",
                        ray=RayOptions(workers=2, max_retries=2))
    assert marker.exists()  # a worker did die
    assert summary.ray.units_failed == 0 and summary.rows_written == 18
    con = sqlite3.connect(tmp_path / "run" / "results.sqlite")
    assert con.execute("SELECT COUNT(*) FROM results").fetchone()[0] == 18
    con.close()


@pytest.mark.slow
def test_a_driver_killed_mid_run_resumes_where_it_stopped(image_dir, tmp_path):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(SRC), str(TESTS), os.environ.get("PYTHONPATH", "")]))
    run_dir = tmp_path / "run"
    args = [sys.executable, "-m", "igos.cli", "bench", str(image_dir), "--models", "tinymodels:slow_classifier",
            "--methods", "igos", "--resolutions", "7", "5", "--out", str(run_dir), "--images-per-batch", "1",
            "--set", "igos.iterations=6", "igos.steps=4", "--ray", "--workers", "2"]
    proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    db = run_dir / "results.sqlite"
    def count() -> int:
        if not db.exists():
            return 0
        con = sqlite3.connect(db)
        try:
            return con.execute("SELECT COUNT(*) FROM results").fetchone()[0]
        except sqlite3.OperationalError:
            return 0
        finally:
            con.close()

    deadline = time.time() + 300  # Ray's start-up is in it: generous, the slow model keeps the run long
    while time.time() < deadline and count() < 2 and proc.poll() is None:
        time.sleep(0.3)
    os.killpg(proc.pid, signal.SIGKILL)  # the driver and the local Ray it started
    proc.wait()
    rows = count()  # after the kill: what the resumed run finds
    assert 2 <= rows < 12, "the run was not interrupted mid-way"
    done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    con = sqlite3.connect(db)
    total, distinct = con.execute("SELECT COUNT(*), COUNT(DISTINCT image || method || resolution) FROM results"
                                  ).fetchone()
    con.close()
    assert total == distinct == 12
    assert f"{12 - rows} rows written, {rows} already there" in done.stdout


@pytest.mark.slow
def test_a_two_node_cluster_runs_a_small_grid(image_dir, tmp_path, worker_env):
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    cluster.add_node(num_cpus=1)
    try:
        cluster.wait_for_nodes()
        summary = run_bench(spec_for(image_dir), tmp_path / "run", ray=RayOptions(address=cluster.address))
        assert summary.rows_written == 18 and summary.ray.slots == 2 and summary.ray.units_failed == 0
        assert len(table(tmp_path / "run")) == 18
    finally:
        ray.shutdown()
        cluster.shutdown()


def test_explain_on_ray_writes_the_maps_of_the_plain_run(image_dir, tmp_path, worker_env):
    from igos.cli import main

    files = [str(image_dir / f"img{i}.png") for i in range(3)]
    base = ["explain", *files, "--model", "tinymodels:tiny_classifier", "--resolution", "5", "--evaluate",
            "--images-per-batch", "2", "--set", "iterations=2", "steps=3"]
    assert main([*base, "--out", str(tmp_path / "plain")]) == 0
    assert main([*base, "--out", str(tmp_path / "ray"), "--ray", "--workers", "2"]) == 0
    import igos

    plain = {r["path"]: r for r in igos.load_explanations(tmp_path / "plain").records}
    on_ray = {r["path"]: r for r in igos.load_explanations(tmp_path / "ray").records}
    assert plain.keys() == on_ray.keys() and len(plain) == 3

    def rows(records):
        return {p: {"target": r["target"], "deletion": r["deletion"]["auc"], "insertion": r["insertion"]["auc"],
                    "saliency": r["saliency"]} for p, r in records.items()}

    assert_runs_agree(rows(plain), rows(on_ray))  # one thread per worker against all of them
