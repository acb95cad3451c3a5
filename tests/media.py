"""Test media: where the real test data lives, and the writers of small generated clips.

``SHARED_DATA`` is ``../shared/data`` beside the checkout (README there), or ``$MATTEKIT_TEST_DATA``.
:func:`write_clip` writes a synthetic clip (a bright block moving over a dark background unless
``images`` draws something else, optional tone tracks); :func:`cut_clip` writes the first frames of
a real clip, scaled down. Both encode with PyAV, the library mattekit reads and writes with.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

SHARED_DATA = Path(os.environ.get("MATTEKIT_TEST_DATA") or Path(__file__).resolve().parents[2] / "shared" / "data")

Draw = Callable[[int, int, int], np.ndarray]  # (width, height, frame index) -> H×W×3 uint8 RGB


def moving_block(width: int, height: int, i: int) -> np.ndarray:
    """Frame ``i``: a bright (210) block, a quarter of the width, moving 3 px per frame over a dark
    (40) background and wrapping within the left half; H×W×3 uint8."""
    img = np.full((height, width, 3), 40, np.uint8)
    x = (width // 5 + 3 * i) % max(1, width // 2)
    img[height // 6 : height * 5 // 6, x : x + max(1, width // 4)] = 210
    return img


def write_clip(
    path: str | os.PathLike,
    frames: int = 4,
    size: tuple[int, int] = (64, 48),
    rate: int | Fraction = 25,
    *,
    images: Draw = moving_block,
    codec: str = "libx264",
    pix_fmt: str = "yuv420p",
    pts: Sequence[int] | None = None,
    time_base: Fraction | None = None,
    audio_tracks: int = 0,
    audio_rate: int = 48000,
    seconds: float | None = None,
    rotation: tuple[float, bool, bool] | None = None,
    container_options: dict[str, str] | None = None,
    stream_options: dict[str, str] | None = None,
) -> Path:
    """Write a synthetic clip and return its path (parent folders are created).

    Args:
        frames, size, rate: frame count, (width, height) in pixels, frames per second.
        images: draws frame ``i`` (default :func:`moving_block`).
        codec, pix_fmt: the video encoder and its pixel format (``yuv444p`` keeps colours exact).
        pts: each frame's timestamp in ``time_base`` units (variable frame timing); default
            ``0, 1, 2...`` in ``1/rate``.
        time_base: the unit of ``pts`` (default ``1/rate``); also the encoder's time base when ``pts`` is given.
        audio_tracks: mono tones (440 Hz, 660 Hz, ...; AAC, Opus in WebM) interleaved with the video
            frame by frame, as real files are.
        audio_rate: the tones' sample rate, Hz.
        seconds: the tones' length (default the video's, ``frames / rate``).
        rotation: ``(degrees, hflip, vflip)`` display matrix on the video stream.
        container_options, stream_options: FFmpeg options (``{"movflags": "faststart"}``, ``{"g": "1"}``).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    w, h = size
    tb = time_base or Fraction(1) / Fraction(rate)
    stamps = list(pts) if pts is not None else list(range(frames))
    duration = seconds if seconds is not None else frames / float(rate)
    total = round(audio_rate * duration)
    audio_codec = "libopus" if path.suffix.lower() == ".webm" else "aac"
    with av.open(str(path), "w", options=container_options or {}) as out:
        video = out.add_stream(codec, rate=rate, options=stream_options or {})
        video.width, video.height, video.pix_fmt = w, h, pix_fmt
        if pts is not None:
            video.codec_context.time_base = tb
        if rotation is not None:
            video.set_display_rotation(*rotation)
        tracks = [out.add_stream(audio_codec, rate=audio_rate, layout="mono") for _ in range(audio_tracks)]
        written = 0
        for i in range(frames):
            frame = av.VideoFrame.from_ndarray(images(w, h, i), format="rgb24")
            frame.pts, frame.time_base = stamps[i], tb
            out.mux(video.encode(frame))
            upto = min(total, round(total * (i + 1) / frames))
            for t, track in enumerate(tracks):
                _tone(out, track, 440 + 220 * t, written, upto)
            written = upto
        out.mux(video.encode(None))
        for t, track in enumerate(tracks):
            _tone(out, track, 440 + 220 * t, written, total)
            out.mux(track.encode(None))
    return path


def _tone(out, track, hz: int, start: int, end: int) -> None:
    """Encode samples ``start .. end - 1`` of a sine tone at amplitude 0.2 into ``track``."""
    rate = track.codec_context.sample_rate
    for pos in range(start, end, 1024):
        n = min(1024, end - pos)
        tone = (0.2 * np.sin(2 * np.pi * hz * np.arange(pos, pos + n) / rate)).astype(np.float32)
        frame = av.AudioFrame.from_ndarray(tone[None], format="fltp", layout="mono")
        frame.sample_rate, frame.pts, frame.time_base = rate, pos, Fraction(1, rate)
        out.mux(track.encode(frame))


def cut_clip(
    source: str | os.PathLike,
    path: str | os.PathLike,
    frames: int,
    size: tuple[int, int],
    rate: int | Fraction = 25,
    *,
    pix_fmt: str = "yuv420p",
    stream_options: dict[str, str] | None = None,
    audio: bool = False,
) -> Path:
    """The first ``frames`` frames of the real clip ``source`` scaled to ``size`` (width, height),
    re-encoded as H.264 at ``rate`` into ``path``; ``audio``: with the source's first audio track
    (packets copied) for as long as those frames last. Returns ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    w, h = size
    tb = Fraction(1) / Fraction(rate)
    with av.open(str(source)) as src, av.open(str(path), "w") as dst:
        vin = src.streams.video[0]
        video = dst.add_stream("libx264", rate=rate, options=stream_options or {})
        video.width, video.height, video.pix_fmt = w, h, pix_fmt
        ain = src.streams.audio[0] if audio else None
        aout = dst.add_stream_from_template(ain) if ain is not None else None
        n = 0
        for packet in src.demux(*(s for s in (vin, ain) if s is not None)):
            if n == frames and ain is None:
                break
            if packet.stream is ain:
                if packet.pts is not None and packet.size and packet.pts * packet.time_base < frames * tb:
                    packet.stream = aout
                    dst.mux(packet)
                continue
            for frame in packet.decode():
                if n < frames:
                    small = frame.reformat(width=w, height=h, format="rgb24")
                    small.pts, small.time_base = n, tb
                    dst.mux(video.encode(small))
                    n += 1
        dst.mux(video.encode(None))
    return path
