"""The results store of a benchmark run: one SQLite database, one row per
(image, model, method, variant, resolution, settings hash).

Every row is written in its own transaction as soon as its image is done, so a run killed at any
moment (even with SIGKILL) loses at most the work in flight; ``INSERT OR IGNORE`` on the key
means a resumed run never doubles a row, and changed settings (a new hash) make new rows.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ._version import __version__
from .records import Explanation, Failure

if TYPE_CHECKING:
    from .pipeline import Task

__all__ = ["ResultStore", "settings_hash", "saliency_from_row", "DB_NAME", "SCHEMA_VERSION", "record_to_row",
           "row_key", "resolution_key", "completeness"]

DB_NAME = "results.sqlite"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS results (
    image TEXT NOT NULL,
    model TEXT NOT NULL,
    method TEXT NOT NULL,
    variant TEXT NOT NULL,
    resolution INTEGER NOT NULL,
    settings_hash TEXT NOT NULL,
    settings TEXT NOT NULL,
    target INTEGER,
    target_name TEXT,
    probability REAL,
    deletion REAL,
    insertion REAL,
    x TEXT,
    deletion_curve TEXT,
    insertion_curve TEXT,
    seconds REAL,
    evaluation_seconds REAL,
    forward_images INTEGER,
    backward_images INTEGER,
    final_objective REAL,
    direction_sum REAL,
    path_delta REAL,
    flat INTEGER,
    removals TEXT,
    target_spec TEXT,
    saliency BLOB,
    saliency_shape TEXT,
    version TEXT,
    created REAL,
    PRIMARY KEY (image, model, method, variant, resolution, settings_hash)
);
CREATE TABLE IF NOT EXISTS failures (
    image TEXT NOT NULL,
    model TEXT NOT NULL,
    stage TEXT NOT NULL,
    error TEXT NOT NULL,
    created REAL,
    UNIQUE (image, model, stage)
);
CREATE TABLE IF NOT EXISTS runs (
    started REAL,
    command TEXT,
    version TEXT,
    images_dir TEXT
);
"""

#: the store's schema version (SQLite's ``PRAGMA user_version``): a store opened by this igos is migrated to it
SCHEMA_VERSION = 5


def _migrate_1(db: sqlite3.Connection) -> None:
    """Version 1: the completeness columns (stores of igos ≤ 0.1.0 had none)."""
    have = {r[1] for r in db.execute("PRAGMA table_info(results)")}
    for name in ("direction_sum", "path_delta"):
        if name not in have:
            db.execute(f"ALTER TABLE results ADD COLUMN {name} REAL")


def _migrate_2(db: sqlite3.Connection) -> None:
    """Version 2: one failure per (image, model, stage): older stores held a copy per resume."""
    if any("UNIQUE" in (r[0] or "") for r in db.execute("SELECT sql FROM sqlite_master WHERE name = 'failures'")):
        return
    db.executescript("""
        CREATE TABLE failures_keyed (image TEXT NOT NULL, model TEXT NOT NULL, stage TEXT NOT NULL,
                                     error TEXT NOT NULL, created REAL, UNIQUE (image, model, stage));
        INSERT OR REPLACE INTO failures_keyed SELECT image, model, stage, error, created FROM failures
            ORDER BY created;
        DROP TABLE failures;
        ALTER TABLE failures_keyed RENAME TO failures;
    """)


def _migrate_3(db: sqlite3.Connection) -> None:
    """Version 3: the method's own ``flat`` verdict (older rows: empty; the tables then read the stored map)."""
    if "flat" not in {r[1] for r in db.execute("PRAGMA table_info(results)")}:
        db.execute("ALTER TABLE results ADD COLUMN flat INTEGER")


def _migrate_4(db: sqlite3.Connection) -> None:
    """Version 4: scores under removal operators other than the blur (JSON: ``{"road": {"morf": …}, …}``)."""
    if "removals" not in {r[1] for r in db.execute("PRAGMA table_info(results)")}:
        db.execute("ALTER TABLE results ADD COLUMN removals TEXT")


def _migrate_5(db: sqlite3.Connection) -> None:
    """Version 5: the target's spec (JSON: ``{"kind": "box", "box": […], "label": 3}``; older rows: a class)."""
    if "target_spec" not in {r[1] for r in db.execute("PRAGMA table_info(results)")}:
        db.execute("ALTER TABLE results ADD COLUMN target_spec TEXT")


_MIGRATIONS = {1: _migrate_1, 2: _migrate_2, 3: _migrate_3, 4: _migrate_4, 5: _migrate_5}
_JSON_COLUMNS = ("settings", "x", "deletion_curve", "insertion_curve", "saliency_shape", "removals", "target_spec")
_FILTERS = ("image", "model", "method", "variant", "resolution", "settings_hash")


def settings_hash(settings: dict[str, Any]) -> str:
    """A short stable hash of a JSON-able settings dict."""
    text = json.dumps(settings, sort_keys=True, default=str)
    return hashlib.sha1(text.encode()).hexdigest()[:12]


class ResultStore:
    """The SQLite store of one run folder; a context manager that closes it (``with ResultStore(run) as s:``)."""

    def __init__(self, run_dir: str | Path):
        self.run_dir = Path(run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.path = self.run_dir / DB_NAME
        self.db = sqlite3.connect(self.path, timeout=30)
        try:
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            self._migrate()
        except BaseException:
            self.db.close()
            raise

    def _migrate(self) -> None:
        """Creates the tables, then brings an older store up to :data:`SCHEMA_VERSION`, one version at a time."""
        version = self.db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise ValueError(f"{self.path} was written by a newer igos (store version {version}; this igos reads "
                             f"up to {SCHEMA_VERSION}): upgrade igos to read it")
        with self.db:
            self.db.executescript(_SCHEMA)
            for v in range(version + 1, SCHEMA_VERSION + 1):
                _MIGRATIONS[v](self.db)
            self.db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def __enter__(self) -> ResultStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @classmethod
    def open_existing(cls, run_dir: str | Path) -> ResultStore:
        path = Path(run_dir) / DB_NAME
        if not path.exists():
            raise FileNotFoundError(f"{run_dir}: no {DB_NAME} here; is this a run folder of 'igos bench'?")
        return cls(run_dir)

    def close(self) -> None:
        self.db.close()

    def record_run(self, command: str, version: str, images_dir: str) -> None:
        with self.db:
            self.db.execute("INSERT INTO runs VALUES (?, ?, ?, ?)", (time.time(), command, version, images_dir))

    def done_keys(self) -> set[tuple]:
        rows = self.db.execute("SELECT image, model, method, variant, resolution, settings_hash FROM results")
        return {tuple(r) for r in rows}

    def add(self, row: dict[str, Any], cleared: Iterable[str] = ()) -> bool:
        """Insert one result row in its own transaction; False if the key was already there. The failures of
        its image and model at the stages ``cleared`` (e.g. its task's, ``load``, ``model``) go: it succeeded."""
        cols = list(row)
        values = [json.dumps(v) if isinstance(v, (list, dict)) else v for v in row.values()]
        stages = list(cleared)
        with self.db:
            cur = self.db.execute(
                f"INSERT OR IGNORE INTO results ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})", values
            )
            if stages:
                self.db.execute(f"DELETE FROM failures WHERE image = ? AND model = ? AND stage IN "
                                f"({', '.join('?' * len(stages))})", (row["image"], row["model"], *stages))
        return cur.rowcount == 1

    def add_failure(self, failure: Failure, model: str) -> None:
        """Record (or replace) the failure of an image and model at a stage: one per key, however often a
        resumed run meets it."""
        with self.db:
            self.db.execute("INSERT OR REPLACE INTO failures VALUES (?, ?, ?, ?, ?)",
                            (failure.name, model, failure.stage, failure.error, time.time()))

    def rows(self, **equal: Any) -> list[dict[str, Any]]:
        """Result rows, JSON columns decoded; keyword filters (``method="igos"``, ``resolution=28``, any of
        image, model, method, variant, resolution, settings_hash) keep the rows equal to them."""
        unknown = set(equal) - set(_FILTERS)
        if unknown:
            raise ValueError(f"rows() filters by {', '.join(_FILTERS)}, not {', '.join(sorted(unknown))}")
        where = " AND ".join(f"{k} = ?" for k in equal)
        cur = self.db.cursor()
        cur.row_factory = sqlite3.Row
        out = []
        for r in cur.execute("SELECT * FROM results" + (f" WHERE {where}" if where else ""), tuple(equal.values())):
            d = dict(r)
            for k in _JSON_COLUMNS:
                if d.get(k) is not None:
                    d[k] = json.loads(d[k])
            out.append(d)
        return out

    def set_removals(self, row: dict[str, Any], removals: dict[str, Any]) -> None:
        """Replace a stored row's scores under other removal operators (one transaction)."""
        key = tuple(row[k] for k in _FILTERS)
        with self.db:
            self.db.execute(f"UPDATE results SET removals = ? WHERE {' AND '.join(f'{k} = ?' for k in _FILTERS)}",
                            (json.dumps(removals), *key))

    def failures(self) -> list[Failure]:
        """Every failure recorded, oldest first."""
        return [Failure(image, stage, error, model) for image, model, stage, error in
                self.db.execute("SELECT image, model, stage, error FROM failures ORDER BY created")]


def saliency_from_row(row: dict[str, Any]) -> np.ndarray:
    """The stored saliency map of a result row as float32 ``[h, w]``.

    Maps are stored as float32 (lossless); the first stores held float16 maps, told apart by the blob's length
    (2 bytes per cell instead of 4).
    """
    shape = row["saliency_shape"]
    cells = int(np.prod(shape))
    blob = row["saliency"]
    if len(blob) == 4 * cells:
        dtype = np.float32
    elif len(blob) == 2 * cells:
        dtype = np.float16
    else:
        raise ValueError(f"row {row.get('image')!r}: a {len(blob)}-byte saliency blob does not fit its shape {shape}")
    return np.frombuffer(blob, dtype=dtype).reshape(shape).astype(np.float32)


def resolution_key(resolution: int | tuple[int, int] | None) -> int | str:
    """The store's resolution column: the side of a square map, ``"HxW"`` otherwise, 0 for a method's own."""
    if isinstance(resolution, tuple):
        return resolution[0] if resolution[0] == resolution[1] else f"{resolution[0]}x{resolution[1]}"
    return int(resolution or 0)


def row_key(image: str, model: str, job: Task, key: str) -> tuple:
    """The store's primary key of a row."""
    return image, model, job.method, job.variant, resolution_key(job.resolution), key


def completeness(trace: dict[str, Any]) -> tuple[float | None, float | None]:
    """A row's completeness figures: the sum of the method's integrated gradients and the probability change
    along their path (I-GOS: the first iteration's direction; iGOS++: its deletion path on M = M_d ⊙ M_i;
    Integrated Gradients: the attributions); ``(None, None)`` for methods without one."""
    for total, change in (("ig_sum", "path_delta"), ("ig_sum_deletion", "path_delta_deletion")):
        if trace.get(total) and trace.get(change):
            return float(trace[total][0]), float(trace[change][0])
    if "attribution_sum" in trace and "path_delta" in trace:
        return float(trace["attribution_sum"]), float(trace["path_delta"])
    return None, None


def record_to_row(e: Explanation, job: Task, key: str, settings: dict[str, Any]) -> dict[str, Any]:
    """A store row from a pipeline record; the map is stored losslessly as float32."""
    sal = e.saliency.detach().float().cpu().numpy().astype(np.float32)
    trace = e.trace or {}
    curves = e.curves or {}
    return {
        "image": e.path, "model": e.model, "method": job.method, "variant": job.variant,
        "resolution": resolution_key(job.resolution), "settings_hash": key, "settings": settings, "target": e.target,
        "target_name": e.target_name, "probability": e.probability, "deletion": e.deletion,
        "insertion": e.insertion, "x": curves.get("x"), "deletion_curve": curves.get("deletion"),
        "insertion_curve": curves.get("insertion"), "seconds": e.seconds,
        "evaluation_seconds": e.evaluation_seconds, "forward_images": e.forward_images,
        "backward_images": e.backward_images, "final_objective": trace.get("final_objective"),
        **dict(zip(("direction_sum", "path_delta"), completeness(trace))),
        "flat": None if trace.get("flat") is None else int(bool(trace["flat"])),
        "removals": e.removals, "target_spec": e.target_spec,
        "saliency": sal.tobytes(), "saliency_shape": list(sal.shape), "version": __version__,
        "created": time.time(),
    }
