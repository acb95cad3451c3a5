"""Audio/video drift on a variable-frame-rate clip: 60 s, frame gaps between 1/60 and 1/10 s.

The clip (generated here, 96x64 H.264 + AAC) flashes white on the first frame at or after each
whole second and beeps (1 kHz, 60 ms) at exactly that frame's time, so in the source every
flash and its beep start together. After ``convert_video`` (foreground output, audio carried)
each flash is found in the decoded video (a bright frame) and each beep in the decoded audio (the
envelope crossing half its peak); drift = flash time − beep time, compared with the same
measurement on the source. For contrast, the drift a writer would make by stamping frame i at
i / average_rate (ignoring the source timestamps) is printed too.

Usage: python benchmarks/vfr_drift.py [--seconds 60] [--keep DIR]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from mattekit import convert_video

RATE = 48000


def make_clip(path: Path, seconds: int, seed: int = 1) -> tuple[list[float], list[float]]:
    rng = np.random.default_rng(seed)
    times, t = [], 0.0
    while t < seconds:
        times.append(t)
        t += float(rng.choice([1 / 60, 1 / 30, 1 / 24, 1 / 15, 1 / 10]))
    ms = [round(x * 1000) for x in times]
    flashes = [next(m for m in ms if m >= 1000 * k) for k in range(1, seconds) if any(m >= 1000 * k for m in ms)]
    audio = np.zeros(int(RATE * (times[-1] + 0.2)), np.float32)
    beep = 0.5 * np.sin(2 * np.pi * 1000 * np.arange(int(0.06 * RATE)) / RATE)
    for m in flashes:
        start = round(m * RATE / 1000)
        audio[start : start + beep.size] = beep
    with av.open(str(path), "w") as container:
        v = container.add_stream("libx264", rate=30)
        v.width, v.height, v.pix_fmt = 96, 64, "yuv420p"
        v.codec_context.time_base = Fraction(1, 1000)
        a = container.add_stream("aac", rate=RATE)
        a.layout = "mono"
        flash_set = set(flashes)
        for i, m in enumerate(ms):
            img = np.full((64, 96, 3), 30, np.uint8)
            img[12:60, 30 + i % 20 : 60 + i % 20] = 190
            if m in flash_set:
                img[:] = 255
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            frame.pts, frame.time_base = m, Fraction(1, 1000)
            container.mux(v.encode(frame))
        container.mux(v.encode(None))
        for start in range(0, audio.size, 1024):
            chunk = av.AudioFrame.from_ndarray(audio[None, start : start + 1024].copy(), format="flt", layout="mono")
            chunk.sample_rate, chunk.pts, chunk.time_base = RATE, start, Fraction(1, RATE)
            container.mux(a.encode(chunk))
        container.mux(a.encode(None))
    return [m / 1000 for m in ms], [m / 1000 for m in flashes]


def flash_times(path: Path) -> tuple[list[float], list[float]]:
    with av.open(str(path)) as c:
        frames = [(f.time, f.to_ndarray(format="rgb24").mean()) for f in c.decode(video=0)]
    level = np.array([b for _, b in frames])
    threshold = (np.median(level) + level.max()) / 2
    return [t for t, b in frames], [t for t, b in frames if b > threshold]


def beep_times(path: Path) -> list[float]:
    samples, t0 = [], None
    with av.open(str(path)) as c:
        stream = c.streams.audio[0]
        for frame in c.decode(stream):
            if t0 is None:
                t0 = frame.time or 0.0
            samples.append(frame.to_ndarray().astype(np.float32).mean(axis=0))
        rate = stream.codec_context.sample_rate
    x = np.abs(np.concatenate(samples))
    env = np.convolve(x, np.ones(48) / 48, mode="same")
    on = env > env.max() / 2
    starts = np.flatnonzero(on[1:] & ~on[:-1]) + 1
    onsets, last = [], -1.0
    for s in starts:
        t = t0 + s / rate
        if t - last > 0.5:
            onsets.append(t)
            last = t
    return onsets


def drift(flashes: list[float], beeps: list[float]) -> np.ndarray:
    n = min(len(flashes), len(beeps))
    return np.array(flashes[:n]) - np.array(beeps[:n])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=int, default=60)
    ap.add_argument("--keep", type=Path, help="keep the clip and the output in this folder")
    args = ap.parse_args()
    folder = args.keep or Path(tempfile.mkdtemp())
    folder.mkdir(parents=True, exist_ok=True)
    clip, out = folder / "vfr.mp4", folder / "vfr_foreground.mp4"
    times, flashes = make_clip(clip, args.seconds)
    gaps = np.diff(times)
    print(
        f"clip: {len(times)} frames over {times[-1]:.2f} s, gaps {gaps.min() * 1000:.1f}..{gaps.max() * 1000:.1f} ms "
        f"(average {len(times) / times[-1]:.2f} fps), {len(flashes)} flash+beep pairs"
    )
    t0 = time.perf_counter()
    convert_video(clip, output_foreground=out, progress=False, overwrite=True)
    print(f"convert_video: {time.perf_counter() - t0:.1f} s")
    in_times, in_flash = flash_times(clip)
    out_times, out_flash = flash_times(out)
    d_in, d_out = drift(in_flash, beep_times(clip)), drift(out_flash, beep_times(out))
    ts = np.abs(np.array(out_times) - np.array(in_times))
    print(f"flashes found: source {len(in_flash)}, output {len(out_flash)} (expected {len(flashes)})")
    print(f"frame timestamps, output vs source: max |difference| {ts.max() * 1000:.2f} ms over {len(ts)} frames")
    print(
        f"A/V offset (flash - beep), source: mean {d_in.mean() * 1000:+.1f} ms, range "
        f"{d_in.min() * 1000:+.1f}..{d_in.max() * 1000:+.1f} ms"
    )
    print(
        f"A/V offset (flash - beep), output: mean {d_out.mean() * 1000:+.1f} ms, range "
        f"{d_out.min() * 1000:+.1f}..{d_out.max() * 1000:+.1f} ms"
    )
    change = d_out - d_in[: len(d_out)]
    print(
        f"drift added by mattekit: max |output - source offset| {np.abs(change).max() * 1000:.2f} ms; "
        f"at the last flash ({out_flash[-1]:.1f} s) {change[-1] * 1000:+.2f} ms"
    )
    rate = len(in_times) / in_times[-1]
    naive = np.array([i / rate for i in range(len(in_times))]) - np.array(in_times)
    print(
        f"for contrast, stamping frame i at i/{rate:.2f} fps would misplace frames by up to "
        f"{np.abs(naive).max() * 1000:.0f} ms"
    )


if __name__ == "__main__":
    main()
