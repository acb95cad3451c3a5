"""``GET /api/health``: whether the server is up, its queue, workers, models and choices."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool

import mattekit
from mattekit.plan import OUTPUT_TYPES, OUTPUTS
from mattekit.server.options import BACKGROUND_WORDS, selectable_models
from mattekit.server.routes import get_and_head
from mattekit.server.schemas import HealthOut
from mattekit.server.state import ServerDep

router = APIRouter(tags=["server"])


@get_and_head(router, "/api/health", response_model=HealthOut)
async def health(srv: ServerDep):
    """Whether the server is up, its queue and its workers, and the values its fields take."""
    store, runner = srv.store, srv.runner
    queued, running = await run_in_threadpool(lambda: (store.count(["queued"]), store.count(["running"])))
    return {
        "status": "ok",
        "version": mattekit.__version__,
        "queued": queued,
        "running": running,
        "video_workers": runner.video_workers,
        "image_workers": runner.image_workers,
        "model_loaded": srv.engine.loaded,
        "outputs": list(OUTPUTS),
        "output_types": list(OUTPUT_TYPES),
        "backgrounds": ["color", *BACKGROUND_WORDS],
        "default_model": srv.engine.default_name,
        "models": selectable_models(),
    }
