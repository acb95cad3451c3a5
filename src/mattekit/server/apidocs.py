"""``/docs``: the OpenAPI document browsable in Swagger UI, served from this machine.

FastAPI's default ``/docs`` page loads Swagger UI's script and style from a CDN, so it is blank
offline and lets a third party run script on the page. Here the assets come from the
``swagger-ui-bundle-v2`` package (Swagger UI 5, which reads FastAPI's OpenAPI 3.1; Apache-2.0)
and the page has no inline script (its start-up code is ``static/docs.js``), so it works under
the server's Content-Security-Policy.
Without that package ``/docs`` says where the document is (``/openapi.json`` always works).
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>mattekit HTTP API</title>
<link rel="stylesheet" href="/docs/assets/swagger-ui.css">
<link rel="icon" href="/docs/assets/favicon-32x32.png"></head>
<body><div id="swagger-ui"></div>
<script src="/docs/assets/swagger-ui-bundle.js"></script>
<script src="/static/docs.js"></script></body></html>
"""

_NO_UI = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>mattekit HTTP API</title></head>
<body><p>The HTTP API is described in <a href="/openapi.json">/openapi.json</a>.
(Install the Python package <code>swagger-ui-bundle-v2</code> to browse it here.)</p></body></html>
"""


def swagger_assets() -> Path | None:
    """The folder of Swagger UI's files from ``swagger-ui-bundle-v2``, or ``None`` if not installed."""
    try:
        from swagger_ui_bundle import swagger_ui_path
    except ImportError:
        return None
    path = Path(swagger_ui_path)
    return path if (path / "swagger-ui-bundle.js").is_file() else None


def add_docs(app: FastAPI) -> None:
    """Add ``GET /docs`` (and its assets under ``/docs/assets``) to ``app``, built with
    ``docs_url=None`` and ``redoc_url=None``."""
    assets = swagger_assets()
    if assets is not None:
        app.mount("/docs/assets", StaticFiles(directory=assets), name="swagger-ui")

    @app.api_route("/docs", methods=["GET", "HEAD"], include_in_schema=False)
    async def docs():
        return HTMLResponse(_PAGE if assets is not None else _NO_UI)
