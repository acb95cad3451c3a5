"""``mattekit serve`` in tests: a free loopback port, and a server process started on one that
answers ``GET /api/health``."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import IO

import httpx


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(
    data_dir: Path,
    *args: str,
    log: IO | None = None,
    log_level: str = "warning",
    cwd: Path | None = None,
    timeout: float = 60,
) -> tuple[subprocess.Popen, str]:
    """Start ``python -m mattekit serve`` on a free port with ``data_dir`` and ``args``, its output
    to ``log`` (discarded when ``None``), and wait until ``/api/health`` answers 200.

    Returns:
        (the process, its base URL ``http://127.0.0.1:PORT``).

    Raises:
        RuntimeError: the server exited or did not answer within ``timeout`` seconds (it is killed).
    """
    port = free_port()
    argv = ["serve", "--port", str(port), "--data-dir", str(data_dir), "--log-level", log_level, *args]
    proc = subprocess.Popen(
        [sys.executable, "-m", "mattekit", *argv],
        stdout=log if log is not None else subprocess.DEVNULL,
        stderr=subprocess.STDOUT if log is not None else subprocess.DEVNULL,
        cwd=cwd,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(f"{base}/api/health", timeout=2).status_code == 200:
                return proc, base
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            proc.wait()
            raise RuntimeError(f"mattekit serve did not start (exit code {proc.returncode})")
        time.sleep(0.2)


def stop_server(proc: subprocess.Popen) -> None:
    """SIGTERM, then SIGKILL after 15 s."""
    proc.terminate()
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
