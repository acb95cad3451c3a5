"""Peak memory of ``mattekit serve`` for large uploads (issue 9, item 7).

Starts ``mattekit serve`` on a free loopback port (``--max-megapixels 50``), then, one scenario
after another on the same server: one ``POST /api/matte`` of a large picture (the RGBA cut-out),
one image job of it (composition over a colour), and ``--concurrent`` simultaneous ``POST
/api/matte`` of it. Pictures: ``photo``, ../shared/data/people/stills/0001_img.png scaled up to
``--size`` (default 8000×6000 = 48 MP; a real photo's content), and ``flat``, a flat 6000×6000 PNG
of about 100 KB (the issue's memory bomb). After each scenario it prints the server's resident
memory (``VmRSS``) and its peak during that scenario (``VmHWM``, from /proc; reset before each
scenario by writing 5 to /proc/PID/clear_refs, so a row is not the peak of an earlier one), and
the time.

    .venv/bin/python benchmarks/server_memory.py
    .venv/bin/python benchmarks/server_memory.py --size 4000x3000 --concurrent 3

Not part of ``make test``; the figures go to docs/server.md.
"""

from __future__ import annotations

import argparse
import io
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from load_server import free_port, proc_memory
from PIL import Image

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def pictures(size: tuple[int, int]) -> dict[str, bytes]:
    photo = Image.open(SHARED / "people" / "stills" / "0001_img.png").convert("RGB")
    out = {}
    buf = io.BytesIO()
    photo.resize(size, Image.Resampling.BICUBIC).save(buf, format="PNG", compress_level=1)
    out["photo"] = buf.getvalue()
    buf = io.BytesIO()
    Image.new("RGB", (6000, 6000), (30, 120, 200)).save(buf, format="PNG")
    out["flat"] = buf.getvalue()
    return out


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    except OSError:
        pass
    return "unknown CPU"


def reset_peak(pid: int) -> None:
    """Start the process's peak resident memory (VmHWM) again from its current RSS (Linux)."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError as exc:
        print(f"(cannot reset the peak: {exc.strerror}; peaks are cumulative)")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", default="8000x6000", help="WxH of the photo (default 48 MP)")
    ap.add_argument("--concurrent", type=int, default=3, help="simultaneous POST /api/matte")
    args = ap.parse_args()
    size = tuple(int(v) for v in args.size.lower().split("x"))
    with tempfile.TemporaryDirectory() as tmp:
        files = pictures(size)
        port = free_port()
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "mattekit",
                "serve",
                "--port",
                str(port),
                "--data-dir",
                str(Path(tmp) / "data"),
                "--max-megapixels",
                "50",
                "--log-level",
                "warning",
            ],
            stderr=subprocess.DEVNULL,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            for _ in range(300):
                try:
                    if httpx.get(base + "/api/health", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.2)
            print("picture sizes: " + ", ".join(f"{k} {len(v) / 1e6:.2f} MB" for k, v in files.items()))
            print(f"{'scenario':<34} {'status':<14} {'seconds':>8} {'RSS MB':>8} {'peak MB':>8}")
            rss, peak = (v / 2**20 for v in proc_memory(proc.pid))
            print(f"{'idle':<34} {'':<14} {'':>8} {rss:>8.0f} {peak:>8.0f}")

            def matte(name: str) -> int:
                r = httpx.post(base + "/api/matte", files={"file": (f"{name}.png", files[name])}, timeout=3600)
                return r.status_code

            def job(name: str) -> str:
                r = httpx.post(
                    base + "/api/jobs",
                    files={"file": (f"{name}.png", files[name])},
                    data={"background": "#00ff00"},
                    timeout=3600,
                )
                if r.status_code != 201:
                    return str(r.status_code)
                while True:
                    state = httpx.get(f"{base}/api/jobs/{r.json()['id']}").json()["state"]
                    if state in ("done", "failed", "cancelled"):
                        return state
                    time.sleep(0.5)

            scenarios = [
                (f"POST /api/matte photo {size[0]}x{size[1]}", lambda: [matte("photo")]),
                ("image job photo (composition)", lambda: [job("photo")]),
                ("POST /api/matte flat 6000x6000", lambda: [matte("flat")]),
                (
                    f"{args.concurrent} x POST /api/matte photo at once",
                    lambda: list(
                        ThreadPoolExecutor(args.concurrent).map(lambda _: matte("photo"), range(args.concurrent))
                    ),
                ),
            ]
            for label, run in scenarios:
                reset_peak(proc.pid)
                t = time.monotonic()
                results = run()
                rss, peak = (v / 2**20 for v in proc_memory(proc.pid))
                print(
                    f"{label:<34} {','.join(map(str, results)):<14} {time.monotonic() - t:>8.1f} "
                    f"{rss:>8.0f} {peak:>8.0f}",
                    flush=True,
                )
        finally:
            proc.terminate()
            proc.wait(30)
    print(f"load average at the end: {os.getloadavg()[0]:.1f}; CPU: {cpu_name()}, {os.cpu_count()} cores")
    return 0


if __name__ == "__main__":
    sys.exit(main())
