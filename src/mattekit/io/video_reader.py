"""Read frames from a video file (PyAV) or a folder of images, as RGB arrays with timestamps."""

from __future__ import annotations

import contextlib
import itertools
import os
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from mattekit.errors import FormatError, InputError
from mattekit.io.image import IMAGE_SUFFIXES, read_image
from mattekit.io.sniff import refuse_special
from mattekit.params import pixel_limit, validate_frame_rate

DEFAULT_SEQUENCE_RATE = Fraction(30)
# The largest video frame matted: 8192x4320, the largest frame of H.264 and H.265 (level 6.2,
# 139,264 macroblocks), so every camera's 8K. Memory grows with the frame: at 7680x4320 a run
# peaked at 1.1 GB (RVM, H.264 composition), 1.8 GB (three outputs), 6.4 GB (isnet) and 7.8 GB
# (webm: libvpx-vp9); a 324 KB FFV1 file of 12288x6912 frames reached 2.1 GB on the lightest path.
# Above it a frame is refused from the header, before one is decoded.
# ``MATTEKIT_MAX_VIDEO_PIXELS`` lowers it (tests) or raises it.
MAX_VIDEO_PIXELS = 8192 * 4320
# file suffixes taken as videos when a folder is searched for them
VIDEO_SUFFIXES = {
    ".mp4",
    ".m4v",
    ".mov",
    ".mkv",
    ".webm",
    ".avi",
    ".wmv",
    ".flv",
    ".mpg",
    ".mpeg",
    ".ts",
    ".mts",
    ".m2ts",
    ".3gp",
    ".ogv",
    ".gif",
}


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
    warning: str | None = None
    """Set when iteration ends: what was lost (damaged packets skipped, decoding stopped early)."""

    def __iter__(self) -> Iterator[SourceFrame]:  # pragma: no cover - interface
        raise NotImplementedError

    def close(self) -> None:
        """Release the file handles."""

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class VideoFileReader(FrameSource):
    """Decode a video file with PyAV, upright.

    A phone video stored sideways with a display rotation (the display matrix side data, or the
    older ``rotate`` stream tag) is turned as a player shows it, mirroring included:
    ``width``/``height`` and every frame are the displayed ones and ``orientation`` says what was
    done (see :func:`display_orientation`). ``frame_rate`` is the stream's average rate as an
    exact fraction (30000/1001 stays so);
    ``time_base`` and each frame's ``pts`` come from the stream, so variable-frame-rate timing is
    kept.

    Damaged data is handled as FFmpeg's command line does: a packet the decoder rejects is
    skipped and decoding goes on with the next one (the frames after it keep their own
    timestamps); a container that cannot be read further (a file cut short) ends the stream. In
    both cases ``warning`` says, after iteration, how many frames were lost (``damaged_packets``
    counts the skipped packets).

    Raises:
        mattekit.errors.FormatError: not a video (unknown content, no video stream, no decoder
            for it, e.g. an SVG drawing).
        mattekit.errors.InputError: missing, empty, no frame size, or no frame decodes.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        if not self.path.exists():
            raise InputError(self.path, "file not found")
        refuse_special(self.path)
        if self.path.stat().st_size == 0:
            raise InputError(self.path, "file is empty (0 bytes)")
        try:
            self._container = av.open(str(self.path), metadata_errors="ignore")
        except av.error.FFmpegError as exc:
            raise _not_a_video(self.path, _ffmpeg_reason(exc)) from None
        try:
            self._open_stream()
        except BaseException:
            self._container.close()
            raise

    def _open_stream(self) -> None:
        if not self._container.streams.video:
            raise FormatError(self.path, "has no video stream")
        stream = self._container.streams.video[0]
        ctx = stream.codec_context
        if ctx is None:  # FFmpeg knows the format but has no decoder for it (svg_pipe...)
            kind = (
                "an SVG drawing (vector graphics)"
                if "svg" in self._container.format.name
                else f"{self._container.format.long_name or self._container.format.name} data"
            )
            raise FormatError(self.path, f"is {kind}, which has no video decoder; give a video or a picture")
        stream.thread_type = "AUTO"
        self._stream = stream
        self.width, self.height = ctx.width, ctx.height
        if not self.width or not self.height:
            raise _not_a_video(self.path, None)
        check_frame_size(self.path, self.width, self.height)
        rate = stream.average_rate or stream.base_rate or stream.guessed_rate
        self.frame_rate = Fraction(rate) if rate else DEFAULT_SEQUENCE_RATE
        self.time_base = Fraction(stream.time_base) if stream.time_base else 1 / self.frame_rate
        self.frame_count, self._count_exact = _declared_frames(stream, self.frame_rate)
        self.has_audio = bool(self._container.streams.audio)
        self.frames_read = 0
        self.damaged_packets = 0
        self.warning = None
        self._last_error: Exception | None = None
        self._stopped: Exception | None = None
        # The display rotation is known once a frame is decoded: decode the first one now so the
        # upright size is known before any output is opened.
        self._decoded = self._decode()
        self._first = next(self._decoded, None)
        if self._first is None:
            if self._last_error is not None or self._stopped is not None:
                reason = _ffmpeg_reason(self._last_error or self._stopped)
                raise InputError(self.path, f"cannot decode any frame ({reason})")
            if self.frame_count:
                about = "" if self._count_exact else "about "
                raise InputError(
                    self.path,
                    f"no frame could be read although the file declares {about}{self.frame_count} (damaged file?)",
                )
            raise InputError(self.path, "video stream holds no frame (0 frames)")
        check_frame_size(self.path, self._first.width, self._first.height)  # a header may lie
        self.orientation = display_orientation(self._first, stream)
        if self.orientation in SWAPS_SIZE:
            self.width, self.height = self.height, self.width

    def _decode(self):
        """Decoded frames of the video stream, skipping packets the decoder rejects."""
        packets = self._container.demux(self._stream)
        while True:
            try:
                packet = next(packets, None)
            except av.error.FFmpegError as exc:  # the container cannot be read further
                self._stopped = exc
                packet = None
            if packet is None:
                break
            try:
                yield from packet.decode()
            except av.error.EOFError:
                return
            except av.error.FFmpegError as exc:  # damaged packet: skip it, as ffmpeg does
                self.damaged_packets += 1
                self._last_error = exc
        if self._stopped is not None:  # demux ended on an error: flush what the decoder holds
            with contextlib.suppress(av.error.FFmpegError):
                yield from self._stream.codec_context.decode(None)

    def __iter__(self) -> Iterator[SourceFrame]:
        how = self.orientation
        frames = self._decoded
        if self._first is not None:
            frames, self._first = itertools.chain([self._first], frames), None
        for frame in frames:
            rgb = frame.to_ndarray(format="rgb24")
            if how:
                rgb = np.ascontiguousarray(orient(rgb, how))
            yield SourceFrame(rgb=rgb, index=self.frames_read, pts=frame.pts)
            self.frames_read += 1
        self.warning = self._loss_report()

    def _loss_report(self) -> str | None:
        """What decoding lost, in one clause, or ``None`` when every frame decoded."""
        notes = []
        lost = self.frame_count - self.frames_read if self.frame_count else None
        if self.damaged_packets:
            count = (
                f"{lost} of {self.frame_count} frames"
                if lost and lost > 0
                else f"{self.damaged_packets} damaged packets"
            )
            notes.append(
                f"{count} could not be decoded (damaged data: {_ffmpeg_reason(self._last_error)}) and were left out"
            )
        if self._stopped is not None:
            notes.append(f"decoding stopped after {self.frames_read} frames ({_ffmpeg_reason(self._stopped)})")
        elif not self.damaged_packets and lost and lost > 0:
            about = "" if self._count_exact else "about "
            notes.append(f"only {self.frames_read} of {about}{self.frame_count} frames decoded (damaged or cut short)")
        if not notes:
            return None
        return "; ".join(notes) + f"; the outputs hold the {self.frames_read} decoded frames"

    def close(self) -> None:
        self._container.close()


def _declared_frames(stream, rate: Fraction) -> tuple[int | None, bool]:
    """(frames the container declares for ``stream``, whether that is an exact count).

    MP4/MOV count their samples; otherwise the count is estimated from the track's ``DURATION``
    tag (Matroska/WebM, written by FFmpeg and mkvmerge) or the stream's duration.
    """
    if stream.frames:
        return stream.frames, True
    seconds = None
    if (stream.metadata or {}).get("DURATION"):  # the track's own; FFmpeg may give the file's as the stream's
        try:
            h, m, sec = stream.metadata["DURATION"].split(":")
            seconds = int(h) * 3600 + int(m) * 60 + float(sec)
        except ValueError:
            seconds = None
    if seconds is None and stream.duration and stream.time_base:
        seconds = float(stream.duration * stream.time_base)
    if seconds is None:
        return None, False
    return round(seconds * float(rate)), False


def check_frame_size(path: Path, width: int, height: int) -> None:
    """Refuse a video whose frames have more than :data:`MAX_VIDEO_PIXELS` pixels
    (``MATTEKIT_MAX_VIDEO_PIXELS`` when set).

    Raises:
        mattekit.errors.InputError: the frames are larger (one line with the size and the limit).
    """
    problem = frame_size_problem(width, height)
    if problem:
        raise InputError(
            path, f"video frames of {problem}; scale the video down first, or raise MATTEKIT_MAX_VIDEO_PIXELS"
        )


def frame_size_problem(width: int, height: int) -> str | None:
    """Why video frames of ``width`` x ``height`` are not matted (``"WxH (N pixels) are larger
    than ..."``), or ``None`` when they are within :data:`MAX_VIDEO_PIXELS`
    (``MATTEKIT_MAX_VIDEO_PIXELS`` when set).

    Raises:
        mattekit.errors.InputError: the environment variable is not a whole number >= 1.
    """
    limit = pixel_limit("MATTEKIT_MAX_VIDEO_PIXELS", MAX_VIDEO_PIXELS)
    if width * height <= limit:
        return None
    allowed = (
        "the largest mattekit mattes in a video (8192x4320, 8K)"
        if limit == MAX_VIDEO_PIXELS
        else f"the {limit:,} pixels MATTEKIT_MAX_VIDEO_PIXELS allows"
    )
    return f"{width}x{height} ({width * height:,} pixels) are larger than {allowed}"


class ImageSequenceReader(FrameSource):
    """Read a folder of images (sorted by file name) as a video.

    Args:
        path: the folder.
        frame_rate: frames per second given to the sequence, in [0.01, 1000] (default 30).

    Raises:
        mattekit.errors.InputError: folder missing, holds no image, or an image differs in size.
        mattekit.errors.ParameterError: ``frame_rate`` out of range (see :mod:`mattekit.params`).
    """

    def __init__(self, path: str | os.PathLike, frame_rate: Fraction | float | None = None):
        self.path = Path(path)
        if not self.path.is_dir():
            raise InputError(self.path, "folder not found")
        self.files = sorted(
            p for p in self.path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".")
        )
        if not self.files:
            raise InputError(self.path, "folder holds no image files")
        first = read_image(self.files[0])
        self._first: np.ndarray | None = first
        self.height, self.width = first.shape[:2]
        check_frame_size(self.files[0], self.width, self.height)
        frame_rate = validate_frame_rate(frame_rate)
        self.frame_rate = Fraction(frame_rate).limit_denominator(1001) if frame_rate else DEFAULT_SEQUENCE_RATE
        self.time_base = 1 / self.frame_rate
        self.frame_count = len(self.files)
        self.has_audio = False
        self.frames_read = 0
        self.warning = None

    def __iter__(self) -> Iterator[SourceFrame]:
        for i, file in enumerate(self.files):
            rgb = self._first if i == 0 and self._first is not None else read_image(file)
            if rgb.shape[:2] != (self.height, self.width):
                raise InputError(
                    file,
                    f"frame size {rgb.shape[1]}x{rgb.shape[0]} differs from the "
                    f"first frame's {self.width}x{self.height}",
                )
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


def _not_a_video(path: Path, reason: str | None) -> InputError:
    """FFmpeg could not open ``path`` (``reason``) or found no frame size (``None``): a
    :class:`FormatError` saying what the file holds when it is no video or picture at all, an
    :class:`InputError` (damaged) when it starts like a video container."""
    from mattekit.io.sniff import sniff

    kind = sniff(path)
    if kind and "video" not in kind and "image" not in kind:
        return FormatError(path, f"not a readable video (it holds {kind})")
    if reason is None:
        return InputError(path, "video stream has no frame size (damaged file?)")
    # a known video container FFmpeg cannot open is damaged (e.g. cut short), not a foreign type
    return (InputError if kind and "video" in kind else FormatError)(path, f"not a readable video ({reason})")


def _ffmpeg_reason(exc: BaseException | None) -> str:
    text = getattr(exc, "strerror", None) or str(exc)
    return text.split(":")[-1].strip() if ":" in text and "Errno" in text else text.strip()


def display_orientation(frame: av.VideoFrame, stream=None) -> str:
    """How to turn a decoded frame so it looks as a player shows it.

    Follows FFmpeg's own autorotation (fftools): the display matrix FFmpeg attaches to every
    decoded frame gives an angle and, for mirrored matrices, a flip; the legacy ``rotate`` stream
    tag (a clockwise angle) is used when there is no matrix. Angles other than multiples of 90°
    are ignored.

    Returns:
        ``""`` (as stored), ``"cclock"``/``"clock"`` (90° counter-clockwise / clockwise),
        ``"transpose"`` / ``"antitranspose"`` (90° turn plus a mirror), ``"hflip"``, ``"vflip"``
        or ``"rot180"``.
    """
    matrix = None
    for data in getattr(frame, "side_data", ()) or ():
        if "DISPLAYMATRIX" in str(getattr(data, "type", "")).upper():
            try:
                matrix = np.frombuffer(bytes(data), dtype=np.int32)[:9]
            except (TypeError, ValueError):
                matrix = None
            break
    angle = 0.0
    if matrix is not None and len(matrix) == 9:
        try:
            angle = float(frame.rotation or 0)
        except (AttributeError, TypeError, ValueError):
            angle = 0.0
    elif stream is not None and stream.metadata and stream.metadata.get("rotate"):
        try:
            angle = -float(stream.metadata["rotate"])
        except ValueError:
            angle = 0.0
        matrix = None
    theta = (-round(angle)) % 360  # clockwise turn a player applies, as FFmpeg computes it
    m = matrix if matrix is not None and len(matrix) == 9 else None
    if theta == 90:
        return "transpose" if m is not None and m[3] > 0 else "clock"
    if theta == 270:
        return "antitranspose" if m is not None and m[3] < 0 else "cclock"
    if theta == 180:
        if m is None:
            return "rot180"
        h, v = m[0] < 0, m[4] < 0
        return "rot180" if h and v else "hflip" if h else "vflip" if v else ""
    if theta == 0 and m is not None and m[4] < 0:
        return "vflip"
    return ""


SWAPS_SIZE = {"cclock", "clock", "transpose", "antitranspose"}


def orient(image: np.ndarray, how: str) -> np.ndarray:
    """Apply :func:`display_orientation`'s answer to an H×W(×C) array (a view; copy to keep)."""
    if how == "cclock":
        return np.rot90(image, 1)
    if how == "clock":
        return np.rot90(image, -1)
    if how == "transpose":
        return image.swapaxes(0, 1)
    if how == "antitranspose":
        return np.rot90(image, 2).swapaxes(0, 1)
    if how == "rot180":
        return image[::-1, ::-1]
    if how == "hflip":
        return image[:, ::-1]
    if how == "vflip":
        return image[::-1]
    return image
