"""libx264 presets for mattekit's ``video`` output: encoding time, file size and quality.

The composite frames of a real clip (``../shared/data/people/test-sample1.mp4`` scaled to 1920×1080,
matted by mattekit over RVM's green) are made once and kept uncompressed in memory; each preset
then encodes them at CRF 18 (mattekit's setting) in ``yuv420p``, and the decoded result is compared
with the uncompressed composite: PSNR over RGB (dB) and SSIM of the luma (scikit-image,
Wang et al. 2004, 7×7 window). Time is the encoder's process CPU time per frame (all of x264's
threads; robust to other load) and its wall time.

    .venv/bin/python benchmarks/bench_presets.py                  # 1080p, 40 frames
    .venv/bin/python benchmarks/bench_presets.py --frames 79 --presets ultrafast,veryfast,medium
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "people" / "test-sample1.mp4"
PRESETS = "ultrafast,superfast,veryfast,faster,medium"


def cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def composites(width: int, height: int, limit: int) -> list[np.ndarray]:
    """Uncompressed H×W×3 uint8 composites of the clip's first ``limit`` frames."""
    from mattekit.compose.composite import FrameCompositor
    from mattekit.models import new_session
    from mattekit.models.base import to_src

    session = new_session()
    compositor = FrameCompositor(height, width)
    green = np.asarray((120, 255, 155), np.uint8)
    state, out = session.initial_state(), []
    ratio = session.auto_downsample_ratio(height, width)
    with av.open(str(DATA)) as c:
        for frame in c.decode(video=0):
            rgb = frame.reformat(width, height, format="rgb24", interpolation="BICUBIC").to_ndarray()
            matte, state = session.step_deferred(to_src(rgb), state, ratio, guide=rgb)
            out.append(compositor.render("composite", matte, green).copy())
            if len(out) == limit:
                break
    return out


def encode(frames: list[np.ndarray], preset: str, path: Path) -> dict:
    from mattekit.io.video_writer import VIDEO_FORMATS, VideoWriter

    h, w = frames[0].shape[:2]
    writer = VideoWriter(path, VIDEO_FORMATS["video"], w, h, Fraction(30), Fraction(1, 30), preset=preset)
    c0, t0 = cpu_seconds(), time.perf_counter()
    for i, image in enumerate(frames):
        writer.write(image, i, i)
    writer.close()
    return {
        "cpu_ms": 1e3 * (cpu_seconds() - c0) / len(frames),
        "wall_ms": 1e3 * (time.perf_counter() - t0) / len(frames),
        "kib": path.stat().st_size / 1024,
    }


def quality(frames: list[np.ndarray], path: Path) -> tuple[float, float]:
    from skimage.metrics import structural_similarity

    psnr, ssim = [], []
    with av.open(str(path)) as c:
        for ref, frame in zip(frames, c.decode(video=0), strict=False):
            got = frame.to_ndarray(format="rgb24")
            mse = np.mean((got.astype(np.float32) - ref.astype(np.float32)) ** 2)
            psnr.append(10 * np.log10(255.0**2 / max(mse, 1e-12)))
            y = lambda im: im.astype(np.float32) @ np.float32([0.299, 0.587, 0.114])  # noqa: E731
            ssim.append(structural_similarity(y(ref), y(got), data_range=255.0, win_size=7))
    return float(np.mean(psnr)), float(np.mean(ssim))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=40)
    ap.add_argument("--size", default="1920x1080")
    ap.add_argument("--presets", default=PRESETS)
    args = ap.parse_args()
    if not DATA.exists():
        sys.exit(f"bench_presets: test clip not found: {DATA}")
    w, h = (int(x) for x in args.size.split("x"))
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    frames = composites(w, h, args.frames)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for preset in args.presets.split(","):
            path = Path(tmp) / f"{preset}.mp4"
            r = encode(frames, preset, path)
            p, s = quality(frames, path)
            rows.append((preset, r["cpu_ms"], r["wall_ms"], r["kib"], p, s))
    print(
        f"{w}x{h}, {len(frames)} frames, CRF 18, yuv420p; load average before/after: {load} / "
        + " ".join(f"{x:.2f}" for x in os.getloadavg())
    )
    print("| preset | encode CPU ms/frame | encode wall ms/frame | size KiB | size vs veryfast | PSNR dB | SSIM (Y) |")
    print("|---|---|---|---|---|---|---|")
    ref = next((r[3] for r in rows if r[0] == "veryfast"), rows[0][3])
    for preset, cpu, wall, kib, p, s in rows:
        print(f"| {preset} | {cpu:.1f} | {wall:.1f} | {kib:.0f} | {kib / ref:.2f} | {p:.2f} | {s:.4f} |")


if __name__ == "__main__":
    main()
