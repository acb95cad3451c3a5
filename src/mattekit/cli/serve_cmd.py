"""``mattekit serve``: the local web page and HTTP API."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import click

from mattekit.cli.options import FiniteFloatRange


def default_data_dir() -> Path:
    """``$MATTEKIT_HOME/server`` when set, else the user's data folder (platformdirs) + ``server``."""
    home = os.environ.get("MATTEKIT_HOME")
    if home:
        return Path(home).expanduser() / "server"
    from platformdirs import user_data_dir

    return Path(user_data_dir("mattekit", appauthor=False)) / "server"


@click.command("serve")
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to listen on (loopback by default; 0.0.0.0 or :: exposes it to the network, with an access token).",
)
@click.option(
    "--port",
    default=7860,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="TCP port; 0 picks a free one (the line printed at start names it).",
)
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Folder for the job database, uploads and results [default: $MATTEKIT_HOME/server or the user data folder].",
)
@click.option(
    "--max-upload-mb", default=2048, show_default=True, type=click.IntRange(1), help="Largest accepted upload, in MB."
)
@click.option(
    "--max-megapixels",
    default=40.0,
    show_default=True,
    type=FiniteFloatRange(0.001, 1000),
    help="Largest accepted image or video frame, in megapixels.",
)
@click.option(
    "--token",
    envvar="MATTEKIT_TOKEN",
    default=None,
    metavar="TEXT",
    help="Access token required on every request (also read from $MATTEKIT_TOKEN). "
    "Generated and printed when listening beyond loopback.",
)
@click.option(
    "--no-token",
    is_flag=True,
    help="Listen beyond loopback without an access token (anyone who reaches the port can use the server).",
)
@click.option(
    "--allow-host",
    multiple=True,
    metavar="NAME",
    help="Another host name or address the Host header may carry (e.g. a reverse proxy's name); repeatable.",
)
@click.option(
    "--model",
    default=None,
    metavar="NAME|PATH",
    help="The server's model: a registered name or an ONNX file (with a card beside it, or an RVM export); "
    "requests may choose another registered model with the 'model' field.",
)
@click.option(
    "--log-level",
    default="info",
    show_default=True,
    type=click.Choice(["critical", "error", "warning", "info", "debug"]),
)
def serve(
    host: str,
    port: int,
    data_dir: Path | None,
    max_upload_mb: int,
    max_megapixels: float,
    token: str | None,
    no_token: bool,
    allow_host: tuple[str, ...],
    model: str | None,
    log_level: str,
) -> None:
    """Serve the web page and HTTP API (open http://HOST:PORT/ in a browser; API docs at /docs)."""
    import logging
    import secrets

    import uvicorn
    from filelock import FileLock, Timeout

    from mattekit.errors import OutputError
    from mattekit.server import create_app
    from mattekit.server.db import StoreError
    from mattekit.server.security import is_loopback, machine_names

    if token is not None and (not token.strip() or no_token):
        raise click.BadParameter("give a non-empty token, or --no-token, not both", param_hint="--token")
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
        raise OutputError(
            data_dir, "another mattekit server is using this data folder; stop it or give another --data-dir"
        ) from None
    except OSError as exc:  # a read-only or full disk, a folder without write permission
        raise OutputError(data_dir, f"cannot be used as the data folder ({exc.strerror or exc})") from None
    try:
        sock = listen_socket(host, port)
        local = is_loopback(host)
        if not local and token is None and not no_token:
            token = secrets.token_urlsafe(18)
        logging.basicConfig(level=log_level.upper(), format="%(levelname)s:     %(name)s: %(message)s")
        try:
            app = create_app(
                data_dir,
                max_upload_bytes=max_upload_mb * 1024 * 1024,
                model=model,
                max_pixels=int(max_megapixels * 1e6),
                token=token,
                allowed_hosts=(*machine_names(host), *(h.lower() for h in allow_host)),
            )
        except StoreError as exc:
            sock.close()
            raise OutputError(exc.path, exc.problem) from None
        except OSError as exc:  # its jobs/ or uploads/ folder cannot be made (a file by that name, a read-only disk)
            sock.close()
            problem = "is not a folder" if exc.errno == errno.EEXIST else f"cannot be created ({exc.strerror or exc})"
            raise OutputError(exc.filename or data_dir, problem) from None
        url = server_url(host, sock.getsockname()[1])
        if not local:
            click.echo(
                f"mattekit: warning: listening on {host}, beyond this computer: there are no user "
                "accounts"
                + (
                    ", only the access token below; anyone with the link can use the server"
                    if token
                    else " and no token: anyone who reaches the port can use it"
                ),
                err=True,
            )
        link = f"{url}?token={token}" if token else url
        config = uvicorn.Config(app, log_level=log_level, timeout_graceful_shutdown=5)
        announce = lambda: click.echo(f"mattekit: serving {link}  (data in {data_dir})", err=True)  # noqa: E731
        if run_server(uvicorn.Server(config), sock, announce):
            click.echo("mattekit: server stopped (SIGTERM)", err=True)
    finally:
        lock.release()


def run_server(server, sock, announce=lambda: None) -> bool:
    """Call ``announce`` (print the address), then run the uvicorn ``server`` on ``sock`` until it
    stops; True when it shut down gracefully on SIGTERM.

    Like uvicorn and gunicorn on their own, a server stopped by SIGTERM (systemd, ``docker stop``,
    ``kill``) after a graceful shutdown (running jobs re-queued, the database closed) then exits 0,
    which systemd counts as a clean stop; every other verb exits 143 because SIGTERM interrupted
    its job. From before the address is printed until uvicorn installs its own handlers, a SIGTERM
    asks the server to stop (uvicorn then starts, sees ``should_exit`` and shuts down at once);
    uvicorn handles SIGINT and SIGTERM while it serves and, once shut down, raises the signal again
    for the handler that was there before, which here only notes it. Ctrl-C keeps exit 130.
    """
    import signal
    import threading

    if not hasattr(signal, "SIGTERM") or threading.current_thread() is not threading.main_thread():
        announce()
        server.run(sockets=[sock])
        return False
    previous = signal.getsignal(signal.SIGTERM)
    stopped: list[int] = []

    def stop_gracefully(signum, frame) -> None:
        stopped.append(signum)
        server.should_exit = True

    signal.signal(signal.SIGTERM, stop_gracefully)
    try:
        announce()
        server.run(sockets=[sock])
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)
    return bool(stopped)


def listen_socket(host: str, port: int):
    """A TCP socket bound to ``host``:``port`` (``0``: a free port) and listening.

    Raises:
        click.BadParameter: the address cannot be used (exit 2, one line naming the option): the
            host is not a name or address of this machine (``--host``), or the port is taken or
            needs privileges (``--port``).
    """
    import socket

    if not host.strip():
        raise click.BadParameter(
            "empty; give an address, e.g. 127.0.0.1 (this computer) or 0.0.0.0", param_hint="--host"
        )
    where = server_url(host, port).removeprefix("http://").rstrip("/")
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        family, _, _, _, address = infos[0]
        sock = socket.socket(family, socket.SOCK_STREAM)
    except (OSError, IndexError) as exc:
        reason = getattr(exc, "strerror", None) or exc
        raise click.BadParameter(f"cannot listen on {where} ({reason})", param_hint="--host") from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        option = "--host" if exc.errno == errno.EADDRNOTAVAIL else "--port"
        raise click.BadParameter(f"cannot listen on {where} ({exc.strerror})", param_hint=option) from None
    sock.set_inheritable(True)
    return sock


def server_url(host: str, port: int) -> str:
    """``http://HOST:PORT/``, with an IPv6 address in brackets (``http://[::]:8000/``)."""
    return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"
