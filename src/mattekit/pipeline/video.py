"""``convert_video``: matte a whole video with Robust Video Matting, streaming.

Three stages run at once, joined by bounded queues so memory does not grow with the video:
a decoder thread (PyAV, which releases the GIL), the network (ONNX Runtime, which releases it
too) on the calling thread, in frame order so the recurrent state is passed correctly, and a
writer thread that composites and encodes. An error in any stage, a set ``cancel`` event or
Ctrl-C stops all three; every output is then removed from its temporary name, and an earlier
result under the final name stays as it was.
"""

from __future__ import annotations

import os
import queue
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mattekit.compose.background import Background, parse_background
from mattekit.compose.composite import composite, to_rgba
from mattekit.errors import Cancelled, InputError, OutputError
from mattekit.io.atomic import check_output
from mattekit.io.video_reader import FrameSource, open_source
from mattekit.io.video_writer import (TRANSPARENT_TYPES, VIDEO_FORMATS, FrameWriter, check_output_suffix,
                                      open_writer)
from mattekit.models.rvm_onnx import RVMSession, auto_downsample_ratio, new_session
from mattekit.pipeline.progress import Progress

OUTPUT_TYPES = ("png_sequence", *VIDEO_FORMATS)
_END = object()
QUEUE_SIZE = 4


@dataclass
class VideoResult:
    """What :func:`convert_video` did.

    Attributes:
        frames: frames matted and written.
        seconds: wall-clock time of the whole run.
        fps: ``frames / seconds``.
        outputs: output kind (``composition``, ``alpha``, ``foreground``) -> final path.
        downsample_ratio: the ratio used.
        warning: a note for the user (e.g. a truncated input), or ``None``.
    """

    frames: int
    seconds: float
    fps: float
    outputs: dict[str, Path] = field(default_factory=dict)
    downsample_ratio: float = 0.0
    warning: str | None = None


class _Stop(Exception):
    """Raised inside a stage when another stage has failed."""


def _put(q: queue.Queue, item, stop: threading.Event) -> None:
    while True:
        if stop.is_set():
            raise _Stop
        try:
            q.put(item, timeout=0.1)
            return
        except queue.Full:
            continue


def _get(q: queue.Queue, stop: threading.Event):
    while True:
        if stop.is_set():
            raise _Stop
        try:
            return q.get(timeout=0.1)
        except queue.Empty:
            continue


def _to_src(rgb: np.ndarray) -> np.ndarray:
    """H×W×3 uint8 RGB -> 1×3×H×W float32 in 0..1 (the network's input layout)."""
    src = np.empty((1, 3) + rgb.shape[:2], dtype=np.float32)
    np.multiply(rgb.transpose(2, 0, 1), np.float32(1.0 / 255.0), out=src[0])
    return src


def _open_writer(path: Path, output_type: str, source: FrameSource, with_audio: bool,
                 bit_rate: int | None) -> FrameWriter:
    audio = source.path if with_audio and source.has_audio else None
    return open_writer(path, output_type, source.width, source.height, source.frame_rate, source.time_base,
                       audio_source=audio, bit_rate=bit_rate)


def convert_video(input_source: str | os.PathLike,
                  output_type: str = "video",
                  output_composition: str | os.PathLike | None = None,
                  output_alpha: str | os.PathLike | None = None,
                  output_foreground: str | os.PathLike | None = None,
                  output_video_mbps: float | None = None,
                  downsample_ratio: float | None = None,
                  seq_chunk: int = 1,
                  background: "str | tuple | Background | None" = None,
                  progress=True,
                  model: "str | os.PathLike | RVMSession | None" = None,
                  *,
                  overwrite: bool = False,
                  cancel: threading.Event | None = None,
                  frame_rate: float | None = None) -> VideoResult:
    """Matte every frame of a video and write the requested outputs.

    The keyword names are those of Robust Video Matting's ``inference.convert_video``
    (github.com/PeterL1n/RobustVideoMatting), so its users feel at home. Method: Lin et al.,
    "Robust High-Resolution Video Matting with Temporal Guidance", WACV 2022.

    Args:
        input_source: a video file PyAV can open, or a folder of frames (sorted by name).
        output_type: ``"video"`` (H.264 MP4) or ``"png_sequence"`` (a folder of PNGs); applies
            to every output.
        output_composition: the person over ``background``. For ``png_sequence`` without a
            ``background``, an RGBA image (person on transparency).
        output_alpha: the alpha matte (gray; 0 = background, 255 = person).
        output_foreground: the predicted foreground colour (RGB; RGBA for ``png_sequence``).
        output_video_mbps: target bit rate of written videos in Mbit/s; default: H.264 CRF 18.
        downsample_ratio: ratio in (0, 1] at which the encoder sees frames; ``None`` picks
            ``min(512 / max(H, W), 1)`` as RVM recommends.
        seq_chunk: accepted for compatibility with RVM's API; must be >= 1. The ONNX export has
            no time axis, so frames are always stepped one at a time through the recurrent state.
        background: colour name, ``#rrggbb``, (r, g, b) tuple, image path or a
            :class:`~mattekit.compose.Background`; default RVM's green (120, 255, 155) for
            video output and transparency for ``png_sequence``.
        progress: ``True`` shows a bar on stderr when it is a terminal; ``False`` is silent; a
            callable ``progress(done, total)`` is called after every written frame.
        model: ``None`` (the default model, fetched on first use), a registered name, an ONNX
            path, or an :class:`~mattekit.models.RVMSession` to reuse.
        overwrite: replace existing outputs (they stay intact until the new one is complete).
        cancel: a :class:`threading.Event`; setting it stops the run and raises
            :class:`~mattekit.errors.Cancelled`.
        frame_rate: frame rate given to a folder of frames (default 30); ignored for videos.

    Returns:
        A :class:`VideoResult`. Written videos keep the source's size, frame count, exact frame
        rate, timestamps and audio track (copied, or AAC when the container needs it).

    Raises:
        mattekit.errors.InputError: the input is missing, empty or not a video / frame folder.
        mattekit.errors.OutputError: no output asked, an output equals the input or exists
            (without ``overwrite``), or its folder is not writable.
        mattekit.errors.Cancelled: ``cancel`` was set or Ctrl-C was pressed.
        ValueError: ``output_type``, ``downsample_ratio`` or ``seq_chunk`` out of range.
    """
    if output_type not in OUTPUT_TYPES:
        raise ValueError(f"output_type must be one of {', '.join(OUTPUT_TYPES)}, not {output_type!r}")
    if downsample_ratio is not None and not 0 < downsample_ratio <= 1:
        raise ValueError(f"downsample_ratio must be in (0, 1], not {downsample_ratio}")
    if seq_chunk < 1:
        raise ValueError(f"seq_chunk must be >= 1, not {seq_chunk}")
    requested = {"composition": output_composition, "alpha": output_alpha,
                 "foreground": output_foreground}
    requested = {k: Path(v) for k, v in requested.items() if v is not None}
    if not requested:
        raise OutputError(input_source, "no output requested (give a composition, alpha or foreground output)")
    input_path = Path(input_source)
    if not input_path.exists():
        raise InputError(input_path, "file not found")
    for p in requested.values():
        check_output_suffix(p, output_type)
    finals = [check_output(p, [input_path], overwrite) for p in requested.values()]
    if len(set(p.resolve() for p in finals)) != len(finals):
        raise OutputError(finals[0], "the same path is given for two outputs")
    transparent_type = output_type in TRANSPARENT_TYPES
    bg = None
    if "composition" in requested:
        if background is None and transparent_type:
            bg = None
        else:
            bg = parse_background(background)
            if bg.transparent:
                bg = None
                if not transparent_type:
                    raise OutputError(requested["composition"], f"a transparent background needs a transparent "
                                      f"output type ({', '.join(TRANSPARENT_TYPES)}), not {output_type}")

    session = new_session(model)
    started = time.perf_counter()
    source = open_source(input_path, frame_rate)
    ratio = downsample_ratio or auto_downsample_ratio(source.height, source.width)
    if bg is not None:
        bg.prepare(source.frame_rate)
    writers: dict[str, FrameWriter] = {}
    stop = threading.Event()
    errors: list[BaseException] = []
    bar = Progress(progress, source.frame_count)
    try:
        for kind, path in requested.items():
            writers[kind] = _open_writer(path, output_type, source, kind != "alpha",
                                         int(output_video_mbps * 1e6) if output_video_mbps else None)
        q_in: queue.Queue = queue.Queue(QUEUE_SIZE)
        q_out: queue.Queue = queue.Queue(QUEUE_SIZE)

        def decode() -> None:
            try:
                for frame in source:
                    _put(q_in, (frame, _to_src(frame.rgb)), stop)
                _put(q_in, _END, stop)
            except _Stop:
                pass
            except BaseException as exc:  # handed to the calling thread
                errors.append(exc)
                stop.set()

        def write() -> None:
            try:
                while True:
                    item = _get(q_out, stop)
                    if item is _END:
                        return
                    frame, fgr, pha = item
                    _write_outputs(writers, frame, fgr, pha, bg, transparent_type)
                    bar.advance()
            except _Stop:
                pass
            except BaseException as exc:
                errors.append(exc)
                stop.set()

        threads = [threading.Thread(target=decode, name="mattekit-decode", daemon=True),
                   threading.Thread(target=write, name="mattekit-write", daemon=True)]
        for t in threads:
            t.start()
        try:
            state = session.initial_state()
            while True:
                if cancel is not None and cancel.is_set():
                    raise Cancelled(f"{input_path}: cancelled after {bar.done} frames")
                item = _get(q_in, stop)
                if item is _END:
                    _put(q_out, _END, stop)
                    break
                frame, src = item
                result = session.step(src, state, ratio)
                state = result.state
                _put(q_out, (frame, result.fgr, result.pha), stop)
            threads[1].join()
        except _Stop:
            pass
        except KeyboardInterrupt:
            stop.set()
            raise Cancelled(f"{input_path}: interrupted after {bar.done} frames") from None
        except BaseException:
            stop.set()
            raise
        finally:
            if errors or stop.is_set() or (cancel is not None and cancel.is_set()):
                stop.set()
            for t in threads:
                t.join()
        if errors:
            raise errors[0]
        outputs = {kind: w.close() for kind, w in writers.items()}
        writers.clear()
    finally:
        bar.close()
        for w in writers.values():
            w.abort()
        source.close()
        if bg is not None:
            bg.close()
    seconds = time.perf_counter() - started
    frames = source.frames_read
    warning = f"{input_path}: {source.truncated}" if source.truncated else None
    return VideoResult(frames=frames, seconds=seconds, fps=frames / seconds if seconds else 0.0,
                       outputs=outputs, downsample_ratio=ratio, warning=warning)


def _write_outputs(writers: dict[str, FrameWriter], frame, fgr: np.ndarray, pha: np.ndarray,
                   bg: Background | None, transparent_type: bool) -> None:
    alpha = pha[0, 0]
    fgr_hwc = fgr[0].transpose(1, 2, 0)
    if "composition" in writers:
        if bg is None:
            image = to_rgba(fgr_hwc, alpha)
        else:
            image = composite(fgr_hwc, alpha, bg.frame(frame.index, alpha.shape[0], alpha.shape[1], frame.rgb, alpha))
        writers["composition"].write(image, frame.pts, frame.index)
    if "alpha" in writers:
        writers["alpha"].write(np.clip(alpha * 255.0 + 0.5, 0, 255).astype(np.uint8), frame.pts, frame.index)
    if "foreground" in writers:
        if transparent_type:
            image = to_rgba(fgr_hwc, alpha)
        else:
            image = np.clip(fgr_hwc * 255.0 + 0.5, 0, 255).astype(np.uint8)
        writers["foreground"].write(image, frame.pts, frame.index)
