"""Per-stage CPU cost of RVM's full-resolution guided-filter finish (the cut graph's second half).

For each size, real frames of ``people/test-sample1.mp4`` (scaled bicubically) are stepped through
the cut graph (:mod:`mattekit.models.rvm_cut`) so the recurrent state is realistic; then, on the
last frame, each stage of the banded finish (:mod:`mattekit.models.dgf_bands`) and of the 8-bit
rendering (:class:`mattekit.compose.composite.FrameCompositor`) is timed alone, in this thread
(``time.thread_time``: CPU time of this thread only, so other load on the machine inflates it
little). Best of ``--repeat`` runs, milliseconds per frame.

``--compare FILE`` times another version of ``dgf_bands.py`` (e.g. ``git show
REV:src/mattekit/models/dgf_bands.py > old.py``) interleaved with the current one (A, B, A, B...).

    python benchmarks/profile_finish.py [--sizes 1080p,4k] [--compare old.py]
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import time
from pathlib import Path

import av
import cv2
import numpy as np

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "people" / "test-sample1.mp4"
SIZES = {"720p": (1280, 720), "1080p": (1920, 1080), "4k": (3840, 2160)}
GREEN = np.array([120, 255, 155], np.uint8)


def stages(module, coef_a, coef_b, frame, compositor) -> dict:
    """name -> callable running that stage over the whole frame, band by band."""
    w = frame.shape[1]
    bands = [band for band, _ in compositor._bands]
    rows = bands[0].stop - bands[0].start
    alpha_buf = np.empty((rows, w), np.float32)
    fgr_buf = np.empty((3, rows, w), np.float32)

    def finish():
        return module.GuidedFinish(coef_a, coef_b, frame)

    def alpha(m):
        for band in bands:
            m.alpha(band, out=alpha_buf[: band.stop - band.start])

    def fgr(m):
        for band in bands:
            m.fgr(band, slice(0, w), out=fgr_buf[:, : band.stop - band.start])

    return {
        "alpha (all bands)": lambda: alpha(finish()),
        "foreground (all bands, all columns)": lambda: fgr(finish()),
        "alpha output (render gray)": lambda: compositor.render("gray", finish()),
        "composition over a colour (render)": lambda: compositor.render("composite", finish(), GREEN),
        "foreground output (render rgb)": lambda: compositor.render("rgb", finish()),
    }


def best_ms(fn, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.thread_time()
        fn()
        best = min(best, time.thread_time() - t0)
    return best * 1e3


def load_module(path: str):
    spec = importlib.util.spec_from_file_location(f"dgf_compare_{abs(hash(path))}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main() -> None:
    from mattekit.compose.composite import FrameCompositor
    from mattekit.models import dgf_bands
    from mattekit.models.dgf_bands import network_input
    from mattekit.models.fetch import cache_dir
    from mattekit.models.rvm_onnx import RVMSession

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="1080p,4k")
    ap.add_argument("--frames", type=int, default=6, help="frames stepped before timing (state warm-up)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--compare", help="another dgf_bands.py to time interleaved with the current one")
    args = ap.parse_args()
    versions = {"current": dgf_bands}
    if args.compare:
        versions = {"compare": load_module(args.compare), "current": dgf_bands}
    session = RVMSession(cache_dir() / "rvm_mobilenetv3_fp32.onnx", cut=True)
    with av.open(str(DATA)) as c:
        clip = [f.to_ndarray(format="rgb24") for _, f in zip(range(args.frames), c.decode(video=0), strict=False)]
    print(f"load average {os.getloadavg()[0]:.2f}; OpenCV threads {cv2.getNumThreads()}")
    for size in args.sizes.split(","):
        width, height = SIZES[size]
        frames = [cv2.resize(f, (width, height), interpolation=cv2.INTER_CUBIC) for f in clip]
        state = session.initial_state()
        ratio = session.auto_downsample_ratio(height, width)
        for frame in frames:
            coef_a, coef_b, *state = session._run_cut(frame, state, ratio)
        compositor = FrameCompositor(height, width)
        last = frames[-1]
        table = {
            "network input (encoder-size frame)": {
                k: best_ms(lambda last=last, ratio=ratio: network_input(last, ratio), args.repeat) for k in versions
            }
        }
        runs = {k: stages(m, coef_a, coef_b, frames[-1], compositor) for k, m in versions.items()}
        for name in runs["current"]:
            table[name] = {}
            for _ in range(args.repeat):  # interleaved: A, B, A, B
                for k in versions:
                    table[name][k] = min(table[name].get(k, float("inf")), best_ms(runs[k][name], 1))
        print(
            f"\n{size} ({width}×{height}), CPU ms per frame, one thread, best of {args.repeat}; "
            f"load average {os.getloadavg()[0]:.2f}"
        )
        print("| stage | " + " | ".join(versions) + " |")
        print("|---|" + "---|" * len(versions))
        for name, row in table.items():
            print(f"| {name} | " + " | ".join(f"{row[k]:.1f}" for k in versions) + " |")


if __name__ == "__main__":
    main()
