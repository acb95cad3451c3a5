"""The hostile-input corpus through the HTTP API (issue 9), in process (FastAPI's TestClient).

Every case builds a fresh app on loopback (``Host`` checked as ``mattekit serve`` does on
127.0.0.1, one shared model), sends its request(s) and checks:

* the status is one the case documents (403 for another site, 413 too large, 415 not an image or
  video, 422 a bad option or a file that does not decode; never a 5xx unless the case says so)
  and every error is JSON ``{"detail": <one line>, "code": ...}``;
* nothing was logged with a traceback;
* a refused upload stored nothing: no job row, no job folder, nothing left in ``uploads/``.
"""

from __future__ import annotations

import io
import logging
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from PIL import Image

import hostile_inputs as gen
from hostile_harness import case_params, case_registry, partials

fastapi_testclient = pytest.importorskip("fastapi.testclient")
TestClient = fastapi_testclient.TestClient

from mattekit.server import create_app  # noqa: E402

INFERENCE = pytest.mark.inference
BASE = "http://127.0.0.1:7860"
LOOPBACK = ("127.0.0.1", "localhost", "::1")


@dataclass
class Probe:
    send: Callable  # (client) -> response
    statuses: tuple[int, ...]  # accepted statuses
    settings: dict = field(default_factory=dict)  # create_app settings
    check: Callable | None = None  # (response, client) -> None
    stores_nothing: bool = True  # on a 4xx, nothing may be stored
    prepare: Callable | None = None  # (data_dir) -> None, before the app is built
    app_error: bool = False  # building the app must fail with one clear line


CASES: dict[str, tuple[str, Callable, tuple]] = {}


case = case_registry(CASES)


def _png_bytes(width: int = 64, height: int = 48) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(gen.pattern(width, height)).save(buf, format="PNG")
    return buf.getvalue()


def _post(path: str, name: str, data: bytes, headers=None, **fields):
    return lambda c: c.post(path, files={"file": (name, data)}, data=fields, headers=headers or {})


# -- security (items 6, 8, 9) -------------------------------------------------------------------------

for _path in ("/api/jobs", "/api/matte"):
    case(f"origin-null-{_path.rsplit('/', 1)[1]}", "6")(
        lambda root, path=_path: Probe(_post(path, "a.png", _png_bytes(), {"origin": "null"}), (403,))
    )

case("origin-foreign", "6")(
    lambda root: Probe(_post("/api/jobs", "a.png", _png_bytes(), {"origin": "http://evil.example"}), (403,))
)
case("referer-foreign-no-origin", "6")(
    lambda root: Probe(
        _post(
            "/api/jobs", "a.png", _png_bytes(), {"referer": "http://evil.example/page", "sec-fetch-site": "cross-site"}
        ),
        (403,),
    )
)
case("host-foreign", "8")(
    lambda root: Probe(lambda c: c.get("/api/jobs", headers={"host": "evil.example:7860"}), (400, 403, 421))
)


def _served_as_stored_type(response, client) -> None:
    job = response.json()
    got = client.get(f"/api/jobs/{job['id']}/input")
    assert got.status_code == 200
    assert got.headers["content-type"].startswith("image/png"), got.headers["content-type"]
    assert got.headers.get("x-content-type-options") == "nosniff", dict(got.headers)


@case("png-named-evil-html-served-as-png", "9")
def _(root):
    return Probe(_post("/api/jobs", "evil.html", _png_bytes()), (201,), check=_served_as_stored_type)


def _page_headers(response, client) -> None:
    h = response.headers
    assert h.get("x-content-type-options") == "nosniff", dict(h)
    csp = h.get("content-security-policy", "")
    assert csp, f"no Content-Security-Policy: {dict(h)}"
    assert "frame-ancestors" in csp or h.get("x-frame-options", "").upper() in ("DENY", "SAMEORIGIN"), dict(h)


case("page-security-headers", "9")(lambda root: Probe(lambda c: c.get("/"), (200,), check=_page_headers))


def _docs_offline(response, client) -> None:
    """/docs, if served, loads its scripts and style sheets from this server (it must work offline)."""
    if response.status_code == 200:
        import re

        html = response.text
        sources = re.findall(r"<script[^>]*\ssrc=[\"']([^\"']+)", html)
        sources += re.findall(r"<link[^>]*rel=[\"']stylesheet[\"'][^>]*href=[\"']([^\"']+)", html)
        sources += re.findall(r"<link[^>]*href=[\"']([^\"']+\.css)", html)
        remote = [u for u in sources if re.match(r"^(https?:)?//", u)]
        assert not remote, f"/docs loads from the network: {remote}"


case("docs-work-offline", "9")(lambda root: Probe(lambda c: c.get("/docs"), (200, 404), check=_docs_offline))
case("head-root", "22")(lambda root: Probe(lambda c: c.head("/"), (200,)))

# -- what the upload is (items 7, 10, 15, 17, 19) ---------------------------------------------------

case("svg-matte", "15")(
    lambda root: Probe(_post("/api/matte", "pic.svg", gen.svg(root / "p.svg").read_bytes()), (415,))
)
case("svg-job", "15")(lambda root: Probe(_post("/api/jobs", "pic.svg", gen.svg(root / "p.svg").read_bytes()), (415,)))
case("svg-named-png", "15")(
    lambda root: Probe(_post("/api/matte", "pic.png", gen.svg(root / "p.svg").read_bytes()), (415,))
)


@case("svg-background-file", "15")
def _(root):
    svg = gen.svg(root / "p.svg").read_bytes()
    files = {"file": ("a.png", _png_bytes()), "background_file": ("bg.svg", svg)}
    return Probe(lambda c: c.post("/api/jobs", files=files), (415,))


case("html-content", "9")(
    lambda root: Probe(_post("/api/jobs", "page.png", gen.html(root / "p.html").read_bytes()), (415,))
)
case("zero-bytes", "19")(lambda root: Probe(_post("/api/jobs", "empty.png", b""), (415, 422)))
case("text-named-mp4", "corpus")(lambda root: Probe(_post("/api/jobs", "clip.mp4", b"hello\n" * 100), (415,)))
case("mp4-header-lie", "corpus")(
    lambda root: Probe(_post("/api/jobs", "clip.mp4", gen.mp4_header_lie(root / "x.mp4").read_bytes()), (415, 422))
)
case("png-header-declares-12000x12000", "7")(
    lambda root: Probe(
        _post("/api/matte", "lie.png", gen.png_header_lie(root / "x.png", 12000, 12000).read_bytes()), (413, 422)
    )
)
case("jpeg-header-declares-60000x60000", "7")(
    lambda root: Probe(_post("/api/matte", "lie.jpg", gen.jpeg_header_lie(root / "x.jpg").read_bytes()), (413, 422))
)
case("png-bomb-over-lowered-pixel-cap", "7")(
    lambda root: Probe(
        _post("/api/matte", "bomb.png", gen.png_bomb(root / "x.png", 2000, 2000).read_bytes()),
        (413, 422),
        settings={"max_pixels": 1_000_000},
    )
)
case("upload-over-size-limit", "7")(
    lambda root: Probe(_post("/api/jobs", "a.png", _png_bytes(400, 300)), (413,), settings={"max_upload_bytes": 20_000})
)
case("not-multipart", "corpus")(lambda root: Probe(lambda c: c.post("/api/jobs", json={"file": "a.png"}), (415,)))
case("zero-frame-video-job", "10")(
    lambda root: Probe(_post("/api/jobs", "zero.mkv", gen.zero_frame_video(root / "z.mkv").read_bytes()), (415, 422))
)


@case("zero-frame-video-background", "10")
def _(root):
    clip = gen.video(root / "in.mp4", frames=2).read_bytes()
    zero = gen.zero_frame_video(root / "z.mkv").read_bytes()
    return Probe(
        lambda c: c.post("/api/jobs", files={"file": ("in.mp4", clip), "background_file": ("z.mkv", zero)}), (415, 422)
    )


def _png_of_size(width, height):
    def check(response, client):
        if response.status_code == 200:
            assert Image.open(io.BytesIO(response.content)).size == (width, height)

    return check


case("image-1x1", "19", INFERENCE)(
    lambda root: Probe(_post("/api/matte", "one.png", _png_bytes(1, 1)), (200, 422), check=_png_of_size(1, 1))
)
case("image-16x4000", "19", INFERENCE)(
    lambda root: Probe(_post("/api/matte", "tall.png", _png_bytes(16, 4000)), (200, 422), check=_png_of_size(16, 4000))
)

for _ratio, _ok in (("0.001", True), ("nan", False), ("-1", False), ("inf", False), ("0", False), ("abc", False)):
    case(f"downsample_ratio-{_ratio}", "12", *([INFERENCE] if _ok else []))(
        lambda root, r=_ratio, ok=_ok: Probe(
            _post("/api/matte", "a.png", _png_bytes(), downsample_ratio=r), (200, 422) if ok else (422,)
        )
    )

case("unicode-file-name", "corpus")(lambda root: Probe(_post("/api/jobs", "Ünïcødé 日本 😀.png", _png_bytes()), (201,)))


def _raw_upload(filename: bytes, data: bytes):
    """A multipart body written by hand, so the file name goes out byte for byte."""
    body = b'--B\r\nContent-Disposition: form-data; name="file"; filename="' + filename + b'"\r\n\r\n'
    body += data + b"\r\n--B--\r\n"
    return lambda c: c.post("/api/jobs", content=body, headers={"content-type": "multipart/form-data; boundary=B"})


def _name_shown_clean(response, client) -> None:
    import unicodedata

    names = [response.json()["filename"], *(j["filename"] for j in client.get("/api/jobs").json()["jobs"])]
    names.append(client.get(response.json()["input_url"]).headers["content-disposition"])
    hidden = [n for n in names if any(unicodedata.category(ch) in ("Cc", "Cf") for ch in n)]
    assert not hidden, f"control or invisible characters shown back: {hidden!r}"
    assert "evil" in names[0] and "png" in names[0], names


# an escape sequence would reach the server's terminal through its log; U+202E shows "gnp.html" as "lmth.png"
case("upload-name-with-control-characters", "corpus")(
    lambda root: Probe(
        _raw_upload("evil\x1b[2J\x07\t\u202egnp.html.png".encode(), _png_bytes()), (201,), check=_name_shown_clean
    )
)
case("png-named-mp4", "corpus")(
    lambda root: Probe(
        _post("/api/jobs", "photo.mp4", _png_bytes()),
        (201,),
        check=lambda r, c: r.json()["kind"] == "image" or pytest.fail(r.text),
    )
)

# -- the job store (item 18) ------------------------------------------------------------------------

case("jobs-db-not-sqlite", "18")(
    lambda root: Probe(None, (), prepare=lambda data: gen.not_sqlite(data / "jobs.db"), app_error=True)
)


def _one_bad_row(data: Path, damage: str = "options = '{not json', media = 'x'") -> None:
    """Two done jobs in ``data/jobs.db``, the row of ``0.png`` then changed by ``SET <damage>``."""
    from mattekit.server.db import Job, JobStore, new_job_id

    store = JobStore(data / "jobs.db")
    for i in range(2):
        store.insert(
            Job(
                id=new_job_id(),
                kind="image",
                state="done",
                created=time.time() + i,
                filename=f"{i}.png",
                input="input.png",
                media={},
                options={},
                frames_total=1,
            )
        )
    store.close()
    with sqlite3.connect(data / "jobs.db") as db:
        db.execute(f"UPDATE jobs SET {damage} WHERE filename = '0.png'")


def _lists_good_row(response, client) -> None:
    names = [j["filename"] for j in response.json()["jobs"]]
    assert "1.png" in names, names


case("jobs-db-one-bad-row", "18")(
    lambda root: Probe(lambda c: c.get("/api/jobs"), (200,), prepare=_one_bad_row, check=_lists_good_row)
)


def _lists_good_row_and_names_bad_one(response, client) -> None:
    _lists_good_row(response, client)
    damaged = response.json()["damaged"]
    assert len(damaged) == 1 and damaged[0]["problem"], damaged
    got = client.get(f"/api/jobs/{damaged[0]['id']}/outputs/alpha.png")
    assert got.status_code == 500 and got.json()["code"] == "damaged_job", got.text


# an output entry the API cannot show or serve as the server wrote it: each made the whole list 500
_ALPHA = '"name": "alpha.png", "kind": "alpha"'
for _name, _outputs in (
    ("output-entry-without-kind", '[{"name": "alpha.png", "media_type": "image/png", "bytes": 1}]'),
    ("output-entry-served-as-html", f'[{{{_ALPHA}, "media_type": "text/html", "bytes": 1}}]'),
    ("output-entry-size-not-a-number", f'[{{{_ALPHA}, "media_type": "image/png", "bytes": "x"}}]'),
    ("output-entry-name-with-a-path", '[{"name": "../a.png", "kind": "alpha", "media_type": "image/png", "bytes": 1}]'),
    ("json-nested-too-deep", "[" * 100_000 + "]" * 100_000),
):
    case(f"jobs-db-{_name}", "18")(
        lambda root, outputs=_outputs: Probe(
            lambda c: c.get("/api/jobs"),
            (200,),
            prepare=lambda data: _one_bad_row(data, f"state = 'done', outputs = '{outputs}'"),
            check=_lists_good_row_and_names_bad_one,
        )
    )

# -- silently wrong results (item 23) ---------------------------------------------------------------


@case("corrupt-middle-of-video-job", "23", INFERENCE)
def _(root):
    gen.video(root / "clean.mp4", frames=24, width=96, height=64, audio=True)
    data = gen.corrupt_middle(root / "clean.mp4", root / "corrupt.mp4").read_bytes()

    def check(response, client):
        job_id = response.json()["id"]
        deadline = time.monotonic() + 60
        while (job := client.get(f"/api/jobs/{job_id}").json())["state"] in ("queued", "running"):
            assert time.monotonic() < deadline, job
            time.sleep(0.1)
        assert job["state"] == "done", job
        done = job["progress"]["frames_done"]
        assert done >= 20, f"only {done} of 24 frames: {job}"
        reports = [job.get(k) or "" for k in ("note", "warning")]
        assert any("frame" in r for r in reports), f"no report of the frames lost: {job}"

    return Probe(_post("/api/jobs", "corrupt.mp4", data, output="alpha"), (201,), check=check)


# -- the test ---------------------------------------------------------------------------------------

# case id -> why it is still expected to fail (the issue item and the failing line)
XFAIL: dict[str, str] = {}


def _stored(data: Path) -> list[str]:
    jobs = sorted(p.name for p in (data / "jobs").iterdir()) if (data / "jobs").is_dir() else []
    uploads = sorted(p.name for p in (data / "uploads").iterdir()) if (data / "uploads").is_dir() else []
    return jobs + uploads


@pytest.mark.parametrize("case_id", case_params(CASES, XFAIL))
def test_server_hostile_input(case_id, tmp_path, rvm_session, caplog):
    _item, build, _ = CASES[case_id]
    root = tmp_path / "files"
    root.mkdir()
    probe = build(root)
    data = tmp_path / "server"
    data.mkdir()
    if probe.prepare:
        probe.prepare(data)
    caplog.set_level(logging.INFO)
    if probe.app_error:

        def start() -> None:
            with TestClient(
                create_app(data, model=rvm_session, allowed_hosts=LOOPBACK), base_url=BASE, raise_server_exceptions=True
            ):
                pass

        with pytest.raises(Exception) as info:  # noqa: PT011 (any type: what is checked is the message below)
            start()
        message = str(info.value)
        shown = f"{type(info.value).__module__}.{type(info.value).__name__}: {message}"
        assert not isinstance(info.value, sqlite3.Error), f"raw database error: {shown}"
        assert "\n" not in message.strip() and "jobs.db" in message, shown
        return
    app = create_app(data, model=rvm_session, allowed_hosts=LOOPBACK, **probe.settings)
    with TestClient(app, base_url=BASE, raise_server_exceptions=False) as client:
        before = _stored(data)
        response = probe.send(client)
        shown = f"{response.status_code} {response.text[:300]!r}"
        assert response.status_code in probe.statuses, f"status not in {probe.statuses}: {shown}"
        if response.status_code >= 400:
            assert response.headers["content-type"].startswith("application/json"), shown
            body = response.json()
            assert isinstance(body.get("detail"), str) and body["detail"] and "\n" not in body["detail"], shown
            assert body.get("code"), shown
            if probe.stores_nothing and response.request.method == "POST":
                assert _stored(data) == before, f"a refused upload left files: {_stored(data)}"
                assert client.get("/api/jobs").json()["jobs"] == [] or before, "a refused upload made a job"
        if probe.check:
            probe.check(response, client)
    logged = [r for r in caplog.records if r.exc_info or "Traceback" in r.getMessage()]
    assert not logged, f"traceback logged: {logged[0].getMessage()[:300]}"
    assert not partials(data), partials(data)
