"""Run :func:`~mattekit.batch.convert_folder` and :func:`~mattekit.batch.matte_folder`
on a Ray cluster (https://docs.ray.io).

The driver (the process that called the function) plans the work and joins the results; Ray
tasks do the matting on any node:

* a video long enough is cut into chunks at keyframes (:mod:`mattekit.cluster.chunks`), one task
  per chunk, each warmed up on the ``warmup`` frames before it; each task encodes its chunk as a
  segment in a hidden work folder beside the outputs, and the driver joins the segments into the
  final outputs by remuxing (:mod:`mattekit.cluster.segments`);
* a short video, a folder of frames and GIF output go to one task each (``convert_video``);
* images go in small batches, one task per batch.

Faults: Ray re-runs a task whose worker or node died (``max_retries``), so a lost worker costs its
chunk only. Segments are written under temporary names and renamed when complete, and the work
folder's name is derived from the input and every option, so a re-run after the driver itself was
killed keeps the finished chunks (and finished files) and does only the rest. Inputs, outputs and
a model given as a path must be on storage every node sees (docs/cluster.md).
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import json
import logging
import os
import shutil
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path

from mattekit.cluster.chunks import DEFAULT_CHUNK_FRAMES, Chunk, DamagedChunk, FrameIndex, plan_chunks, scan_frames
from mattekit.cluster.segments import SPLITTABLE_TYPES, join_segments
from mattekit.cluster.work import ImageJob, ModelSpec, VideoJob
from mattekit.errors import MattekitError
from mattekit.io.atomic import file_key
from mattekit.pipeline.outcome import CANCELLED, DONE, FAILED, SKIPPED, BatchResult, FileOutcome, failure_reason

# Warm-up frames before each chunk, chosen from the table in docs/cluster.md (RVM, continuous real
# footage, worst frame's mean |Δα| to the one-machine run in the 16 frames after a chunk start):
# on test-sample1 (720p) W=0..16 all leave 0.14-0.16 and W=32 0.096; on sample0 (1080p) W=16 gives
# 0.0006. The difference sits on people passing behind the subject, whose matte RVM's state builds
# up over as long as they are in view, so it falls with W only once W covers much of that time.
# W=32 costs 32 / 900 = 3.6 % extra frames at the default chunk length.
DEFAULT_WARMUP = 32
# Stated and tested bound on the worst frame's mean |Δα| (alpha in 0..1) of a chunked run vs the
# one-machine run at W=32: the worst measured, 0.096 (test-sample1, 720p), + 25 %. tests/test_ray.py
# measures 0.054 on its 160x90 clip.
WARMUP_TOLERANCE = 0.12
IMAGES_PER_TASK = 4
TASK_RETRIES = 3
Job = tuple[Path, dict[str, Path], str]


class RayUnavailable(MattekitError):
    """Ray is not installed, or the cluster cannot be reached."""


def connect(address: str | None = None) -> bool:
    """Join the Ray cluster at ``address``, ``$RAY_ADDRESS`` when unset, else start a local one.

    Returns:
        True when this call started the connection (the caller shuts it down), False when the
        process was already connected.

    Raises:
        RayUnavailable: Ray is not installed or the address cannot be reached.
    """
    try:
        import ray
    except ImportError:
        raise RayUnavailable("--executor ray needs Ray: pip install 'mattekit[ray]'") from None
    if ray.is_initialized():
        return False
    address = address or os.environ.get("RAY_ADDRESS") or None
    # a failed file's other chunks are cancelled and their results dropped: reported once by
    # mattekit (the summary), not again by Ray as "unhandled errors" on stderr
    os.environ.setdefault("RAY_IGNORE_UNHANDLED_ERRORS", "1")
    handlers = _signal_handlers()
    try:
        ray.init(
            address=address,
            include_dashboard=False,
            log_to_driver=False,
            configure_logging=True,
            logging_level=logging.ERROR,
        )
    except Exception as exc:  # ConnectionError, ValueError, RuntimeError from ray.init
        raise RayUnavailable(
            f"cannot join the Ray cluster at {address or 'a new local cluster'}: "
            f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
        ) from None
    finally:
        # ray.init replaces the driver's SIGTERM handler with sys.exit(15); keep the caller's (the
        # CLI's turns SIGTERM into a clean stop like Ctrl-C: tasks cancelled, exit 143)
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
    return True


def _signal_handlers() -> dict:
    """The current handlers of SIGINT, SIGTERM and SIGHUP (none outside the main thread)."""
    if threading.current_thread() is not threading.main_thread():
        return {}
    signals = [getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name)]
    return {sig: handler for sig in signals if (handler := signal.getsignal(sig)) is not None}


def _counter_class():
    import ray

    @ray.remote(num_cpus=0)
    class FrameCounter:
        """Frames done per task (a retried task starts its count again)."""

        def __init__(self):
            self.counts: dict[str, int] = {}

        def set(self, key: str, done: int) -> None:
            self.counts[key] = done

        def total(self) -> int:
            return sum(self.counts.values())

    return FrameCounter


def _remote(fn, cpus: float):
    import ray

    return ray.remote(num_cpus=cpus, max_retries=TASK_RETRIES, retry_exceptions=False)(fn)


def _run_chunk(job, chunk, index, segments, counter, key):
    from mattekit.cluster.work import Reporter, matte_chunk

    report = Reporter(counter, key)
    frames = matte_chunk(job, chunk, index, segments, report)
    report.flush()
    return frames


def _run_whole(job, targets, counter, key):
    from mattekit.cluster.work import Reporter, convert_whole

    report = Reporter(counter, key)
    result = convert_whole(job, targets, report)
    report.flush()
    return result


def _run_images(job, items, counter, key):
    from mattekit.cluster.work import Reporter, matte_images

    report = Reporter(counter, key)
    result = matte_images(job, items, report)
    report.flush()
    return result


def work_folder(final: Path, key: dict) -> Path:
    """The hidden folder beside ``final`` holding a video's finished chunks for the options ``key``."""
    digest = hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:12]
    return final.parent / f".{final.stem}.chunks-{digest}"


class _File:
    """The driver's book-keeping of one input."""

    def __init__(self, position: int, source: Path, targets: dict[str, Path], label: str):
        self.position, self.source, self.targets, self.label = position, source, targets, label
        self.pending: set = set()
        self.started = time.perf_counter()
        self.frames = 0
        self.chunks: list[Chunk] = []
        self.index: FrameIndex | None = None
        self.time_base = None
        self.folder: Path | None = None
        self.job: VideoJob | None = None
        self.outputs: list[Path] = list(targets.values())
        self.warning: str | None = None
        self.outcome: FileOutcome | None = None


def _task_error(exc: BaseException, source: Path) -> str:
    """One line for a failed Ray task: the application's error, or what happened to the worker."""
    cause = getattr(exc, "cause", None)
    if cause is not None and not type(cause).__name__.startswith("Ray"):
        return failure_reason(cause, source)
    return f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else 'task lost'}"


class _Driver:
    """Submits tasks, follows them, counts frames, turns finished tasks into outcomes."""

    def __init__(
        self,
        progress,
        total: int,
        overwrite: bool,
        cancel: threading.Event | None,
        on_file: Callable | None,
        on_start: Callable | None,
        description: str,
    ):
        import ray

        from mattekit.pipeline.progress import Progress

        self.ray = ray
        self.counter = _counter_class().remote()
        self.bar = Progress(progress, total, description)
        self.cancel, self.on_file, self.on_start = cancel, on_file, on_start
        self.overwrite = overwrite
        self.tasks: dict = {}  # ObjectRef -> (the files it serves, what it does)
        self.files: list[_File] = []
        self.result = BatchResult()
        self.inputs: dict = {}  # (device, inode) of every input -> its path (no output may be one)

    def protect(self, sources) -> None:
        """Refuse any output that is one of ``sources`` (the batch's inputs)."""
        self.inputs = {key: source for source in sources if (key := file_key(source)) is not None}

    def skip_or_start(self, position: int, source: Path, targets: dict[str, Path], label: str, total: int):
        """A :class:`_File` to process, or ``None`` when its outputs exist (recorded as skipped) or
        one is another input of the batch (recorded as failed). As the one-machine batch does,
        without ``overwrite`` only the missing outputs are made; ``file.targets`` holds those."""
        outputs = list(targets.values())
        todo = targets if self.overwrite else {k: p for k, p in targets.items() if not os.path.lexists(p)}
        file = _File(position, source, todo, label)
        file.outputs = outputs
        self.files.append(file)
        clash = next((p for p in outputs if file_key(p) in self.inputs), None)
        if clash is not None:
            self.fail(
                file,
                f"is the same as the input {self.inputs[file_key(clash)]}; choose another output folder",
                total,
                exit_code=3,
            )
            return None
        if not todo:
            self.finish(file, FileOutcome(source, SKIPPED, outputs, "complete output exists"), total)
            return None
        if self.on_start is not None:
            self.on_start(source, position, total)
        return file

    def submit(self, files: list[_File], ref, what) -> None:
        self.tasks[ref] = (files, what)
        for file in files:
            file.pending.add(ref)

    def finish(self, file: _File, outcome: FileOutcome, total: int) -> None:
        outcome.label = file.label
        file.outcome = outcome
        if self.on_file is not None:
            self.on_file(outcome, file.position, total)

    def fail(self, file: _File, reason: str, total: int, exit_code: int = 1) -> None:
        self.cancel_pending(file)
        if file.folder is not None:  # a failed file is redone from the start
            shutil.rmtree(file.folder, ignore_errors=True)
        self.finish(
            file,
            FileOutcome(file.source, FAILED, [], reason, time.perf_counter() - file.started, exit_code=exit_code),
            total,
        )

    def done(self, file: _File, total: int) -> None:
        outcome = FileOutcome(
            file.source, DONE, file.outputs, file.warning or "", time.perf_counter() - file.started, file.frames
        )
        self.finish(file, outcome, total)

    def wait(self, on_result: Callable, total: int, on_error: Callable | None = None) -> BatchResult:
        """Follow every task to its end; ``on_result(files, what, value)`` for each success,
        ``on_error(files, what, cause)`` for each failure (True: handled, the files go on)."""
        try:
            while self.tasks:
                if self.cancel is not None and self.cancel.is_set():
                    raise KeyboardInterrupt
                ready, _ = self.ray.wait(list(self.tasks), num_returns=1, timeout=0.25)
                self._progress()
                for ref in ready:
                    files, what = self.tasks.pop(ref)
                    for file in files:
                        file.pending.discard(ref)
                    try:
                        value = self.ray.get(ref)
                    except KeyboardInterrupt:
                        raise
                    except Exception as exc:  # the task's error, or a worker lost beyond retries
                        cause = getattr(exc, "cause", None)
                        if on_error is not None and on_error(files, what, cause):
                            continue
                        for file in files:
                            if file.outcome is None:
                                self.fail(file, _task_error(exc, file.source), total, getattr(cause, "exit_code", 1))
                        continue
                    try:
                        on_result(files, what, value)
                    except MattekitError as exc:
                        for file in files:
                            if file.outcome is None:
                                self.fail(file, failure_reason(exc, file.source), total, exc.exit_code)
        except KeyboardInterrupt:
            self._stop()
        finally:
            self._progress()
            self.bar.close()
        return self._outcomes()

    def interrupted(self) -> BatchResult:
        """The result of a run interrupted before :meth:`wait` (while planning or submitting)."""
        try:
            self._stop()
        finally:
            self.bar.close()
        return self._outcomes()

    def _stop(self) -> None:
        """Cancel every task; every started file without an outcome is ``cancelled``."""
        self.stop_tasks()
        for file in self.files:
            if file.outcome is None:
                file.outcome = FileOutcome(
                    file.source, CANCELLED, [], "interrupted", time.perf_counter() - file.started
                )
                file.outcome.label = file.label
        self.result.cancelled = True

    def _outcomes(self) -> BatchResult:
        self.result.outcomes = [
            f.outcome for f in sorted(self.files, key=lambda f: f.position) if f.outcome is not None
        ]
        return self.result

    def cancel_pending(self, file: _File, grace: float = 0.0) -> None:
        """Cancel ``file``'s tasks and forget them (their results, if any, are dropped); with
        ``grace``, wait up to that many seconds for running ones to stop writing."""
        refs = list(file.pending)
        for ref in refs:
            self.ray.cancel(ref, force=False)
            self.tasks.pop(ref, None)
        file.pending.clear()
        if grace and refs:
            self.ray.wait(refs, num_returns=len(refs), timeout=grace)

    def stop_tasks(self, grace: float = 10.0) -> None:
        """Cancel every task and give running ones ``grace`` seconds to remove their temporaries
        (a cancelled task gets KeyboardInterrupt and unwinds like an interrupted one-machine run)."""
        refs = list(self.tasks)
        for ref in refs:
            self.ray.cancel(ref, force=False)
        if refs:  # a second Ctrl-C, or Ray going away, ends the wait
            with contextlib.suppress(Exception, KeyboardInterrupt):
                self.ray.wait(refs, num_returns=len(refs), timeout=grace)

    def _progress(self) -> None:
        try:
            done = self.ray.get(self.counter.total.remote(), timeout=5)
        except Exception:  # a slow answer only delays the bar
            return
        if done != self.bar.done:
            self.bar.advance(done - self.bar.done)


def convert_folder_ray(
    jobs: list[Job],
    *,
    output_type: str,
    background,
    output_video_mbps: float | None,
    downsample_ratio: float | None,
    model,
    overwrite: bool,
    preset: str | None = None,
    cancel: threading.Event | None,
    progress,
    on_file,
    on_start,
    address: str | None = None,
    chunk_frames: int = DEFAULT_CHUNK_FRAMES,
    warmup: int = DEFAULT_WARMUP,
    cpus_per_task: float = 1,
) -> BatchResult:
    """:func:`~mattekit.batch.convert_folder`'s work on a Ray cluster (see the module doc).

    Args:
        jobs: ``(source, {kind: final path}, label)`` per input, as ``convert_folder`` plans them.
        output_type, background, output_video_mbps, downsample_ratio, model, overwrite, preset, cancel,
            on_file, on_start: as for ``convert_folder``.
        progress: ``True`` for one bar over the whole job (frames done on every worker, fps,
            ETA), ``False``, or a callable ``progress(done, total)``.
        address: the cluster (``None``: ``$RAY_ADDRESS``, else a new local cluster).
        chunk_frames: the shortest chunk in frames; videos shorter than two chunks go to one
            task; 0 never cuts a video (each file is one task, output exactly the one-machine one).
        warmup: run-in frames before each chunk (>= 0; see :data:`DEFAULT_WARMUP`).
        cpus_per_task: CPUs Ray reserves per task; ONNX Runtime gets as many threads.

    Returns:
        A :class:`~mattekit.pipeline.outcome.BatchResult` in input order.

    Raises:
        RayUnavailable: Ray missing or the cluster unreachable.
        mattekit.errors.ModelError: the model cannot be loaded (checked on this machine first).
    """
    from mattekit.models import new_session

    if chunk_frames < 0 or warmup < 0 or not cpus_per_task > 0:
        raise ValueError("chunk_frames and warmup must be >= 0 and cpus_per_task > 0")
    spec = ModelSpec.of(new_session(model))  # fails here, once, on a bad model
    bit_rate = int(output_video_mbps * 1e6) if output_video_mbps else None
    started_here = connect(address)
    try:
        run_chunk, run_whole = _remote(_run_chunk, cpus_per_task), _remote(_run_whole, cpus_per_task)
        plans = []
        for source, targets, label in jobs:
            plans.append((source, targets, label, *_plan(source, output_type, chunk_frames, warmup)))
        total_frames = sum(frames for *_, frames, _, _ in plans)
        driver = _Driver(progress, total_frames, overwrite, cancel, on_file, on_start, "matting")
        driver.protect(source for source, _, _ in jobs)
        total = len(jobs)
        try:
            for position, (source, targets, label, _frames, index, chunks) in enumerate(plans):
                file = driver.skip_or_start(position, source, targets, label, total)
                if file is None:
                    continue
                if isinstance(index, str):  # the input could not be read
                    driver.fail(file, index, total, exit_code=2)
                    continue
                job = VideoJob(source, output_type, background, bit_rate, downsample_ratio, spec, preset)
                if len(chunks) < 2:
                    driver.submit([file], run_whole.remote(job, targets, driver.counter, f"{position}"), "whole")
                    continue
                file.job = job
                file.chunks, file.index, file.time_base = chunks, index, _time_base(source)
                stat = source.stat()
                first = next(iter(targets.values()))
                file.folder = work_folder(
                    first,
                    {
                        "source": str(source.resolve()),
                        "size": stat.st_size,
                        "mtime": stat.st_mtime_ns,
                        "job": repr(job),
                        "kinds": list(targets),
                        "chunks": [(c.start, c.warmup) for c in chunks],
                    },
                )
                file.folder.mkdir(parents=True, exist_ok=True)
                for chunk in chunks:
                    segments = _segments(file.folder, chunk, targets, output_type)
                    if all(p.exists() for p in segments.values()):  # finished by an earlier run
                        file.frames += chunk.frames
                        driver.counter.set.remote(f"{position}:{chunk.index}", chunk.frames)
                        continue
                    ref = run_chunk.remote(job, chunk, index, segments, driver.counter, f"{position}:{chunk.index}")
                    driver.submit([file], ref, chunk)
                if not file.pending:  # every chunk finished by an earlier run
                    try:
                        _join(file, output_type)
                    except MattekitError as exc:
                        driver.fail(file, failure_reason(exc, source), total, exc.exit_code)
                        continue
                    driver.done(file, total)
        except KeyboardInterrupt:  # before every task was submitted
            return driver.interrupted()

        def on_result(files: list[_File], what, value) -> None:
            file = files[0]
            if file.outcome is not None:
                return
            if what == "whole":
                file.frames, file.warning = value
                if file.folder is not None:  # a chunk cancelled late may have written there again
                    _remove_work_folders(file.folder)
            else:
                file.frames += value
            if not file.pending:
                if file.chunks:
                    _join(file, output_type)
                driver.done(file, total)

        def on_error(files: list[_File], what, cause) -> bool:
            """A chunk hit a damaged packet: the one-machine run skips such packets (and says so),
            which a chunk cannot do and still be joined; matte that whole file in one task."""
            file = files[0]
            if not isinstance(cause, DamagedChunk) or not file.chunks or file.outcome is not None:
                return False
            driver.cancel_pending(file, grace=30)  # its other chunks stop before their folder goes
            if file.folder is not None:
                _remove_work_folders(file.folder)
            for chunk in file.chunks:
                driver.counter.set.remote(f"{file.position}:{chunk.index}", 0)
            file.chunks, file.frames = [], 0
            driver.submit([file], run_whole.remote(file.job, file.targets, driver.counter, f"{file.position}"), "whole")
            return True

        return driver.wait(on_result, total, on_error)
    finally:
        if started_here:
            import ray

            ray.shutdown()


def _plan(source: Path, output_type: str, chunk_frames: int, warmup: int):
    """(frames, frame index or an error line, chunks) of one input."""
    from mattekit.io.video_reader import open_source

    if source.is_file() and output_type in SPLITTABLE_TYPES and chunk_frames:
        try:
            index = scan_frames(source)
        except MattekitError as exc:
            return 0, failure_reason(exc, source), []
        if index is not None:
            return len(index.pts), index, plan_chunks(index, len(index.pts), chunk_frames, warmup)
    try:
        with open_source(source) as reader:
            frames = reader.frame_count or 0
    except MattekitError as exc:
        return 0, failure_reason(exc, source), []
    return frames, None, []


def _time_base(source: Path):
    import av

    with av.open(str(source)) as container:
        return container.streams.video[0].time_base


def _segments(folder: Path, chunk: Chunk, targets: dict[str, Path], output_type: str) -> dict[str, Path]:
    suffix = "" if output_type == "png_sequence" else next(iter(targets.values())).suffix
    return {kind: folder / f"{chunk.index:05d}_{kind}{suffix}" for kind in targets}


def _join(file: _File, output_type: str) -> None:
    """Join every output of a chunked file, then remove its work folder."""
    folder, index = file.folder, file.index
    assert folder is not None and index is not None, "only a file cut into chunks is joined"
    for kind, final in file.targets.items():
        segments = [_segments(folder, c, file.targets, output_type)[kind] for c in file.chunks]
        join_segments(
            segments,
            final,
            output_type,
            file.source if kind != "alpha" else None,
            [list(index.pts[c.start : c.end]) for c in file.chunks],
            file.time_base,
        )
    _remove_work_folders(folder)


def _remove_work_folders(folder: Path) -> None:
    """Remove ``folder`` and the work folders of the same output from earlier runs with other
    options that were stopped."""
    for old in folder.parent.glob(f"{glob.escape(folder.name.rsplit('-', 1)[0])}-*"):
        shutil.rmtree(old, ignore_errors=True)


def matte_folder_ray(
    jobs: list[Job],
    *,
    background,
    options: dict,
    downsample_ratio: float | None,
    model,
    overwrite: bool,
    cancel: threading.Event | None,
    on_file,
    on_start,
    progress=False,
    address: str | None = None,
    cpus_per_task: float = 1,
    images_per_task: int = IMAGES_PER_TASK,
) -> BatchResult:
    """:func:`~mattekit.batch.matte_folder`'s work on a Ray cluster, a few images per task.

    Args:
        jobs: ``(source, {kind: final path}, label)`` per image.
        background, options, downsample_ratio: as ``matte_folder`` passes them to
            :func:`~mattekit.pipeline.image.matte_one_image`.
        model, overwrite, cancel, on_file, on_start, progress, address, cpus_per_task: as for
            :func:`convert_folder_ray`.
        images_per_task: images per Ray task (>= 1).

    Returns:
        A :class:`~mattekit.pipeline.outcome.BatchResult` in input order.
    """
    from mattekit.models import new_session

    spec = ModelSpec.of(new_session(model))
    started_here = connect(address)
    try:
        run_images = _remote(_run_images, cpus_per_task)
        driver = _Driver(progress, len(jobs), overwrite, cancel, on_file, on_start, "images")
        driver.protect(source for source, _, _ in jobs)
        total = len(jobs)
        job = ImageJob(background, downsample_ratio, tuple(sorted(options.items())), spec)
        todo = []
        try:
            for position, (source, targets, label) in enumerate(jobs):
                file = driver.skip_or_start(position, source, targets, label, total)
                if file is not None:
                    todo.append(file)
            for n in range(0, len(todo), max(1, images_per_task)):
                batch = todo[n : n + images_per_task]
                ref = run_images.remote(
                    job, [(f.position, f.source, f.targets) for f in batch], driver.counter, f"images:{n}"
                )
                driver.submit(batch, ref, "images")
        except KeyboardInterrupt:  # before every task was submitted
            return driver.interrupted()
        by_position = {f.position: f for f in todo}

        def on_result(files: list[_File], what, value) -> None:
            for position, status, reason, seconds, exit_code in value:
                file = by_position[position]
                outputs = file.outputs if status == DONE else []
                driver.finish(
                    file,
                    FileOutcome(
                        file.source, status, outputs, reason, seconds, 1 if status == DONE else 0, exit_code=exit_code
                    ),
                    total,
                )

        return driver.wait(on_result, total)
    finally:
        if started_here:
            import ray

            ray.shutdown()
