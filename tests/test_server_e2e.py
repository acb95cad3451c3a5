"""End to end: ``mattekit serve`` in a subprocess, driven through its page by headless Chromium.

A person uploads ../shared/data/people/stills/0001_img.png with a colour background, waits for
the job to finish and downloads it (an image of the input's size whose pixels are the chosen
colour where the alpha is ~0); then test-sample1.mp4 as a composition over a transparent
background in WebM (VP9 with alpha); then cancels a third job from the page.
Screenshots of every state go to test-artifacts/server-e2e/.

Needs Debian's ``chromium`` and ``chromium-driver`` (``make chromium`` installs them) and Selenium.
"""

from __future__ import annotations

import io
import time
from pathlib import Path

import numpy as np
import pytest

from media import SHARED_DATA
from serving import free_port, start_server, stop_server

ROOT = Path(__file__).resolve().parents[1]
SHARED = SHARED_DATA
STILL = SHARED / "people" / "stills" / "0001_img.png"
VIDEO = SHARED / "people" / "test-sample1.mp4"
CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
ARTIFACTS = ROOT / "test-artifacts" / "server-e2e"
COLOUR = "#0a28fa"
RGB = (10, 40, 250)

if not (STILL.exists() and VIDEO.exists()):
    pytest.skip(f"test data missing: {SHARED} (../shared beside the checkout)", allow_module_level=True)
if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
    pytest.skip(
        "Chromium is not installed: run `make chromium` (apt-get install chromium chromium-driver)",
        allow_module_level=True,
    )
pytestmark = [pytest.mark.browser, pytest.mark.slow]  # headless Chromium against a served page (50 s here)
webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed")
httpx = pytest.importorskip("httpx")

from PIL import Image  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.action_chains import ActionChains  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support.ui import Select, WebDriverWait  # noqa: E402


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """``mattekit serve`` on a free loopback port; yields its base URL."""
    from mattekit.errors import MattekitError
    from mattekit.models.fetch import fetch
    from mattekit.models.registry import DEFAULT_MODEL

    try:
        fetch(DEFAULT_MODEL)
    except MattekitError as exc:
        pytest.skip(f"model not available: {exc}")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    data = tmp_path_factory.mktemp("serve")
    log = open(ARTIFACTS / "server.log", "w")  # noqa: SIM115 (the server's log while the fixture lives)
    try:
        proc, base = start_server(data, log=log, cwd=ROOT)
    except RuntimeError as exc:
        pytest.fail(f"{exc}; see {ARTIFACTS / 'server.log'}")
    yield base
    stop_server(proc)
    log.close()


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    downloads = tmp_path_factory.mktemp("downloads")
    profile = tmp_path_factory.mktemp("chromium-profile")
    opts = webdriver.ChromeOptions()
    opts.binary_location = str(CHROMIUM)
    for arg in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        "--window-size=1100,1300",
    ):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    opts.add_experimental_option(
        "prefs", {"download.default_directory": str(downloads), "download.prompt_for_download": False}
    )
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=opts)
    driver.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)})
    driver.downloads = downloads
    yield driver
    driver.quit()


def shot(driver, name: str) -> None:
    """Save a screenshot of the whole page (not only the window) as test-artifacts/server-e2e/NAME.png."""
    import base64

    size = driver.execute_cdp_cmd("Page.getLayoutMetrics", {})["cssContentSize"]
    # the capture lays the page out without a scroll bar, i.e. at the window's full inner width
    width = max(size["width"], driver.execute_script("return window.innerWidth"))
    clip = {"x": 0, "y": 0, "width": width, "height": size["height"], "scale": 1}
    png = driver.execute_cdp_cmd(
        "Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True, "clip": clip}
    )
    (ARTIFACTS / f"{name}.png").write_bytes(base64.b64decode(png["data"]))


def wait_current(driver, states, timeout=180):
    WebDriverWait(driver, timeout, poll_frequency=0.1).until(
        lambda d: d.find_element(By.ID, "current").get_attribute("data-state") in states,
        message=f"job did not reach {states}",
    )
    return driver.find_element(By.ID, "current").get_attribute("data-state")


def wait_download(folder: Path, name: str, timeout=60) -> Path:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        path = folder / name
        if path.exists() and not list(folder.glob("*.crdownload")):
            return path
        time.sleep(0.2)
    raise AssertionError(f"no download {name} in {folder}: {[p.name for p in folder.iterdir()]}")


def choose(driver, name: str, value: str) -> None:
    driver.find_element(By.CSS_SELECTOR, f'input[name="{name}"][value="{value}"]').click()


def start_job(driver, path: Path) -> None:
    driver.find_element(By.ID, "file").send_keys(str(path))
    WebDriverWait(driver, 10).until(lambda d: path.name in d.find_element(By.ID, "file-name").text)


def test_page_end_to_end(server, browser):
    d = browser
    d.get(server + "/")
    WebDriverWait(d, 10).until(lambda d: d.find_element(By.ID, "version").text)
    shot(d, "01-empty")
    # the model choice offers the server's default and every model /api/health offers
    models = [m["name"] for m in httpx.get(f"{server}/api/health").json()["models"]]
    WebDriverWait(d, 10).until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#model option")) > 1)
    assert [o.get_attribute("value") for o in d.find_elements(By.CSS_SELECTOR, "#model option")] == ["", *models]

    # keyboard: Tab reaches the file chooser, the options and the start button
    d.execute_script("document.activeElement && document.activeElement.blur()")
    seen = []
    for _ in range(25):
        ActionChains(d).send_keys(Keys.TAB).perform()
        el = d.switch_to.active_element
        seen.append(el.get_attribute("id") or el.get_attribute("value") or el.tag_name)
    assert {"file", "composition", "bg-color", "start"} <= set(seen), seen

    # -- an image over a colour -------------------------------------------------------------------
    start_job(d, STILL)
    choose(d, "output", "composition")
    choose(d, "background", "color")
    d.execute_script(
        "const c = document.getElementById('bg-color'); c.value = arguments[0];"
        "c.dispatchEvent(new Event('input', {bubbles: true}));",
        COLOUR,
    )
    assert d.find_element(By.ID, "bg-color").get_attribute("value") == COLOUR
    shot(d, "02-image-form")
    d.find_element(By.ID, "start").click()
    wait_current(d, {"queued", "running", "done"})
    shot(d, "03-image-submitted")
    assert wait_current(d, {"done", "failed"}) == "done", d.find_element(By.ID, "cur-status").text
    WebDriverWait(d, 10).until(
        lambda d: d.execute_script(
            "return [...document.querySelectorAll('#preview img')].every(i => i.complete && i.naturalWidth > 0)"
        )
    )
    shot(d, "04-image-done")
    dl = d.find_element(By.ID, "download")
    assert dl.is_displayed()
    dl.click()
    path = wait_download(d.downloads, "0001_img_composition.png")
    composite = np.asarray(Image.open(path).convert("RGB")).astype(int)
    assert composite.shape == (1080, 1920, 3)
    # the alpha of the same image, from the API (the model is deterministic)
    r = httpx.post(
        f"{server}/api/matte",
        files={"file": ("0001_img.png", STILL.read_bytes())},
        data={"output": "alpha"},
        timeout=120,
    )
    assert r.status_code == 200
    alpha = np.asarray(Image.open(io.BytesIO(r.content))) / 255.0
    bg = alpha < 0.01
    assert bg.mean() > 0.2
    assert np.abs(composite[bg] - np.array(RGB)).max() <= 3
    assert np.abs(composite[alpha > 0.99] - np.array(RGB)).sum(axis=1).mean() > 60

    # -- a video: the composition over a transparent background, in WebM ----------------------------
    d.refresh()
    WebDriverWait(d, 10).until(lambda d: d.find_element(By.ID, "version").text)
    start_job(d, VIDEO)
    choose(d, "output", "composition")
    choose(d, "background", "transparent")
    d.find_element(By.TAG_NAME, "summary").click()
    Select(d.find_element(By.ID, "output-type")).select_by_value("webm")
    ratio = d.find_element(By.ID, "ratio")
    ratio.clear()
    ratio.send_keys("0.25")
    shot(d, "05-video-form")
    d.find_element(By.ID, "start").click()
    # the progress line: "Running: 12 of 79 frames · 9.8 fps · about 7 s left"
    WebDriverWait(d, 60, poll_frequency=0.1).until(
        lambda d: "fps" in d.find_element(By.ID, "cur-status").text, message="no fps shown"
    )
    time.sleep(1.0)
    shot(d, "06-video-running")
    assert wait_current(d, {"done", "failed"}) == "done", d.find_element(By.ID, "cur-status").text
    time.sleep(0.5)
    shot(d, "07-video-done")
    d.find_element(By.ID, "download").click()
    import av

    path = wait_download(d.downloads, "test-sample1_composition.webm")
    with av.open(str(path)) as c:
        stream = c.streams.video[0]
        codec = av.CodecContext.create("libvpx-vp9", "r")  # FFmpeg's own vp9 decoder drops alpha
        codec.extradata = stream.codec_context.extradata
        frames = []
        for packet in c.demux(stream):  # ends with an empty packet, which flushes the decoder
            frames += [f.to_ndarray(format="rgba") for f in codec.decode(packet)]
    assert len(frames) == 79 and frames[0].shape == (720, 1280, 4)
    a = frames[40][..., 3]
    assert (a < 5).mean() > 0.2 and (a > 250).mean() > 0.05  # a person on transparency

    # -- cancel from the page ---------------------------------------------------------------------
    d.refresh()
    WebDriverWait(d, 10).until(lambda d: d.find_element(By.ID, "version").text)
    start_job(d, VIDEO)
    choose(d, "output", "composition")
    d.find_element(By.ID, "start").click()
    WebDriverWait(d, 60, poll_frequency=0.1).until(lambda d: "frames" in d.find_element(By.ID, "cur-status").text)
    d.find_element(By.ID, "cur-cancel").click()
    assert wait_current(d, {"cancelled", "done", "failed"}, timeout=10) == "cancelled"
    shot(d, "08-cancelled")
    rows = d.find_elements(By.CSS_SELECTOR, "#jobs tbody tr")
    assert [r.get_attribute("data-state") for r in rows] == ["cancelled", "done", "done"]

    # -- a narrow window ---------------------------------------------------------------------------
    d.set_window_size(400, 1000)
    time.sleep(0.3)
    scroll, client = d.execute_script(
        "return [document.documentElement.scrollWidth, document.documentElement.clientWidth]"
    )
    assert scroll <= client <= 400, f"page scrolls sideways in a 400 px window: {scroll} > {client}"
    shot(d, "09-narrow")
    d.set_window_size(1100, 1300)


# a page of another site (another origin: a second port) whose sandboxed iframe (Origin: null)
# and whose own script and form try to create jobs on the mattekit server
EVIL_PAGE = """<!doctype html><html><body>
<iframe sandbox="allow-scripts allow-forms" srcdoc="<script>
  const png = Uint8Array.from(atob('{png}'), c => c.charCodeAt(0));
  const fd = new FormData(); fd.append('file', new Blob([png], {{type: 'image/png'}}), 'x.png');
  fetch('{target}/api/jobs', {{method: 'POST', body: fd, mode: 'no-cors'}});
  fetch('{target}/api/matte', {{method: 'POST', body: fd, mode: 'no-cors'}});
</script>"></iframe>
<script>
  const fd = new FormData(); fd.append('file', new Blob(['GIF89a'], {{type: 'image/gif'}}), 'y.gif');
  fetch('{target}/api/jobs', {{method: 'POST', body: fd, mode: 'no-cors'}});
</script>
<form id="f" method="post" action="{target}/api/jobs" enctype="multipart/form-data" target="sink">
<input name="output" value="alpha"></form><iframe name="sink"></iframe>
<script>document.getElementById('f').submit();</script>
</body></html>"""


def test_other_sites_cannot_create_jobs_from_a_real_browser(browser, tmp_path):
    """A sandboxed iframe (Origin: null), a script and a form of another origin all reach the
    server (its access log shows each request) and all get 403; no job appears."""
    import base64
    import http.server
    import threading

    log_path = tmp_path / "serve.log"
    with open(log_path, "w") as log:
        proc, target = start_server(tmp_path / "data", log=log, log_level="info", cwd=ROOT)
    buf = io.BytesIO()
    Image.new("RGB", (32, 32), (0, 200, 0)).save(buf, format="PNG")
    page = EVIL_PAGE.format(png=base64.b64encode(buf.getvalue()).decode(), target=target).encode()

    class Evil(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.end_headers()
            self.wfile.write(page)

        def log_message(self, *args):
            pass

    evil = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), Evil)
    threading.Thread(target=evil.serve_forever, daemon=True).start()
    try:
        browser.get(f"http://127.0.0.1:{evil.server_address[1]}/")
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and log_path.read_text().count('" 403') < 4:
            time.sleep(0.2)
        jobs = httpx.get(f"{target}/api/jobs").json()["jobs"]
    finally:
        evil.shutdown()
        stop_server(proc)
    access = [line for line in log_path.read_text().splitlines() if '"POST /api/' in line]
    assert sorted(line.split('"POST ')[1].removesuffix(" Forbidden") for line in access) == [
        '/api/jobs HTTP/1.1" 403',
        '/api/jobs HTTP/1.1" 403',
        '/api/jobs HTTP/1.1" 403',
        '/api/matte HTTP/1.1" 403',
    ], access
    assert jobs == []


def test_api_docs_render_offline(server, browser):
    """/docs renders Swagger UI from files of this server only, with no CSP violation."""
    browser.get_log("browser")
    browser.get(server + "/docs")
    WebDriverWait(browser, 20).until(
        lambda d: (
            "mattekit"
            in d.execute_script(
                "const t = document.querySelector('.swagger-ui .info .title'); return t ? t.textContent : ''"
            )
        )
    )
    assert browser.find_elements(By.CSS_SELECTOR, ".opblock-summary-path")  # the endpoints are listed
    hosts = browser.execute_script("return performance.getEntriesByType('resource').map(e => new URL(e.name).host)")
    assert set(hosts) <= {server.split("//")[1]}, hosts
    problems = [e["message"] for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert not problems, problems
    shot(browser, "10-api-docs")
