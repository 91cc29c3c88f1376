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
from typing import Any

import numpy as np

from .records import Failure

__all__ = ["ResultStore", "settings_hash", "saliency_from_row", "DB_NAME", "SCHEMA_VERSION"]

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
SCHEMA_VERSION = 2


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


_MIGRATIONS = {1: _migrate_1, 2: _migrate_2}
_JSON_COLUMNS = ("settings", "x", "deletion_curve", "insertion_curve", "saliency_shape")
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
