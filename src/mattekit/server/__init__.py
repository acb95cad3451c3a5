"""The local web app and HTTP API behind ``mattekit serve``.

``app`` assembles the FastAPI application from ``routes/`` (the page, the jobs, the one-image
endpoint, health), ``options`` (a request's form -> the job's options), ``state`` (what the routes
share), ``errors`` and ``security``; ``db`` keeps the jobs in SQLite, ``jobs`` runs them in worker
threads, ``uploads`` streams and checks uploaded files; ``static/`` is the page.
"""

from mattekit.server.app import create_app
from mattekit.server.config import ServerConfig

__all__ = ["ServerConfig", "create_app"]
