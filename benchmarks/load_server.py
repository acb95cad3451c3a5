"""Bounded load test of ``mattekit serve`` on loopback.

Starts ``mattekit serve`` on a free 127.0.0.1 port with a fresh data folder, queues ``--videos``
video jobs (default 5 × ../shared/data/people/test-sample1.mp4, composition over green), then sends
``--images`` concurrent synchronous ``POST /api/matte`` requests (default 20 ×
people/stills/0001_img.png, 1920×1080) while those videos run, and waits for every video job.

It prints: requests sent and answered, status codes, errors, the latency of the synchronous
requests (p50, p90, p99, max; wall-clock from sending the upload to receiving the whole PNG), the
video jobs' states and times, and the peak resident memory of the server process (``VmHWM`` from
/proc, sampled until the end), plus whether the server still answers ``/api/health``.

    .venv/bin/python benchmarks/load_server.py
    .venv/bin/python benchmarks/load_server.py --images 40 --videos 2 --ratio 0.25

Timings depend on whatever else the machine is doing; the load average is printed before and
after. Not part of ``make test`` (tests/test_server_api.py has a small concurrent-requests check).
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
from rich.console import Console
from rich.table import Table

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def proc_memory(pid: int) -> tuple[int, int]:
    """(VmRSS, VmHWM) of a process in bytes, from /proc/PID/status."""
    values = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                values[key] = int(rest.split()[0]) * 1024
    return values.get("VmRSS", 0), values.get("VmHWM", 0)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=20, help="concurrent synchronous image requests")
    ap.add_argument("--videos", type=int, default=5, help="video jobs queued")
    ap.add_argument("--image", type=Path, default=SHARED / "people" / "stills" / "0001_img.png")
    ap.add_argument("--video", type=Path, default=SHARED / "people" / "test-sample1.mp4")
    ap.add_argument("--ratio", default="auto", help="downsample_ratio sent with every request")
    ap.add_argument("--timeout", type=float, default=900, help="seconds to wait for everything")
    args = ap.parse_args()
    console = Console(width=150)
    for p in (args.image, args.video):
        if not p.exists():
            console.print(f"missing input {p}")
            return 2

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    data = Path(tempfile.mkdtemp(prefix="mattekit-load-"))
    log = open(data / "server.log", "w")  # noqa: SIM115 (the server writes it until the end of the run)
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mattekit",
            "serve",
            "--port",
            str(port),
            "--data-dir",
            str(data / "server"),
            "--log-level",
            "warning",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    client = httpx.Client(base_url=base, timeout=args.timeout)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if client.get("/api/health").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                console.print(f"server did not start; see {data / 'server.log'}")
                return 1
            time.sleep(0.2)
        load_before = os.getloadavg()
        idle_rss = proc_memory(server.pid)[0]

        peak = {"rss": 0}
        stop = threading.Event()

        def sample() -> None:
            while not stop.is_set():
                try:
                    rss, hwm = proc_memory(server.pid)
                except OSError:
                    return
                peak["rss"] = max(peak["rss"], rss)
                peak["hwm"] = hwm
                stop.wait(0.1)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()

        t_start = time.monotonic()
        video_bytes = args.video.read_bytes()
        job_ids, create_errors = [], []
        for _ in range(args.videos):
            r = client.post(
                "/api/jobs",
                files={"file": (args.video.name, video_bytes)},
                data={"output": "composition", "background": "green", "downsample_ratio": args.ratio},
            )
            if r.status_code == 201:
                job_ids.append(r.json()["id"])
            else:
                create_errors.append(f"{r.status_code} {r.text[:100]}")

        image_bytes = args.image.read_bytes()

        def one(i: int):
            t0 = time.monotonic()
            try:
                with httpx.Client(base_url=base, timeout=args.timeout) as c:
                    r = c.post(
                        "/api/matte",
                        files={"file": (args.image.name, image_bytes)},
                        data={"downsample_ratio": args.ratio},
                    )
                ok = r.status_code == 200 and r.headers.get("content-type") == "image/png"
                return time.monotonic() - t0, r.status_code, None if ok else r.text[:120]
            except httpx.HTTPError as exc:
                return time.monotonic() - t0, None, f"{type(exc).__name__}: {exc}"

        with ThreadPoolExecutor(args.images) as pool:
            results = list(pool.map(one, range(args.images)))
        t_images = time.monotonic() - t_start

        jobs = {}
        deadline = time.monotonic() + args.timeout
        while time.monotonic() < deadline:
            jobs = {j: client.get(f"/api/jobs/{j}").json() for j in job_ids}
            if all(v["state"] in ("done", "failed", "cancelled") for v in jobs.values()):
                break
            time.sleep(0.5)
        t_all = time.monotonic() - t_start
        healthy = client.get("/api/health").status_code == 200
        stop.set()
        sampler.join()
        rss_end, hwm = proc_memory(server.pid)
        load_after = os.getloadavg()
    finally:
        client.close()
        server.terminate()
        try:
            server.wait(20)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()

    latencies = np.array([r[0] for r in results])
    codes: dict = {}
    for _, code, _ in results:
        codes[code] = codes.get(code, 0) + 1
    errors = [r[2] for r in results if r[2]] + create_errors
    answered = sum(1 for r in results if r[1] is not None)

    console.print(
        f"mattekit serve load test on {base}, {os.cpu_count()} CPUs, "
        f"load average {load_before[0]:.1f} before, {load_after[0]:.1f} after"
    )
    t = Table(
        title=f"{args.images} concurrent POST /api/matte ({args.image.name}) while "
        f"{args.videos} video jobs ({args.video.name}) run"
    )
    for col in (
        "requests",
        "answered",
        "status codes",
        "errors",
        "p50 s",
        "p90 s",
        "p99 s",
        "max s",
        "all images in s",
    ):
        t.add_column(col, justify="right")
    t.add_row(
        str(len(results)),
        str(answered),
        ", ".join(f"{k}×{v}" for k, v in sorted(codes.items(), key=str)),
        str(len(errors)),
        *(f"{np.percentile(latencies, q):.2f}" for q in (50, 90, 99)),
        f"{latencies.max():.2f}",
        f"{t_images:.1f}",
    )
    console.print(t)

    v = Table(title="video jobs")
    for col in ("job", "state", "frames", "queued→done s", "run s", "fps"):
        v.add_column(col, justify="right")
    for i, job in enumerate(jobs.values()):
        run = (job["finished"] - job["started"]) if job.get("finished") and job.get("started") else None
        v.add_row(
            str(i + 1),
            job["state"],
            str(job["progress"]["frames_done"]),
            f"{job['finished'] - job['created']:.1f}" if job.get("finished") else "-",
            f"{run:.1f}" if run else "-",
            f"{job['progress']['fps']:.1f}" if job["progress"]["fps"] else "-",
        )
    console.print(v)

    m = Table(title="server process memory")
    for col in ("RSS idle MB", "peak RSS sampled MB", "VmHWM (peak) MB", "RSS at end MB", "total s", "healthy after"):
        m.add_column(col, justify="right")
    m.add_row(
        f"{idle_rss / 2**20:.0f}",
        f"{peak['rss'] / 2**20:.0f}",
        f"{hwm / 2**20:.0f}",
        f"{rss_end / 2**20:.0f}",
        f"{t_all:.1f}",
        "yes" if healthy else "NO",
    )
    console.print(m)
    for e in errors[:10]:
        console.print(f"error: {e}")
    done = sum(1 for j in jobs.values() if j["state"] == "done")
    return 0 if (not errors and answered == len(results) and healthy and done == args.videos) else 1


if __name__ == "__main__":
    sys.exit(main())
