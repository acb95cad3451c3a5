"""What a Ray worker runs: one chunk of a video, one whole video, or a few images.

These are plain functions (the executor wraps them as Ray tasks), so they can be tested and
profiled without a cluster. A worker process keeps one model session per model and thread count
(:func:`session_for`), so a node loads the model once per worker process and fetches it once per
node into the model cache (its file lock keeps concurrent workers from fetching twice).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from mattekit.cluster.chunks import Chunk, ChunkReader, FrameIndex
from mattekit.io.video_writer import FrameWriter

_SESSIONS: dict = {}


@dataclass(frozen=True)
class ModelSpec:
    """How a worker loads the model: what :func:`mattekit.models.new_session` is given.

    Attributes:
        model: a registered name or an ONNX path (on storage every node sees), ``None`` for the
            default model.
        precision: ``None`` or a precision of a registered model.
        options: extra backend keyword arguments (the fake model's ``seconds_per_frame``).
    """

    model: str | None = None
    precision: str | None = None
    options: tuple = field(default_factory=tuple)

    @classmethod
    def of(cls, session) -> ModelSpec:
        """The spec that rebuilds a loaded session on another machine."""
        from mattekit.models import MODELS

        # a file given by path: the file as given (``source_path``), not a derived copy in this
        # machine's cache (an INT8 build), which each node makes for itself
        path = getattr(session, "source_path", None) or session.path
        name = session.name if session.name in MODELS else (str(path) if path else None)
        published = MODELS[name].precision if name in MODELS else "fp32"
        precision = session.precision if session.precision and session.precision != published else None
        options = (
            (("seconds_per_frame", session.seconds_per_frame),) if getattr(session, "seconds_per_frame", 0) else ()
        )
        return cls(name, precision, options)


def task_threads() -> int:
    """ONNX Runtime intra-op threads for this task: the CPUs Ray assigned it (at least 1)."""
    import sys

    ray = sys.modules.get("ray")
    try:
        cpus = ray.get_runtime_context().get_assigned_resources().get("CPU", 1) if ray and ray.is_initialized() else 1
    except Exception:  # not inside a Ray task
        cpus = 1
    return max(1, int(cpus))


def session_for(spec: ModelSpec, threads: int):
    """This process's session of ``spec`` with ``threads`` intra-op threads (loaded once)."""
    from mattekit.models import new_session

    key = (spec, threads)
    if key not in _SESSIONS:
        _SESSIONS[key] = new_session(
            spec.model, precision=spec.precision, intra_op_threads=threads, **dict(spec.options)
        )
    return _SESSIONS[key]


class Reporter:
    """Sends a task's frame count to the job's progress counter at most every ``interval`` s."""

    def __init__(self, counter, key: str, interval: float = 0.5):
        self.counter, self.key, self.interval = counter, key, interval
        self.done = 0
        self._sent = 0.0

    def __call__(self, done: int, total=None) -> None:
        self.done = done
        now = time.monotonic()
        if self.counter is not None and now - self._sent >= self.interval:
            self._sent = now
            self.counter.set.remote(self.key, done)

    def flush(self) -> None:
        if self.counter is not None:
            self.counter.set.remote(self.key, self.done)


class _AfterWarmup(FrameWriter):
    """A writer that drops frames before ``start`` (the warm-up run-in)."""

    def __init__(self, writer: FrameWriter, start: int):
        self.writer, self.start = writer, start
        self.path = writer.path

    def write(self, image, pts, index) -> None:
        if index >= self.start:
            self.writer.write(image, pts, index)

    def close(self, cut_audio: bool = False) -> Path:
        return self.writer.close(cut_audio)

    def abort(self) -> None:
        self.writer.abort()


@dataclass(frozen=True)
class VideoJob:
    """The options of one video shared by all its tasks (as :func:`convert_video` takes them)."""

    source: Path
    output_type: str
    background: object
    bit_rate: int | None
    downsample_ratio: float | None
    model: ModelSpec
    preset: str | None = None

    def plan(self, paths: dict[str, Path]):
        """The :class:`~mattekit.plan.OutputPlan` of these outputs (``overwrite``: the driver
        decided what to redo)."""
        from mattekit.plan import OutputPlan

        return OutputPlan(
            paths,
            self.output_type,
            self.background,
            self.bit_rate / 1e6 if self.bit_rate else None,
            self.preset,
            overwrite=True,
        )


def matte_chunk(
    job: VideoJob,
    chunk: Chunk,
    index: FrameIndex,
    segments: dict[str, Path],
    report: Callable[[int, int | None], None] | None = None,
) -> int:
    """Matte one chunk of ``job.source`` into one segment per output kind.

    The model is stepped from ``chunk.start - chunk.warmup`` so its recurrent state is warm at
    ``chunk.start``; outputs of the run-in frames are discarded. Segments carry the source's own
    timestamps and no audio (the join adds it, see :mod:`mattekit.cluster.segments`).

    Args:
        job: the video and its options.
        chunk: which frames; index: the video's frame index (from the driver's scan).
        segments: output kind -> segment path (written under a temporary name, renamed when done).
        report: called as ``report(frames_done, total)`` with frames past the warm-up.

    Returns:
        Frames written (``chunk.frames``).

    Raises:
        mattekit.errors.InputError, mattekit.errors.OutputError: as for :func:`convert_video`.
    """
    from mattekit.io.video_writer import open_writer
    from mattekit.pipeline.progress import Progress
    from mattekit.pipeline.video import _stream

    session = session_for(job.model, task_threads())
    plan = job.plan(segments)
    source = ChunkReader(job.source, chunk, index)
    writers = {}

    def progress(done, total):
        if report is not None:
            report(max(0, done - chunk.warmup), chunk.frames)

    bar = Progress(progress, source.frame_count)
    try:
        ratio = job.downsample_ratio or session.auto_downsample_ratio(source.height, source.width)
        if plan.background is not None:
            plan.background.prepare(source.frame_rate)
        for kind, path in segments.items():
            writers[kind] = open_writer(
                path,
                job.output_type,
                source.width,
                source.height,
                source.frame_rate,
                source.time_base,
                audio_source=None,
                bit_rate=plan.bit_rate,
                preset=plan.preset,
            )
        _stream(
            source,
            session,
            ratio,
            {k: _AfterWarmup(w, chunk.start) for k, w in writers.items()},
            plan,
            bar,
            None,
            f"{job.source} chunk {chunk.index}",
        )
        for kind in list(writers):
            writers.pop(kind).close()
    finally:
        bar.close()
        for w in writers.values():
            w.abort()
        source.close()
        plan.close()
    return chunk.frames


def convert_whole(job: VideoJob, targets: dict[str, Path], report=None) -> tuple[int, str | None]:
    """Matte a whole video (or folder of frames) in one task with :func:`convert_video`.

    Returns:
        (frames, warning or ``None``), the warning as the one-machine batch reports it.
    """
    from mattekit.pipeline.video import convert_with_plan

    session = session_for(job.model, task_threads())
    result = convert_with_plan(
        job.source, job.plan(targets), model=session, downsample_ratio=job.downsample_ratio, progress=report or False
    )
    # the batch's row names the file already: its warning without the "<source>: " prefix
    return result.frames, result.warning and result.warning.removeprefix(f"{job.source}: ")


@dataclass(frozen=True)
class ImageJob:
    """The options shared by the images of a :func:`~mattekit.batch.matte_folder` run."""

    background: object
    downsample_ratio: float | None
    options: tuple
    model: ModelSpec


def matte_images(job: ImageJob, items: list[tuple[int, Path, dict[str, Path]]], report=None) -> list[tuple]:
    """Matte a few images; one failing image does not stop the others.

    Returns:
        ``(position, status, reason, seconds, exit code)`` per item; status ``done`` or
        ``failed`` (exit code 0 when done, else the error's: 2 input, 3 output, 1 other).
    """
    from mattekit.pipeline.image import matte_one_image
    from mattekit.pipeline.outcome import DONE, FAILED, failure_reason
    from mattekit.plan import IMAGE, OutputPlan

    session = session_for(job.model, task_threads())
    plan = OutputPlan(sorted({k for _, _, targets in items for k in targets}), IMAGE, job.background)
    results = []
    try:
        for n, (position, source, targets) in enumerate(items, 1):
            started = time.perf_counter()
            try:
                matte_one_image(source, plan.at(targets), session, job.downsample_ratio, dict(job.options))
                results.append((position, DONE, "", time.perf_counter() - started, 0))
            except Exception as exc:  # one image's error must not end the others
                results.append(
                    (
                        position,
                        FAILED,
                        failure_reason(exc, source),
                        time.perf_counter() - started,
                        getattr(exc, "exit_code", 1),
                    )
                )
            if report is not None:
                report(n, len(items))
    finally:
        plan.close()
    return results
