"""Write matted frames: encoded video (PyAV) or a folder of PNG images.

Each writer works under a temporary name and renames to the final one in :meth:`close`; on an
error or cancellation :meth:`abort` removes the temporary output and any earlier result stays.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from mattekit.errors import OutputError
from mattekit.io.atomic import commit, discard, temp_sibling
from mattekit.io.audio import AudioMuxer
from mattekit.io.image import write_image


@dataclass(frozen=True)
class VideoFormat:
    """An encoded output type: container suffix, codec, pixel format, alpha support."""

    suffix: str
    codec: str
    pix_fmt: str
    alpha: bool
    options: tuple[tuple[str, str], ...] = ()


VIDEO_FORMATS: dict[str, VideoFormat] = {
    "video": VideoFormat(".mp4", "libx264", "yuv420p", False, (("preset", "veryfast"), ("crf", "18"))),
}


class FrameWriter:
    """Interface of every writer."""

    path: Path

    def write(self, image: np.ndarray, pts: int | None, index: int) -> None:  # pragma: no cover
        """Write one H×W×C uint8 image (C = 1, 3 or 4)."""
        raise NotImplementedError

    def close(self) -> Path:  # pragma: no cover
        """Finish and move the output to its final name; return that name."""
        raise NotImplementedError

    def abort(self) -> None:  # pragma: no cover
        """Remove the temporary output."""
        raise NotImplementedError


class VideoWriter(FrameWriter):
    """Encode frames into a video file, with the source's audio.

    Args:
        path: final output path; its suffix picks the container.
        fmt: a :class:`VideoFormat` (codec and pixel format).
        width, height: frame size in pixels.
        frame_rate: nominal frame rate (exact fraction, e.g. 30000/1001).
        time_base: unit of the ``pts`` passed to :meth:`write` (the source stream's).
        audio_source: a media file whose first audio track goes into the output, or ``None``.
        bit_rate: target bits per second, or ``None`` for the format's quality default.
    """

    def __init__(self, path: str | os.PathLike, fmt: VideoFormat, width: int, height: int,
                 frame_rate: Fraction, time_base: Fraction, audio_source: Path | None = None,
                 bit_rate: int | None = None):
        self.path = Path(path)
        self._temp = temp_sibling(self.path)
        self._fmt = fmt
        self._time_base = time_base
        self._frame_rate = frame_rate
        self._last_pts = None
        try:
            self._container = av.open(str(self._temp), mode="w")
        except av.error.FFmpegError as exc:
            raise OutputError(self.path, f"cannot create video ({exc})") from None
        try:
            stream = self._container.add_stream(fmt.codec, rate=frame_rate)
            stream.width, stream.height = width, height
            stream.pix_fmt = fmt.pix_fmt
            stream.codec_context.time_base = time_base
            stream.time_base = time_base
            options = dict(fmt.options)
            if bit_rate:
                stream.bit_rate = int(bit_rate)
                options.pop("crf", None)
            stream.options = options
            self._stream = stream
            self._audio = AudioMuxer(audio_source, self._container, self.path.suffix) \
                if audio_source is not None else None
        except BaseException:
            self._container.close()
            discard(self._temp)
            raise

    def write(self, image: np.ndarray, pts: int | None, index: int) -> None:
        if image.ndim == 2 or image.shape[2] == 1:
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image.reshape(image.shape[:2])), format="gray")
        elif image.shape[2] == 4:
            frame = av.VideoFrame.from_ndarray(image, format="rgba")
        else:
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
        if pts is None:
            pts = round(index / (self._frame_rate * self._time_base))
        frame.pts = pts
        frame.time_base = self._time_base
        if self._audio is not None:
            self._audio.mux_until(float(pts * self._time_base))
        self._container.mux(self._stream.encode(frame))

    def close(self) -> Path:
        try:
            self._container.mux(self._stream.encode(None))
            if self._audio is not None:
                self._audio.finish()
            self._container.close()
        except BaseException:
            self.abort()
            raise
        commit(self._temp, self.path)
        return self.path

    def abort(self) -> None:
        if self._audio is not None:
            self._audio.close()
        try:
            self._container.close()
        except Exception:
            pass
        discard(self._temp)


class PngSequenceWriter(FrameWriter):
    """Write frames as ``00000.png, 00001.png, ...`` into a folder (RGBA, RGB or gray)."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self._temp = temp_sibling(self.path)
        self._temp.mkdir(parents=True)

    def write(self, image: np.ndarray, pts: int | None, index: int) -> None:
        if image.ndim == 3 and image.shape[2] == 1:
            image = image[:, :, 0]
        write_image(self._temp / f"{index:05d}.png", image)

    def close(self) -> Path:
        commit(self._temp, self.path)
        return self.path

    def abort(self) -> None:
        discard(self._temp)
