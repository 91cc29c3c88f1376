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

__all__ = ["ResultStore", "settings_hash", "saliency_from_row", "DB_NAME"]

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
    created REAL
);
CREATE TABLE IF NOT EXISTS runs (
    started REAL,
    command TEXT,
    version TEXT,
    images_dir TEXT
);
"""

# columns added after the first release: (name, type), added to older stores when they are opened
_ADDED_COLUMNS = (("direction_sum", "REAL"), ("path_delta", "REAL"))


def settings_hash(settings: dict[str, Any]) -> str:
    """A short stable hash of a JSON-able settings dict."""
    text = json.dumps(settings, sort_keys=True, default=str)
    return hashlib.sha1(text.encode()).hexdigest()[:12]


class ResultStore:
    """The SQLite store of one run folder."""

    def __init__(self, run_dir: str | Path):
        self.run_dir = Path(run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.path = self.run_dir / DB_NAME
        self.db = sqlite3.connect(self.path, timeout=30)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.executescript(_SCHEMA)
        have = {r[1] for r in self.db.execute("PRAGMA table_info(results)")}
        for name, kind in _ADDED_COLUMNS:  # stores written by earlier versions gain the new columns, empty
            if name not in have:
                self.db.execute(f"ALTER TABLE results ADD COLUMN {name} {kind}")
        self.db.commit()

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

    def add(self, row: dict[str, Any]) -> bool:
        """Insert one result row in its own transaction; False if the key was already there."""
        cols = list(row)
        values = [json.dumps(v) if isinstance(v, (list, dict)) else v for v in row.values()]
        with self.db:
            cur = self.db.execute(
                f"INSERT OR IGNORE INTO results ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})", values
            )
        return cur.rowcount == 1

    def add_failure(self, image: str, model: str, stage: str, error: str) -> None:
        with self.db:
            self.db.execute("INSERT INTO failures VALUES (?, ?, ?, ?, ?)", (image, model, stage, error, time.time()))

    def rows(self, where: str = "", params: Iterable[Any] = ()) -> list[dict[str, Any]]:
        self.db.row_factory = sqlite3.Row
        try:
            cur = self.db.execute(f"SELECT * FROM results {where}", tuple(params))
            out = []
            for r in cur:
                d = dict(r)
                for k in ("settings", "x", "deletion_curve", "insertion_curve", "saliency_shape"):
                    if d.get(k) is not None:
                        d[k] = json.loads(d[k])
                out.append(d)
            return out
        finally:
            self.db.row_factory = None

    def failures(self) -> list[tuple]:
        return list(self.db.execute("SELECT image, model, stage, error FROM failures"))


def saliency_from_row(row: dict[str, Any]) -> np.ndarray:
    """The stored saliency map of a result row as float32 ``[h, w]``.

    Maps are stored as float32 (lossless); stores written by igos ≤ 0.1.0 hold float16 maps, told
    apart by the blob's length (2 bytes per cell instead of 4).
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
