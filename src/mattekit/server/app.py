"""The FastAPI application: the page, the job API and the one-image endpoint.

:func:`create_app` wires the parts together: a :class:`~mattekit.server.db.JobStore` in the data
folder, a :class:`~mattekit.server.jobs.JobRunner` whose threads do the matting, streamed uploads
(:mod:`mattekit.server.uploads`) and the static page. Every error is JSON ``{"detail", "code"}``
with a 4xx or 5xx status.

Data folder layout::

    jobs.db                 the job store (SQLite, WAL)
    uploads/                uploads being received (emptied at start)
    jobs/<id>/input.<ext>   the uploaded image or video
    jobs/<id>/background.*  an uploaded background picture
    jobs/<id>/work-<n>/     outputs being written by attempt n (never served)
    jobs/<id>/out/          finished outputs (the only files served for download)
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
import time
import uuid
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import anyio
from fastapi import FastAPI, Path as PathParam, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

import mattekit
from mattekit.errors import MattekitError, ParameterError
from mattekit.params import parse, validate_downsample_ratio
from mattekit.server.apidocs import add_docs
from mattekit.server.db import FINAL_STATES, DamagedJob, Job, JobStore, new_job_id
from mattekit.server.jobs import (OUTPUT_KINDS, VIDEO_FORMATS, Engine, JobRunner, background_arg,
                                  problem_text, video_format_supported)
from mattekit.server.schemas import ErrorOut, HealthOut, JobListOut, JobOut
from mattekit.server.security import Guard
from mattekit.server.uploads import MediaInfo, UploadError, probe_media, read_multipart, storage_error

log = logging.getLogger("mattekit.server")

STATIC_DIR = Path(__file__).with_name("static")
JOB_ID = r"^[0-9a-f]{32}$"
ERRORS = {status: {"model": ErrorOut} for status in (400, 401, 403, 404, 409, 413, 415, 422, 500, 503, 507)}
_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
          405: "method_not_allowed", 409: "conflict", 413: "too_large", 415: "unsupported_media",
          422: "invalid_request", 503: "busy"}

_FORM_FIELDS = {
    "file": {"type": "string", "format": "binary", "description": "the image or video"},
    "output": {"type": "string", "enum": list(OUTPUT_KINDS)},
    "background": {"type": "string", "description": "colour name or #rrggbb, 'transparent', "
                   "'blur', or 'image' with background_file"},
    "background_file": {"type": "string", "format": "binary",
                        "description": "a background picture (or, for a video job, a video)"},
    "video_format": {"type": "string", "enum": list(VIDEO_FORMATS),
                     "description": "videos only; png is a PNG sequence downloaded as .zip"},
    "downsample_ratio": {"type": "string", "description": "'auto' or a number in (0, 1]"},
    "refine": {"type": "boolean", "description": "images only: re-solve the alpha near its edges with "
               "closed-form matting (Levin et al. 2008), slower"},
    "model": {"type": "string", "description": "a registered model name (see /api/health 'models'); "
              "default the server's model"},
}


def _multipart_doc(required: list[str], fields: list[str]) -> dict:
    return {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
        "type": "object", "required": required,
        "properties": {k: _FORM_FIELDS[k] for k in fields}}}}}}


@dataclass
class ServerConfig:
    """Settings of one server.

    Attributes:
        data_dir: folder for the database, uploads and job files.
        max_upload_bytes: limit on one request body (the upload plus its form).
        max_pixels: largest accepted image or video frame, width × height.
        video_workers, image_workers: worker threads per lane; ``None`` sizes them for the machine.
        sync_threads: images matted at once by ``POST /api/matte``; ``None``: one per two cores.
        sync_queue: ``POST /api/matte`` requests allowed to wait; more get 503.
        model: ``None``, a registered model name, an ONNX path, or a ``ModelSession``.
        allowed_hosts: host names the ``Host`` header may carry (``None``: any). ``serve`` lists
            this machine's own names and addresses only (see
            :func:`mattekit.server.security.machine_names`), so a web page whose domain is made to
            resolve to this machine (DNS rebinding) cannot use it.
        token: an access token every request must carry (``None``: none); see
            :mod:`mattekit.server.security`.
        image_slots: full-size images matted at once (image jobs and ``POST /api/matte``
            together); the memory bound of the server grows with it.
    """

    data_dir: Path
    max_upload_bytes: int = 2 * 1024 ** 3
    max_pixels: int = 40_000_000
    video_workers: int | None = None
    image_workers: int | None = None
    sync_threads: int | None = None
    sync_queue: int = 64
    model: object = None
    allowed_hosts: tuple[str, ...] | None = None
    token: str | None = None
    image_slots: int = 1


def _error(status: int, detail: str, code: str | None = None) -> JSONResponse:
    return JSONResponse({"detail": detail, "code": code or _CODES.get(status, "error")}, status_code=status)


class ApiError(Exception):
    """An error a handler returns as ``{"detail", "code"}`` with ``status``."""

    def __init__(self, status: int, code: str, detail: str):
        super().__init__(detail)
        self.status, self.code, self.detail = status, code, detail


_BOOLEANS = {"1": True, "true": True, "on": True, "yes": True, "0": False, "false": False, "off": False,
             "no": False, "": False}


def parse_options(fields: dict[str, str], kind: str, has_background_file: bool,
                  default_output: str = "composite", size: tuple[int, int] | None = None) -> dict:
    """Check a form's options and return the job's ``options``.

    Args:
        size: the input's (width, height), to check that ``downsample_ratio`` leaves the network
            at least one pixel on each side.

    Raises:
        ApiError: 422 naming the field and the accepted values.
    """
    from mattekit.compose.background import parse_color

    output = (fields.get("output") or default_output).strip().lower()
    if output not in OUTPUT_KINDS:
        raise ApiError(422, "bad_option", f"output must be one of {', '.join(OUTPUT_KINDS)}, not {output!r}")
    background = (fields.get("background") or "").strip()
    if has_background_file and background in ("", "image"):
        background = "image"
    elif background == "image":
        raise ApiError(422, "bad_option", "background 'image' needs a picture in background_file")
    elif background.lower() in ("transparent", "blur"):
        background = background.lower()
    elif background and parse_color(background) is None:
        raise ApiError(422, "bad_option", f"background {background!r} is not a colour name or #rrggbb, "
                       "'transparent', 'blur' or 'image'")
    if background == "transparent" and output == "composite":
        output = "transparent"
    if background == "blur":
        _check_blur_supported()
    options = {"output": output, "background": background or None, "model": _model_option(fields)}
    try:  # the same validator as the CLI and the Python API
        ratio = parse((fields.get("downsample_ratio") or "").strip() or "auto", validate_downsample_ratio,
                      words={"auto": None})
        if ratio is not None and size is not None:
            validate_downsample_ratio(ratio, height=size[1], width=size[0])
    except ParameterError as exc:
        raise ApiError(422, "bad_option", str(exc)) from None
    options["downsample_ratio"] = ratio
    refine = (fields.get("refine") or "false").strip().lower()
    if refine not in _BOOLEANS:
        raise ApiError(422, "bad_option", f"refine must be true or false, not {refine!r}")
    if kind == "image":
        options["refine"] = _BOOLEANS[refine]
    elif _BOOLEANS[refine]:
        raise ApiError(422, "bad_option", "refine is available for images only (it is too slow for "
                       "every frame of a video)")
    if kind == "video":
        fmt = (fields.get("video_format") or "").strip().lower()
        if not fmt:
            fmt = "mp4" if output != "transparent" else ("webm" if video_format_supported("webm") else "png")
        if fmt not in VIDEO_FORMATS:
            raise ApiError(422, "bad_option", f"video_format must be one of {', '.join(VIDEO_FORMATS)}, not {fmt!r}")
        if not video_format_supported(fmt):
            raise ApiError(422, "bad_option", f"video_format {fmt!r} is not available in this installation")
        if output == "transparent" and fmt == "mp4":
            raise ApiError(422, "bad_option", "a transparent video needs video_format webm or png "
                           "(MP4/H.264 has no alpha channel)")
        options["video_format"] = fmt
    return options


def selectable_models() -> list[dict]:
    """The registered models a request may name (test-only models are not offered)."""
    from mattekit.models.registry import MODELS

    return [{"name": s.name, "kind": s.kind, "precision": s.precision, "license": s.license,
             "description": s.description} for s in MODELS.values() if not s.hidden]


def _model_option(fields: dict[str, str]) -> str | None:
    """The ``model`` form field: ``None`` (the server's model) or a registered name; never a path."""
    name = (fields.get("model") or "").strip()
    if not name:
        return None
    names = [m["name"] for m in selectable_models()]
    if name not in names:
        raise ApiError(422, "bad_option", f"model must be one of {', '.join(names)}, not {name!r}")
    return name


def _blur_supported() -> bool:
    from mattekit.compose.background import parse_background

    try:
        parse_background("blur")
    except (MattekitError, ValueError):
        return False
    return True


def _check_blur_supported() -> None:
    if not _blur_supported():
        raise ApiError(422, "bad_option", "background 'blur' is not available in this installation")


def job_json(job: Job) -> dict:
    """A job as the API shows it, with progress (fraction, fps, ETA) and download addresses.

    ``frames_done`` of a finished job is the number of frames written (fewer than
    ``frames_total`` when frames were lost; ``warning`` then says why)."""
    total, done, fps = job.frames_total, job.frames_done, job.fps
    fraction = min(done / total, 1.0) if total else None
    eta = (total - done) / fps if (job.state == "running" and total and fps) else None
    base = f"/api/jobs/{job.id}"
    return {
        "id": job.id, "kind": job.kind, "state": job.state, "filename": job.filename,
        "created": job.created, "started": job.started, "finished": job.finished,
        "options": {k: v for k, v in job.options.items() if k != "background_file"},
        "media": job.media,
        "progress": {"frames_done": done, "frames_total": total, "fraction": fraction,
                     "fps": fps, "eta_seconds": eta},
        "outputs": [dict(o, url=f"{base}/outputs/{o['name']}") for o in job.outputs]
        if job.state == "done" else [],
        "input_url": f"{base}/input",
        "error": job.error, "note": job.note, "warning": job.warning,
        "cancel_requested": job.cancel_requested,
        "attempts": job.attempts,
    }


def create_app(data_dir: str | os.PathLike | None = None, *, config: ServerConfig | None = None,
               **settings) -> FastAPI:
    """Build the web app.

    Args:
        data_dir: the server's data folder (created if missing).
        config: a full :class:`ServerConfig` instead of ``data_dir`` and ``settings``.
        **settings: any other :class:`ServerConfig` field, e.g. ``max_upload_bytes``.

    Returns:
        A FastAPI app. Its lifespan starts the workers (re-queuing jobs a previous server left
        running) and stops them; use it under uvicorn, or as ``with TestClient(app)``.
    """
    cfg = config or ServerConfig(Path(data_dir), **settings)
    data = Path(cfg.data_dir).expanduser().resolve()
    jobs_dir, uploads_dir = data / "jobs", data / "uploads"
    for d in (jobs_dir, uploads_dir):
        d.mkdir(parents=True, exist_ok=True)
    store = JobStore(data / "jobs.db")
    engine = Engine(cfg.model, cfg.image_slots)
    runner = JobRunner(store, jobs_dir, engine, cfg.video_workers, cfg.image_workers)
    sync_threads = cfg.sync_threads or max(1, min(4, (os.cpu_count() or 1) // 2))
    limiter = anyio.CapacityLimiter(sync_threads)
    waiting = {"n": 0}
    waiting_lock = threading.Lock()
    reported_damaged: set[str] = set()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        shutil.rmtree(uploads_dir, ignore_errors=True)
        uploads_dir.mkdir(parents=True, exist_ok=True)
        requeued, failed = store.recover()
        if requeued or failed:
            log.warning("after restart: %d job(s) queued again, %d failed", len(requeued), len(failed))
        runner.start()
        try:
            yield
        finally:
            await run_in_threadpool(runner.stop)
            store.close()

    app = FastAPI(title="mattekit", version=mattekit.__version__, lifespan=lifespan,
                  docs_url=None, redoc_url=None,
                  description="Automatic human matting of images and videos (Robust Video Matting). "
                  "Create jobs with a multipart upload, follow their progress, download the results; "
                  "or matte one image synchronously with POST /api/matte.")
    app.state.store, app.state.runner, app.state.config = store, runner, cfg
    app.state.data_dir = data

    # -- Host names, the token, other web sites, security headers, unhandled errors (JSON 500) ---
    app.add_middleware(Guard, allowed_hosts=cfg.allowed_hosts, token=cfg.token)
    add_docs(app)

    # -- errors: always JSON {"detail", "code"} ------------------------------------------------

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError):
        return _error(exc.status, exc.detail, exc.code)

    @app.exception_handler(UploadError)
    async def _upload_error(request: Request, exc: UploadError):
        return _error(exc.status, exc.message, exc.code)

    @app.exception_handler(MattekitError)
    async def _mattekit_error(request: Request, exc: MattekitError):
        return _error(422, problem_text(exc), "invalid_input")

    @app.exception_handler(HTTPException)
    async def _http_error(request: Request, exc: HTTPException):
        detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        return _error(exc.status_code, detail)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError):
        parts = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err.get("loc", ()) if p not in ("path", "query", "body"))
            parts.append(f"{where}: {err.get('msg')}" if where else str(err.get("msg")))
        return _error(422, "; ".join(parts) or "invalid request", "invalid_request")

    @app.exception_handler(DamagedJob)
    async def _damaged_job(request: Request, exc: DamagedJob):
        return _error(500, f"{exc}; delete it (DELETE /api/jobs/{exc.job_id})", "damaged_job")

    # -- helpers -------------------------------------------------------------------------------

    def get_job(job_id: str) -> Job:
        job = store.get(job_id)
        if job is None:
            raise ApiError(404, "not_found", f"no job {job_id}")
        return job

    def job_file(job: Job, relative: str) -> Path:
        """A file of the job's own folder; refuses anything that resolves outside it."""
        root = (jobs_dir / job.id).resolve()
        path = (root / relative).resolve()
        if root not in path.parents or not path.is_file():
            raise ApiError(404, "not_found", "no such file for this job")
        return path

    async def receive(request: Request):
        form = await read_multipart(request, uploads_dir, max_bytes=cfg.max_upload_bytes,
                                    file_fields=("file", "background_file"))
        if "file" not in form.files:
            form.cleanup()
            raise ApiError(400, "missing_file", "the form has no 'file' field with an image or video")
        return form

    # -- the page --------------------------------------------------------------------------------

    @app.api_route("/", methods=["GET", "HEAD"], include_in_schema=False)
    async def index():
        return FileResponse(STATIC_DIR / "index.html", media_type="text/html")

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    # -- API -------------------------------------------------------------------------------------

    @app.get("/api/health", response_model=HealthOut, tags=["server"])
    async def health():
        """Whether the server is up, its queue and its workers."""
        counts = await run_in_threadpool(lambda: (store.count(["queued"]), store.count(["running"])))
        formats = [f for f in VIDEO_FORMATS if video_format_supported(f)]
        backgrounds = ["color", "image", "transparent"] + (["blur"] if _blur_supported() else [])
        return {"status": "ok", "version": mattekit.__version__, "queued": counts[0],
                "running": counts[1], "video_workers": runner.video_workers,
                "image_workers": runner.image_workers, "model_loaded": engine.loaded,
                "video_formats": formats, "backgrounds": backgrounds,
                "default_model": engine.default_name, "models": selectable_models()}

    @app.post("/api/jobs", status_code=201, response_model=JobOut, responses=ERRORS, tags=["jobs"],
              openapi_extra=_multipart_doc(["file"], list(_FORM_FIELDS)))
    async def create_job(request: Request):
        """Upload an image or video with its options; the job is queued and runs in the background."""
        form = await receive(request)
        try:
            upload = form.files["file"]
            info: MediaInfo = await run_in_threadpool(probe_media, upload.path, max_pixels=cfg.max_pixels)
            bg_file = form.files.get("background_file")
            bg_info = None
            if bg_file is not None:  # a video job may have a video background
                kinds = ("image", "video") if info.kind == "video" else ("image",)
                bg_info = await run_in_threadpool(probe_media, bg_file.path, max_pixels=cfg.max_pixels,
                                                  kinds=kinds)
            options = parse_options(form.fields, info.kind, bg_file is not None,
                                    size=(info.width, info.height))
            job_id = new_job_id()
            job_dir = jobs_dir / job_id
            input_name = "input" + info.suffix
            try:
                job_dir.mkdir()
                os.replace(upload.path, job_dir / input_name)
                if bg_file is not None and options["background"] == "image":
                    options["background_file"] = "background" + bg_info.suffix
                    os.replace(bg_file.path, job_dir / options["background_file"])
                job = Job(id=job_id, kind=info.kind, state="queued", created=time.time(),
                          filename=upload.filename or input_name, input=input_name,
                          media=info.as_dict(), options=options, frames_total=info.frames)
                await run_in_threadpool(store.insert, job)
            except BaseException as exc:
                await run_in_threadpool(shutil.rmtree, job_dir, True)
                if isinstance(exc, OSError):
                    raise storage_error(exc, "the job") from None
                raise
        finally:
            form.cleanup()
        runner.notify()
        return job_json(job)

    @app.get("/api/jobs", response_model=JobListOut, tags=["jobs"])
    async def list_jobs(limit: int = Query(100, ge=1, le=1000), offset: int = Query(0, ge=0),
                        state: str | None = Query(None, description="comma-separated states")):
        """Jobs, newest first."""
        states = [s for s in (state or "").split(",") if s]
        jobs, damaged = await run_in_threadpool(store.list, limit, offset, states)
        for bad in damaged:
            if bad.job_id not in reported_damaged:  # once per row, not at every poll of the page
                reported_damaged.add(bad.job_id)
                log.warning("skipping a damaged row of %s: %s", store.path.name, bad)
        return {"jobs": [job_json(j) for j in jobs],
                "damaged": [{"id": bad.job_id, "problem": bad.problem} for bad in damaged]}

    @app.get("/api/jobs/{job_id}", response_model=JobOut, responses=ERRORS, tags=["jobs"])
    async def read_job(job_id: str = PathParam(pattern=JOB_ID)):
        """One job with its progress: frames done, total, fps and ETA."""
        return job_json(await run_in_threadpool(get_job, job_id))

    @app.post("/api/jobs/{job_id}/cancel", response_model=JobOut, responses=ERRORS, tags=["jobs"])
    async def cancel_job(job_id: str = PathParam(pattern=JOB_ID)):
        """Cancel a queued or running job (a running one stops at its next frame)."""
        state = await run_in_threadpool(runner.cancel, job_id)
        if state is None:
            raise ApiError(404, "not_found", f"no job {job_id}")
        if state == "running":
            await run_in_threadpool(runner.wait_stopped, job_id, 2.0)
        return job_json(await run_in_threadpool(get_job, job_id))

    @app.delete("/api/jobs/{job_id}", status_code=204, responses=ERRORS, tags=["jobs"])
    async def delete_job(job_id: str = PathParam(pattern=JOB_ID)):
        """Delete a job and its files (a running job is cancelled first); also a damaged row."""
        try:
            job = await run_in_threadpool(get_job, job_id)
        except DamagedJob:
            job = None
        if job is not None and job.state not in FINAL_STATES:
            await run_in_threadpool(runner.cancel, job_id)
        if not await run_in_threadpool(runner.wait_stopped, job_id, 10.0):
            raise ApiError(409, "still_running", "the job is still stopping; try again in a moment")
        await run_in_threadpool(store.delete, job_id)
        await run_in_threadpool(shutil.rmtree, jobs_dir / job_id, True)
        return Response(status_code=204)

    @app.get("/api/jobs/{job_id}/outputs/{name}", responses=ERRORS, tags=["jobs"],
             response_class=FileResponse)
    async def download_output(job_id: str = PathParam(pattern=JOB_ID), name: str = PathParam()):
        """Download one finished output (only from the job's own ``out`` folder)."""
        job = await run_in_threadpool(get_job, job_id)
        if job.state != "done":
            raise ApiError(409, "not_done", f"the job is {job.state}; outputs exist only when it is done")
        entry = next((o for o in job.outputs if o["name"] == name), None)
        if entry is None:
            raise ApiError(404, "not_found", f"job has no output {name!r}")
        path = job_file(job, f"out/{entry['name']}")
        stem = Path(job.filename).stem or "mattekit"
        return FileResponse(path, media_type=entry["media_type"], filename=f"{stem}_{entry['name']}")

    @app.get("/api/jobs/{job_id}/input", responses=ERRORS, tags=["jobs"], response_class=FileResponse)
    async def download_input(job_id: str = PathParam(pattern=JOB_ID)):
        """The uploaded file (for before/after previews), with the content type found in its
        content when it was uploaded (never one guessed from the name the client gave)."""
        job = await run_in_threadpool(get_job, job_id)
        path = job_file(job, job.input)
        media_type = job.media.get("media_type")
        if not isinstance(media_type, str) or not media_type.startswith(("image/", "video/")):
            media_type = "application/octet-stream"  # a job stored before the type was recorded
        name = (Path(job.filename).stem or "input") + Path(job.input).suffix
        return FileResponse(path, media_type=media_type, filename=name, content_disposition_type="inline")

    @app.post("/api/matte", responses={**ERRORS, 200: {"content": {"image/png": {}},
                                                        "description": "the PNG result"}},
              response_class=Response, tags=["images"],
              openapi_extra=_multipart_doc(["file"], ["file", "output", "background", "background_file",
                                                      "downsample_ratio", "refine", "model"]))
    async def matte_now(request: Request):
        """Matte one image and return the PNG at once: by default the RGBA cut-out (output=transparent),
        or output=composite over ``background``, or output=alpha (gray)."""
        with waiting_lock:
            if waiting["n"] >= cfg.sync_queue + sync_threads:
                raise ApiError(503, "busy", "too many images are waiting; try again shortly")
            waiting["n"] += 1
        try:
            form = await receive(request)
            try:
                upload = form.files["file"]
                info = await run_in_threadpool(probe_media, upload.path, max_pixels=cfg.max_pixels,
                                               kinds=("image",))
                bg_file = form.files.get("background_file")
                if bg_file is not None:
                    await run_in_threadpool(probe_media, bg_file.path, max_pixels=cfg.max_pixels,
                                            kinds=("image",))
                options = parse_options(form.fields, "image", bg_file is not None, default_output="transparent",
                                        size=(info.width, info.height))
                background = background_arg(options["background"], bg_file.path if bg_file else None)
                result = uploads_dir / f"result-{uuid.uuid4().hex}.png"

                def work() -> None:
                    from mattekit.io.image import write_image

                    # one full-size image at a time with the image jobs; the PNG goes to a file,
                    # so no encoded copy is held in memory while it is sent
                    with engine.image_slot():
                        matte = engine.matte_image(upload.path, options["downsample_ratio"],
                                                   options["output"], options["refine"], model=options["model"])
                        array = engine.render_image(matte, options["output"], background)
                        del matte
                        write_image(result, array, compress_level=3)
                        del array

                try:
                    await anyio.to_thread.run_sync(work, limiter=limiter)
                except OSError as exc:
                    result.unlink(missing_ok=True)
                    raise storage_error(exc, "the result") from None
            finally:
                form.cleanup()
        finally:
            with waiting_lock:
                waiting["n"] -= 1
        stem = Path(upload.filename).stem or "image"
        return FileResponse(result, media_type="image/png", content_disposition_type="inline",
                            filename=f"{_ascii(stem)}_{options['output']}.png",
                            background=BackgroundTask(result.unlink, missing_ok=True))

    return app


def _ascii(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in text)[:100] or "image"
