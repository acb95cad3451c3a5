"""Write matted frames: encoded video (PyAV) or a folder of PNG images.

Output types (``--output-type``):

============  ==========================  ================  ======  ===========================
type          codec (FFmpeg)              pixel format      alpha   audio
============  ==========================  ================  ======  ===========================
video         H.264 (libx264), .mp4       yuv420p           no      copied, or AAC
webm          VP9 (libvpx-vp9), .webm     yuva420p          yes     copied Opus/Vorbis, or Opus
prores        ProRes 4444 (FFmpeg prores  yuva444p10le      yes     copied AAC/PCM, or AAC
              encoder, profile 4),
              .mov
gif           GIF (palette, 1-bit alpha)  pal8              yes     none (GIF has no audio)
png_sequence  PNG files in a folder       RGBA / RGB / gray yes     none
============  ==========================  ================  ======  ===========================

Odd frame sizes: H.264 in 4:2:0 cannot code an odd width or height (its crop unit is 2 pixels),
so a ``video`` output of odd size is written in 4:4:4 (``yuv444p``, High 4:4:4 profile) at exactly
the input's size; every FFmpeg-based player (VLC, mpv, browsers using FFmpeg) plays it, but some
hardware decoders and QuickTime do not. VP9 and GIF take odd sizes as they are; ProRes of odd
size is written by prores_ks (FFmpeg's faster "prores" encoder refuses odd sizes).

Each writer works under a temporary name and renames to the final one in :meth:`close`; on an
error or cancellation :meth:`abort` removes the temporary output and any earlier result stays.
An operating-system error while writing (disk full, file too large for the file system or a
size limit) is raised as :class:`~mattekit.errors.OutputError` naming the final output.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import cast

import av
import numpy as np

from mattekit.errors import OutputError
from mattekit.io.atomic import commit, discard, seal_folder, start_temp
from mattekit.io.audio import AudioMuxer
from mattekit.io.image import write_image


@dataclass(frozen=True)
class VideoFormat:
    """An encoded output type.

    Attributes:
        suffix: default file suffix (container).
        codec: FFmpeg encoder name.
        pix_fmt: pixel format of the encoded frames.
        alpha: True when the format stores transparency.
        options: encoder options.
        suffixes: every suffix the type may be written under.
        audio: False when the container holds no audio (GIF).
        odd_pix_fmt: pixel format used when the width or height is odd (``None``: ``pix_fmt``).
        odd_codec: encoder used when the width or height is odd (``None``: ``codec``).
        bit_rate: False when the codec has no bit-rate control (``--output-video-mbps`` ignored).
    """

    suffix: str
    codec: str
    pix_fmt: str
    alpha: bool
    options: tuple[tuple[str, str], ...] = ()
    suffixes: tuple[str, ...] = ()
    audio: bool = True
    odd_pix_fmt: str | None = None
    odd_codec: str | None = None
    bit_rate: bool = True


VIDEO_FORMATS: dict[str, VideoFormat] = {
    # libx264 "ultrafast" at CRF 18, measured on 1080p composites (benchmarks/bench_presets.py,
    # docs/benchmarks.md): 15 ms of CPU per frame against 44 for "veryfast" (29 for "superfast",
    # 63 "faster", 75 "medium"), PSNR 44.3 vs 43.0 dB and SSIM 0.9956 vs 0.9954 against the
    # uncompressed composite, files 2.7x larger; --preset veryfast for small files.
    "video": VideoFormat(
        ".mp4",
        "libx264",
        "yuv420p",
        False,
        (("preset", "ultrafast"), ("crf", "18")),
        suffixes=(".mp4", ".m4v", ".mov", ".mkv"),
        odd_pix_fmt="yuv444p",
    ),
    # VP9 codes the alpha plane as a second VP9 stream (Matroska BlockAdditional, alpha_mode=1).
    # "realtime" at cpu-used 6 encoded 720p RGBA 5.6x faster than "good"/5 (22.6 vs 4.0 fps on 2
    # busy cores) at the same PSNR (41.9 vs 41.7 dB) and alpha error, for files 15 % larger.
    "webm": VideoFormat(
        ".webm",
        "libvpx-vp9",
        "yuva420p",
        True,
        (
            ("crf", "20"),
            ("b", "0"),
            ("deadline", "realtime"),
            ("cpu-used", "6"),
            ("row-mt", "1"),
            ("auto-alt-ref", "0"),
        ),
        suffixes=(".webm", ".mkv"),
    ),
    # FFmpeg's "prores" encoder (prores_aw), profile 4 = 4444, 16-bit alpha: at 720p RGBA it ran
    # 3.5x faster than prores_ks (13.1 vs 3.7 fps on 2 busy cores) for alpha just as exact and
    # 8-bit colour PSNR 62.8 vs 64.2 dB (both far beyond visible), files 2 % smaller. It refuses
    # odd sizes, which prores_ks takes.
    "prores": VideoFormat(
        ".mov",
        "prores",
        "yuva444p10le",
        True,
        (("profile", "4"), ("vendor", "apl0")),
        suffixes=(".mov",),
        bit_rate=False,
        odd_codec="prores_ks",
    ),
    "gif": VideoFormat(".gif", "gif", "pal8", True, suffixes=(".gif",), audio=False, bit_rate=False),
}

#: libx264's speed presets, fastest first (``--preset``; x264 documentation, ``x264 --fullhelp``).
X264_PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow")
#: mattekit's default for the ``video`` type, chosen by measurement (docs/benchmarks.md, "Encoder presets").
DEFAULT_X264_PRESET = dict(VIDEO_FORMATS["video"].options)["preset"]


class FrameWriter:
    """Interface of every writer."""

    path: Path

    def write(self, image: np.ndarray, pts: int | None, index: int) -> None:  # pragma: no cover
        """Write one H×W×C uint8 image (C = 1, 3 or 4)."""
        raise NotImplementedError

    def close(self, cut_audio: bool = False) -> Path:  # pragma: no cover
        """Finish and move the output to its final name; return that name.

        With ``cut_audio`` the audio ends with the last frame written (the input lost frames at
        its end) instead of running to the end of the source's audio.
        """
        raise NotImplementedError

    def abort(self) -> None:  # pragma: no cover
        """Remove the temporary output."""
        raise NotImplementedError


class VideoWriter(FrameWriter):
    """Encode frames into a video file, with the source's audio.

    Frames are stamped with the source's own timestamps (``pts`` in ``time_base``), so a
    variable-frame-rate input keeps its timing and its audio stays in sync.

    Args:
        path: final output path; its suffix picks the container.
        fmt: a :class:`VideoFormat` (codec and pixel format).
        width, height: frame size in pixels.
        frame_rate: nominal frame rate (exact fraction, e.g. 30000/1001).
        time_base: unit of the ``pts`` passed to :meth:`write` (the source stream's).
        audio_source: a media file whose audio tracks go into the output, or ``None``.
        bit_rate: target bits per second, or ``None`` for the format's quality default.
        preset: encoder speed preset (libx264: one of :data:`X264_PRESETS`), or ``None`` for
            the format's own; ignored by encoders without presets.

    Raises:
        mattekit.errors.OutputError: the container or encoder cannot be opened.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        fmt: VideoFormat,
        width: int,
        height: int,
        frame_rate: Fraction,
        time_base: Fraction,
        audio_source: Path | None = None,
        bit_rate: int | None = None,
        preset: str | None = None,
    ):
        self.path = Path(path)
        self._temp = start_temp(self.path)
        self._fmt = fmt
        self._time_base = time_base
        self._frame_rate = frame_rate
        self._audio = None
        self._end = 0.0  # seconds: end of the last frame written
        try:
            self._container = av.open(str(self._temp), mode="w")
        except OSError as exc:
            discard(self._temp)
            raise OutputError.writing(self.path, exc, started=False) from None
        except (av.error.FFmpegError, ValueError) as exc:
            raise OutputError(self.path, f"cannot create video ({exc})") from None
        try:
            odd = width % 2 or height % 2
            codec = fmt.odd_codec if odd and fmt.odd_codec else fmt.codec
            # every codec of VIDEO_FORMATS is a video codec
            stream = cast(av.VideoStream, self._container.add_stream(codec, rate=frame_rate))
            stream.width, stream.height = width, height
            stream.pix_fmt = fmt.odd_pix_fmt if odd and fmt.odd_pix_fmt else fmt.pix_fmt
            stream.codec_context.time_base = time_base
            stream.time_base = time_base
            options: dict[str, object] = dict(fmt.options)  # the type of av.Stream.options
            if preset is not None and "preset" in options:
                options["preset"] = preset
            if bit_rate and fmt.bit_rate:
                stream.bit_rate = int(bit_rate)
                options.pop("crf", None)
                options.pop("b", None)
            stream.options = options
            self._stream = stream
            if audio_source is not None and fmt.audio:
                self._audio = AudioMuxer(audio_source, self._container, self.path.suffix)
        except BaseException:
            self._container.close()
            discard(self._temp)
            raise

    def _frame(self, image: np.ndarray) -> av.VideoFrame:
        if image.ndim == 2 or image.shape[2] == 1:
            return av.VideoFrame.from_ndarray(np.ascontiguousarray(image.reshape(image.shape[:2])), format="gray")
        if image.shape[2] == 4:
            return av.VideoFrame.from_ndarray(image, format="rgba")
        return av.VideoFrame.from_ndarray(image, format="rgb24")

    def write(self, image: np.ndarray, pts: int | None, index: int) -> None:
        frame = self._frame(image)
        if pts is None:
            pts = round(index / (self._frame_rate * self._time_base))
        frame.pts = pts
        frame.time_base = self._time_base
        start = float(pts * self._time_base)
        self._end = max(self._end, start + float(1 / self._frame_rate))
        try:
            if self._audio is not None:
                self._audio.mux_until(start)
            self._container.mux(self._stream.encode(frame))
        except OSError as exc:  # disk full, file size limit
            raise OutputError.writing(self.path, exc) from None

    def close(self, cut_audio: bool = False) -> Path:
        try:
            self._container.mux(self._stream.encode(None))
            if self._audio is not None:
                self._audio.finish(self._end if cut_audio else None)
            self._container.close()
        except OSError as exc:
            self.abort()
            raise OutputError.writing(self.path, exc) from None
        except BaseException:
            self.abort()
            raise
        commit(self._temp, self.path)
        return self.path

    def abort(self) -> None:
        if self._audio is not None:
            self._audio.close()
        with contextlib.suppress(Exception):  # a failed encoder may fail to close too; the file goes anyway
            self._container.close()
        discard(self._temp)


GRAY_PALETTE = np.concatenate(
    [np.full((256, 1), 255, np.uint8), np.repeat(np.arange(256, dtype=np.uint8)[:, None], 3, axis=1)], axis=1
)


def to_palette(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Convert a frame to GIF's 256-colour palette form.

    RGB(A) frames are quantized per frame by Pillow (fast octree, Floyd-Steinberg dithering) to
    255 colours; palette entry 255 is transparent and taken by pixels with alpha < 128 (GIF
    transparency is on/off). Gray frames use a 256-level gray palette (lossless).

    Args:
        image: H×W (gray), H×W×3 (RGB) or H×W×4 (RGBA, straight alpha) uint8.

    Returns:
        (indices H×W uint8, palette 256×4 uint8 in ARGB order as PyAV's ``pal8`` expects).
    """
    from PIL import Image

    if image.ndim == 2 or image.shape[2] == 1:
        return np.ascontiguousarray(image.reshape(image.shape[:2])), GRAY_PALETTE
    rgb = np.ascontiguousarray(image[:, :, :3])
    quantized = Image.fromarray(rgb).quantize(255, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.FLOYDSTEINBERG)
    indices = np.array(quantized, dtype=np.uint8)
    rgb_palette = quantized.getpalette()
    assert rgb_palette is not None  # quantize() gives a "P" image, which has a palette
    colours = np.asarray(rgb_palette[: 255 * 3], dtype=np.uint8).reshape(-1, 3)
    palette = np.zeros((256, 4), dtype=np.uint8)
    palette[:, 0] = 255  # opaque...
    palette[: len(colours), 1:] = colours
    if image.shape[2] == 4:
        palette[255] = 0  # ...except entry 255, the only fully transparent one
        indices[image[:, :, 3] < 128] = 255
    return indices, palette


class GifWriter(VideoWriter):
    """Encode frames as an animated GIF (one palette per frame, 1-bit transparency).

    GIF stores frame delays in hundredths of a second, so timestamps are rounded to 10 ms and,
    above 100 fps, frames that would share a hundredth with the previous one are left out. It is
    meant for short clips (files grow quickly and colours are limited to 256 per frame).
    """

    _last_cs: int | None = None

    def _frame(self, image: np.ndarray) -> av.VideoFrame:
        # PyAV's stub lists arrays only; for pal8 it takes the (indices, palette) pair (its docstring)
        return av.VideoFrame.from_ndarray(to_palette(image), format="pal8")  # type: ignore[arg-type]

    def write(self, image: np.ndarray, pts: int | None, index: int) -> None:
        # GIF timestamps are whole hundredths of a second: a frame that would land on the same
        # hundredth as the previous one (inputs above 100 fps) could never be shown; skip it
        if pts is None:
            pts = round(index / (self._frame_rate * self._time_base))
        cs = round(float(pts * self._time_base) * 100)
        if self._last_cs is not None and cs <= self._last_cs:
            return
        self._last_cs = cs
        super().write(image, pts, index)


class PngSequenceWriter(FrameWriter):
    """Write frames as ``00000.png, 00001.png, ...`` into a folder (RGBA, RGB or gray).

    PNG is lossless, so the alpha read back is exactly the 8-bit alpha written; frames use zlib
    level 1 (about 3x faster than Pillow's default 6, files about a third larger).

    The frames go into a hidden temporary folder beside ``path``, which gets a manifest of its
    frames (:func:`mattekit.io.atomic.seal_folder`) and is renamed to ``path`` when complete. A
    re-run may replace that folder; a folder holding anything else is never replaced (see
    :func:`mattekit.io.atomic.commit`).
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self._temp = start_temp(self.path)
        try:
            self._temp.mkdir(parents=True)
        except OSError as exc:
            raise OutputError.writing(self.path, exc, started=False) from None

    def write(self, image: np.ndarray, pts: int | None, index: int) -> None:
        if image.ndim == 3 and image.shape[2] == 1:
            image = image[:, :, 0]
        try:
            write_image(self._temp / f"{index:05d}.png", image, compress_level=1, atomic=False)
        except OutputError as exc:  # name the sequence, not the frame inside its hidden folder
            raise OutputError(self.path, exc.problem) from None

    def close(self, cut_audio: bool = False) -> Path:
        try:
            seal_folder(self._temp)
        except OSError as exc:  # the manifest on a full disk
            self.abort()
            raise OutputError.writing(self.path, exc) from None
        except BaseException:
            self.abort()
            raise
        commit(self._temp, self.path)
        return self.path

    def abort(self) -> None:
        discard(self._temp)


def open_writer(
    path: str | os.PathLike,
    output_type: str,
    width: int,
    height: int,
    frame_rate: Fraction,
    time_base: Fraction,
    audio_source: Path | None = None,
    bit_rate: int | None = None,
    preset: str | None = None,
) -> FrameWriter:
    """Open the writer of ``output_type`` (see :data:`VIDEO_FORMATS` and ``png_sequence``);
    ``preset`` is libx264's speed preset for the ``video`` type (:data:`X264_PRESETS`; the
    combination is checked by :class:`mattekit.plan.OutputPlan`).

    Raises:
        ValueError: unknown output type.
        mattekit.errors.OutputError: the output cannot be created.
    """
    if output_type == "png_sequence":
        return PngSequenceWriter(path)
    if output_type not in VIDEO_FORMATS:
        raise ValueError(f"unknown output type {output_type!r}")
    fmt = VIDEO_FORMATS[output_type]
    if fmt.codec == "gif":
        return GifWriter(path, fmt, width, height, frame_rate, time_base, audio_source=audio_source, bit_rate=bit_rate)
    return VideoWriter(
        path, fmt, width, height, frame_rate, time_base, audio_source=audio_source, bit_rate=bit_rate, preset=preset
    )
