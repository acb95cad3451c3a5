"""Read frames from a video file (PyAV) or a folder of images, as RGB arrays with timestamps."""

from __future__ import annotations

import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Iterator

import av
import numpy as np

from mattekit.errors import InputError
from mattekit.io.image import IMAGE_SUFFIXES, read_image

DEFAULT_SEQUENCE_RATE = Fraction(30)


@dataclass
class SourceFrame:
    """One decoded frame.

    Attributes:
        rgb: H×W×3 uint8 RGB.
        index: 0-based position in decode order.
        pts: presentation timestamp in ``time_base`` units (``None`` if the container has none).
    """

    rgb: np.ndarray
    index: int
    pts: int | None


class FrameSource:
    """What every reader offers: size, rate, timing, audio, frames."""

    path: Path
    width: int
    height: int
    frame_rate: Fraction
    time_base: Fraction
    frame_count: int | None
    has_audio: bool
    frames_read: int = 0
    truncated: str | None = None

    def __iter__(self) -> Iterator[SourceFrame]:  # pragma: no cover - interface
        raise NotImplementedError

    def close(self) -> None:
        """Release the file handles."""

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class VideoFileReader(FrameSource):
    """Decode a video file with PyAV.

    ``frame_rate`` is the stream's average rate as an exact fraction (30000/1001 stays so);
    ``time_base`` and each frame's ``pts`` come from the stream, so variable-frame-rate timing is
    kept. If decoding fails part-way (a truncated file), iteration stops and ``truncated`` says
    how many frames were read.

    Raises:
        mattekit.errors.InputError: missing, empty, not a video, or no video stream.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        if not self.path.exists():
            raise InputError(self.path, "file not found")
        if self.path.stat().st_size == 0:
            raise InputError(self.path, "file is empty (0 bytes)")
        try:
            self._container = av.open(str(self.path), metadata_errors="ignore")
        except av.error.FFmpegError as exc:
            raise InputError(self.path, f"not a readable video ({_ffmpeg_reason(exc)})") from None
        if not self._container.streams.video:
            self._container.close()
            raise InputError(self.path, "has no video stream")
        stream = self._container.streams.video[0]
        stream.thread_type = "AUTO"
        self._stream = stream
        ctx = stream.codec_context
        self.width, self.height = ctx.width, ctx.height
        if not self.width or not self.height:
            self._container.close()
            raise InputError(self.path, "video stream has no frame size (damaged file?)")
        rate = stream.average_rate or stream.base_rate or stream.guessed_rate
        self.frame_rate = Fraction(rate) if rate else DEFAULT_SEQUENCE_RATE
        self.time_base = Fraction(stream.time_base) if stream.time_base else 1 / self.frame_rate
        self.frame_count = stream.frames or None
        if self.frame_count is None and stream.duration and stream.time_base:
            self.frame_count = round(float(stream.duration * stream.time_base * self.frame_rate))
        self.has_audio = bool(self._container.streams.audio)
        self.frames_read = 0
        self.truncated = None

    def __iter__(self) -> Iterator[SourceFrame]:
        try:
            for frame in self._container.decode(self._stream):
                rgb = frame.to_ndarray(format="rgb24")
                yield SourceFrame(rgb=rgb, index=self.frames_read, pts=frame.pts)
                self.frames_read += 1
        except av.error.FFmpegError as exc:
            if self.frames_read == 0:
                raise InputError(self.path, f"cannot decode any frame ({_ffmpeg_reason(exc)})") from None
            self.truncated = f"decoding stopped after {self.frames_read} frames ({_ffmpeg_reason(exc)})"
        if self.frames_read == 0:
            raise InputError(self.path, "no frame could be decoded (truncated or damaged file?)")
        if self.truncated is None and self.frame_count and self.frames_read < self.frame_count:
            self.truncated = f"only {self.frames_read} of {self.frame_count} frames decoded"

    def close(self) -> None:
        self._container.close()


class ImageSequenceReader(FrameSource):
    """Read a folder of images (sorted by file name) as a video.

    Args:
        path: the folder.
        frame_rate: frames per second given to the sequence (default 30).

    Raises:
        mattekit.errors.InputError: folder missing, holds no image, or an image differs in size.
    """

    def __init__(self, path: str | os.PathLike, frame_rate: Fraction | float | None = None):
        self.path = Path(path)
        if not self.path.is_dir():
            raise InputError(self.path, "folder not found")
        self.files = sorted(p for p in self.path.iterdir()
                            if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith("."))
        if not self.files:
            raise InputError(self.path, "folder holds no image files")
        first = read_image(self.files[0])
        self._first = first
        self.height, self.width = first.shape[:2]
        self.frame_rate = Fraction(frame_rate).limit_denominator(1001) if frame_rate else DEFAULT_SEQUENCE_RATE
        self.time_base = 1 / self.frame_rate
        self.frame_count = len(self.files)
        self.has_audio = False
        self.frames_read = 0
        self.truncated = None

    def __iter__(self) -> Iterator[SourceFrame]:
        for i, file in enumerate(self.files):
            rgb = self._first if i == 0 else read_image(file)
            if rgb.shape[:2] != (self.height, self.width):
                raise InputError(file, f"frame size {rgb.shape[1]}x{rgb.shape[0]} differs from the "
                                       f"first frame's {self.width}x{self.height}")
            yield SourceFrame(rgb=rgb, index=i, pts=i)
            self.frames_read += 1
        self._first = None


def open_source(path: str | os.PathLike, frame_rate: float | None = None) -> FrameSource:
    """Open a video file or a folder of frames.

    Raises:
        mattekit.errors.InputError: see the reader classes.
    """
    p = Path(path)
    if p.is_dir():
        return ImageSequenceReader(p, frame_rate)
    return VideoFileReader(p)


def _ffmpeg_reason(exc: Exception) -> str:
    text = getattr(exc, "strerror", None) or str(exc)
    return text.split(":")[-1].strip() if ":" in text and "Errno" in text else text.strip()
