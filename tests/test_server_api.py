"""The HTTP API of ``mattekit serve``, in process (FastAPI's TestClient), on real data.

Covers: creating, listing, reading, cancelling, deleting and downloading jobs; the synchronous
one-image endpoint; refused uploads (a text file named .mp4, a truncated PNG, a PNG whose header
declares 30000×30000, an upload over the size limit) with a JSON 4xx; path traversal through
every parameter; and a restart on the same data folder re-running an interrupted job without ever
serving its partial output.
"""

from __future__ import annotations

import io
import struct
import threading
import time
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest

from media import SHARED_DATA, cut_clip
from serving import start_server

SHARED = SHARED_DATA
STILL = SHARED / "people" / "stills" / "0001_img.png"
VIDEO = SHARED / "people" / "test-sample1.mp4"

pytestmark = pytest.mark.skipif(
    not STILL.exists() or not VIDEO.exists(), reason=f"test data missing: {SHARED} (../shared beside the checkout)"
)

fastapi_testclient = pytest.importorskip("fastapi.testclient")
TestClient = fastapi_testclient.TestClient

from PIL import Image  # noqa: E402

from mattekit.server import create_app  # noqa: E402
from mattekit.server.db import JobStore  # noqa: E402

BLUE = (10, 40, 250)


@pytest.fixture(scope="module")
def session():
    """The fake model for every app of this module: the server's mechanics run in seconds (a
    person-shaped matte is not needed to test queues, cancel, restarts, uploads and outputs)."""
    from mattekit.models import new_session

    return new_session("fake")


@pytest.fixture
def client(tmp_path, session):
    app = create_app(tmp_path / "server", model=session)
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


@pytest.fixture
def real_client(tmp_path, rvm_session):
    """A server with the real RVM model, for the tests that need a person-shaped matte."""
    app = create_app(tmp_path / "server", model=rvm_session)
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


@pytest.fixture(scope="module")
def small_video(tmp_path_factory) -> Path:
    """12 frames at 320×180."""
    return cut_clip(VIDEO, tmp_path_factory.mktemp("video") / "small.mp4", 12, (320, 180))


def assert_json_error(response, status: int, code: str | None = None) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert isinstance(body.get("detail"), str) and body["detail"], body
    if code:
        assert body["code"] == code, body
    return body


def wait_state(client, job_id: str, states=("done", "failed", "cancelled"), timeout=120.0, cond=None) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        job = client.get(f"/api/jobs/{job_id}").json()
        if cond(job) if cond else job["state"] in states:
            return job
        assert cond is None or job["state"] in ("queued", "running"), f"job ended early: {job}"
        assert time.monotonic() < deadline, f"job stuck: {job}"
        time.sleep(0.1)


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose IHDR declares width×height but carries one row of pixel data."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" + b"\x00" * 3 * 16)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def upload(client, path_or_bytes, name: str, **fields):
    data = path_or_bytes.read_bytes() if isinstance(path_or_bytes, Path) else path_or_bytes
    return client.post("/api/jobs", files={"file": (name, data)}, data=fields)


# -- the API surface --------------------------------------------------------------------------------


def test_openapi_lists_every_endpoint(client):
    paths = client.get("/openapi.json").json()["paths"]
    assert set(paths) == {
        "/api/health",
        "/api/jobs",
        "/api/jobs/{job_id}",
        "/api/jobs/{job_id}/cancel",
        "/api/jobs/{job_id}/outputs/{name}",
        "/api/jobs/{job_id}/input",
        "/api/matte",
    }
    assert set(paths["/api/jobs/{job_id}"]) == {"get", "delete"}
    assert "multipart/form-data" in paths["/api/jobs"]["post"]["requestBody"]["content"]
    page = client.get("/")
    assert page.status_code == 200 and "<form" in page.text
    assert client.get("/api/health").json()["status"] == "ok"


@pytest.mark.slow
def test_image_job_composite_over_colour(client):
    """Composite over a colour: same size as the input, the colour exactly where alpha is ~0."""
    r = upload(client, STILL, "0001_img.png", background="#0a28fa", output="composition")
    assert r.status_code == 201, r.text
    job = r.json()
    assert job["kind"] == "image" and job["state"] in ("queued", "running")
    assert job["media"]["width"] == 1920 and job["media"]["height"] == 1080
    done = wait_state(client, job["id"])
    assert done["state"] == "done", done
    assert done["progress"]["frames_done"] == done["progress"]["frames_total"] == 1
    [out] = done["outputs"]
    assert out["name"] == "composition.png" and out["media_type"] == "image/png"
    got = client.get(out["url"])
    assert got.status_code == 200 and got.headers["content-type"] == "image/png"
    assert "0001_img_composition.png" in got.headers["content-disposition"]
    assert "deprecation" not in r.headers and job["warnings"] == []
    composite = np.asarray(Image.open(io.BytesIO(got.content)).convert("RGB")).astype(int)
    assert composite.shape == (1080, 1920, 3)

    alpha_png = client.post("/api/matte", files={"file": ("x.png", STILL.read_bytes())}, data={"output": "alpha"})
    assert alpha_png.status_code == 200
    alpha = np.asarray(Image.open(io.BytesIO(alpha_png.content))) / 255.0
    assert alpha.shape == (1080, 1920)
    bg = alpha < 0.01
    person = alpha > 0.99
    assert bg.mean() > 0.2 and person.mean() > 0.05, (bg.mean(), person.mean())  # a person and a background
    # where alpha is ~0 the composite is the chosen colour within rounding
    assert np.abs(composite[bg] - np.array(BLUE)).max() <= 3
    # and where the person is, it is not
    assert np.abs(composite[person] - np.array(BLUE)).sum(axis=1).mean() > 60


@pytest.mark.slow
def test_image_job_over_uploaded_picture(client, tmp_path):
    """A background picture uploaded with the job (a plain red one, so its cover-resize is exact)."""
    red = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 0, 0)).save(red, format="PNG")
    r = client.post(
        "/api/jobs",
        files={"file": ("0001_img.png", STILL.read_bytes()), "background_file": ("red.png", red.getvalue())},
        data={"downsample_ratio": "0.25"},
    )
    assert r.status_code == 201, r.text
    assert r.json()["options"]["background"] == "image"
    done = wait_state(client, r.json()["id"])
    assert done["state"] == "done", done
    composite = np.asarray(Image.open(io.BytesIO(client.get(done["outputs"][0]["url"]).content))).astype(int)
    alpha = client.post(
        "/api/matte",
        files={"file": ("x.png", STILL.read_bytes())},
        data={"output": "alpha", "downsample_ratio": "0.25"},
    )
    bg = np.asarray(Image.open(io.BytesIO(alpha.content))) < 3
    assert bg.mean() > 0.2
    assert np.abs(composite[bg] - np.array([200, 0, 0])).max() <= 3
    assert (tmp_path / "server" / "jobs" / done["id"] / "background.png").exists()


@pytest.mark.slow
def test_sync_matte_returns_cutout(real_client):
    r = real_client.post("/api/matte", files={"file": ("0001_img.png", STILL.read_bytes())})
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    rgba = Image.open(io.BytesIO(r.content))
    assert rgba.mode == "RGBA" and rgba.size == (1920, 1080)
    a = np.asarray(rgba)[..., 3]
    assert (a == 0).mean() > 0.2 and (a == 255).mean() > 0.05
    original = np.asarray(Image.open(STILL).convert("RGB")).astype(int)
    person = a == 255
    # the cut-out's colour is the person's colour (RVM predicts it; it stays close to the photo)
    assert np.abs(np.asarray(rgba)[..., :3][person].astype(int) - original[person]).mean() < 12

    # the blurred original as background: where the alpha is ~0 the result is much smoother
    # than the photo (variance of the Laplacian, a sharpness measure)
    blurred = real_client.post(
        "/api/matte",
        files={"file": ("0001_img.png", STILL.read_bytes())},
        data={"output": "composition", "background": "blur"},
    )
    assert blurred.status_code == 200, blurred.text
    out = np.asarray(Image.open(io.BytesIO(blurred.content)).convert("L")).astype(float)
    gray = np.asarray(Image.open(STILL).convert("L")).astype(float)
    assert out.shape == gray.shape

    def laplacian(img):
        return img[1:-1, 2:] + img[1:-1, :-2] + img[2:, 1:-1] + img[:-2, 1:-1] - 4 * img[1:-1, 1:-1]

    bg = (a == 0)[1:-1, 1:-1]
    assert laplacian(out)[bg].var() < 0.2 * laplacian(gray)[bg].var()

    bad = real_client.post("/api/matte", files={"file": ("0001_img.png", STILL.read_bytes())}, data={"output": "nope"})
    assert_json_error(bad, 422, "bad_option")
    video = real_client.post("/api/matte", files={"file": ("v.mp4", VIDEO.read_bytes())})
    assert_json_error(video, 415, "unsupported_media")


def test_video_job_alpha_and_png_sequence(client, small_video):
    import av

    a = upload(client, small_video, "small.mp4", output="alpha", output_type="video").json()
    t = upload(
        client, small_video, "small.mp4", output="composition", background="transparent", output_type="png_sequence"
    ).json()
    assert a["kind"] == "video" and a["media"]["width"] == 320 and a["progress"]["frames_total"] == 12
    listed = client.get("/api/jobs").json()["jobs"]
    assert [j["id"] for j in listed[:2]] == [t["id"], a["id"]]  # newest first
    a, t = wait_state(client, a["id"]), wait_state(client, t["id"])
    assert a["state"] == "done" and t["state"] == "done", (a, t)
    assert a["progress"]["frames_done"] == 12 and a["progress"]["fps"] > 0

    alpha_mp4 = client.get(a["outputs"][0]["url"])
    assert alpha_mp4.headers["content-type"] == "video/mp4"
    with av.open(io.BytesIO(alpha_mp4.content)) as c:
        frames = [f.to_ndarray(format="gray") for f in c.decode(video=0)]
    assert len(frames) == 12 and frames[0].shape == (180, 320)
    assert frames[0].min() < 20 and frames[0].max() > 235

    z = client.get(t["outputs"][0]["url"])
    assert t["outputs"][0]["name"] == "composition.zip" and z.headers["content-type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(z.content)) as zf:
        names = sorted(n for n in zf.namelist() if n.endswith(".png"))
        assert len(names) == 12
        first = Image.open(io.BytesIO(zf.read(names[0])))
        assert first.mode == "RGBA" and first.size == (320, 180)
        alpha = np.asarray(first)[..., 3]
        assert alpha.min() == 0 and alpha.max() == 255

    # a video background (here the clip itself: the person over its own frames is the input again)
    r = client.post(
        "/api/jobs",
        files={
            "file": ("small.mp4", small_video.read_bytes()),
            "background_file": ("bg.mp4", small_video.read_bytes()),
        },
    )
    assert r.status_code == 201, r.text
    v = wait_state(client, r.json()["id"])
    assert v["state"] == "done", v
    with av.open(io.BytesIO(client.get(v["outputs"][0]["url"]).content)) as c:
        got = [f.to_ndarray(format="rgb24").astype(int) for f in c.decode(video=0)]
    with av.open(str(small_video)) as c:
        src = [f.to_ndarray(format="rgb24").astype(int) for f in c.decode(video=0)]
    assert len(got) == len(src) == 12
    # where the alpha is ~0 the result is the background video's frame (H.264 noise aside)
    diffs = [np.abs(g - s)[al < 3].mean() for g, s, al in zip(got, src, frames, strict=True)]
    assert max(diffs) < 4

    # filter by state
    done_ids = {j["id"] for j in client.get("/api/jobs?state=done").json()["jobs"]}
    assert {a["id"], t["id"]} <= done_ids


def test_cancel_running_video_leaves_nothing(client, tmp_path):
    job = upload(client, VIDEO, "test-sample1.mp4", background="green").json()
    wait_state(client, job["id"], cond=lambda j: j["state"] == "running" and j["progress"]["frames_done"] >= 2)
    t0 = time.monotonic()
    r = client.post(f"/api/jobs/{job['id']}/cancel")
    assert r.status_code == 200
    done = wait_state(client, job["id"], timeout=5)
    stopped_after = time.monotonic() - t0
    assert done["state"] == "cancelled" and done["outputs"] == []
    assert stopped_after < 3.0, stopped_after  # "within a second or two"
    assert done["progress"]["frames_done"] < 79
    job_dir = tmp_path / "server" / "jobs" / job["id"]
    assert sorted(p.name for p in job_dir.iterdir()) == ["input.mp4"]  # no out/, no work-*, no temp file
    assert_json_error(client.get(f"/api/jobs/{job['id']}/outputs/composite.mp4"), 409, "not_done")

    # a queued job is cancelled at once; cancelling twice is harmless
    q1 = upload(client, VIDEO, "a.mp4").json()
    q2 = upload(client, VIDEO, "b.mp4").json()
    assert client.post(f"/api/jobs/{q2['id']}/cancel").json()["state"] == "cancelled"
    assert client.post(f"/api/jobs/{q2['id']}/cancel").json()["state"] == "cancelled"
    # delete a running job: it is stopped and removed with its folder
    wait_state(client, q1["id"], cond=lambda j: j["state"] == "running")
    assert client.delete(f"/api/jobs/{q1['id']}").status_code == 204
    assert not (tmp_path / "server" / "jobs" / q1["id"]).exists()
    assert_json_error(client.get(f"/api/jobs/{q1['id']}"), 404, "not_found")
    assert_json_error(client.delete(f"/api/jobs/{q1['id']}"), 404)
    assert client.delete(f"/api/jobs/{q2['id']}").status_code == 204
    assert client.get("/api/health").json()["running"] == 0


# -- refused uploads --------------------------------------------------------------------------------


def test_bad_uploads_get_clear_4xx_and_server_stays_healthy(client, tmp_path):
    text = b"this is a text file, not a video\n" * 50
    body = assert_json_error(upload(client, text, "clip.mp4"), 415, "unsupported_media")
    assert "not an image or video" in body["detail"]

    data = STILL.read_bytes()
    truncated = data[: len(data) // 2]
    body = assert_json_error(upload(client, truncated, "0001_img.png"), 422, "undecodable")
    assert "truncated" in body["detail"] or "decode" in body["detail"]

    huge = png_header_only(30000, 30000)
    body = assert_json_error(upload(client, huge, "huge.png"), 422, "image_too_large")
    assert "megapixels" in body["detail"]
    # the same through the synchronous endpoint
    assert_json_error(client.post("/api/matte", files={"file": ("huge.png", huge)}), 422, "image_too_large")
    assert_json_error(client.post("/api/matte", files={"file": ("t.png", truncated)}), 422, "undecodable")

    assert_json_error(upload(client, b"", "empty.png"), 422, "empty")
    assert_json_error(client.post("/api/jobs", files={"output": (None, "composition")}), 400, "missing_file")
    assert_json_error(client.post("/api/jobs", data={"output": "composition"}), 415, "not_multipart")
    assert_json_error(
        client.post("/api/jobs", content=b"{}", headers={"content-type": "application/json"}), 415, "not_multipart"
    )
    assert_json_error(upload(client, STILL, "x.png", background="no-such-colour"), 422, "bad_option")
    assert_json_error(upload(client, STILL, "x.png", downsample_ratio="2"), 422, "bad_option")
    assert_json_error(upload(client, VIDEO, "x.mp4", background="transparent", output_type="video"), 422, "bad_option")
    assert_json_error(upload(client, VIDEO, "x.mp4", output_type="mp4"), 422, "bad_option")
    assert_json_error(
        upload(client, VIDEO, "x.mp4", output="composite", video_format="png", output_type="webm"), 422, "bad_option"
    )
    assert_json_error(
        client.post("/api/jobs", files={"file": ("x.png", data), "other": ("y.png", data)}), 400, "bad_form"
    )
    # a background picture must be an image
    assert_json_error(
        client.post("/api/jobs", files={"file": ("x.png", data), "background_file": ("b.png", text)}),
        415,
        "unsupported_media",
    )

    # nothing was left behind, and the server still works
    assert client.get("/api/jobs").json()["jobs"] == []
    assert list((tmp_path / "server" / "uploads").iterdir()) == []
    assert list((tmp_path / "server" / "jobs").iterdir()) == []
    assert client.get("/api/health").json()["status"] == "ok"
    ok = client.post("/api/matte", files={"file": ("0001_img.png", data)}, data={"downsample_ratio": "0.25"})
    assert ok.status_code == 200


def test_upload_size_limit(tmp_path, session):
    app = create_app(tmp_path / "server", model=session, max_upload_bytes=1_000_000)
    with TestClient(app, raise_server_exceptions=False) as client:
        body = assert_json_error(upload(client, STILL, "0001_img.png"), 413, "too_large")  # about 2.6 MB
        assert "limit" in body["detail"]
        small = Image.open(STILL).resize((320, 180))
        buf = io.BytesIO()
        small.save(buf, format="PNG")
        assert upload(client, buf.getvalue(), "small.png").status_code == 201
    assert list((tmp_path / "server" / "uploads").iterdir()) == []


# -- path traversal ---------------------------------------------------------------------------------


def test_no_path_traversal(client, tmp_path):
    job = upload(client, STILL, "../../evil name.png", output="alpha", downsample_ratio="0.25").json()
    assert job["filename"] == "evil name.png"
    done = wait_state(client, job["id"])
    assert done["state"] == "done"
    jid = job["id"]
    secret = tmp_path / "server" / "secret.txt"
    secret.write_text("SECRET")
    attempts = [
        f"/api/jobs/{jid}/outputs/..%2Finput.png",
        f"/api/jobs/{jid}/outputs/..%2F..%2F..%2Fsecret.txt",
        f"/api/jobs/{jid}/outputs/%2e%2e%2f%2e%2e%2f%2e%2e%2fjobs.db",
        f"/api/jobs/{jid}/outputs/..%5C..%5Cjobs.db",
        f"/api/jobs/{jid}/outputs/%2Fetc%2Fpasswd",
        f"/api/jobs/{jid}/outputs/alpha.png%00.txt",
        "/api/jobs/..%2F..%2Fsecret.txt",
        "/api/jobs/..%2F..%2Fsecret.txt/input",
        "/api/jobs/%2e%2e/outputs/jobs.db",
        "/static/..%2F..%2F..%2Fsecret.txt",
        "/static/%2e%2e/%2e%2e/app.py",
    ]
    for url in attempts:
        r = client.get(url)
        assert r.status_code in (404, 422), (url, r.status_code)
        assert b"SECRET" not in r.content and b"SQLite" not in r.content, url
        assert r.headers["content-type"].startswith("application/json"), url
    # the real output is there
    assert client.get(done["outputs"][0]["url"]).status_code == 200
    assert client.get(f"/api/jobs/{jid}/input").content == STILL.read_bytes()


# -- restart ---------------------------------------------------------------------------------------


@pytest.mark.slow
def test_restart_reruns_interrupted_job_and_runs_queued(tmp_path, session):
    data = tmp_path / "server"
    # a server that accepts uploads but whose workers never ran (its lifespan is not started)
    first = TestClient(create_app(data, model=session), raise_server_exceptions=False)
    interrupted = upload(first, STILL, "0001_img.png", background="transparent", downsample_ratio="0.25").json()
    queued = upload(first, STILL, "0001_img.png", output="alpha", downsample_ratio="0.25").json()
    first.app.state.store.close()
    # make it look as if the server died while running the first job, mid-way through its outputs
    store = JobStore(data / "jobs.db")
    store.claim_next(["image"])
    store.close()
    job_dir = data / "jobs" / interrupted["id"]
    (job_dir / "work-1").mkdir()
    (job_dir / "work-1" / "composition.png.tmp").write_bytes(b"partial")
    (job_dir / "out").mkdir()
    (job_dir / "out" / "composition.png").write_bytes(b"partial")
    (data / "uploads" / "upload-dead.part").write_bytes(b"half an upload")

    with TestClient(create_app(data, model=session), raise_server_exceptions=False) as client:
        jobs = {j["id"]: j for j in client.get("/api/jobs").json()["jobs"]}
        assert set(jobs) == {interrupted["id"], queued["id"]}
        j = jobs[interrupted["id"]]
        # never shown as done with the partial file
        assert j["state"] in ("queued", "running", "done") and "interrupted" in (j["note"] or "")
        if j["state"] != "done":
            assert j["outputs"] == []
            assert_json_error(client.get(f"/api/jobs/{j['id']}/outputs/composition.png"), 409, "not_done")
        a = wait_state(client, interrupted["id"])
        b = wait_state(client, queued["id"])
        assert a["state"] == "done" and b["state"] == "done", (a, b)
        assert a["attempts"] == 2
        png = client.get(a["outputs"][0]["url"]).content
        img = Image.open(io.BytesIO(png))
        assert img.mode == "RGBA" and img.size == (1920, 1080)
        assert sorted(p.name for p in job_dir.iterdir()) == ["input.png", "out"]
        assert list((data / "uploads").iterdir()) == []


@pytest.mark.slow
def test_concurrent_sync_requests_all_answered(client):
    """A small version of benchmarks/load_server.py: every concurrent request gets a PNG."""
    small = Image.open(STILL).resize((320, 180))
    buf = io.BytesIO()
    small.save(buf, format="PNG")
    results: list[int] = []

    def one():
        r = client.post("/api/matte", files={"file": ("s.png", buf.getvalue())})
        results.append(r.status_code if r.headers["content-type"] == "image/png" else -r.status_code)

    threads = [threading.Thread(target=one) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert results == [200] * 6


@pytest.mark.slow
def test_server_killed_mid_video_reruns_it_on_restart(tmp_path, session):
    """``mattekit serve`` killed with SIGKILL while a video runs: the next start re-runs the job,
    and the result is a complete video (all its 40 frames), never the half-written one."""
    import signal

    import av
    import httpx

    data = tmp_path / "server"

    def start():
        proc, base = start_server(data)
        return proc, httpx.Client(base_url=base, timeout=60)

    clip = cut_clip(VIDEO, tmp_path / "clip.mp4", 40, (640, 360))
    proc, client = start()
    try:
        job = upload(client, clip, "clip.mp4", downsample_ratio="0.25").json()
        wait_state(
            client, job["id"], timeout=120, cond=lambda j: j["state"] == "running" and j["progress"]["frames_done"] >= 3
        )
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        client.close()
        proc, client = start()
        j = client.get(f"/api/jobs/{job['id']}").json()
        assert j["state"] in ("queued", "running", "done") and "interrupted" in (j["note"] or "")
        if j["state"] != "done":
            assert j["outputs"] == []
        done = wait_state(client, job["id"], timeout=240)
        assert done["state"] == "done" and done["attempts"] == 2, done
        video = client.get(done["outputs"][0]["url"]).content
        with av.open(io.BytesIO(video)) as c:
            assert sum(1 for _ in c.decode(video=0)) == 40
        job_dir = data / "jobs" / job["id"]
        assert sorted(p.name for p in job_dir.iterdir()) == ["input.mp4", "out"]
        assert [p.name for p in (job_dir / "out").iterdir()] == ["composition.mp4"]
    finally:
        client.close()
        proc.terminate()
        proc.wait(20)


def test_serve_command_refuses_a_busy_data_dir_and_port(tmp_path, monkeypatch, capsys):
    import socket

    from filelock import FileLock

    from mattekit.cli.main import main
    from mattekit.cli.serve_cmd import default_data_dir

    monkeypatch.setenv("MATTEKIT_HOME", str(tmp_path / "home"))
    assert default_data_dir() == tmp_path / "home" / "server"

    data = tmp_path / "data"
    data.mkdir()
    with FileLock(str(data / "server.lock")):
        assert main(["serve", "--data-dir", str(data), "--port", "0"]) == 3
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        f"mattekit: error: {data}: another mattekit server is using this data folder; "
        "stop it or give another --data-dir"
    ]
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert main(["serve", "--data-dir", str(data), "--port", str(port)]) == 2  # a bad option value
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"mattekit: error: --port: cannot listen on 127.0.0.1:{port}")


def test_store_recovery_gives_up_after_repeated_crashes(tmp_path):
    """A job that was running at each of three server deaths is failed, not re-run a fourth time."""
    from mattekit.server.db import MAX_ATTEMPTS, Job

    store = JobStore(tmp_path / "jobs.db")
    store.insert(
        Job(id="a" * 32, kind="video", state="queued", created=time.time(), filename="x.mp4", input="input.mp4")
    )
    for attempt in range(1, MAX_ATTEMPTS + 1):
        assert store.claim_next(["video"]).attempts == attempt
        requeued, failed = store.recover()  # the server died while it ran
        if attempt < MAX_ATTEMPTS:
            assert requeued == ["a" * 32] and failed == []
            assert store.get("a" * 32).state == "queued"
        else:
            assert requeued == [] and failed == ["a" * 32]
    job = store.get("a" * 32)
    assert job.state == "failed" and "interrupted" in job.error and job.outputs == []
    assert store.claim_next(["video"]) is None
    store.close()


@pytest.mark.slow
def test_refine_changes_alpha_only_near_edges(real_client):
    """refine=true re-solves the alpha in the unknown band around the network's edges only."""
    from mattekit.classical import refinement_trimap

    small = io.BytesIO()
    Image.open(STILL).resize((640, 360), Image.Resampling.BICUBIC).save(small, format="PNG")

    def alpha(**fields):
        r = real_client.post(
            "/api/matte", files={"file": ("s.png", small.getvalue())}, data={"output": "alpha", **fields}
        )
        assert r.status_code == 200, r.text
        return np.asarray(Image.open(io.BytesIO(r.content))).astype(int)

    plain, refined = alpha(), alpha(refine="true")
    band = refinement_trimap(plain / 255.0) == 128
    assert 0.005 < band.mean() < 0.5
    # untouched outside the band (a band made from the 8-bit alpha can differ from the one made
    # from the float alpha by a pixel's rounding at its 0.02 / 0.98 / 0.5 thresholds)
    outside = np.abs(plain - refined)[~band]
    assert (outside > 0).mean() < 0.002, ((outside > 0).mean(), outside.max())
    assert (np.abs(plain - refined)[band] > 2).mean() > 0.01  # re-solved inside it
    job = upload(real_client, small.getvalue(), "s.png", refine="yes", background="transparent").json()
    assert job["options"]["refine"] is True
    assert wait_state(real_client, job["id"])["state"] == "done"
    assert_json_error(upload(real_client, small.getvalue(), "s.png", refine="maybe"), 422, "bad_option")
    assert_json_error(upload(real_client, VIDEO, "v.mp4", refine="true"), 422, "bad_option")


def test_other_sites_and_rebound_hosts_are_refused(tmp_path, session):
    """A page on another site cannot post jobs or cancel them (its browser sends Origin), and a
    loopback server answers only to loopback host names (DNS rebinding)."""
    app = create_app(tmp_path / "server", model=session, allowed_hosts=("127.0.0.1", "localhost", "::1"))
    with TestClient(app, base_url="http://127.0.0.1:7860", raise_server_exceptions=False) as client:
        small = io.BytesIO()
        Image.open(STILL).resize((320, 180)).save(small, format="PNG")
        files = {"file": ("s.png", small.getvalue())}
        evil = {"origin": "http://evil.example"}
        assert_json_error(client.post("/api/jobs", files=files, headers=evil), 403, "cross_origin")
        assert_json_error(client.post("/api/matte", files=files, headers=evil), 403, "cross_origin")
        assert client.get("/api/jobs").json()["jobs"] == []
        # the page itself (same origin) and programs without an Origin header are served
        same = client.post("/api/jobs", files=files, headers={"origin": "http://127.0.0.1:7860"})
        assert same.status_code == 201
        job_id = same.json()["id"]
        assert_json_error(client.post(f"/api/jobs/{job_id}/cancel", headers=evil), 403, "cross_origin")
        assert_json_error(client.delete(f"/api/jobs/{job_id}", headers=evil), 403, "cross_origin")
        assert client.post("/api/matte", files=files).status_code == 200
        # a rebound name reaching 127.0.0.1
        assert_json_error(client.get("/api/jobs", headers={"host": "evil.example:7860"}), 400, "bad_host")
        assert client.get("/api/jobs", headers={"host": "localhost:7860"}).status_code == 200
        assert client.get("/api/jobs", headers={"host": "[::1]:7860"}).status_code == 200


@pytest.mark.slow
def test_a_request_chooses_the_model(client, rvm_session):
    """/api/health offers the registered models; the ``model`` field picks one per request (jobs and
    /api/matte), a name outside the list (or a path) is refused, and no field keeps the server's."""
    from mattekit import matte_image

    health = client.get("/api/health").json()
    assert health["default_model"] == "fake"
    assert [m["name"] for m in health["models"]] == ["rvm-mobilenetv3", "isnet", "isnet-int8"]
    assert {m["kind"] for m in health["models"]} == {"video", "image"}
    small = io.BytesIO()
    rgb = np.asarray(Image.open(STILL).convert("RGB").resize((320, 180)))
    Image.fromarray(rgb).save(small, format="PNG")

    def alpha(**fields):
        r = client.post("/api/matte", files={"file": ("s.png", small.getvalue())}, data={"output": "alpha", **fields})
        assert r.status_code == 200, r.text
        return np.asarray(Image.open(io.BytesIO(r.content)))

    expected = np.floor(np.clip(matte_image(rgb, rvm_session, fg_estimate="network").alpha * 255 + 0.5, 0, 255))
    chosen = alpha(model="rvm-mobilenetv3")
    assert np.abs(chosen.astype(int) - expected).max() <= 1
    assert np.abs(alpha().astype(int) - chosen).mean() > 5  # the fake model's alpha is another one
    for bad in ("nope", "fake", str(rvm_session.path)):
        body = assert_json_error(
            client.post("/api/matte", files={"file": ("s.png", small.getvalue())}, data={"model": bad}),
            422,
            "bad_option",
        )
        assert body["detail"].startswith("model must be one of rvm-mobilenetv3, isnet, isnet-int8"), body
    job = upload(client, small.getvalue(), "s.png", output="alpha", model="rvm-mobilenetv3").json()
    done = wait_state(client, job["id"])
    assert done["state"] == "done", done
    got = np.asarray(Image.open(io.BytesIO(client.get(done["outputs"][0]["url"]).content)))
    assert np.array_equal(got, chosen)


def test_old_spellings_work_with_a_deprecation(client, small_video):
    """output=transparent / composite and video_format=mp4|webm|png keep working: the answer says
    so (Deprecation: true, and the words in ``warnings`` or ``Warning``); the new words do not."""
    r = upload(client, small_video, "small.mp4", output="transparent", video_format="png")
    assert r.status_code == 201, r.text
    assert r.headers["deprecation"] == "true"
    job = r.json()
    assert job["warnings"] == [
        "output=transparent is deprecated; use output=composition with background=transparent",
        "video_format=png is deprecated; use output_type=png_sequence",
    ]
    assert {k: job["options"][k] for k in ("output", "background", "output_type")} == {
        "output": "composition",
        "background": "transparent",
        "output_type": "png_sequence",
    }
    done = wait_state(client, job["id"])
    assert done["state"] == "done" and done["warnings"] == [], done
    assert done["outputs"][0]["name"] == "composition.zip"
    with zipfile.ZipFile(io.BytesIO(client.get(done["outputs"][0]["url"]).content)) as zf:
        names = sorted(n for n in zf.namelist() if n.endswith(".png"))
        first = Image.open(io.BytesIO(zf.read(names[0])))
    assert len(names) == 12 and first.mode == "RGBA"

    small = io.BytesIO()
    Image.open(STILL).resize((320, 180)).save(small, format="PNG")
    old = client.post("/api/matte", files={"file": ("s.png", small.getvalue())}, data={"output": "composite"})
    assert old.status_code == 200 and old.headers["deprecation"] == "true"
    assert old.headers["warning"] == '299 mattekit "output=composite is deprecated; use output=composition"'
    assert Image.open(io.BytesIO(old.content)).mode == "RGB"  # over the default colour, as before
    new = client.post("/api/matte", files={"file": ("s.png", small.getvalue())})
    assert new.status_code == 200 and "deprecation" not in new.headers and "warning" not in new.headers
    assert Image.open(io.BytesIO(new.content)).mode == "RGBA"  # the cut-out: background=transparent
    assert "s_composition.png" in new.headers["content-disposition"]
    fg = client.post("/api/matte", files={"file": ("s.png", small.getvalue())}, data={"output": "foreground"})
    assert fg.status_code == 200 and np.array_equal(
        np.asarray(Image.open(io.BytesIO(fg.content))), np.asarray(Image.open(io.BytesIO(new.content)))
    )


def test_a_job_stored_with_the_old_words_still_runs(tmp_path, session):
    """A job queued by an earlier server (options output=composite, background #0a28fa) runs after
    an upgrade and is shown and written with the new words."""
    from mattekit.server.db import Job, new_job_id

    data = tmp_path / "server"
    job_id = new_job_id()
    (data / "jobs" / job_id).mkdir(parents=True)
    Image.open(STILL).resize((320, 180)).save(data / "jobs" / job_id / "input.png")
    store = JobStore(data / "jobs.db")
    store.insert(
        Job(
            id=job_id,
            kind="image",
            state="queued",
            created=time.time(),
            filename="s.png",
            input="input.png",
            options={
                "output": "composite",
                "background": "#0a28fa",
                "model": None,
                "downsample_ratio": None,
                "refine": False,
            },
        )
    )
    store.close()
    with TestClient(create_app(data, model=session), raise_server_exceptions=False) as client:
        done = wait_state(client, job_id)
        assert done["state"] == "done", done
        assert done["options"]["output"] == "composition" and done["outputs"][0]["name"] == "composition.png"
        rgb = np.asarray(Image.open(io.BytesIO(client.get(done["outputs"][0]["url"]).content)))
    assert rgb.shape == (180, 320, 3) and (np.abs(rgb.astype(int) - BLUE).max(axis=2) <= 3).mean() > 0.1


def test_one_job_writes_several_outputs(client, small_video):
    """output=composition,alpha: one pass over the video, one file each, the same matte in both;
    the output plan's rules answer 422 with its message; /api/matte answers one picture only."""
    import av

    r = upload(client, small_video, "small.mp4", output="composition,alpha", background="#0a28fa")
    assert r.status_code == 201, r.text
    assert r.json()["options"]["output"] == "composition,alpha" and r.json()["options"]["output_type"] == "video"
    job = wait_state(client, r.json()["id"])
    assert job["state"] == "done", job
    assert [(o["name"], o["kind"]) for o in job["outputs"]] == [
        ("composition.mp4", "composition"),
        ("alpha.mp4", "alpha"),
    ]

    def frames(url, fmt):
        with av.open(io.BytesIO(client.get(url).content)) as c:
            return [f.to_ndarray(format=fmt).astype(int) for f in c.decode(video=0)]

    comp, alpha = frames(job["outputs"][0]["url"], "rgb24"), frames(job["outputs"][1]["url"], "gray")
    assert len(comp) == len(alpha) == 12
    for c, a in zip(comp, alpha, strict=True):
        assert (a < 3).mean() > 0.2
        assert np.abs(c[a < 3] - np.array(BLUE)).mean() < 6  # the colour where alpha is ~0 (H.264 noise aside)

    small = io.BytesIO()
    Image.open(STILL).resize((320, 180)).save(small, format="PNG")
    r = upload(client, small.getvalue(), "s.png", output="alpha,foreground")
    image_job = wait_state(client, r.json()["id"])
    assert [o["name"] for o in image_job["outputs"]] == ["alpha.png", "foreground.png"]
    gray, rgba = (
        np.asarray(Image.open(io.BytesIO(client.get(o["url"]).content))).astype(int) for o in image_job["outputs"]
    )
    assert gray.shape == (180, 320) and rgba.shape == (180, 320, 4)
    assert np.abs(rgba[..., 3] - gray).max() <= 1

    body = assert_json_error(
        upload(client, small_video, "small.mp4", background="transparent", output_type="video"), 422, "bad_option"
    )
    assert body["detail"].startswith("background: transparent needs an output type that keeps alpha"), body
    body = assert_json_error(upload(client, small_video, "small.mp4", output="composition,matte"), 422, "bad_option")
    assert body["detail"] == "output: must be among composition, alpha, foreground, not matte", body
    body = assert_json_error(
        client.post("/api/matte", files={"file": ("s.png", small.getvalue())}, data={"output": "composition,alpha"}),
        422,
        "bad_option",
    )
    assert "one picture" in body["detail"]


def test_an_ignored_field_is_a_warning_not_a_deprecation(client):
    """output_type on an image is ignored (its outputs are PNGs) and said so, without Deprecation."""
    small = io.BytesIO()
    Image.open(STILL).resize((320, 180)).save(small, format="PNG")
    r = upload(client, small.getvalue(), "s.png", output="alpha", output_type="webm")
    assert r.status_code == 201 and "deprecation" not in r.headers, r.headers
    assert r.json()["warnings"] == ["output_type webm applies to videos; an image's outputs are PNGs"]
    m = client.post("/api/matte", files={"file": ("s.png", small.getvalue())}, data={"output_type": "gif"})
    assert m.status_code == 200 and "deprecation" not in m.headers
    assert m.headers["warning"] == '299 mattekit "output_type gif applies to videos; an image\'s outputs are PNGs"'


@pytest.mark.parametrize(
    ("output_type", "name", "media_type"),
    [("prores", "composition.mov", "video/quicktime"), ("gif", "composition.gif", "image/gif")],
)
def test_every_output_type_the_plan_offers(client, small_video, output_type, name, media_type):
    """ProRes 4444 and GIF (the types the old video_format could not ask for) over transparency."""
    import av

    r = upload(client, small_video, "small.mp4", background="transparent", output_type=output_type)
    job = wait_state(client, r.json()["id"])
    assert job["state"] == "done", job
    [out] = job["outputs"]
    assert (out["name"], out["media_type"]) == (name, media_type)
    got = client.get(out["url"])
    assert got.headers["content-type"].startswith(media_type)
    with av.open(io.BytesIO(got.content)) as c:
        frames = [f.to_ndarray(format="rgba") for f in c.decode(video=0)]
    assert len(frames) == 12 and frames[0].shape == (180, 320, 4)
    alpha = frames[6][..., 3]
    assert (alpha < 5).mean() > 0.2 and (alpha > 250).mean() > 0.05  # a person on transparency
