"""The job store: one SQLite database in the server's data folder.

Every job (one uploaded image or video with its options) is a row; its state moves
``queued → running → done | failed | cancelled``. Because the rows live on disk, a restarted
server lists every earlier job and runs the queued ones; :meth:`JobStore.recover` puts back in the
queue any job that was ``running`` when the previous server died.

The database runs in WAL mode (readers never wait for the worker that writes progress) and is
shared by the request handlers and the worker threads through one connection guarded by a lock;
each method is one short transaction.
"""

from __future__ import annotations

import builtins
import json
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mattekit.plan import OUTPUTS

SCHEMA_VERSION = 2  # 2: the ``warning`` column

STATES = ("queued", "running", "done", "failed", "cancelled")
FINAL_STATES = ("done", "failed", "cancelled")

# A job interrupted this many times by a dying server is failed instead of re-run (a job that
# crashes the server would otherwise crash it again at every start).
MAX_ATTEMPTS = 3

# what an output file is served as, by its suffix (the only types a row's outputs may name)
MEDIA_TYPES = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".mp4": "video/mp4",
    ".webm": "video/webm",
    ".mov": "video/quicktime",
    ".gif": "image/gif",
    ".zip": "application/zip",
}

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id               TEXT PRIMARY KEY,
    kind             TEXT NOT NULL,              -- image | video
    state            TEXT NOT NULL,              -- queued | running | done | failed | cancelled
    created          REAL NOT NULL,              -- unix time, seconds
    started          REAL,
    finished         REAL,
    filename         TEXT NOT NULL,              -- the name the user uploaded (display only)
    input            TEXT NOT NULL,              -- file name inside the job folder
    media            TEXT NOT NULL DEFAULT '{}', -- JSON: width, height, frames, fps of the input
    options          TEXT NOT NULL DEFAULT '{}', -- JSON: outputs, background, downsample_ratio...
    outputs          TEXT NOT NULL DEFAULT '[]', -- JSON list of {name, media_type, bytes}
    frames_done      INTEGER NOT NULL DEFAULT 0,
    frames_total     INTEGER,
    fps              REAL,
    error            TEXT,
    note             TEXT,
    warning          TEXT,                       -- what went wrong without failing the job
    attempts         INTEGER NOT NULL DEFAULT 0,
    cancel_requested INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS jobs_state_created ON jobs (state, created);
"""


# SQLite's primary result codes for a database that cannot be used although it may be intact
_CANNOT_USE = {
    sqlite3.SQLITE_IOERR,
    sqlite3.SQLITE_CANTOPEN,
    sqlite3.SQLITE_READONLY,
    sqlite3.SQLITE_FULL,
    sqlite3.SQLITE_PERM,
    sqlite3.SQLITE_BUSY,
    sqlite3.SQLITE_LOCKED,
    sqlite3.SQLITE_NOLFS,
}


class StoreError(Exception):
    """The database file cannot be used (not SQLite, damaged, unreadable).

    ``str()`` is one line, ``<path>: <problem>``; ``path`` and ``problem`` are also attributes (the
    CLI puts ``path`` in its own error line).
    """

    def __init__(self, path: str | Path, problem: str):
        super().__init__(f"{path}: {problem}")
        self.path, self.problem = Path(path), problem


class DamagedJob(Exception):
    """A row whose values do not make a job (edited or damaged on disk); ``str()`` says why."""

    def __init__(self, job_id: str, problem: str):
        super().__init__(f"job {job_id}: {problem}")
        self.job_id, self.problem = job_id, problem


@dataclass
class Job:
    """One row of the ``jobs`` table (see the schema above for the meaning of each field)."""

    id: str
    kind: str
    state: str
    created: float
    filename: str
    input: str
    media: dict[str, Any] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)
    outputs: list[dict[str, Any]] = field(default_factory=list)
    started: float | None = None
    finished: float | None = None
    frames_done: int = 0
    frames_total: int | None = None
    fps: float | None = None
    error: str | None = None
    note: str | None = None
    warning: str | None = None
    attempts: int = 0
    cancel_requested: bool = False

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> Job:
        """The job of one row.

        Raises:
            DamagedJob: a value of the wrong type or JSON that does not parse.
        """
        data = dict(row)
        job_id = str(data.get("id"))
        try:
            json_columns: tuple[tuple[str, type], ...] = (("media", dict), ("options", dict), ("outputs", list))
            for key, kind in json_columns:
                data[key] = json.loads(data[key])
                if not isinstance(data[key], kind):
                    raise ValueError(f"{key} is not a JSON {kind.__name__}")
            for entry in data["outputs"]:
                _check_output(entry)
            for key, kinds in _COLUMN_TYPES.items():
                if not isinstance(data[key], kinds) or isinstance(data[key], bool):
                    raise ValueError(f"{key} is {type(data[key]).__name__}")
            if data["state"] not in STATES or data["kind"] not in ("image", "video"):
                raise ValueError(f"state {data['state']!r} / kind {data['kind']!r} unknown")
        except (TypeError, ValueError) as exc:  # json.JSONDecodeError is a ValueError
            raise DamagedJob(job_id, str(exc).splitlines()[0][:200]) from None
        except RecursionError:  # JSON nested deeper than Python's recursion limit
            raise DamagedJob(job_id, "its JSON is nested too deeply") from None
        data["cancel_requested"] = bool(data["cancel_requested"])
        return cls(**data)


def _check_output(entry: object) -> None:
    """Raise ``ValueError`` unless ``entry`` is an output as the server writes it: ``name`` a plain
    file name, ``kind`` one of the outputs, ``media_type`` the one its suffix is served as, and
    ``bytes`` a size (the API shows and serves every field, so none may be missing or foreign)."""
    if not isinstance(entry, dict):
        raise ValueError("outputs has an entry that is not an object")
    name = entry.get("name")
    if not isinstance(name, str) or not name or name in (".", "..") or "/" in name or "\\" in name:
        raise ValueError(f"outputs has an entry whose name is not a file name ({str(name)[:60]!r})")
    if entry.get("kind") not in OUTPUTS:
        raise ValueError(f"output {name[:60]!r} has kind {str(entry.get('kind'))[:30]!r}")
    if entry.get("media_type") != MEDIA_TYPES.get(Path(name).suffix.lower(), "application/octet-stream"):
        raise ValueError(f"output {name[:60]!r} has media type {str(entry.get('media_type'))[:40]!r}")
    size = entry.get("bytes")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise ValueError(f"output {name[:60]!r} has size {str(size)[:30]!r}")


_NUMBER = (int, float)
_COLUMN_TYPES: dict[str, type | tuple[type, ...]] = {
    "id": str,
    "kind": str,
    "state": str,
    "created": _NUMBER,
    "filename": str,
    "input": str,
    "started": (*_NUMBER, type(None)),
    "finished": (*_NUMBER, type(None)),
    "frames_done": int,
    "frames_total": (int, type(None)),
    "fps": (*_NUMBER, type(None)),
    "error": (str, type(None)),
    "note": (str, type(None)),
    "warning": (str, type(None)),
    "attempts": int,
    "cancel_requested": int,
}


def new_job_id() -> str:
    """A fresh job id: 32 lowercase hex digits (a random UUID)."""
    return uuid.uuid4().hex


class JobStore:
    """Jobs in an SQLite file.

    Args:
        path: the database file; created with its folder when missing. A version-1 database gets
            the ``warning`` column.

    Raises:
        StoreError: the file is not an SQLite database, or not one with a ``jobs`` table of this
            shape, or cannot be opened.

    All methods are thread-safe.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        try:
            self._conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=30.0)
        except sqlite3.Error as exc:
            raise StoreError(self.path, f"cannot open the job database ({exc})") from None
        self._conn.row_factory = sqlite3.Row
        try:
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=NORMAL")
            tables = {r[0] for r in self._conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            if tables and "jobs" not in tables:  # another program's database
                raise sqlite3.DatabaseError(f"it has tables ({', '.join(sorted(tables))[:100]}) but no jobs table")
            self._conn.executescript(_SCHEMA)
            columns = {r["name"] for r in self._conn.execute("PRAGMA table_info(jobs)")}
            if "warning" not in columns:  # a version-1 database
                self._conn.execute("ALTER TABLE jobs ADD COLUMN warning TEXT")
            missing = set(_COLUMN_TYPES) - {r["name"] for r in self._conn.execute("PRAGMA table_info(jobs)")}
            if missing:
                raise sqlite3.DatabaseError(f"its jobs table lacks {', '.join(sorted(missing))}")
            self._conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        except sqlite3.Error as exc:
            self._conn.close()
            if (getattr(exc, "sqlite_errorcode", 0) or 0) & 0xFF in _CANNOT_USE:
                # the file may be fine: the disk, its permissions or another process are the problem
                raise StoreError(self.path, f"cannot use the job database ({exc})") from None
            raise StoreError(
                self.path, f"not a usable mattekit job database ({exc}); move it away to start with an empty one"
            ) from None

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    # -- reading ---------------------------------------------------------------------------------

    def get(self, job_id: str) -> Job | None:
        """The job ``job_id``, or ``None``.

        Raises:
            DamagedJob: its row does not make a job.
        """
        with self._lock:
            row = self._conn.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return Job.from_row(row) if row else None

    def list(
        self, limit: int = 100, offset: int = 0, states: Iterable[str] | None = None
    ) -> tuple[list[Job], list[DamagedJob]]:
        """Jobs, newest first, and the rows of that page that do not make a job (skipped)."""
        sql = "SELECT * FROM jobs"
        args: list[str | int] = []
        states = list(states or [])
        if states:
            sql += f" WHERE state IN ({','.join('?' * len(states))})"
            args += states
        sql += " ORDER BY created DESC LIMIT ? OFFSET ?"
        args += [limit, offset]
        with self._lock:
            rows = self._conn.execute(sql, args).fetchall()
        jobs, damaged = [], []
        for row in rows:
            try:
                jobs.append(Job.from_row(row))
            except DamagedJob as exc:
                damaged.append(exc)
        return jobs, damaged

    def count(self, states: Iterable[str]) -> int:
        states = list(states)
        with self._lock:
            return self._conn.execute(
                f"SELECT COUNT(*) FROM jobs WHERE state IN ({','.join('?' * len(states))})", states
            ).fetchone()[0]

    # -- writing ---------------------------------------------------------------------------------

    def insert(self, job: Job) -> Job:
        with self._lock:
            self._conn.execute(
                "INSERT INTO jobs (id, kind, state, created, filename, input, media, options,"
                " frames_total) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    job.id,
                    job.kind,
                    job.state,
                    job.created,
                    job.filename,
                    job.input,
                    json.dumps(job.media),
                    json.dumps(job.options),
                    job.frames_total,
                ),
            )
        return job

    def claim_next(self, kinds: Iterable[str]) -> Job | None:
        """Move the oldest queued job of one of ``kinds`` to ``running`` and return it.

        Raises:
            DamagedJob: that job's row does not make a job; it is marked ``failed`` (so it is not
                claimed again) and the next call goes on with the next job.
        """
        kinds = list(kinds)
        marks = ",".join("?" * len(kinds))
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                row = self._conn.execute(
                    f"SELECT id FROM jobs WHERE state = 'queued' AND kind IN ({marks}) ORDER BY created LIMIT 1", kinds
                ).fetchone()
                if row is None:
                    self._conn.execute("COMMIT")
                    return None
                self._conn.execute(
                    "UPDATE jobs SET state = 'running', started = ?, finished = NULL,"
                    " frames_done = 0, fps = NULL, error = NULL, warning = NULL, cancel_requested = 0,"
                    " attempts = attempts + 1"
                    " WHERE id = ?",
                    (time.time(), row["id"]),
                )
                job = self._conn.execute("SELECT * FROM jobs WHERE id = ?", (row["id"],)).fetchone()
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            try:
                return Job.from_row(job)
            except DamagedJob as exc:
                self._conn.execute(
                    "UPDATE jobs SET state = 'failed', finished = ?, error = ? WHERE id = ?",
                    (time.time(), f"the job's database row is damaged ({exc.problem})", row["id"]),
                )
                raise

    def update_progress(self, job_id: str, done: int, total: int | None, fps: float | None) -> None:
        with self._lock:
            self._conn.execute(
                "UPDATE jobs SET frames_done = ?, frames_total = COALESCE(?, frames_total), fps = ?"
                " WHERE id = ? AND state = 'running'",
                (done, total, fps, job_id),
            )

    def finish(
        self,
        job_id: str,
        state: str,
        *,
        outputs: builtins.list[dict] | None = None,
        error: str | None = None,
        warning: str | None = None,
        frames_done: int | None = None,
    ) -> None:
        """Move a running job to a final state; ``frames_done``, when given, is the real count."""
        with self._lock:
            self._conn.execute(
                "UPDATE jobs SET state = ?, finished = ?, outputs = ?, error = ?, warning = ?,"
                " frames_done = COALESCE(?, frames_done) WHERE id = ?",
                (state, time.time(), json.dumps(outputs or []), error, warning, frames_done, job_id),
            )

    def requeue(self, job_id: str, note: str) -> None:
        """Put a running job back in the queue (the server is stopping); not counted as an attempt."""
        with self._lock:
            self._conn.execute(
                "UPDATE jobs SET state = 'queued', started = NULL, frames_done = 0, fps = NULL,"
                " attempts = MAX(attempts - 1, 0), note = ? WHERE id = ? AND state = 'running'",
                (note, job_id),
            )

    def request_cancel(self, job_id: str) -> str | None:
        """Cancel a job: a queued one at once, a running one when its worker notices.

        Returns:
            The job's state after the call, or ``None`` if there is no such job.
        """
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                row = self._conn.execute("SELECT state FROM jobs WHERE id = ?", (job_id,)).fetchone()
                if row is None:
                    self._conn.execute("COMMIT")
                    return None
                state = row["state"]
                if state == "queued":
                    self._conn.execute(
                        "UPDATE jobs SET state = 'cancelled', finished = ?, cancel_requested = 1 WHERE id = ?",
                        (time.time(), job_id),
                    )
                    state = "cancelled"
                elif state == "running":
                    self._conn.execute("UPDATE jobs SET cancel_requested = 1 WHERE id = ?", (job_id,))
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
        return state

    def delete(self, job_id: str) -> bool:
        with self._lock:
            cur = self._conn.execute("DELETE FROM jobs WHERE id = ?", (job_id,))
        return cur.rowcount > 0

    def recover(self) -> tuple[builtins.list[str], builtins.list[str]]:
        """After a restart: re-queue the jobs left ``running``, fail those interrupted too often.

        Returns:
            (ids re-queued, ids failed).
        """
        requeued, failed = [], []
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                rows = self._conn.execute("SELECT id, attempts FROM jobs WHERE state = 'running'").fetchall()
                for row in rows:
                    if row["attempts"] >= MAX_ATTEMPTS:
                        self._conn.execute(
                            "UPDATE jobs SET state = 'failed', finished = ?, outputs = '[]', error = ? WHERE id = ?",
                            (
                                time.time(),
                                f"interrupted by a server stop {row['attempts']} times; not re-run again",
                                row["id"],
                            ),
                        )
                        failed.append(row["id"])
                    else:
                        self._conn.execute(
                            "UPDATE jobs SET state = 'queued', started = NULL, frames_done = 0,"
                            " fps = NULL, outputs = '[]', note = ? WHERE id = ?",
                            ("interrupted by a server stop while running; queued again", row["id"]),
                        )
                        requeued.append(row["id"])
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
        return requeued, failed
