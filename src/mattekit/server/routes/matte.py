"""``POST /api/matte``: one image matted at once, the PNG in the answer."""

from __future__ import annotations

import uuid
from pathlib import Path

import anyio
from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, Response
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool

from mattekit.server.errors import ERRORS, ApiError
from mattekit.server.options import background_of, multipart_doc, parse_options
from mattekit.server.state import ServerDep
from mattekit.server.uploads import probe_media, storage_error

router = APIRouter(tags=["images"])

_FIELDS = ["file", "output", "background", "background_file", "downsample_ratio", "refine", "model"]


@router.post(
    "/api/matte",
    response_class=Response,
    openapi_extra=multipart_doc(_FIELDS),
    responses={**ERRORS, 200: {"content": {"image/png": {}}, "description": "the PNG result"}},
)
async def matte_now(request: Request, srv: ServerDep):
    """Matte one image and return the PNG at once: by default the RGBA cut-out (output=composition
    over background=transparent), or the composition over another ``background``, or
    output=alpha (gray) or output=foreground. A request that used deprecated words gets
    ``Deprecation: true``; ``Warning`` says which (and which fields were ignored)."""
    # the upload is received before the request takes a place among those waiting to be matted:
    # uploads that never finish (a stalled or slow client) must not fill the queue and lock others out
    form = await srv.receive(request)
    try:
        with srv.sync_place():
            upload = form.files["file"]
            info = await run_in_threadpool(probe_media, upload.path, max_pixels=srv.config.max_pixels, kinds=("image",))
            bg_file = form.files.get("background_file")
            if bg_file is not None:
                await run_in_threadpool(probe_media, bg_file.path, max_pixels=srv.config.max_pixels, kinds=("image",))
            options = parse_options(
                form.fields,
                "image",
                bg_file is not None,
                default_background="transparent",
                size=(info.width, info.height),
            )
            if len(options.kinds) > 1:
                raise ApiError(
                    422,
                    "bad_option",
                    "output: POST /api/matte answers one picture; ask for one "
                    "output, or create a job (POST /api/jobs) for several",
                )
            background = background_of(options.background, bg_file.path if bg_file else None)
            result = srv.uploads_dir / f"result-{uuid.uuid4().hex}.png"
            engine = srv.engine

            def work() -> None:
                from mattekit.io.image import write_image

                # one full-size image at a time with the image jobs; the PNG goes to a file,
                # so no encoded copy is held in memory while it is sent
                with engine.image_slot():
                    plan = options.plan(srv.uploads_dir, background)
                    try:
                        matte = engine.matte_image(
                            upload.path, options.downsample_ratio, plan.kinds, bool(options.refine), model=options.model
                        )
                        array = engine.render_image(matte, plan, options.output)
                        del matte
                    finally:
                        plan.close()
                    write_image(result, array, compress_level=3)
                    del array

            try:
                await anyio.to_thread.run_sync(work, limiter=srv.sync_limiter)
            except OSError as exc:
                result.unlink(missing_ok=True)
                raise storage_error(exc, "the result") from None
    finally:
        form.cleanup()
    headers = {"Deprecation": "true"} if options.deprecated else {}
    if options.warnings:
        headers["Warning"] = ", ".join(f'299 mattekit "{_ascii_header(w)}"' for w in options.warnings)
    stem = Path(upload.filename).stem or "image"
    return FileResponse(
        result,
        media_type="image/png",
        content_disposition_type="inline",
        filename=f"{_ascii(stem)}_{options.output}.png",
        headers=headers,
        background=BackgroundTask(result.unlink, missing_ok=True),
    )


def _ascii_header(text: str) -> str:
    """``text`` fit for a quoted header value (ASCII, no double quotes): it may quote user input."""
    return text.encode("ascii", "backslashreplace").decode().replace('"', "'")


def _ascii(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in text)[:100] or "image"
