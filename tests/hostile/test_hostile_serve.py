"""The hostile corpus against a real ``mattekit serve`` child process (issue 9, items 7, 8, 21, 22).

What only a real server shows: what ``serve`` prints for ``--host 0.0.0.0`` / ``--port 0`` /
``--host ::1``, whether the Host check survives a non-loopback address, a client that disconnects
in the middle of an upload, and the server's peak memory (VmHWM) for a 12-megapixel PNG of 40 KB.
Every case ends with SIGTERM: the server must stop within 15 s (exit 0) with no traceback
in its log.
"""

from __future__ import annotations

import http.client
import re
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

import hostile_inputs as gen
from hostile_harness import KILL_RSS_MB, assert_no_traceback, case_params, mattekit_argv, rss_mb
from serving import free_port

pytestmark = pytest.mark.slow  # a server in a subprocess per case
INFERENCE = pytest.mark.inference
# peak resident memory of the server matting one 4000×3000 upload (12 megapixels, a phone photo; the
# network and foreground estimate at full size took 2.9 GB for it in the CLI, and 8.8 GB for 6000×6000, before
# issue 9's fix): they must run at a bounded working size. (6000×6000 measured 1592 MB with the fix,
# but takes ~30 s here; the corpus keeps to 12 MP.)
BOMB_RSS_MB = 1500


def vm_hwm_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


@dataclass
class Server:
    proc: subprocess.Popen
    log: Path
    port: int
    killed_for_memory: bool = False
    code: int | None = None

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict | None = None,
        host: str = "127.0.0.1",
        timeout: float = 120,
    ):
        conn = http.client.HTTPConnection(host, self.port, timeout=timeout)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            response = conn.getresponse()
            return response.status, dict(response.getheaders()), response.read()
        finally:
            conn.close()


def start(tmp: Path, *args: str, port: int | None = None, wait_port: bool = True) -> Server:
    """Start ``mattekit serve`` and wait until it answers (or printed its address, for port 0)."""
    port = free_port() if port is None else port
    log = tmp / "serve.log"
    fh = open(log, "wb")  # noqa: SIM115 (the server's log for its whole life; closed by the caller)
    proc = subprocess.Popen(
        mattekit_argv("serve", "--data-dir", str(tmp / "data"), "--port", str(port), *args, "--log-level", "info"),
        stdout=fh,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        cwd=tmp,
    )
    fh.close()
    server = Server(proc, log, port)

    def guard():
        while proc.poll() is None:
            if rss_mb(proc.pid) > KILL_RSS_MB:
                server.killed_for_memory = True
                proc.kill()
            time.sleep(0.05)

    threading.Thread(target=guard, daemon=True).start()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and proc.poll() is None:
        if port == 0:
            found = re.search(r"http://[^ ]*:(\d+)/", server.text())
            if found and found.group(1) != "0":
                server.port = int(found.group(1))
                return server
            if found:  # printed port 0: the case checks that
                return server
        elif not wait_port:
            return server
        else:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    return server
            except OSError:
                pass
        time.sleep(0.1)
    stop(server)
    raise AssertionError(f"server did not start:\n{server.text()[-2000:]}")


def stop(server: Server) -> int | None:
    if server.proc.poll() is None:
        server.proc.send_signal(signal.SIGTERM)
        try:
            server.proc.wait(15)
        except subprocess.TimeoutExpired:
            server.proc.kill()
            server.proc.wait()
            return None
    return server.proc.returncode


def multipart(name: str, data: bytes, **fields) -> tuple[bytes, str]:
    boundary = "hostile0boundary"
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode() for k, v in fields.items()
    ]
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
        f"Content-Type: application/octet-stream\r\n\r\n".encode()
        + data
        + b"\r\n"
    )
    return b"".join(parts) + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


# -- cases ----------------------------------------------------------------------------------------


def _all_interfaces(tmp: Path) -> None:
    server = start(tmp, "--host", "0.0.0.0")
    try:
        status, _, _ = server.request("GET", "/api/health", headers={"Host": "rebound.evil.example"})
        assert status in (400, 401, 403, 421), f"a foreign Host header was served ({status}) on 0.0.0.0"
        log = server.text().lower()
        assert "warning" in log and any(w in log for w in ("authentication", "token", "accounts", "login")), (
            f"no warning that 0.0.0.0 has no authentication:\n{server.text()[-1500:]}"
        )
    finally:
        server.code = stop(server)
    _ended_cleanly(server)


def _port_zero(tmp: Path) -> None:
    server = start(tmp, port=0)
    try:
        assert server.port != 0, f"serve --port 0 printed port 0:\n{server.text()[-500:]}"
        status, _, _ = server.request("GET", "/api/health")
        assert status == 200
    finally:
        server.code = stop(server)
    _ended_cleanly(server)


def _ipv6_url(tmp: Path) -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6")
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
    except OSError:
        pytest.skip("no IPv6 loopback")
    server = start(tmp, "--host", "::1", wait_port=False)
    try:
        deadline = time.monotonic() + 20
        while "http://" not in server.text() and time.monotonic() < deadline:
            time.sleep(0.1)
        urls = re.findall(r"http://\S+", server.text())
        assert urls and urls[0].startswith("http://[::1]:"), f"printed URL {urls[:1]} is not http://[::1]:PORT/"
    finally:
        server.code = stop(server)
    _ended_cleanly(server)


def _sigterm_at_startup(tmp: Path) -> None:
    """SIGTERM as soon as the address is printed, before uvicorn has installed its own handlers:
    still a graceful stop (exit 0), not an interrupted verb (143). CI once hit this window."""
    server = start(tmp, wait_port=False)
    try:
        deadline = time.monotonic() + 20
        while "serving" not in server.text() and time.monotonic() < deadline and server.proc.poll() is None:
            time.sleep(0.005)
        assert "serving" in server.text(), f"serve printed no address:\n{server.text()[-500:]}"
    finally:
        server.code = stop(server)
    _ended_cleanly(server)


def _disconnect_mid_upload(tmp: Path) -> None:
    server = start(tmp)
    try:
        body, ctype = multipart("a.png", gen.png(tmp / "a.png", 640, 480).read_bytes())
        with socket.create_connection(("127.0.0.1", server.port)) as s:
            head = (
                f"POST /api/jobs HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\nContent-Type: {ctype}\r\n"
                f"Content-Length: {len(body)}\r\n\r\n"
            ).encode()
            s.sendall(head + body[: len(body) // 3])
            time.sleep(0.3)
        time.sleep(0.5)
        status, _, _ = server.request("GET", "/api/health")
        assert status == 200
        assert not list((tmp / "data" / "uploads").iterdir()), "the broken upload was left on disk"
    finally:
        server.code = stop(server)
    _ended_cleanly(server)


def _stalled_uploads(tmp: Path) -> None:
    """Uploads to POST /api/matte that never finish must not take the places of images waiting to be
    matted (64 + 1 by default): before, 65 stalled uploads made every other request 503 for as
    long as their connections stayed open."""
    server = start(tmp)
    stalled = []
    try:
        for _ in range(70):
            s = socket.create_connection(("127.0.0.1", server.port))
            s.sendall(
                f"POST /api/matte HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\nContent-Type: multipart/form-data; "
                "boundary=B\r\nContent-Length: 100000\r\n\r\n--B\r\n".encode()
            )
            stalled.append(s)
        time.sleep(0.5)
        body, ctype = multipart("a.png", gen.png(tmp / "a.png", 64, 48).read_bytes(), output="alpha")
        status, headers, content = server.request("POST", "/api/matte", body, {"Content-Type": ctype})
        assert status == 200 and headers.get("content-type") == "image/png", f"{status} {content[:200]!r}"
    finally:
        for s in stalled:
            s.close()
        server.code = stop(server)
    _ended_cleanly(server)


def _memory_bomb(tmp: Path) -> None:
    server = start(tmp)
    try:
        bomb = gen.png_bomb(tmp / "bomb.png", 4000, 3000).read_bytes()
        body, ctype = multipart("bomb.png", bomb, background="transparent")
        try:
            status, headers, content = server.request("POST", "/api/matte", body, {"Content-Type": ctype})
        except OSError:
            time.sleep(0.2)
            assert not server.killed_for_memory, f"server passed {KILL_RSS_MB} MB and was killed"
            raise
        json_error = 400 <= status < 500 and headers.get("content-type", "").startswith("application/json")
        assert status == 200 or json_error, f"{status} {content[:200]!r}"
        peak = vm_hwm_mb(server.proc.pid)
        print(f"serve peak VmHWM after one 4000x3000 /api/matte: {peak:.0f} MB (status {status})")
        assert peak < BOMB_RSS_MB, f"server peak {peak:.0f} MB for a 4000x3000 upload (bound {BOMB_RSS_MB} MB)"
    finally:
        server.code = stop(server)
    _ended_cleanly(server)


def _ended_cleanly(server: Server) -> None:
    assert_no_traceback(server.text())
    # 0 after a graceful SIGTERM shutdown, as uvicorn and gunicorn exit (systemd counts 143 as failed)
    assert server.code == 0, f"serve did not stop cleanly on SIGTERM (code {server.code})"


CASES: dict[str, tuple[str, Callable, tuple]] = {
    "serve-all-interfaces-host-check-and-warning": ("8", _all_interfaces, ()),
    "serve-port-0-prints-real-port": ("22", _port_zero, ()),
    "serve-ipv6-url": ("22", _ipv6_url, ()),
    "serve-sigterm-at-startup": ("5", _sigterm_at_startup, ()),
    "serve-client-disconnects-mid-upload": ("21", _disconnect_mid_upload, ()),
    "serve-stalled-uploads-leave-the-matte-queue-free": ("21", _stalled_uploads, (INFERENCE,)),
    "serve-memory-bomb-4000x3000": ("7", _memory_bomb, (INFERENCE,)),
}
# case id -> why it is still expected to fail (the issue item and the failing line)
XFAIL: dict[str, str] = {}


@pytest.mark.parametrize("case_id", case_params(CASES, XFAIL))
def test_serve_hostile(case_id, tmp_path):
    _item, run, _ = CASES[case_id]
    run(tmp_path)
