"""``mattekit serve``: the local web page and HTTP API."""

from __future__ import annotations

import os
from pathlib import Path

import click


def default_data_dir() -> Path:
    """``$MATTEKIT_HOME/server`` when set, else the user's data folder (platformdirs) + ``server``."""
    home = os.environ.get("MATTEKIT_HOME")
    if home:
        return Path(home).expanduser() / "server"
    from platformdirs import user_data_dir

    return Path(user_data_dir("mattekit", appauthor=False)) / "server"


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on (loopback by default; 0.0.0.0 exposes it to the network).")
@click.option("--port", default=7860, show_default=True, type=click.IntRange(0, 65535))
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder for the job database, uploads and results "
                   "[default: $MATTEKIT_HOME/server or the user data folder].")
@click.option("--max-upload-mb", default=2048, show_default=True, type=click.IntRange(1),
              help="Largest accepted upload, in MB.")
@click.option("--model", default=None, metavar="NAME|PATH",
              help="The server's model: a registered name or an ONNX file (with a card beside it, or an RVM export); "
                   "requests may choose another registered model with the 'model' field.")
@click.option("--log-level", default="info", show_default=True,
              type=click.Choice(["critical", "error", "warning", "info", "debug"]))
def serve(host: str, port: int, data_dir: Path | None, max_upload_mb: int, model: str | None,
          log_level: str) -> None:
    """Serve the web page and HTTP API (open http://HOST:PORT/ in a browser; API docs at /docs)."""
    import logging
    import socket

    import uvicorn
    from filelock import FileLock, Timeout

    from mattekit.errors import OutputError
    from mattekit.server import create_app
    from mattekit.server.app import LOOPBACK_HOSTS

    data_dir = (data_dir or default_data_dir()).expanduser()
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(data_dir, f"cannot create the data folder ({exc.strerror})") from None
    # one server per data folder: a second one would re-queue the first one's running jobs
    lock = FileLock(str(data_dir / "server.lock"))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        raise OutputError(data_dir, "another mattekit server is using this data folder; stop it "
                          "or give another --data-dir") from None
    try:
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
            probe.bind((host, port))
    except OSError as exc:
        lock.release()
        raise OutputError(f"{host}:{port}", f"cannot listen there ({exc.strerror})") from None
    logging.basicConfig(level=log_level.upper(), format="%(levelname)s:     %(name)s: %(message)s")
    try:
        # on loopback, only loopback names in the Host header (no DNS rebinding from web pages)
        loopback = host in ("127.0.0.1", "localhost", "::1") or host.startswith("127.")
        app = create_app(data_dir, max_upload_bytes=max_upload_mb * 1024 * 1024, model=model,
                         allowed_hosts=(*LOOPBACK_HOSTS, host) if loopback else None)
        click.echo(f"mattekit: serving http://{host}:{port}/  (data in {data_dir})", err=True)
        uvicorn.run(app, host=host, port=port, log_level=log_level, timeout_graceful_shutdown=5)
    finally:
        lock.release()
