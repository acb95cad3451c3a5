"""What the routes share: the data folder, the job store, the workers and the sync-image gate.

One :class:`Server` per app, kept in ``app.state.server``; a route gets it with
``Depends(server)``.

Data folder layout::

    jobs.db                 the job store (SQLite, WAL)
    uploads/                uploads being received (emptied at start)
    jobs/<id>/input.<ext>   the uploaded image or video
    jobs/<id>/background.*  an uploaded background picture
    jobs/<id>/work-<n>/     outputs being written by attempt n (never served)
    jobs/<id>/out/          finished outputs (the only files served for download)
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import anyio
from fastapi import Depends, Request

from mattekit.server.config import ServerConfig
from mattekit.server.db import Job, JobStore
from mattekit.server.errors import ApiError
from mattekit.server.jobs import Engine, JobRunner
from mattekit.server.uploads import Form, read_multipart


class Server:
    """The parts of one server, built from its :class:`ServerConfig`.

    Attributes:
        config: the settings.
        data_dir, jobs_dir, uploads_dir: the data folder (resolved) and its two sub-folders.
        store, engine, runner: the job store, the matting engine and the worker threads.
        sync_limiter: ``POST /api/matte`` images matted at once (``config.sync_threads``, or one
            per two cores, at most 4).
        reported_damaged: damaged job rows already logged (each is logged once).
    """

    def __init__(self, config: ServerConfig):
        self.config = config
        self.data_dir = Path(config.data_dir).expanduser().resolve()
        self.jobs_dir, self.uploads_dir = self.data_dir / "jobs", self.data_dir / "uploads"
        for d in (self.jobs_dir, self.uploads_dir):
            d.mkdir(parents=True, exist_ok=True)
        self.store = JobStore(self.data_dir / "jobs.db")
        self.engine = Engine(config.model, config.image_slots)
        self.runner = JobRunner(self.store, self.jobs_dir, self.engine, config.video_workers, config.image_workers)
        self.sync_threads = config.sync_threads or max(1, min(4, (os.cpu_count() or 1) // 2))
        self.sync_limiter = anyio.CapacityLimiter(self.sync_threads)
        self.reported_damaged: set[str] = set()
        self._waiting = 0
        self._waiting_lock = threading.Lock()

    @contextmanager
    def sync_place(self) -> Iterator[None]:
        """A place among the ``POST /api/matte`` requests being matted or waiting (taken once the
        upload has arrived, so uploads still in progress do not count).

        Raises:
            ApiError: 503 when ``config.sync_queue`` requests already wait beyond those running.
        """
        with self._waiting_lock:
            if self._waiting >= self.config.sync_queue + self.sync_threads:
                raise ApiError(503, "busy", "too many images are waiting; try again shortly")
            self._waiting += 1
        try:
            yield
        finally:
            with self._waiting_lock:
                self._waiting -= 1

    def get_job(self, job_id: str) -> Job:
        """The job ``job_id``.

        Raises:
            ApiError: 404, no such job.
            mattekit.server.db.DamagedJob: its row is damaged.
        """
        job = self.store.get(job_id)
        if job is None:
            raise ApiError(404, "not_found", f"no job {job_id}")
        return job

    def job_file(self, job: Job, relative: str) -> Path:
        """A file of the job's own folder; refuses (404) anything that resolves outside it."""
        root = (self.jobs_dir / job.id).resolve()
        path = (root / relative).resolve()
        if root not in path.parents or not path.is_file():
            raise ApiError(404, "not_found", "no such file for this job")
        return path

    async def receive(self, request: Request) -> Form:
        """The request's multipart form, its files streamed into ``uploads/``.

        Raises:
            ApiError: 400, the form has no ``file``.
            mattekit.server.uploads.UploadError: refused body (413, 415, 400, 408, 507).
        """
        form = await read_multipart(
            request,
            self.uploads_dir,
            max_bytes=self.config.max_upload_bytes,
            file_fields=("file", "background_file"),
            idle_seconds=self.config.upload_idle_seconds,
        )
        if "file" not in form.files:
            form.cleanup()
            raise ApiError(400, "missing_file", "the form has no 'file' field with an image or video")
        return form


def server(request: Request) -> Server:
    """The route dependency giving the app's :class:`Server`."""
    return request.app.state.server


#: a route's parameter receiving the app's :class:`Server`
ServerDep = Annotated[Server, Depends(server)]
