"""``convert_video``: matte a whole video with Robust Video Matting, streaming.

The stages run at once, joined by bounded queues so memory does not grow with the video:

* a decoder thread: PyAV decodes and converts to RGB (releasing the GIL), then the frame is
  written straight into the network's 1×3×H×W float32 layout, in one of a few input buffers that
  are handed round and reused (no allocation, no float64);
* the network on the calling thread (ONNX Runtime releases the GIL), in frame order so the
  recurrent state is passed correctly;
* one writer thread per output (composition, alpha, foreground): each turns the network's planar
  output into 8-bit pixels in its own reused buffers (:class:`~mattekit.compose.composite.FrameCompositor`)
  and encodes (PyAV's scaler and encoder release the GIL; libx264 threads on its own).

Each queue holds at most :data:`MAX_QUEUE` frames and at most about :data:`QUEUE_BYTES` of frame
data, so a 4K video buffers fewer frames than a 720p one. An error in any stage, a set ``cancel``
event or Ctrl-C stops every thread (they are joined before :func:`convert_video` returns or
raises); every output is then removed from its temporary name, and an earlier result under the
final name stays as it was.
"""

from __future__ import annotations

import os
import queue
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mattekit.compose.background import Background
from mattekit.compose.composite import FrameCompositor
from mattekit.compose.render import render_output
from mattekit.errors import Cancelled, InputError, ParameterError
from mattekit.io.atomic import check_outputs, existing_paths
from mattekit.io.video_reader import FrameSource, open_source
from mattekit.io.video_writer import FrameWriter, open_writer
from mattekit.models import ModelSession
from mattekit.models.base import ArrayMatte, to_src
from mattekit.params import (
    validate_cancel,
    validate_downsample_ratio,
    validate_frame_rate,
    validate_path,
    validate_seq_chunk,
)
from mattekit.pipeline.progress import Progress
from mattekit.pipeline.rvm_api import (
    ResizedSource,
    session_for_call,
    split_call,
    validate_input_resize,
    validate_num_workers,
)
from mattekit.plan import OUTPUT_TYPES, OutputPlan

__all__ = ["OUTPUT_TYPES", "VideoResult", "convert_video", "convert_with_plan"]
_END = object()
# bounds on what waits in one queue between two stages (frames, and bytes of frame data)
MAX_QUEUE = 2
QUEUE_BYTES = 192 * 2**20
# Nice increment of the decoder and writer threads (Linux: per thread; the encoder's own threads,
# started from the writer, inherit it). The network is the one sequential stage; at a lower
# priority the others fill the cores' idle moments instead of preempting it mid-operator. Used
# only when ONNX Runtime's threads do not spin while waiting (session.intra_op.allow_spinning=0):
# measured at 1080p on 2 cores, nice +10 then gave 20-33 % more frames per second than 0 in two
# runs, while with spinning (the default) the spinning threads starve the lowered writer and the
# result went either way. (Noisy machine; see docs/benchmarks.md.)
STAGE_NICE = 10


@dataclass
class VideoResult:
    """What :func:`convert_video` did.

    Attributes:
        frames: frames matted and written.
        seconds: wall-clock time of the whole run.
        fps: ``frames / seconds``.
        outputs: output kind (``composition``, ``alpha``, ``foreground``) -> final path.
        downsample_ratio: the ratio used.
        warning: a note for the user, or ``None``: frames lost to damaged data (skipped packets,
            a file cut short) with their count; the outputs then hold the frames that decoded,
            with their own timestamps, and audio that ends with the last of them.
    """

    frames: int
    seconds: float
    fps: float
    outputs: dict[str, Path] = field(default_factory=dict)
    downsample_ratio: float = 0.0
    warning: str | None = None
    stage_seconds: dict[str, float] = field(default_factory=dict)
    """Busy time of each stage in seconds (time spent working, not waiting on a queue):
    ``decode`` (demux, decode, RGB conversion), ``convert`` (to the network's layout),
    ``network``, ``render:<output>`` (compositing / 8-bit conversion), ``encode:<output>``
    (colour conversion, encoding, audio muxing) and ``finish`` (encoder flush, file close).
    A stage whose busy time is close to ``seconds`` is the one the run waited for."""


class _Stop(Exception):
    """Raised inside a stage when another stage has failed."""


def _put(q: queue.Queue, item, halt) -> None:
    """Put ``item``, calling ``halt()`` (which raises to give up) every 0.1 s while full."""
    while True:
        halt()
        try:
            q.put(item, timeout=0.1)
            return
        except queue.Full:
            continue


def _get(q: queue.Queue, halt):
    """Get an item, calling ``halt()`` (which raises to give up) every 0.1 s while empty."""
    while True:
        halt()
        try:
            return q.get(timeout=0.1)
        except queue.Empty:
            continue


def _lower_priority(increment: int) -> None:
    """Raise the calling thread's nice value by ``increment`` (Linux threads; elsewhere nothing)."""
    if increment and sys.platform.startswith("linux"):
        try:
            tid = threading.get_native_id()
            os.setpriority(os.PRIO_PROCESS, tid, os.getpriority(os.PRIO_PROCESS, tid) + increment)
        except OSError:
            pass


def _stage_nice(session) -> int:
    """:data:`STAGE_NICE` when the session's worker threads block instead of spinning, else 0."""
    try:
        options = session._session.get_session_options()
        spins = options.get_session_config_entry("session.intra_op.allow_spinning") != "0"
    except Exception:  # option never set (ONNX Runtime's default is to spin), or not ONNX Runtime
        spins = True
    return 0 if spins else STAGE_NICE


def _queue_depth(item_bytes: int) -> int:
    """Frames a queue may hold: at most :data:`MAX_QUEUE` and about :data:`QUEUE_BYTES`."""
    return max(1, min(MAX_QUEUE, QUEUE_BYTES // max(item_bytes, 1)))


class _Tally:
    """Counts frames written by each output; progress advances with the slowest output."""

    def __init__(self, kinds, bar: Progress):
        self._counts = dict.fromkeys(kinds, 0)
        self._lock = threading.Lock()
        self._bar = bar

    def add(self, kind: str) -> None:
        with self._lock:
            self._counts[kind] += 1
            done = min(self._counts.values())
            if done > self._bar.done:
                self._bar.advance(done - self._bar.done)


def _open_writer(path: Path, plan: OutputPlan, source: FrameSource, with_audio: bool) -> FrameWriter:
    audio = source.path if with_audio and source.has_audio else None
    return open_writer(
        path,
        plan.output_type,
        source.width,
        source.height,
        source.frame_rate,
        source.time_base,
        audio_source=audio,
        bit_rate=plan.bit_rate,
        preset=plan.preset,
    )


def convert_video(
    model_or_input=None,
    /,
    input_source: str | os.PathLike | None = None,
    input_resize: tuple[int, int] | None = None,
    downsample_ratio: float | None = None,
    output_type: str = "video",
    output_composition: str | os.PathLike | None = None,
    output_alpha: str | os.PathLike | None = None,
    output_foreground: str | os.PathLike | None = None,
    output_video_mbps: float | None = None,
    seq_chunk: int = 1,
    num_workers: int = 0,
    progress=True,
    device=None,
    dtype=None,
    *,
    model: str | os.PathLike | ModelSession | None = None,
    background: str | tuple | Background | None = None,
    overwrite: bool = False,
    cancel: threading.Event | None = None,
    frame_rate: float | None = None,
    preset: str | None = None,
) -> VideoResult:
    """Matte every frame of a video and write the requested outputs.

    A drop-in for Robust Video Matting's ``inference.convert_video`` (github.com/PeterL1n/
    RobustVideoMatting): the same parameters in the same order, the model first, so the call of
    RVM's README runs unchanged (``model`` is then a name, an ONNX path or a session, not a
    PyTorch module). mattekit's own short form puts the input first:
    ``convert_video("clip.mp4", output_composition="out.mp4", model="isnet")``
    (:func:`~mattekit.pipeline.rvm_api.split_call`). Method: Lin et al., "Robust High-Resolution
    Video Matting with Temporal Guidance", WACV 2022.

    Args:
        model_or_input: the model (RVM's order, with ``input_source=``), or the input (when
            ``input_source`` is not given). Positional only.
        input_source: a video file PyAV can open, or a folder of frames (sorted by name).
        input_resize: ``(width, height)``: frames are resized to it (area averaging when
            shrinking) before matting, and every output has that size; ``None`` keeps the
            input's size. Sides in [1, 16384].
        downsample_ratio: ratio in (0, 1] at which the encoder sees frames; ``None`` uses the
            model's own (RVM: ``min(512 / max(H, W), 1)`` as RVM recommends, raised for frames over
            512:1 so the shorter side keeps 1 px). ``0`` is refused, not taken as auto.
        output_type: ``"video"`` (H.264 MP4), ``"webm"`` (VP9 with alpha), ``"prores"`` (ProRes
            4444 .mov with alpha), ``"gif"`` (1-bit alpha) or ``"png_sequence"`` (a folder of
            PNGs); applies to every output; the file suffix must fit it (see
            :mod:`mattekit.io.video_writer`).
        output_composition: the person over ``background``; for a type that keeps alpha
            without a ``background``, RGBA (the person on transparency).
        output_alpha: the alpha matte (gray; 0 = background, 255 = person).
        output_foreground: the predicted foreground colour (RGB; RGBA for a type that keeps alpha).
        output_video_mbps: target bit rate of written videos in Mbit/s, in [0.01, 1000];
            ``None`` (default): H.264 CRF 18 (RVM's default is 1 Mbit/s).
        seq_chunk: accepted for RVM's API; an integer in [1, 1024]. The ONNX export has no time
            axis, so frames are always stepped one at a time through the recurrent state.
        num_workers: accepted for RVM's API (its PyTorch DataLoader workers); an integer in
            [0, 1024] with no effect here: decoding already runs in its own thread beside the
            network and the writers.
        progress: ``True`` shows a bar on stderr when it is a terminal; ``False`` is silent; a
            callable ``progress(done, total)`` is called after every written frame.
        device: ``None`` (CUDA when ONNX Runtime has it, else the CPU), ``"cpu"``, or ``"cuda"``
            / ``"cuda:N"`` (a string or ``torch.device``): the CUDA provider, or a
            :class:`~mattekit.errors.ModelError` when this ONNX Runtime has none (no silent
            fall-back). See :func:`~mattekit.pipeline.rvm_api.providers_for`.
        dtype: ``None`` (the model's published precision), ``torch.float32``/``"float32"`` ->
            ``fp32``, ``torch.float16``/``"float16"`` -> ``fp16`` (see
            :func:`~mattekit.models.new_session`'s ``precision``).
        model: ``None`` (the default model, fetched on first use), a registered name, an ONNX
            path, or a :class:`~mattekit.models.ModelSession` to reuse (see
            :func:`mattekit.models.new_session`). A per-frame model mattes each frame alone; when
            it predicts no foreground colour, it is estimated by blur fusion (``docs/models.md``).
        background: what the composition is placed on: a colour name, ``#rrggbb``, (r, g, b),
            an image path, a video path, ``"blur"``/``"blur:SIGMA"``, ``"transparent"`` or a
            :class:`~mattekit.compose.Background` (see
            :func:`~mattekit.compose.background.parse_background`); default RVM's green
            (120, 255, 155) for ``video`` and transparency for the types that keep alpha.
        overwrite: replace existing outputs (they stay intact until the new one is complete).
        cancel: a :class:`threading.Event`; setting it stops the run and raises
            :class:`~mattekit.errors.Cancelled`.
        frame_rate: frame rate given to a folder of frames, in [0.01, 1000] (default 30);
            ignored for videos.
        preset: libx264 speed preset of the ``video`` type (``ultrafast`` ... ``veryslow``,
            :data:`~mattekit.io.video_writer.X264_PRESETS`); ``None`` for mattekit's default
            (``ultrafast``, chosen by measurement: docs/benchmarks.md). ``veryfast`` makes files
            about 2.7x smaller at the same quality (CRF 18) for 3x the encoding time.

    Returns:
        A :class:`VideoResult`. Written videos keep the source's size (or ``input_resize``),
        frame count, exact frame rate, timestamps and audio track (copied, or AAC when the
        container needs it).

    Raises:
        mattekit.errors.InputError: the input is missing, empty or not a video / frame folder.
        mattekit.errors.OutputError: an output is one of the job's inputs (video, background,
            model file; also through a link) or holds one, is the current folder, exists
            (without ``overwrite``), is a folder holding files mattekit did not write there as
            that output (see :mod:`mattekit.io.atomic`), or cannot be written.
        mattekit.errors.Cancelled: ``cancel`` was set or Ctrl-C was pressed.
        mattekit.errors.ParameterError: (a ``ValueError``) no output asked, an output rule of
            :mod:`mattekit.plan` broken (unknown ``output_type``, a suffix that does not fit it,
            a transparent background for ``video``, a ``preset`` not libx264's or for another
            type), or ``downsample_ratio``, ``seq_chunk``, ``num_workers``, ``input_resize``,
            ``output_video_mbps``, ``frame_rate``, ``device`` or ``dtype`` out of range (see
            :mod:`mattekit.params`), or a ratio that leaves the network less than 1 px.
        mattekit.errors.ParameterTypeError: (a ``TypeError``) one of them is not a number, or
            ``cancel`` is not an Event.
        mattekit.errors.ModelError: the model cannot be loaded, or ``device="cuda"`` without CUDA.
        TypeError: no input, or the model given twice.
    """
    input_source, output_type, model = split_call(model_or_input, input_source, output_type, model)
    validate_downsample_ratio(downsample_ratio)
    validate_seq_chunk(seq_chunk)
    validate_num_workers(num_workers)
    resize = validate_input_resize(input_resize)
    plan = OutputPlan(
        {"composition": output_composition, "alpha": output_alpha, "foreground": output_foreground},
        output_type,
        background,
        output_video_mbps,
        preset,
        overwrite,
        source=input_source,
    )
    return convert_with_plan(
        input_source,
        plan,
        model=model,
        downsample_ratio=downsample_ratio,
        progress=progress,
        cancel=cancel,
        frame_rate=frame_rate,
        input_resize=resize,
        device=device,
        dtype=dtype,
        protect=(background,),
    )


def convert_with_plan(
    input_source: str | os.PathLike,
    plan: OutputPlan,
    *,
    model: str | os.PathLike | ModelSession | None = None,
    downsample_ratio: float | None = None,
    progress=True,
    cancel: threading.Event | None = None,
    frame_rate: float | None = None,
    input_resize: tuple[int, int] | None = None,
    device=None,
    dtype=None,
    protect=(),
) -> VideoResult:
    """Matte a video into the outputs of an :class:`~mattekit.plan.OutputPlan` (built and
    checked by the caller: :func:`convert_video`, the batches, the server).

    Args:
        input_source, model, downsample_ratio, progress, cancel, frame_rate, input_resize, device,
            dtype: as for :func:`convert_video`.
        plan: the outputs (every path known), their type, background, bit rate, preset and
            ``overwrite``. Its background is released (``close``) when the call ends; a video
            background reopens by itself if the plan is used again.
        protect: more paths no output may be (e.g. a background not used by any output).

    Returns, Raises: as :func:`convert_video`.
    """
    try:
        validate_downsample_ratio(downsample_ratio)
        frame_rate = validate_frame_rate(frame_rate)
        validate_cancel(cancel)
        requested = plan.paths
        if len(requested) != len(plan.outputs):
            raise ParameterError("outputs", f"the plan has no path for {', '.join(set(plan.outputs) - set(requested))}")
        input_path = validate_path(input_source, "input_source")
        if not input_path.exists():
            raise InputError(input_path, "file not found")
        check_outputs(
            requested.values(),
            existing_paths(input_path, plan.background, model, *protect),
            plan.overwrite,
            folder=plan.output_type == "png_sequence",
        )
        session = session_for_call(model, device, dtype)
        return _convert(input_path, plan, session, downsample_ratio, progress, cancel, frame_rate, input_resize)
    finally:
        plan.close()


def _convert(
    input_path: Path,
    plan: OutputPlan,
    session: ModelSession,
    downsample_ratio: float | None,
    progress,
    cancel: threading.Event | None,
    frame_rate: float | None,
    input_resize: tuple[int, int] | None,
) -> VideoResult:
    started = time.perf_counter()
    source = open_source(input_path, frame_rate)
    if input_resize is not None:
        source = ResizedSource(source, input_resize)
    writers: dict[str, FrameWriter] = {}
    bar = Progress(progress, source.frame_count)
    try:
        checked = validate_downsample_ratio(downsample_ratio, source.height, source.width, source=input_path)
        ratio = session.auto_downsample_ratio(source.height, source.width) if checked is None else checked
        if plan.background is not None:
            plan.background.prepare(source.frame_rate)
        for kind, path in plan.paths.items():
            writers[kind] = _open_writer(path, plan, source, kind != "alpha")
        stage_seconds = _stream(source, session, ratio, writers, plan, bar, cancel, str(input_path))
        finish = time.perf_counter()
        outputs = {}
        for kind in list(writers):  # frames lost: audio ends with the last frame, not the source's
            outputs[kind] = writers[kind].close(cut_audio=source.warning is not None)
            del writers[kind]
        stage_seconds["finish"] = time.perf_counter() - finish
    except KeyboardInterrupt:
        raise Cancelled(f"{input_path}: interrupted after {bar.done} frames") from None
    finally:
        bar.close()
        for w in writers.values():
            w.abort()
        source.close()
    seconds = time.perf_counter() - started
    frames = source.frames_read
    warning = f"{input_path}: {source.warning}" if source.warning else None
    return VideoResult(
        frames=frames,
        seconds=seconds,
        fps=frames / seconds if seconds else 0.0,
        outputs=outputs,
        downsample_ratio=ratio,
        warning=warning,
        stage_seconds=stage_seconds,
    )


def _stream(
    source: FrameSource,
    session: ModelSession,
    ratio: float,
    writers: dict[str, FrameWriter],
    plan: OutputPlan,
    bar: Progress,
    cancel: threading.Event | None,
    label: str,
) -> dict[str, float]:
    """Run decoder thread -> network (this thread) -> one writer thread per output.

    Returns when every frame is written (the writers are not closed) or raises; either way every
    thread has ended. Returns the busy seconds of each stage (see :attr:`VideoResult.stage_seconds`).
    """
    h, w = source.height, source.width
    depth_in = _queue_depth(3 * h * w * 5)  # float32 input + uint8 RGB frame
    depth_out = _queue_depth(4 * h * w * 4)  # float32 fgr + pha
    stop = threading.Event()
    errors: list[BaseException] = []
    busy: dict[str, float] = {"decode": 0.0, "convert": 0.0, "network": 0.0}
    q_in: queue.Queue = queue.Queue(depth_in)
    # input buffers handed round: decoder fills one, the network reads one, the rest wait in q_in
    free: queue.Queue = queue.Queue()
    # a session that reads only the uint8 frame (RVM with its cut graph) needs no float copy
    guide_only = getattr(session, "guide_only", False)
    for _ in range(0 if guide_only else depth_in + 2):
        free.put(np.empty((1, 3, h, w), dtype=np.float32))
    q_out: dict[str, queue.Queue] = {kind: queue.Queue(depth_out) for kind in writers}
    tally = _Tally(writers, bar)
    nice = _stage_nice(session)
    needs_fgr = any(kind != "alpha" for kind in writers)

    def halt() -> None:
        if stop.is_set():
            raise _Stop

    def halt_main() -> None:
        if stop.is_set():
            raise _Stop
        if cancel is not None and cancel.is_set():
            raise Cancelled(f"{label}: cancelled after {bar.done} frames")

    def guarded(stage):
        def run(*args) -> None:
            try:
                _lower_priority(nice)
                stage(*args)
            except _Stop:
                pass
            except BaseException as exc:  # handed to the calling thread
                errors.append(exc)
                stop.set()

        return run

    def decode() -> None:
        frames = iter(source)
        while True:
            t0 = time.perf_counter()
            frame = next(frames, None)
            busy["decode"] += time.perf_counter() - t0
            if frame is None:
                break
            if frame.rgb.shape != (h, w, 3):
                raise InputError(
                    source.path,
                    f"frame {frame.index} is {frame.rgb.shape[1]}x{frame.rgb.shape[0]}, "
                    f"not {w}x{h} like the first frame",
                )
            src = None
            if not guide_only:
                src = _get(free, halt)
                t0 = time.perf_counter()
                to_src(frame.rgb, out=src)
                busy["convert"] += time.perf_counter() - t0
            _put(q_in, (frame, src), halt)
        _put(q_in, _END, halt)

    def write(kind: str) -> None:
        compositor = FrameCompositor(h, w)
        image_kind = plan.image_kind(kind)
        writer, q = writers[kind], q_out[kind]
        render_key, encode_key = f"render:{kind}", f"encode:{kind}"
        busy[render_key] = busy[encode_key] = 0.0
        while True:
            item = _get(q, halt)
            if item is _END:
                return
            frame, matte = item
            t0 = time.perf_counter()
            image = render_output(image_kind, matte, compositor, plan.background, frame.index, frame.rgb)
            t1 = time.perf_counter()
            writer.write(image, frame.pts, frame.index)
            busy[render_key] += t1 - t0
            busy[encode_key] += time.perf_counter() - t1
            tally.add(kind)

    threads = [threading.Thread(target=guarded(decode), name="mattekit-decode", daemon=True)]
    threads += [
        threading.Thread(target=guarded(write), args=(kind,), name=f"mattekit-write-{kind}", daemon=True)
        for kind in writers
    ]
    for t in threads:
        t.start()
    interrupted = False
    try:
        state = session.initial_state()
        while True:
            item = _get(q_in, halt_main)
            if item is _END:
                for q in q_out.values():
                    _put(q, _END, halt_main)
                break
            frame, src = item
            t0 = time.perf_counter()
            # the full-resolution outputs are computed by the writers, band by band, as each
            # needs them (mattekit.models.base.FrameMatte); the matte reads frame.rgb, not src
            matte, state = session.step_deferred(src, state, ratio, guide=frame.rgb)
            busy["network"] += time.perf_counter() - t0
            if isinstance(matte, ArrayMatte) and matte.fgr_array is None and needs_fgr:
                matte = ArrayMatte(matte.pha, _estimate_fgr(src, matte.pha))
            if src is not None:
                free.put(src)
            for q in q_out.values():
                _put(q, (frame, matte), halt_main)
        for t in threads:
            while t.is_alive():
                halt_main()
                t.join(0.1)
    except _Stop:
        pass
    except KeyboardInterrupt:
        interrupted = True
    finally:
        stop.set()
        for t in threads:  # no thread outlives the call, even if Ctrl-C comes again meanwhile
            while t.is_alive():
                try:
                    t.join()
                except KeyboardInterrupt:
                    interrupted = True
    if interrupted or any(isinstance(e, KeyboardInterrupt) for e in errors):
        raise Cancelled(f"{label}: interrupted after {bar.done} frames")
    if errors:
        raise errors[0]
    return busy


def _estimate_fgr(src: np.ndarray, pha: np.ndarray) -> np.ndarray:
    """Foreground colour (1×3×H×W) of a frame whose model predicts none, from the frame (1×3×H×W)
    and its alpha (1×1×H×W): blur fusion, chosen by measurement (``docs/models.md``: 2.4x closer
    to the true colour than the frame's own, 6x faster than the multilevel estimate)."""
    from mattekit.classical.estimate_foreground_blur_fusion import estimate_foreground_blur_fusion

    fgr = estimate_foreground_blur_fusion(src[0].transpose(1, 2, 0), pha[0, 0])
    return np.ascontiguousarray(fgr.transpose(2, 0, 1))[None]
