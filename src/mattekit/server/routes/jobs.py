"""The job API: create (upload), list, read, cancel, delete, download the outputs and the input."""

from __future__ import annotations

import logging
import os
import shutil
import time
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from fastapi import Path as PathParam
from fastapi.responses import FileResponse
from starlette.concurrency import run_in_threadpool

from mattekit.server.db import FINAL_STATES, DamagedJob, Job, new_job_id
from mattekit.server.errors import ERRORS, ApiError
from mattekit.server.options import FORM_FIELDS, Options, multipart_doc, parse_options
from mattekit.server.routes import get_and_head
from mattekit.server.schemas import JobListOut, JobOut
from mattekit.server.state import ServerDep
from mattekit.server.uploads import MediaInfo, probe_media, storage_error

log = logging.getLogger("mattekit.server")

JOB_ID = r"^[0-9a-f]{32}$"
JobId = Annotated[str, PathParam(pattern=JOB_ID)]

router = APIRouter(prefix="/api/jobs", tags=["jobs"], responses=ERRORS)


def job_json(job: Job) -> dict:
    """A job as the API shows it, with progress (fraction, fps, ETA) and download addresses.

    ``frames_done`` of a finished job is the number of frames written (fewer than
    ``frames_total`` when frames were lost; ``warning`` then says why)."""
    total, done, fps = job.frames_total, job.frames_done, job.fps
    fraction = min(done / total, 1.0) if total else None
    eta = (total - done) / fps if (job.state == "running" and total and fps) else None
    base = f"/api/jobs/{job.id}"
    options = Options.from_stored(job.options).stored()
    options.pop("background_file", None)
    return {
        "id": job.id,
        "kind": job.kind,
        "state": job.state,
        "filename": job.filename,
        "created": job.created,
        "started": job.started,
        "finished": job.finished,
        "options": options,
        "media": job.media,
        "progress": {"frames_done": done, "frames_total": total, "fraction": fraction, "fps": fps, "eta_seconds": eta},
        "outputs": [dict(o, url=f"{base}/outputs/{o['name']}") for o in job.outputs] if job.state == "done" else [],
        "input_url": f"{base}/input",
        "error": job.error,
        "note": job.note,
        "warning": job.warning,
        "cancel_requested": job.cancel_requested,
        "attempts": job.attempts,
    }


@router.post("", status_code=201, response_model=JobOut, openapi_extra=multipart_doc(list(FORM_FIELDS)))
async def create_job(request: Request, response: Response, srv: ServerDep):
    """Upload an image or video with its options; the job is queued and runs in the background.
    A request that used deprecated words gets ``Deprecation: true``; ``warnings`` says which
    (and which fields were ignored)."""
    form = await srv.receive(request)
    try:
        upload = form.files["file"]
        info: MediaInfo = await run_in_threadpool(probe_media, upload.path, max_pixels=srv.config.max_pixels)
        bg_file = form.files.get("background_file")
        bg_info = None
        if bg_file is not None:  # a video job may have a video background
            kinds = ("image", "video") if info.kind == "video" else ("image",)
            bg_info = await run_in_threadpool(probe_media, bg_file.path, max_pixels=srv.config.max_pixels, kinds=kinds)
        options = parse_options(form.fields, info.kind, bg_file is not None, size=(info.width, info.height))
        job_id = new_job_id()
        job_dir = srv.jobs_dir / job_id
        input_name = "input" + info.suffix
        try:
            job_dir.mkdir()
            os.replace(upload.path, job_dir / input_name)
            if bg_file is not None and bg_info is not None and options.background == "image":
                options.background_file = "background" + bg_info.suffix
                os.replace(bg_file.path, job_dir / options.background_file)
            job = Job(
                id=job_id,
                kind=info.kind,
                state="queued",
                created=time.time(),
                filename=upload.filename or input_name,
                input=input_name,
                media=info.as_dict(),
                options=options.stored(),
                frames_total=info.frames,
            )
            await run_in_threadpool(srv.store.insert, job)
        except BaseException as exc:
            await run_in_threadpool(shutil.rmtree, job_dir, True)
            if isinstance(exc, OSError):
                raise storage_error(exc, "the job") from None
            raise
    finally:
        form.cleanup()
    srv.runner.notify()
    if options.deprecated:
        response.headers["Deprecation"] = "true"
    return {**job_json(job), "warnings": options.warnings}


@get_and_head(router, "", response_model=JobListOut)
async def list_jobs(
    srv: ServerDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
    state: Annotated[str | None, Query(description="comma-separated states")] = None,
):
    """Jobs, newest first."""
    states = [s for s in (state or "").split(",") if s]
    jobs, damaged = await run_in_threadpool(srv.store.list, limit, offset, states)
    for bad in damaged:
        if bad.job_id not in srv.reported_damaged:  # once per row, not at every poll of the page
            srv.reported_damaged.add(bad.job_id)
            log.warning("skipping a damaged row of %s: %s", srv.store.path.name, bad)
    return {
        "jobs": [job_json(j) for j in jobs],
        "damaged": [{"id": bad.job_id, "problem": bad.problem} for bad in damaged],
    }


@get_and_head(router, "/{job_id}", response_model=JobOut)
async def read_job(job_id: JobId, srv: ServerDep):
    """One job with its progress: frames done, total, fps and ETA."""
    return job_json(await run_in_threadpool(srv.get_job, job_id))


@router.post("/{job_id}/cancel", response_model=JobOut)
async def cancel_job(job_id: JobId, srv: ServerDep):
    """Cancel a queued or running job (a running one stops at its next frame)."""
    state = await run_in_threadpool(srv.runner.cancel, job_id)
    if state is None:
        raise ApiError(404, "not_found", f"no job {job_id}")
    if state == "running":
        await run_in_threadpool(srv.runner.wait_stopped, job_id, 2.0)
    return job_json(await run_in_threadpool(srv.get_job, job_id))


@router.delete("/{job_id}", status_code=204)
async def delete_job(job_id: JobId, srv: ServerDep):
    """Delete a job and its files (a running job is cancelled first); also a damaged row."""
    try:
        job: Job | None = await run_in_threadpool(srv.get_job, job_id)
    except DamagedJob:
        job = None
    if job is not None and job.state not in FINAL_STATES:
        await run_in_threadpool(srv.runner.cancel, job_id)
    if not await run_in_threadpool(srv.runner.wait_stopped, job_id, 10.0):
        raise ApiError(409, "still_running", "the job is still stopping; try again in a moment")
    await run_in_threadpool(srv.store.delete, job_id)
    await run_in_threadpool(shutil.rmtree, srv.jobs_dir / job_id, True)
    return Response(status_code=204)


@get_and_head(router, "/{job_id}/outputs/{name}", response_class=FileResponse)
async def download_output(job_id: JobId, name: str, srv: ServerDep):
    """Download one finished output (only from the job's own ``out`` folder)."""
    job = await run_in_threadpool(srv.get_job, job_id)
    if job.state != "done":
        raise ApiError(409, "not_done", f"the job is {job.state}; outputs exist only when it is done")
    entry = next((o for o in job.outputs if o["name"] == name), None)
    if entry is None:
        raise ApiError(404, "not_found", f"job has no output {name!r}")
    path = srv.job_file(job, f"out/{entry['name']}")
    stem = Path(job.filename).stem or "mattekit"
    return FileResponse(path, media_type=entry["media_type"], filename=f"{stem}_{entry['name']}")


@get_and_head(router, "/{job_id}/input", response_class=FileResponse)
async def download_input(job_id: JobId, srv: ServerDep):
    """The uploaded file (for before/after previews), with the content type found in its
    content when it was uploaded (never one guessed from the name the client gave)."""
    job = await run_in_threadpool(srv.get_job, job_id)
    path = srv.job_file(job, job.input)
    media_type = job.media.get("media_type")
    if not isinstance(media_type, str) or not media_type.startswith(("image/", "video/")):
        media_type = "application/octet-stream"  # a job stored before the type was recorded
    name = (Path(job.filename).stem or "input") + Path(job.input).suffix
    return FileResponse(path, media_type=media_type, filename=name, content_disposition_type="inline")
