"""Ray executor figures (issue 12): the warm-up table and one-machine vs ``--executor ray``.

    .venv/bin/python benchmarks/bench_ray.py warmup        # |Δα| at chunk starts vs W (~5 min)
    .venv/bin/python benchmarks/bench_ray.py throughput    # CLI fps, local vs ray (~3 min on an idle machine)
    .venv/bin/python benchmarks/bench_ray.py threads       # 2 x 1-thread vs 1 x 2-thread sessions

warmup: a chunk of a video starts with the model's recurrent state built from only the W frames
before it. For each W the model is run from ``s - W`` (fresh state) and its alpha at frames
``s .. s + 15`` is compared with the alpha of one run over the whole clip; the table gives the
worst frame's mean |Δα| (alpha in 0..1) over every start ``s``, and the worst single pixel. The
real clips (../shared/data/people) are short, so they are played forward, backward, forward
(ping-pong) to give chunk starts with up to 64 frames before them; every frame is a real frame.

throughput: a folder of two real clips (test-sample1.mp4 re-encoded with a 30-frame GOP and played
forward then backward: 158 frames, 720p, with its audio) matted by ``mattekit video DIR -o OUT``
and by the same command with ``--executor ray --chunk-frames 60`` (a local cluster on this
machine, 3 chunks per clip), composition + alpha; fps = frames / wall seconds of the whole command
(Ray start-up included).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from fractions import Fraction
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "people"
WARMUPS = (0, 4, 8, 16, 32, 64)
AFTER = 16  # frames compared after each chunk start


def real_frames(name: str) -> list[np.ndarray]:
    from mattekit.io.video_reader import open_source

    with open_source(DATA / name) as source:
        return [f.rgb for f in source]


def ping_pong(frames: list, loops: int) -> list:
    out = []
    for i in range(loops):
        out += frames if i % 2 == 0 else frames[::-1]
    return out


def alphas(session, frames, start: int, stop: int, keep: range) -> dict[int, np.ndarray]:
    """Run the model over frames[start:stop] from a fresh state; alpha of the frames in ``keep``."""
    from mattekit.models.base import to_src

    state, kept = session.initial_state(), {}
    ratio = session.auto_downsample_ratio(*frames[0].shape[:2])
    for i in range(start, stop):
        result = session.step(to_src(frames[i]), state, ratio)
        state = result.state
        if i in keep:
            kept[i] = result.pha[0, 0].copy()
    return kept


def warmup_table() -> None:
    from mattekit.models import new_session

    session = new_session()
    clips = {"test-sample1.mp4 (720p, x3 ping-pong)": (ping_pong(real_frames("test-sample1.mp4"), 3),
                                                      (79, 118, 158, 200)),
             "sample0 (1080p, x5 ping-pong)": (ping_pong(real_frames("sample0"), 5), (64, 96, 128))}
    rows = {w: [] for w in WARMUPS}
    for label, (frames, starts) in clips.items():
        keep = {i for s in starts for i in range(s, s + AFTER)}
        reference = alphas(session, frames, 0, max(keep) + 1, keep)
        for w in WARMUPS:
            worst_mean, worst_pixel, first = 0.0, 0.0, 0.0
            for s in starts:
                chunk = alphas(session, frames, s - w, s + AFTER, range(s, s + AFTER))
                for i, a in chunk.items():
                    d = np.abs(a - reference[i])
                    worst_mean, worst_pixel = max(worst_mean, float(d.mean())), max(worst_pixel, float(d.max()))
                    if i == s:
                        first = max(first, float(d.mean()))
            rows[w].append((worst_mean, first, worst_pixel))
            print(f"  {label}: W={w}: worst-frame mean |Δα| {worst_mean:.5f}", file=sys.stderr, flush=True)
    print("\n| W | " + " | ".join(f"{c}: worst-frame mean abs(Δα) / at the start frame / worst pixel"
                                    for c in clips) + " |")
    print("|---|" + "---|" * len(clips))
    for w in WARMUPS:
        print(f"| {w} | " + " | ".join(f"{m:.5f} / {f:.5f} / {p:.3f}" for m, f, p in rows[w]) + " |")


def make_clip(dst: Path, loops: int = 4, gop: int = 30) -> int:
    """test-sample1.mp4's real frames re-encoded (H.264, GOP ``gop``), ping-pong ``loops`` times,
    with its audio track; returns the frame count."""
    import av

    frames = ping_pong(real_frames("test-sample1.mp4"), loops)
    tb = Fraction(1, 15360)
    with av.open(str(DATA / "test-sample1.mp4")) as inp, av.open(str(dst), "w") as out:
        vs = out.add_stream("libx264", rate=30)
        vs.width, vs.height, vs.pix_fmt = frames[0].shape[1], frames[0].shape[0], "yuv420p"
        vs.options = {"g": str(gop), "keyint_min": str(gop), "sc_threshold": "0", "crf": "20"}
        vs.time_base = vs.codec_context.time_base = tb
        a_in = inp.streams.audio[0]
        a_out = out.add_stream_from_template(a_in)
        for i, rgb in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            frame.pts, frame.time_base = i * 512, tb
            out.mux(vs.encode(frame))
        out.mux(vs.encode(None))
        for packet in inp.demux(a_in):
            if packet.dts is not None:
                packet.stream = a_out
                out.mux(packet)
    return len(frames)


def throughput() -> None:
    tmp = Path(tempfile.mkdtemp(prefix="bench-ray-"))
    folder = tmp / "in"
    folder.mkdir()
    frames = make_clip(folder / "long.mp4", loops=2)
    (folder / "copy.mp4").write_bytes((folder / "long.mp4").read_bytes())
    total = frames * 2
    exe = str(Path(sys.executable).with_name("mattekit"))
    rows = []
    for label, extra in (("one machine", []),
                         ("--executor ray --chunk-frames 60", ["--executor", "ray", "--chunk-frames", "60"])):
        out = tmp / label.split()[0].strip("-")
        started = time.perf_counter()
        # Ray's memory monitor off: on a shared machine others' processes would get our workers killed
        subprocess.run([exe, "video", str(folder), "-o", str(out), "--outputs", "composition,alpha", "-q",
                        *extra], check=True, env=dict(os.environ, RAY_memory_monitor_refresh_ms="0"))
        seconds = time.perf_counter() - started
        rows.append((label, seconds, total / seconds))
        print(f"  {label}: {seconds:.1f} s", file=sys.stderr, flush=True)
    print(f"\n{total} frames (2 clips of {frames} frames, 1280x720, GOP 30), composition + alpha\n")
    print("| run | seconds | fps | ratio |\n|---|---|---|---|")
    for label, seconds, fps in rows:
        print(f"| {label} | {seconds:.1f} | {fps:.2f} | {fps / rows[0][2]:.2f} |")


def threads() -> None:
    """Frames per second of two 1-thread sessions side by side vs one 2-thread session (720p)."""
    from mattekit.models import new_session

    frames = real_frames("test-sample1.mp4")[:40]

    def run(session):
        alphas(session, frames, 0, len(frames), range(0))

    one = new_session(intra_op_threads=2)
    pair = [new_session(intra_op_threads=1) for _ in range(2)]
    run(one), run(pair[0])  # warm up
    results = []
    for _ in range(2):
        t0 = time.perf_counter()
        run(one)
        results.append(("one 2-thread session", len(frames) / (time.perf_counter() - t0)))
        t0 = time.perf_counter()
        with ThreadPoolExecutor(2) as pool:
            list(pool.map(run, pair))
        results.append(("two 1-thread sessions", 2 * len(frames) / (time.perf_counter() - t0)))
    print("| sessions (720p, 40 real frames each) | total fps |\n|---|---|")
    for label, fps in results:
        print(f"| {label} | {fps:.2f} |")


if __name__ == "__main__":
    {"warmup": warmup_table, "throughput": throughput, "threads": threads}[sys.argv[1] if len(sys.argv) > 1
                                                                          else "warmup"]()
