"""The local web app and HTTP API behind ``mattekit serve``.

``app`` builds the FastAPI application, ``db`` keeps the jobs in SQLite, ``jobs`` runs them in
worker threads, ``uploads`` streams and checks uploaded files; ``static/`` is the page.
"""

from mattekit.server.app import ServerConfig, create_app

__all__ = ["ServerConfig", "create_app"]
