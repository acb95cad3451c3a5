"""The API's errors: every one is JSON ``{"detail", "code"}`` with a 4xx or 5xx status."""

from __future__ import annotations

import logging
import sqlite3

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from mattekit.errors import MattekitError
from mattekit.server.db import DamagedJob
from mattekit.server.schemas import ErrorOut
from mattekit.server.uploads import UploadError

log = logging.getLogger("mattekit.server")

#: the error answers of the API's routes, for the OpenAPI document
ERRORS: dict[int | str, dict] = {
    status: {"model": ErrorOut} for status in (400, 401, 403, 404, 408, 409, 413, 415, 422, 500, 503, 507)
}
_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "too_large",
    415: "unsupported_media",
    422: "invalid_request",
    503: "busy",
}


class ApiError(Exception):
    """An error a handler returns as ``{"detail", "code"}`` with ``status``."""

    def __init__(self, status: int, code: str, detail: str):
        super().__init__(detail)
        self.status, self.code, self.detail = status, code, detail


def problem_text(exc: BaseException) -> str:
    """The user-facing part of an error, without the server's own file paths."""
    problem = getattr(exc, "problem", None)
    if problem:
        return str(problem)
    text = str(exc) or type(exc).__name__
    return text.splitlines()[0][:500]


def error_response(status: int, detail: str, code: str | None = None) -> JSONResponse:
    """The JSON answer ``{"detail", "code"}``; ``code`` defaults to the status's usual reason."""
    return JSONResponse({"detail": detail, "code": code or _CODES.get(status, "error")}, status_code=status)


def add_error_handlers(app: FastAPI) -> None:
    """Answer every error of ``app`` as JSON: the API's own, refused uploads (4xx, 507), bad input
    (422), FastAPI's validation and HTTP errors, and a damaged job row (500)."""

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError):
        return error_response(exc.status, exc.detail, exc.code)

    @app.exception_handler(UploadError)
    async def _upload_error(request: Request, exc: UploadError):
        return error_response(exc.status, exc.message, exc.code)

    @app.exception_handler(MattekitError)
    async def _mattekit_error(request: Request, exc: MattekitError):
        return error_response(422, problem_text(exc), "invalid_input")

    @app.exception_handler(HTTPException)
    async def _http_error(request: Request, exc: HTTPException):
        detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        return error_response(exc.status_code, detail)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError):
        parts = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err.get("loc", ()) if p not in ("path", "query", "body"))
            parts.append(f"{where}: {err.get('msg')}" if where else str(err.get("msg")))
        return error_response(422, "; ".join(parts) or "invalid request", "invalid_request")

    @app.exception_handler(sqlite3.OperationalError)
    async def _store_error(request: Request, exc: sqlite3.OperationalError):
        # the job database could not be written: a full disk is 507 like a full disk for an upload
        log.error("job database error on %s %s: %s", request.method, request.url.path, exc)
        if getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL:
            return error_response(507, "the server's disk is full; the job could not be stored", "disk_full")
        return error_response(500, f"the job database failed ({problem_text(exc)})", "storage_error")

    @app.exception_handler(DamagedJob)
    async def _damaged_job(request: Request, exc: DamagedJob):
        return error_response(500, f"{exc}; delete it (DELETE /api/jobs/{exc.job_id})", "damaged_job")
