"""``mattekit serve`` against a hostile web and hostile clients (issue 9, server side).

In process (FastAPI's TestClient) with small generated images: every member of the cross-site
class (``Origin: null``, another host, port or scheme, ``Sec-Fetch-Site: cross-site``, a foreign
``Referer``) is refused for every state-changing method; the access token; the security headers
on every kind of response; uploads served with their content's type; SVG and other non-images
refused with 415; a ratio that leaves the network less than a pixel refused with 422; a full disk
answered with 507 and nothing left behind; a client gone mid-upload logged as one line; a damaged
``jobs.db`` refused and damaged rows skipped and reported; a job's warning and its real frame count.
As a real process: ``--host 0.0.0.0`` warns, prints a token link with the real port of ``--port 0``,
checks Host and the token; ``--host ::`` prints ``http://[::]:PORT/``; ``HEAD /`` answers 200.
"""

from __future__ import annotations

import io
import logging
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

fastapi_testclient = pytest.importorskip("fastapi.testclient")
TestClient = fastapi_testclient.TestClient
httpx = pytest.importorskip("httpx")

from PIL import Image  # noqa: E402

from mattekit.server import create_app  # noqa: E402
from mattekit.server.security import machine_names  # noqa: E402
from media import write_clip  # noqa: E402
from serving import stop_server  # noqa: E402

BASE = "http://127.0.0.1:7860"
HOSTS = ("127.0.0.1", "localhost", "::1")


@pytest.fixture(scope="module")
def session():
    from mattekit.errors import MattekitError
    from mattekit.models import new_session

    try:
        return new_session()
    except MattekitError as exc:
        pytest.skip(f"model not available: {exc}")


def png(width=64, height=48, colour=(200, 30, 30)) -> bytes:
    """A small generated picture: a bright disc (a 'subject') on a flat background."""
    y, x = np.mgrid[:height, :width]
    img = np.zeros((height, width, 3), np.uint8) + np.array(colour, np.uint8)
    img[(x - width / 2) ** 2 + (y - height / 2) ** 2 < (min(width, height) / 3) ** 2] = (240, 220, 200)
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture
def client(tmp_path, session):
    app = create_app(tmp_path / "server", model=session, allowed_hosts=HOSTS)
    with TestClient(app, base_url=BASE, raise_server_exceptions=False) as c:
        c.data_dir = tmp_path / "server"
        yield c


def assert_json_error(response, status: int, code: str | None = None) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert isinstance(body.get("detail"), str) and body["detail"], body
    if code:
        assert body["code"] == code, body
    return body


def wait_state(client, job_id: str, timeout=120.0, headers=None) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        job = client.get(f"/api/jobs/{job_id}", headers=headers).json()
        if job["state"] in ("done", "failed", "cancelled"):
            return job
        assert time.monotonic() < deadline, f"job stuck: {job}"
        time.sleep(0.05)


def assert_secured(response) -> None:
    h = response.headers
    assert h["x-content-type-options"] == "nosniff"
    assert h["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in h["content-security-policy"]
    assert h["cross-origin-resource-policy"] == "same-origin"


# -- 6: requests from other sites ---------------------------------------------------------------

FOREIGN = [
    {"origin": "null"},  # sandboxed iframe, data:/file: page, redirect
    {"origin": "NULL"},
    {"origin": ""},
    {"origin": "http://evil.example"},
    {"origin": "http://127.0.0.1:7861"},  # another port of the same machine
    {"origin": "https://127.0.0.1:7860"},  # another scheme
    {"origin": "http://127.0.0.1:7860.evil.example"},
    {"origin": "http://localhost:7860"},  # another name (and origin) of this server
    {"sec-fetch-site": "cross-site"},
    {"sec-fetch-site": "same-site"},
    {"referer": "http://evil.example/page.html"},
    {"referer": "null"},
    {"origin": "http://127.0.0.1:7860", "host": "localhost:7860"},
]


@pytest.mark.parametrize("headers", FOREIGN, ids=lambda h: ",".join(f"{k}={v}" for k, v in h.items()))
def test_every_foreign_origin_is_refused_for_every_change(client, headers):
    files = {"file": ("s.png", png())}
    job_id = "0" * 32
    for method, path, kw in [
        ("POST", "/api/jobs", {"files": files}),
        ("POST", "/api/matte", {"files": files}),
        ("POST", f"/api/jobs/{job_id}/cancel", {}),
        ("DELETE", f"/api/jobs/{job_id}", {}),
        ("PUT", "/api/jobs", {}),
        ("PATCH", f"/api/jobs/{job_id}", {}),
    ]:
        r = client.request(method, path, headers=headers, **kw)
        assert_json_error(r, 403, "cross_origin")
        assert_secured(r)
    assert client.get("/api/jobs").json()["jobs"] == []
    assert list((client.data_dir / "uploads").iterdir()) == []


def test_same_origin_and_programs_are_served(client):
    files = {"file": ("s.png", png())}
    for headers in (
        {"origin": BASE},
        {"sec-fetch-site": "same-origin", "referer": BASE + "/"},
        {"sec-fetch-site": "none"},
        {},
    ):
        r = client.post("/api/matte", files=files, headers=headers, data={"output": "alpha"})
        assert r.status_code == 200, (headers, r.text)
        assert Image.open(io.BytesIO(r.content)).size == (64, 48)
    # reading is not a change: another site's Origin on a GET is harmless (no CORS headers are sent)
    r = client.get("/api/jobs", headers={"origin": "null"})
    assert r.status_code == 200 and "access-control-allow-origin" not in r.headers


# -- 8: the access token and Host names -----------------------------------------------------------


def test_token_is_required_everywhere_and_sets_a_strict_cookie(tmp_path, session):
    app = create_app(tmp_path / "server", model=session, allowed_hosts=HOSTS, token="s3cret-token")
    with TestClient(app, base_url=BASE, raise_server_exceptions=False) as c:
        for path in ("/", "/api/jobs", "/api/health", "/static/app.js", "/docs", "/openapi.json"):
            r = c.get(path)
            assert_json_error(r, 401, "unauthorized")
            assert r.headers["www-authenticate"] == "Bearer"
            assert_secured(r)
        for bad in ("Bearer s3cret-toke", "Bearer s3cret-token2", "Basic s3cret-token", "Bearer "):
            assert_json_error(c.get("/api/jobs", headers={"authorization": bad}), 401, "unauthorized")
        assert_json_error(c.get("/api/jobs", headers={"cookie": "mattekit_token=nope"}), 401)
        assert_json_error(c.get("/api/jobs?token=s3cret-token"), 401)  # only the page link takes ?token=
        assert c.get("/api/jobs", headers={"authorization": "Bearer s3cret-token"}).status_code == 200
        assert c.get("/api/jobs", headers={"x-mattekit-token": "s3cret-token"}).status_code == 200
        r = c.post("/api/matte", files={"file": ("s.png", png())}, headers={"authorization": "Bearer s3cret-token"})
        assert r.status_code == 200
        # the printed link: token into an HttpOnly, SameSite=Strict cookie, then away from the URL
        assert_json_error(c.get("/?token=wrong", follow_redirects=False), 401)
        r = c.get("/?token=s3cret-token", follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == "/"
        cookie = r.headers["set-cookie"]
        assert cookie.startswith("mattekit_token=s3cret-token;")
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/" in cookie
        page = c.get("/", headers={"cookie": "mattekit_token=s3cret-token"})
        assert page.status_code == 200 and "<form" in page.text
        # the token does not excuse another site's request
        r = c.post(
            "/api/jobs",
            files={"file": ("s.png", png())},
            headers={"cookie": "mattekit_token=s3cret-token", "origin": "null"},
        )
        assert_json_error(r, 403, "cross_origin")


def test_wildcard_bind_still_checks_host_names():
    names = machine_names("0.0.0.0")
    assert set(HOSTS) <= set(names)
    assert socket.gethostname().lower() in names
    assert "evil.example" not in names and "0.0.0.0" not in names and "::" not in names
    assert set(machine_names("127.0.0.1")) == set(HOSTS)
    assert "192.168.7.7" in machine_names("192.168.7.7")


def start_serve(tmp_path, *args, env=None):
    """``mattekit serve ARGS`` as a process; returns (process, its stderr lines until 'serving')."""
    err = open(tmp_path / "serve.err", "w+")  # noqa: SIM115 (the server's stderr; the caller reads and closes it)
    proc = subprocess.Popen(
        [sys.executable, "-m", "mattekit", "serve", "--data-dir", str(tmp_path / "data"), "--log-level", "info", *args],
        stdout=subprocess.DEVNULL,
        stderr=err,
        env={**os.environ, **(env or {})},
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        text = (tmp_path / "serve.err").read_text()
        if "Uvicorn running" in text or "Application startup complete" in text or proc.poll() is not None:
            break
        time.sleep(0.1)
    return proc, (tmp_path / "serve.err").read_text()


@pytest.mark.slow
def test_serve_exits_0_after_a_graceful_sigterm_shutdown(tmp_path):
    """systemd, docker stop and kill send SIGTERM: a server that shut down cleanly exits 0 (as
    uvicorn and gunicorn do), where the other verbs exit 143 (their job was interrupted)."""
    proc, err = start_serve(tmp_path, "--port", "0")
    assert proc.poll() is None, err
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(15) == 0, (tmp_path / "serve.err").read_text()
    err = (tmp_path / "serve.err").read_text()
    assert "Application shutdown complete" in err and "Traceback" not in err, err
    assert err.strip().splitlines()[-1] == "mattekit: server stopped (SIGTERM)", err


@pytest.mark.slow
def test_serve_on_all_interfaces_warns_prints_real_port_and_token(tmp_path):
    proc, err = start_serve(tmp_path, "--host", "0.0.0.0", "--port", "0")
    try:
        assert proc.poll() is None, err
        lines = [line for line in err.splitlines() if line.startswith("mattekit:")]
        assert lines[0].startswith(
            "mattekit: warning: listening on 0.0.0.0, beyond this computer: there are no user accounts"
        ), lines
        m = re.fullmatch(r"mattekit: serving http://0\.0\.0\.0:(\d+)/\?token=([\w-]{20,})  \(data in .*\)", lines[1])
        assert m, lines
        port, token = int(m.group(1)), m.group(2)
        assert port != 0
        base = f"http://127.0.0.1:{port}"
        auth = {"authorization": f"Bearer {token}"}
        assert httpx.get(f"{base}/api/health", headers=auth).status_code == 200
        assert httpx.get(f"{base}/api/health").status_code == 401
        # DNS rebinding: a foreign name in Host is refused although the server listens everywhere
        r = httpx.get(f"{base}/api/health", headers={**auth, "host": f"evil.example:{port}"})
        assert r.status_code == 400 and r.json()["code"] == "bad_host"
        host = socket.gethostname()
        assert httpx.get(f"{base}/api/health", headers={**auth, "host": f"{host}:{port}"}).status_code == 200
        r = httpx.head(f"{base}/?token={token}")
        assert r.status_code == 303
        r = httpx.head(f"{base}/", headers=auth)
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/html") and r.content == b""

        # 21: a client that disconnects in the middle of an upload
        with socket.create_connection(("127.0.0.1", port)) as s:
            body_head = (
                b'--XyZ\r\nContent-Disposition: form-data; name="file"; filename="a.png"\r\n'
                b"Content-Type: image/png\r\n\r\n" + b"\0" * 300_000
            )
            s.sendall(
                f"POST /api/jobs HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {token}\r\n"
                "Content-Type: multipart/form-data; boundary=XyZ\r\nContent-Length: 5000000\r\n\r\n".encode()
                + body_head
            )
            time.sleep(0.5)
        time.sleep(1.0)
        assert list((tmp_path / "data" / "uploads").iterdir()) == []
        assert httpx.get(f"{base}/api/health", headers=auth).status_code == 200
    finally:
        stop_server(proc)
    log = (tmp_path / "serve.err").read_text()
    assert "Traceback" not in log and "Exception in ASGI application" not in log, log
    assert len([line for line in log.splitlines() if "abandoned by the client" in line]) == 1, log


@pytest.mark.slow
def test_serve_ipv6_any_prints_a_bracketed_url_and_env_token(tmp_path):
    if not socket.has_ipv6:
        pytest.skip("no IPv6")
    proc, err = start_serve(tmp_path, "--host", "::", "--port", "0", env={"MATTEKIT_TOKEN": "from-env"})
    try:
        if proc.poll() is not None and "cannot listen" in err:
            pytest.skip(f"IPv6 not usable here: {err}")
        m = re.search(r"mattekit: serving http://\[::\]:(\d+)/\?token=from-env  ", err)
        assert m, err
        port = int(m.group(1))
        r = httpx.get(f"http://[::1]:{port}/api/health", headers={"x-mattekit-token": "from-env"})
        assert r.status_code == 200
    finally:
        stop_server(proc)


# -- 9: what is served, and how ---------------------------------------------------------------------


def test_uploads_are_served_with_their_content_type_and_every_response_is_secured(client):
    # a PNG named like a web page, and one named like an SVG
    for name in ("evil.html", "pic.svg", "x.exe"):
        r = client.post("/api/jobs", files={"file": (name, png())}, data={"output": "alpha"})
        assert r.status_code == 201, r.text
        job = r.json()
        assert job["media"]["media_type"] == "image/png"
        got = client.get(job["input_url"])
        assert got.status_code == 200 and got.content == png()
        assert got.headers["content-type"] == "image/png"
        stem = Path(name).stem
        assert got.headers["content-disposition"] == f'inline; filename="{stem}.png"'
        assert "sandbox" in got.headers["content-security-policy"]
        assert_secured(got)
        done = wait_state(client, job["id"])
        assert done["state"] == "done"
        out = client.get(done["outputs"][0]["url"])
        assert out.headers["content-type"] == "image/png" and "sandbox" in out.headers["content-security-policy"]
        assert_secured(out)
    page = client.get("/")
    assert_secured(page)
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe" not in csp
    for r in (
        client.get("/static/app.js"),
        client.get("/api/jobs"),
        client.get("/api/nothing"),
        client.get("/api/jobs/" + "f" * 32),
        client.post("/api/jobs"),
        client.get("/docs"),
        client.get("/openapi.json"),
    ):
        assert_secured(r)


def test_an_internal_error_is_one_json_500_with_the_headers(client, monkeypatch, caplog):
    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(client.app.state.store, "list", broken)
    caplog.set_level(logging.ERROR, logger="mattekit.server")
    r = client.get("/api/jobs")
    body = assert_json_error(r, 500, "internal")
    assert body["detail"] == "internal error (RuntimeError)"
    assert_secured(r)
    assert len([rec for rec in caplog.records if "unhandled error on GET /api/jobs" in rec.getMessage()]) == 1


def test_docs_work_offline(client):
    r = client.get("/docs")
    assert r.status_code == 200
    scripts = re.findall(r'<(?:script|link)[^>]+(?:src|href)="([^"]+)"', r.text)
    assert scripts and all(s.startswith("/") for s in scripts), scripts  # nothing from another host
    assert "<script>" not in r.text  # no inline script (the CSP would block it)
    for src in scripts:
        asset = client.get(src)
        assert asset.status_code == 200 and len(asset.content) > 100, src
    assert client.get("/openapi.json").json()["info"]["title"] == "mattekit"
    assert client.get("/redoc").status_code == 404


# -- 12, 15: options and files the network cannot take ---------------------------------------------


def test_non_images_are_415_and_too_small_ratios_422(client):
    svg = b'<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64"><rect width="64" height="64"/></svg>'
    html = b"<!doctype html><script>alert(1)</script>"
    for endpoint in ("/api/jobs", "/api/matte"):
        pdf = b"%PDF-1.4\n%\xe2\xe3\n1 0 obj\n"
        for name, data in (("a.svg", svg), ("a.png", svg), ("a.html", html), ("a.pdf", pdf)):
            body = assert_json_error(client.post(endpoint, files={"file": (name, data)}), 415, "unsupported_media")
            if data is svg:
                assert "SVG" in body["detail"], body
        # 64×48: 1/48 leaves the network 1×1 pixels, anything less leaves it nothing
        for ratio in ("0.001", "0.02", "1e-300", "5e-324"):
            body = assert_json_error(
                client.post(endpoint, files={"file": ("s.png", png())}, data={"downsample_ratio": ratio}),
                422,
                "bad_option",
            )
            assert body["detail"].startswith("downsample_ratio: ") and "64x48" in body["detail"], body
            assert "0.02084" in body["detail"], body  # the smallest ratio that works, rounded up
        for ratio in ("-1", "nan", "inf", "0", "2", "0x10", "1e309"):
            assert_json_error(
                client.post(endpoint, files={"file": ("s.png", png())}, data={"downsample_ratio": ratio}),
                422,
                "bad_option",
            )
    r = client.post("/api/matte", files={"file": ("s.png", png())}, data={"downsample_ratio": str(1 / 48)})
    assert r.status_code == 200, r.text
    assert client.get("/api/jobs").json()["jobs"] == []
    assert list((client.data_dir / "uploads").iterdir()) == []


# -- 11: a full disk ---------------------------------------------------------------------------------


def test_full_disk_is_507_and_leaves_nothing(client, monkeypatch):
    from mattekit.server import uploads

    made = []

    def full(path):  # the upload is written where the kernel answers ENOSPC
        path.touch()
        made.append(path)
        return open("/dev/full", "wb")

    monkeypatch.setattr(uploads, "open_part", full)
    for size in (10, 200_000):  # refused at close (buffered) and at write
        data = png() + b"\0" * size
        for endpoint in ("/api/jobs", "/api/matte"):
            body = assert_json_error(client.post(endpoint, files={"file": ("s.png", data)}), 507, "disk_full")
            assert "disk is full" in body["detail"]
    assert made and not any(p.exists() for p in made)
    assert list((client.data_dir / "uploads").iterdir()) == []
    assert client.get("/api/jobs").json()["jobs"] == []


def test_full_disk_while_a_job_writes_fails_it_with_a_clear_reason(client, monkeypatch):
    import errno

    from mattekit.io import image as image_io

    def full(path, *args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    monkeypatch.setattr(image_io, "write_image", full)
    r = client.post("/api/jobs", files={"file": ("s.png", png())}, data={"output": "alpha"})
    job = wait_state(client, r.json()["id"])
    assert job["state"] == "failed" and job["outputs"] == []
    assert job["error"] == "the server's disk is full; the output could not be written"
    assert not (client.data_dir / "jobs" / job["id"] / "out").exists()


# -- 18: a damaged database ---------------------------------------------------------------------------


def test_a_file_that_is_not_sqlite_is_refused_in_one_line(tmp_path, capsys):
    from mattekit.cli.main import main

    data = tmp_path / "data"
    data.mkdir()
    for content in (b"this is not a database\n" * 100, b"SQLite format 3\x00" + os.urandom(4000)):
        (data / "jobs.db").write_bytes(content)
        assert main(["serve", "--data-dir", str(data), "--port", "0"]) == 3
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith(
            f"mattekit: error: {data / 'jobs.db'}: not a usable mattekit job database ("
        ), err
        assert err[0].count("jobs.db") == 1, err  # the path once, though the store's message names it too
        assert (data / "jobs.db").read_bytes() == content  # left as it was
    # the port is free again and the lock released: a good database serves
    (data / "jobs.db").unlink()
    for table, problem in (
        ("other (x)", "it has tables (other) but no jobs table"),
        ("jobs (id)", "not a usable mattekit job database (no such column"),
    ):
        con = sqlite3.connect(data / "jobs.db")
        con.execute(f"CREATE TABLE {table}")
        con.close()
        assert main(["serve", "--data-dir", str(data), "--port", "0"]) == 3  # SQLite, but not ours
        assert problem in capsys.readouterr().err
        (data / "jobs.db").unlink()


def test_damaged_rows_are_skipped_reported_once_and_deletable(client, caplog):
    ids = []
    for _ in range(4):
        r = client.post("/api/jobs", files={"file": ("s.png", png())}, data={"output": "alpha"})
        ids.append(r.json()["id"])
    for job_id in ids:
        wait_state(client, job_id)
    con = sqlite3.connect(client.data_dir / "jobs.db")
    con.execute("UPDATE jobs SET options = '{' WHERE id = ?", (ids[0],))
    con.execute("UPDATE jobs SET media = 'null' WHERE id = ?", (ids[1],))
    con.execute("UPDATE jobs SET frames_done = 'lots' WHERE id = ?", (ids[2],))
    con.commit()
    caplog.set_level(logging.WARNING, logger="mattekit.server")
    for _ in range(3):  # the page polls
        r = client.get("/api/jobs")
        assert r.status_code == 200
        assert [j["id"] for j in r.json()["jobs"]] == [ids[3]]
        assert sorted(d["id"] for d in r.json()["damaged"]) == sorted(ids[:3])
    logged = [rec for rec in caplog.records if "damaged row" in rec.getMessage()]
    assert len(logged) == 3 and not any(rec.exc_info for rec in caplog.records)
    assert_json_error(client.get(f"/api/jobs/{ids[0]}"), 500, "damaged_job")
    assert client.delete(f"/api/jobs/{ids[0]}").status_code == 204
    assert not (client.data_dir / "jobs" / ids[0]).exists()
    assert len(client.get("/api/jobs").json()["damaged"]) == 2
    # a queued job whose row is damaged is failed once, not retried (and not logged) every second
    r = client.post("/api/jobs", files={"file": ("s.png", png())})
    assert r.status_code == 201
    con.close()


def test_damaged_queued_row_is_failed_not_retried(tmp_path):
    from mattekit.server.db import DamagedJob, Job, JobStore

    store = JobStore(tmp_path / "jobs.db")
    store.insert(
        Job(id="b" * 32, kind="image", state="queued", created=time.time(), filename="x.png", input="input.png")
    )
    store._conn.execute("UPDATE jobs SET outputs = '[1, 2]'")
    with pytest.raises(DamagedJob):
        store.claim_next(["image"])
    assert store.claim_next(["image"]) is None
    row = store._conn.execute("SELECT state, error FROM jobs").fetchone()
    assert row["state"] == "failed" and "damaged" in row["error"]
    store.close()


# -- 23: a job whose pipeline warns -----------------------------------------------------------------


def test_video_job_with_lost_frames_reports_a_warning_and_the_real_count(client, tmp_path):
    import av

    path = write_clip(
        tmp_path / "clip.mp4", 24, (96, 64), container_options={"movflags": "faststart"}, stream_options={"g": "1"}
    )  # every frame a keyframe
    data = path.read_bytes()
    cut = data[: int(len(data) * 0.6)]  # the header declares 24 frames; the end is gone
    r = client.post("/api/jobs", files={"file": ("clip.mp4", cut)}, data={"output": "alpha"})
    assert r.status_code == 201, r.text
    assert r.json()["progress"]["frames_total"] == 24
    job = wait_state(client, r.json()["id"])
    assert job["state"] == "done", job
    done = job["progress"]["frames_done"]
    assert 0 < done < 24, job
    assert job["warning"] and str(client.data_dir) not in job["warning"], job
    assert f"{done} of 24" in job["warning"] or "frames" in job["warning"], job
    with av.open(io.BytesIO(client.get(job["outputs"][0]["url"]).content)) as c:
        assert sum(1 for _ in c.decode(video=0)) == done


# -- second hostile pass (new members of the classes above) ------------------------------------------


def _full_error() -> sqlite3.OperationalError:
    """A real SQLITE_FULL error ("database or disk is full"), from a database capped at one page."""
    con = sqlite3.connect(":memory:")
    con.execute("PRAGMA max_page_count = 1")
    try:
        con.execute("CREATE TABLE t (x)")
    except sqlite3.OperationalError as exc:
        return exc
    finally:
        con.close()
    raise AssertionError("SQLite did not refuse to grow past max_page_count")


@pytest.mark.parametrize(
    "pair",
    [
        ("origin", "http://evil.example", BASE),
        ("origin", BASE, "http://evil.example"),
        ("sec-fetch-site", "cross-site", "same-origin"),
        ("sec-fetch-site", "same-origin", "cross-site"),
        ("referer", "http://evil.example/", BASE + "/"),
        ("referer", BASE + "/", "http://evil.example/"),
    ],
    ids=lambda p: f"{p[0]}:{p[1]}+{p[2]}",
)
def test_a_second_copy_of_a_checked_header_cannot_pass_the_check(client, pair):
    """A header sent twice is judged by both copies: a foreign copy is never hidden by an own one
    (before, the last copy alone was checked, so Origin: evil + Origin: own passed)."""
    name, first, second = pair
    headers = [(name, first), (name, second)]
    for method, path, kw in [
        ("POST", "/api/matte", {"files": {"file": ("s.png", png())}}),
        ("POST", f"/api/jobs/{'0' * 32}/cancel", {}),
        ("DELETE", f"/api/jobs/{'0' * 32}", {}),
    ]:
        assert_json_error(client.request(method, path, headers=headers, **kw), 403, "cross_origin")
    assert list((client.data_dir / "uploads").iterdir()) == []


def test_a_second_copy_of_the_token_cannot_pass_the_check(tmp_path, session):
    app = create_app(tmp_path / "server", model=session, allowed_hosts=HOSTS, token="s3cret-token")
    with TestClient(app, base_url=BASE, raise_server_exceptions=False) as c:
        for name, good in (("authorization", "Bearer s3cret-token"), ("x-mattekit-token", "s3cret-token")):
            for headers in ([(name, "wrong"), (name, good)], [(name, good), (name, "wrong")]):
                assert_json_error(c.get("/api/jobs", headers=headers), 401, "unauthorized")
        assert c.get("/api/jobs", headers=[("authorization", "Bearer s3cret-token")]).status_code == 200


def test_every_get_route_answers_head_like_get(client):
    """RFC 9110: HEAD is GET without the body. Before, only / (and the static files) answered it;
    /api/health, the job list, a job, its input and its outputs answered 405."""
    r = client.post("/api/jobs", files={"file": ("s.png", png())}, data={"output": "alpha"})
    job = wait_state(client, r.json()["id"])
    assert job["state"] == "done", job
    paths = [
        "/",
        "/api/health",
        "/api/jobs",
        f"/api/jobs/{job['id']}",
        job["input_url"],
        job["outputs"][0]["url"],
        f"/api/jobs/{'0' * 32}",  # 404 for both
        "/docs",
        "/openapi.json",
        "/static/app.js",
    ]
    for path in paths:
        got, head = client.get(path), client.head(path)
        assert head.status_code == got.status_code, (path, head.status_code, got.status_code)
        for name in ("content-type", "x-content-type-options", "content-security-policy"):
            assert head.headers.get(name) == got.headers.get(name), (path, name)
    for path in (job["input_url"], job["outputs"][0]["url"]):  # files: headers only
        head = client.head(path)
        assert head.content == b"" and int(head.headers["content-length"]) == len(client.get(path).content)
    # POST-only routes still refuse it, and the API document lists GET only
    assert client.head("/api/matte").status_code == 405
    spec = client.get("/openapi.json").json()["paths"]
    assert not any("head" in ops for ops in spec.values()), spec.keys()


def test_a_full_job_database_is_507_and_stores_nothing(client, monkeypatch, caplog):
    """A disk that fills between the upload and the job's row: 507 like a full disk for the upload
    (before: 500 "internal error (OperationalError)" and a traceback in the log)."""
    store = client.app.state.store

    def full(job):
        raise _full_error()

    monkeypatch.setattr(store, "insert", full)
    caplog.set_level(logging.INFO, logger="mattekit.server")
    body = assert_json_error(client.post("/api/jobs", files={"file": ("s.png", png())}), 507, "disk_full")
    assert "disk is full" in body["detail"] and str(client.data_dir) not in body["detail"]
    assert list((client.data_dir / "jobs").iterdir()) == [] and list((client.data_dir / "uploads").iterdir()) == []
    assert not any(rec.exc_info for rec in caplog.records)


def test_a_worker_survives_a_job_database_it_cannot_write(client, monkeypatch, caplog):
    """The job's final state cannot be written (a full disk): one log line, and the worker goes on
    with the next job (before, its thread died with a traceback and no image job ran again)."""
    store = client.app.state.store
    real_finish = store.finish
    calls = []

    def finish_once_full(job_id, state, **kw):
        calls.append(job_id)
        if len(calls) == 1:
            raise _full_error()
        return real_finish(job_id, state, **kw)

    monkeypatch.setattr(store, "finish", finish_once_full)
    caplog.set_level(logging.INFO, logger="mattekit.server")
    first = client.post("/api/jobs", files={"file": ("a.png", png())}, data={"output": "alpha"}).json()["id"]
    deadline = time.monotonic() + 60
    while not calls:
        assert time.monotonic() < deadline, "the first job never finished"
        time.sleep(0.05)
    second = client.post("/api/jobs", files={"file": ("b.png", png())}, data={"output": "alpha"}).json()["id"]
    assert wait_state(client, second, timeout=60)["state"] == "done"
    assert client.get(f"/api/jobs/{first}").json()["state"] == "running"  # re-run after a restart
    lines = [rec.getMessage() for rec in caplog.records if rec.levelno >= logging.ERROR]
    assert len(lines) == 1 and first in lines[0] and "disk is full" in lines[0], lines
    assert not any(rec.exc_info for rec in caplog.records)


def test_a_data_folder_that_cannot_be_used_is_one_line_exit_3(tmp_path, capsys):
    """A data folder whose parts cannot be made or locked: one line naming the path, exit 3
    (before: a FileExistsError or IsADirectoryError traceback, exit 1)."""
    from mattekit.cli.main import main

    for part, problem in (("jobs", "is not a folder"), ("server.lock", "cannot be used as the data folder")):
        data = tmp_path / part.replace(".", "_")
        data.mkdir()
        (data / part).mkdir() if part.endswith(".lock") else (data / part).write_text("the user's file\n")
        assert main(["serve", "--data-dir", str(data), "--port", "0"]) == 3
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("mattekit: error: ") and problem in err[0], err
        assert "Traceback" not in "\n".join(err)
        if part == "jobs":
            assert (data / "jobs").read_text() == "the user's file\n"


def test_a_job_database_that_cannot_be_opened_is_not_called_damaged(tmp_path, capsys):
    """A good database that cannot be opened (its write-ahead log cannot be created: a full or
    read-only disk, a folder in the way) is not a damaged file: the user is not told to move it
    away (before: "not a usable mattekit job database ...; move it away")."""
    from mattekit.cli.main import main
    from mattekit.server.db import JobStore

    data = tmp_path / "data"
    data.mkdir()
    JobStore(data / "jobs.db").close()
    before = (data / "jobs.db").read_bytes()
    for leftover in data.glob("jobs.db-*"):
        leftover.unlink()
    (data / "jobs.db-wal").mkdir()
    assert main(["serve", "--data-dir", str(data), "--port", "0"]) == 3
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "jobs.db: cannot use the job database" in err[0], err
    assert "move it away" not in err[0], err
    assert (data / "jobs.db").read_bytes() == before


def test_an_unusable_host_or_port_is_one_line_exit_2(tmp_path, capsys):
    """--host/--port that cannot be listened on: one line naming the option, exit 2 like any bad
    option value (before: exit 3, and '::1:PORT' for an IPv6 address)."""
    from mattekit.cli.main import main

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        cases = [
            (["--port", str(port)], f"--port: cannot listen on 127.0.0.1:{port} (Address already in use)"),
            (["--port", "70000"], "--port: "),
            (["--port", "-1"], "--port: "),
            (["--host", ""], "--host: empty"),
            (["--host", "no-such-host.invalid", "--port", "0"], "--host: cannot listen on no-such-host.invalid:0"),
            (["--host", "192.0.2.1", "--port", "0"], "--host: cannot listen on 192.0.2.1:0"),  # not this machine
        ]
        for args, expected in cases:
            assert main(["serve", "--data-dir", str(tmp_path / "data"), *args]) == 2, args
            err = capsys.readouterr().err.strip().splitlines()
            assert len(err) == 1 and err[0].startswith(f"mattekit: error: {expected}"), (args, err)


def test_a_stalled_upload_is_cut_off_and_leaves_nothing(tmp_path, caplog):
    """A body that stops arriving (a client that sends the headers and a few bytes, then nothing)
    is abandoned after the idle time with 408 and one log line, its part file removed (before, the
    connection and the open part file were held for as long as the client liked)."""
    import types

    import anyio

    from mattekit.server.uploads import UploadError, read_multipart

    class Stalling:  # what read_multipart uses of a Starlette Request
        def __init__(self):
            self.headers = {"content-type": "multipart/form-data; boundary=B", "content-length": "100000"}
            self.url = types.SimpleNamespace(path="/api/jobs")

        async def stream(self):
            yield b'--B\r\nContent-Disposition: form-data; name="file"; filename="a.png"\r\n\r\n' + png()
            await anyio.sleep(3600)

    caplog.set_level(logging.INFO, logger="mattekit.server")

    async def receive():
        started = time.monotonic()
        with pytest.raises(UploadError) as info:
            await read_multipart(Stalling(), tmp_path, max_bytes=10**6, file_fields=("file",), idle_seconds=0.3)
        return info.value, time.monotonic() - started

    error, seconds = anyio.run(receive)
    assert error.status == 408 and error.code == "upload_stalled", error
    assert 0.3 <= seconds < 5, seconds
    assert list(tmp_path.iterdir()) == []
    lines = [r.getMessage() for r in caplog.records if "stalled" in r.getMessage()]
    assert len(lines) == 1 and not any(r.exc_info for r in caplog.records), lines
