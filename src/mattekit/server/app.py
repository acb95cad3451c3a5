"""The FastAPI application: :func:`create_app` assembles the server from its parts.

A :class:`~mattekit.server.state.Server` (the data folder, the job store, the worker threads)
is kept in ``app.state``; the :class:`~mattekit.server.security.Guard` middleware checks every
request; the routers of :mod:`mattekit.server.routes` answer them (the page, the jobs,
``POST /api/matte``, ``/api/health``), with ``/docs`` served offline
(:mod:`mattekit.server.apidocs`); every error is JSON (:mod:`mattekit.server.errors`).
"""

from __future__ import annotations

import logging
import os
import shutil
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool

import mattekit
from mattekit.server.apidocs import add_docs
from mattekit.server.config import ServerConfig
from mattekit.server.errors import add_error_handlers
from mattekit.server.routes import jobs, matte, meta
from mattekit.server.routes.pages import add_pages
from mattekit.server.security import Guard
from mattekit.server.state import Server

log = logging.getLogger("mattekit.server")

__all__ = ["ServerConfig", "create_app"]


def create_app(data_dir: str | os.PathLike | None = None, *, config: ServerConfig | None = None, **settings) -> FastAPI:
    """Build the web app.

    Args:
        data_dir: the server's data folder (created if missing).
        config: a full :class:`ServerConfig` instead of ``data_dir`` and ``settings``.
        **settings: any other :class:`ServerConfig` field, e.g. ``max_upload_bytes``.

    Returns:
        A FastAPI app. Its lifespan starts the workers (re-queuing jobs a previous server left
        running) and stops them; use it under uvicorn, or as ``with TestClient(app)``.

    Raises:
        mattekit.server.db.StoreError: ``jobs.db`` in the data folder is not a job database.
    """
    if config is None:
        if data_dir is None:
            raise TypeError("create_app needs a data_dir or a config")
        config = ServerConfig(Path(data_dir), **settings)
    srv = Server(config)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        shutil.rmtree(srv.uploads_dir, ignore_errors=True)
        srv.uploads_dir.mkdir(parents=True, exist_ok=True)
        requeued, failed = srv.store.recover()
        if requeued or failed:
            log.warning("after restart: %d job(s) queued again, %d failed", len(requeued), len(failed))
        srv.runner.start()
        try:
            yield
        finally:
            await run_in_threadpool(srv.runner.stop)
            srv.store.close()

    app = FastAPI(
        title="mattekit",
        version=mattekit.__version__,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        description="Automatic human matting of images and videos (Robust Video Matting). "
        "Create jobs with a multipart upload, follow their progress, download the results; "
        "or matte one image synchronously with POST /api/matte.",
    )
    app.state.server = srv
    app.state.store, app.state.runner, app.state.config, app.state.data_dir = (
        srv.store,
        srv.runner,
        config,
        srv.data_dir,
    )
    # Host names, the token, other web sites, security headers, unhandled errors (JSON 500)
    app.add_middleware(Guard, allowed_hosts=config.allowed_hosts, token=config.token)
    add_error_handlers(app)
    add_docs(app)
    add_pages(app)
    for router in (meta.router, jobs.router, matte.router):
        app.include_router(router)
    return app
