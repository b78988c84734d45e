"""Run records in SQLite: every job, model and endpoint created, with provider ids and states.

The database lives in ``$MCV_HOME/runs.sqlite`` (``MCV_HOME`` defaults to
``$XDG_DATA_HOME/mcv``, i.e. ``~/.local/share/mcv``). Any ``mcv`` process can read what
another one wrote: ``mcv status JOB`` from a new shell finds a job submitted earlier.

Writes are single statements or short transactions (WAL journal, busy timeout), so a
crash never leaves a half-written record: a job inserted before submission and never
updated stays in ``SUBMITTING`` and is reported as such.
"""

from __future__ import annotations

import json
import os
import secrets
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from multicloud_cv.errors import NotFound

SCHEMA_VERSION = 1

_DDL = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY, command TEXT NOT NULL, created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY, run_id TEXT, provider TEXT NOT NULL, native_id TEXT,
    state TEXT NOT NULL, native_state TEXT, task TEXT, dataset TEXT,
    spec TEXT NOT NULL DEFAULT '{}', model_id TEXT, failure_reason TEXT,
    metrics TEXT NOT NULL DEFAULT '{}', cost_usd REAL, progress TEXT,
    created_at REAL NOT NULL, updated_at REAL NOT NULL, finished_at REAL
);
CREATE TABLE IF NOT EXISTS models (
    id TEXT PRIMARY KEY, provider TEXT NOT NULL, job_id TEXT, native_id TEXT, task TEXT,
    labels TEXT NOT NULL DEFAULT '[]', artifact TEXT, info TEXT NOT NULL DEFAULT '{}',
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS endpoints (
    id TEXT PRIMARY KEY, run_id TEXT, provider TEXT NOT NULL, model_id TEXT NOT NULL,
    native_id TEXT, state TEXT NOT NULL, native_state TEXT, url TEXT, cost_per_hour_usd REAL,
    failure_reason TEXT, info TEXT NOT NULL DEFAULT '{}',
    created_at REAL NOT NULL, updated_at REAL NOT NULL, expires_at REAL
);
"""


def mcv_home() -> Path:
    """The data directory: ``$MCV_HOME``, else ``$XDG_DATA_HOME/mcv``, else ``~/.local/share/mcv``."""
    if os.environ.get("MCV_HOME"):
        return Path(os.environ["MCV_HOME"]).expanduser()
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "mcv"


def new_id(kind: str) -> str:
    """A short, sortable, readable id such as ``job-20261123-1a2b3c``."""
    return f"{kind}-{time.strftime('%Y%m%d', time.gmtime())}-{secrets.token_hex(3)}"


def to_datetime(timestamp: float | None) -> datetime | None:
    """Epoch seconds to an aware UTC datetime."""
    return None if timestamp is None else datetime.fromtimestamp(timestamp, tz=UTC)


@dataclass
class JobRecord:
    """A row of ``jobs``."""

    id: str
    provider: str
    state: str
    run_id: str | None = None
    native_id: str | None = None
    native_state: str | None = None
    task: str | None = None
    dataset: str | None = None
    spec: dict[str, Any] = field(default_factory=dict)
    model_id: str | None = None
    failure_reason: str | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    cost_usd: float | None = None
    progress: str | None = None
    created_at: float = 0.0
    updated_at: float = 0.0
    finished_at: float | None = None


@dataclass
class ModelRecord:
    """A row of ``models``: a trained model, where its artifact is and its class names."""

    id: str
    provider: str
    job_id: str | None = None
    native_id: str | None = None
    task: str | None = None
    labels: list[str] = field(default_factory=list)
    artifact: str | None = None
    info: dict[str, Any] = field(default_factory=dict)
    created_at: float = 0.0


@dataclass
class EndpointRecord:
    """A row of ``endpoints``."""

    id: str
    provider: str
    model_id: str
    state: str
    run_id: str | None = None
    native_id: str | None = None
    native_state: str | None = None
    url: str | None = None
    cost_per_hour_usd: float | None = None
    failure_reason: str | None = None
    info: dict[str, Any] = field(default_factory=dict)
    created_at: float = 0.0
    updated_at: float = 0.0
    expires_at: float | None = None


_JSON_FIELDS = {"spec", "metrics", "labels", "info"}


class RunStore:
    """The SQLite record of runs, jobs, models and endpoints. Safe to use from several processes."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or (mcv_home() / "runs.sqlite")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, timeout=30.0)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.executescript(_DDL)
            conn.execute("INSERT OR IGNORE INTO meta(key, value) VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
            conn.commit()
        finally:
            conn.close()

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        conn = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
        try:
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA busy_timeout=30000")
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        finally:
            conn.close()

    # -- generic helpers -------------------------------------------------------------------------

    def _insert(self, table: str, record: Any) -> None:
        values = {k: (json.dumps(v) if k in _JSON_FIELDS else v) for k, v in record.__dict__.items()}
        columns = ", ".join(values)
        marks = ", ".join("?" for _ in values)
        with self._connect() as conn:
            conn.execute(f"INSERT INTO {table} ({columns}) VALUES ({marks})", tuple(values.values()))

    def _update(self, table: str, record_id: str, changes: dict[str, Any]) -> None:
        if not changes:
            return
        values = {k: (json.dumps(v) if k in _JSON_FIELDS else v) for k, v in changes.items()}
        assignments = ", ".join(f"{k} = ?" for k in values)
        with self._connect() as conn:
            cursor = conn.execute(f"UPDATE {table} SET {assignments} WHERE id = ?", (*values.values(), record_id))
            if cursor.rowcount == 0:
                raise NotFound(f"no {table[:-1]} '{record_id}' in the run records")

    def _get(self, table: str, record_id: str) -> sqlite3.Row | None:
        with self._connect() as conn:
            row: sqlite3.Row | None = conn.execute(f"SELECT * FROM {table} WHERE id = ?", (record_id,)).fetchone()
            return row

    def _select(self, table: str, where: str = "", args: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        with self._connect() as conn:
            return list(conn.execute(f"SELECT * FROM {table} {where} ORDER BY created_at", args))

    @staticmethod
    def _decode(row: sqlite3.Row) -> dict[str, Any]:
        columns = row.keys()  # sqlite3.Row is not a dict: iterating it gives values
        return {k: (json.loads(row[k]) if k in _JSON_FIELDS else row[k]) for k in columns}

    def delete(self, table: str, record_id: str) -> None:
        """Remove a record that stands for nothing (a request refused before any resource existed)."""
        if table not in ("jobs", "models", "endpoints"):
            raise ValueError(f"unknown table {table}")
        with self._connect() as conn:
            conn.execute(f"DELETE FROM {table} WHERE id = ?", (record_id,))

    # -- runs ------------------------------------------------------------------------------------

    def new_run(self, command: str) -> str:
        """Record a new run (one CLI invocation or API session) and return its id."""
        run_id = new_id("run")
        with self._connect() as conn:
            conn.execute("INSERT INTO runs (id, command, created_at) VALUES (?, ?, ?)", (run_id, command, time.time()))
        return run_id

    # -- jobs ------------------------------------------------------------------------------------

    def add_job(self, record: JobRecord) -> JobRecord:
        """Insert a job; timestamps are set here."""
        now = time.time()
        record.created_at = record.created_at or now
        record.updated_at = now
        self._insert("jobs", record)
        return record

    def update_job(self, job_id: str, **changes: Any) -> JobRecord:
        """Update some fields of a job and return the new record."""
        changes["updated_at"] = time.time()
        self._update("jobs", job_id, changes)
        return self.job(job_id)

    def job(self, job_id: str) -> JobRecord:
        """The job with this id, or :class:`NotFound`."""
        row = self._get("jobs", job_id)
        if row is None:
            raise NotFound(f"no job '{job_id}' in the run records ({self.path}); list them with `mcv status`")
        return JobRecord(**self._decode(row))

    def jobs(self, provider: str | None = None) -> list[JobRecord]:
        """Every job, oldest first, optionally of one provider."""
        rows = self._select("jobs", "WHERE provider = ?", (provider,)) if provider else self._select("jobs")
        return [JobRecord(**self._decode(r)) for r in rows]

    # -- models ----------------------------------------------------------------------------------

    def add_model(self, record: ModelRecord) -> ModelRecord:
        """Insert a model."""
        record.created_at = record.created_at or time.time()
        self._insert("models", record)
        return record

    def model(self, model_id: str) -> ModelRecord:
        """The model with this id, or :class:`NotFound`."""
        row = self._get("models", model_id)
        if row is None:
            raise NotFound(f"no model '{model_id}' in the run records ({self.path}); train one with `mcv train`")
        return ModelRecord(**self._decode(row))

    def update_model(self, model_id: str, **changes: Any) -> ModelRecord:
        """Update some fields of a model (``info``, ``artifact``...) and return the new record."""
        self._update("models", model_id, changes)
        return self.model(model_id)

    def models(self) -> list[ModelRecord]:
        """Every model, oldest first."""
        return [ModelRecord(**self._decode(r)) for r in self._select("models")]

    # -- endpoints -------------------------------------------------------------------------------

    def add_endpoint(self, record: EndpointRecord) -> EndpointRecord:
        """Insert an endpoint."""
        now = time.time()
        record.created_at = record.created_at or now
        record.updated_at = now
        self._insert("endpoints", record)
        return record

    def update_endpoint(self, endpoint_id: str, **changes: Any) -> EndpointRecord:
        """Update some fields of an endpoint and return the new record."""
        changes["updated_at"] = time.time()
        self._update("endpoints", endpoint_id, changes)
        return self.endpoint(endpoint_id)

    def endpoint(self, endpoint_id: str) -> EndpointRecord:
        """The endpoint with this id, or :class:`NotFound`."""
        row = self._get("endpoints", endpoint_id)
        if row is None:
            raise NotFound(
                f"no endpoint '{endpoint_id}' in the run records ({self.path}); list them with `mcv endpoints`"
            )
        return EndpointRecord(**self._decode(row))

    def endpoints(self, include_deleted: bool = False) -> list[EndpointRecord]:
        """Endpoints, oldest first; deleted ones only when asked."""
        rows = self._select("endpoints") if include_deleted else self._select("endpoints", "WHERE state != 'DELETED'")
        return [EndpointRecord(**self._decode(r)) for r in rows]
