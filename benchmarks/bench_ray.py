"""Ray executor figures (issue 12): the warm-up table and one-machine vs ``--executor ray``.

    .venv/bin/python benchmarks/bench_ray.py warmup        # |Δα| at chunk starts vs W (~12 min at load 8)
    .venv/bin/python benchmarks/bench_ray.py where         # where that difference lies in the frame
    .venv/bin/python benchmarks/bench_ray.py throughput    # CLI fps, local vs ray (~3 min on an idle machine)
    .venv/bin/python benchmarks/bench_ray.py threads       # 2 x 1-thread vs 1 x 2-thread sessions

warmup: a chunk of a video starts with the model's recurrent state built from only the W frames
before it. For each chunk start ``s`` and each W < s, the model is run from ``s - W`` (fresh
state) to the clip's end, and its alpha at every frame from ``s`` on is compared with the alpha of
one run over the whole clip. Only continuous real footage is used (no clip is played backward or
joined to another: a reversal or a cut is itself a discontinuity the one-machine state has to
cross): test-sample1.mp4 (720p, 79 frames, the longest real clip in ../shared/data), starts
24, 40, 56, 65; sample0 (1080p, 30 frames), starts 16, 24. The table gives, per W, the worst
frame's mean |Δα| (alpha in 0..1) over the 16 frames after every start, the same at the start
frame, and the worst single pixel; the decay table gives the mean over starts of the per-frame
error k frames after the start.

throughput: a folder of two real clips (test-sample1.mp4 re-encoded with a 30-frame GOP and played
forward then backward: 158 frames, 720p, with its audio) matted by ``mattekit video DIR -o OUT``
and by the same command with ``--executor ray --chunk-frames 60`` (a local cluster on this
machine, 2 chunks per clip), composition + alpha; fps = frames / wall seconds of the whole command
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


def alphas(session, frames, start: int, stop: int) -> dict[int, np.ndarray]:
    """Run the model over frames[start:stop] from a fresh state; alpha of each frame, by index."""
    from mattekit.models.base import to_src

    state, kept = session.initial_state(), {}
    ratio = session.auto_downsample_ratio(*frames[0].shape[:2])
    for i in range(start, stop):
        result = session.step(to_src(frames[i]), state, ratio)
        state = result.state
        kept[i] = result.pha[0, 0].copy()
    return kept


DECAY = (0, 1, 2, 4, 8, 16, 32, 48)


def warmup_table() -> None:
    from mattekit.models import new_session

    session = new_session()
    clips = {
        "test-sample1.mp4 (720p, 79 frames; starts 24, 40, 56, 65)": ("test-sample1.mp4", (24, 40, 56, 65)),
        "sample0 (1080p, 30 frames; starts 16, 24)": ("sample0", (16, 24)),
    }
    rows: dict = {w: [] for w in WARMUPS}
    decay: dict = {}
    for label, (name, starts) in clips.items():
        frames = real_frames(name)
        reference = alphas(session, frames, 0, len(frames))
        for w in WARMUPS:
            worst_mean, worst_pixel, first, used = 0.0, 0.0, 0.0, []
            for s in starts:
                if w >= s:  # the chunk would start at frame 0: the one-machine run itself
                    continue
                used.append(s)
                chunk = alphas(session, frames, s - w, len(frames))
                for i in range(s, len(frames)):
                    d = np.abs(chunk[i] - reference[i])
                    decay.setdefault((label, w, i - s), []).append(float(d.mean()))
                    if i < s + AFTER:
                        worst_mean, worst_pixel = max(worst_mean, float(d.mean())), max(worst_pixel, float(d.max()))
                    if i == s:
                        first = max(first, float(d.mean()))
            rows[w].append((worst_mean, first, worst_pixel, used))
            print(
                f"  {label}: W={w}: worst-frame mean |Δα| {worst_mean:.5f} (starts {used})", file=sys.stderr, flush=True
            )
    print(
        "\n| W | "
        + " | ".join(f"{c}: worst-frame mean abs(Δα) / at the start frame / worst pixel" for c in clips)
        + " |"
    )
    print("|---|" + "---|" * len(clips))
    for w in WARMUPS:
        cells = [
            f"{m:.5f} / {f:.5f} / {p:.3f} (starts {', '.join(map(str, u))})"
            if u
            else "- (W reaches frame 0 from every start)"
            for m, f, p, u in rows[w]
        ]
        print(f"| {w} | " + " | ".join(cells) + " |")
    for label in clips:
        print(f"\n{label}: mean over starts of the mean abs(Δα) k frames after the start\n")
        print("| W | " + " | ".join(f"k={k}" for k in DECAY) + " |\n|---|" + "---|" * len(DECAY))
        for w in WARMUPS:
            cells = [f"{np.mean(decay[(label, w, k)]):.5f}" if (label, w, k) in decay else "-" for k in DECAY]
            if any(c != "-" for c in cells):
                print(f"| {w} | " + " | ".join(cells) + " |")


def where() -> None:
    """Where a chunk's alpha differs: inside the main subject (the largest region of one-machine
    alpha > 0.5, dilated 15 px) or outside it. test-sample1.mp4, chunks from frames 40 and 65
    with W=32 (the worst start of the warm-up table at W=32 is 56 or 65)."""
    from scipy import ndimage

    from mattekit.models import new_session

    session = new_session()
    frames = real_frames("test-sample1.mp4")
    reference = alphas(session, frames, 0, len(frames))
    print(
        "| chunk start | frame | mean abs(Δα) | share of it inside the subject | subject's area share | "
        "mean inside | mean outside |\n|---|---|---|---|---|---|---|"
    )
    for start, shown in ((40, (40, 44, 48, 55)), (65, (65, 68, 72, 78))):
        chunk = alphas(session, frames, start - 32, len(frames))
        for i in shown:
            labels, n = ndimage.label(reference[i] > 0.5)
            sizes = ndimage.sum(np.ones_like(labels), labels, range(1, n + 1))
            subject = ndimage.binary_dilation(labels == 1 + int(np.argmax(sizes)), iterations=15)
            d = np.abs(chunk[i] - reference[i])
            print(
                f"| {start} | {i} | {d.mean():.4f} | {d[subject].sum() / d.sum():.3f} | {subject.mean():.3f} | "
                f"{d[subject].mean():.4f} | {d[~subject].mean():.4f} |",
                flush=True,
            )


def ping_pong(frames: list, loops: int) -> list:
    """Frames forward, backward, forward... (``loops`` passes): a longer clip for throughput runs."""
    out = []
    for i in range(loops):
        out += frames if i % 2 == 0 else frames[::-1]
    return out


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
    for label, extra in (
        ("one machine", []),
        ("--executor ray --chunk-frames 60", ["--executor", "ray", "--chunk-frames", "60"]),
    ):
        out = tmp / label.split()[0].strip("-")
        print(f"  {label}: load average before {os.getloadavg()[0]:.1f}", file=sys.stderr, flush=True)
        started = time.perf_counter()
        # Ray's memory monitor off: on a shared machine others' processes would get our workers killed
        subprocess.run(
            [exe, "video", str(folder), "-o", str(out), "--outputs", "composition,alpha", "-q", *extra],
            check=True,
            env=dict(os.environ, RAY_memory_monitor_refresh_ms="0"),
        )
        seconds = time.perf_counter() - started
        rows.append((label, seconds, total / seconds))
        print(f"  {label}: {seconds:.1f} s", file=sys.stderr, flush=True)
    from mattekit.cluster.chunks import plan_chunks, scan_frames
    from mattekit.cluster.executor import DEFAULT_WARMUP

    chunks = plan_chunks(scan_frames(folder / "long.mp4"), frames, 60, DEFAULT_WARMUP)
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        "?",
    )
    print(
        f"\n{total} frames (2 clips of {frames} frames, 1280x720, GOP 30), composition + alpha; ray: "
        f"{len(chunks)} chunks per clip (starts {[c.start for c in chunks]}), W = {DEFAULT_WARMUP}; "
        f"{os.cpu_count()} CPUs ({cpu}); load average at the end {os.getloadavg()[0]:.1f}\n"
    )
    print("| run | seconds | fps | ratio |\n|---|---|---|---|")
    for label, seconds, fps in rows:
        print(f"| {label} | {seconds:.1f} | {fps:.2f} | {fps / rows[0][2]:.2f} |")


def threads() -> None:
    """Frames per second of two 1-thread sessions side by side vs one 2-thread session (720p)."""
    from mattekit.models import new_session

    frames = real_frames("test-sample1.mp4")[:40]

    def run(session):
        alphas(session, frames, 0, len(frames))

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
    commands = {"warmup": warmup_table, "where": where, "throughput": throughput, "threads": threads}
    commands[sys.argv[1] if len(sys.argv) > 1 else "warmup"]()
