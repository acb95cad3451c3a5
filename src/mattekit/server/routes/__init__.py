"""The server's routes, one router per part: the page, the jobs, the one-image endpoint, health."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter


def get_and_head(router: APIRouter, path: str, **kwargs: Any) -> Callable:
    """``@router.get(path, ...)`` that also answers ``HEAD`` (RFC 9110 section 9.3.2: the same status
    and headers, no body), as ``/``, ``/static`` and ``/docs`` do; FastAPI's ``get`` alone answers
    ``HEAD`` with 405, which breaks ``curl -I``, link checkers and health probes. The ``HEAD``
    route is left out of the OpenAPI document (it would repeat the ``GET`` operation); the server
    sends no body for it (uvicorn), and a file download sends only its headers (``FileResponse``).
    """

    def register(endpoint: Callable) -> Callable:
        router.api_route(path, methods=["HEAD"], include_in_schema=False, **kwargs)(endpoint)
        return router.get(path, **kwargs)(endpoint)

    return register
