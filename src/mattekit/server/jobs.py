"""Running jobs: worker threads that take queued jobs from the store and matte them.

Work never runs in a request handler. :class:`JobRunner` keeps one lane of threads per kind of job
(videos, images), sized for the machine by :func:`default_workers`; each thread claims the oldest
queued job of its lane, runs :func:`mattekit.convert_video` or :func:`mattekit.matte_image` with
a progress callback and a cancel :class:`threading.Event`, and records the outcome.

Outputs are made in a fresh ``work-N`` folder of the job and moved into its ``out`` folder only
when all of them are complete (each by :func:`os.replace`), and only then is the job marked
``done`` with their names; a cancelled, failed or interrupted run leaves nothing in ``out``.
"""

from __future__ import annotations

import errno
import gc
import logging
import os
import shutil
import threading
import time
import zipfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mattekit.errors import Cancelled, MattekitError
from mattekit.plan import OutputPlan
from mattekit.server.db import MEDIA_TYPES, Job, JobStore
from mattekit.server.errors import problem_text
from mattekit.server.options import Options, background_of

log = logging.getLogger("mattekit.server")

PROGRESS_INTERVAL = 0.25  # seconds between progress writes to the database


def default_workers(cpus: int | None = None) -> tuple[int, int]:
    """(video workers, image workers) for a machine with ``cpus`` cores.

    A video job keeps about two cores busy (decode, network, encode overlap), so there is one
    video worker per two cores, and one image worker beside it so a still is not stuck behind a
    long video.
    """
    cpus = cpus or os.cpu_count() or 1
    return max(1, cpus // 2), 1


def failure_text(exc: BaseException) -> str:
    """What a job's ``error`` says for an exception: :func:`problem_text`, except that a full disk
    is named as such and an ``OSError`` shows its ``strerror`` without the server's file paths."""
    if isinstance(exc, OSError) and not getattr(exc, "problem", None):
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            return "the server's disk is full; the output could not be written"
        if exc.strerror:
            return f"the output could not be written ({exc.strerror})"
    return problem_text(exc)


def release_memory() -> None:
    """Give the memory freed by a full-size image back to the system (glibc's ``malloc_trim``).

    Without it the heap of a long-running server keeps its largest image's worth of pages
    resident after the image is gone. Does nothing where the C library has no ``malloc_trim``.
    """
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.malloc_trim(0)
    except (OSError, AttributeError):
        pass


class Engine:
    """The matting calls behind the server, sharing the loaded models.

    Args:
        model: the server's model: ``None`` (default model), a registered name, an ONNX path or a
            ``ModelSession``. A request may name another registered model; each is loaded once.
        image_slots: full-size images matted at once, by image jobs and ``POST /api/matte``
            together (each holds the decoded image, its alpha and foreground and the rendered
            output); the others wait in :meth:`image_slot`.
    """

    def __init__(self, model=None, image_slots: int = 1):
        self._model = model
        self._sessions: dict[str | None, object] = {}
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(max(1, image_slots))

    @contextmanager
    def image_slot(self):
        """Hold one of the ``image_slots`` while a full-size image is matted and rendered; its
        freed memory is handed back to the system afterwards."""
        with self._slots:
            try:
                yield
            finally:
                gc.collect()
                release_memory()

    @property
    def loaded(self) -> bool:
        return None in self._sessions

    @property
    def default_name(self) -> str:
        """The name of the server's model (a session's name, a path's stem, or the default)."""
        from mattekit.models import DEFAULT_MODEL, ModelSession

        if isinstance(self._model, ModelSession):
            return self._model.name
        return Path(os.fspath(self._model)).stem if self._model is not None else DEFAULT_MODEL

    def session(self, name: str | None = None):
        """The server's model (``name=None``) or the registered model ``name``, loaded on first
        use (thread-safe; ONNX Runtime's ``run`` may be shared)."""
        with self._lock:
            if name not in self._sessions:
                from mattekit.models import new_session

                self._sessions[name] = new_session(self._model if name is None else name)
            return self._sessions[name]

    def matte_image(
        self,
        path: Path,
        downsample_ratio: float | None,
        kinds: tuple[str, ...],
        refine: bool = False,
        model: str | None = None,
    ):
        """:func:`mattekit.matte_image`; ``refine`` re-solves the alpha near its edges
        (closed-form matting). For alpha-only ``kinds`` no foreground is computed
        (``fg_estimate="none"``), by any model: nobody sees it."""
        from mattekit import matte_image

        extra: dict[str, Any] = {"fg_estimate": "none"} if kinds == ("alpha",) else {}
        return matte_image(
            str(path), model=self.session(model), downsample_ratio=downsample_ratio, refine=refine, **extra
        )

    @staticmethod
    def render_image(matte, plan: OutputPlan, kind: str) -> np.ndarray:
        """The picture of output ``kind`` of ``plan`` (its :meth:`~mattekit.plan.OutputPlan.image_kind`).

        Returns:
            H×W uint8 (alpha), H×W×4 uint8 (a cut-out) or H×W×3 uint8 (a composition over an
            opaque background).
        """
        return matte.render(plan.image_kind(kind), plan.background)

    def convert_video(
        self,
        input_path: Path,
        plan: OutputPlan,
        downsample_ratio: float | None,
        progress,
        cancel: threading.Event,
        model: str | None = None,
    ):
        """Matte a video into ``plan``'s outputs
        (:func:`~mattekit.pipeline.video.convert_with_plan`, what :func:`mattekit.convert_video`
        runs) with the server's model or the registered model ``model``.

        Returns:
            The :class:`~mattekit.pipeline.video.VideoResult`.
        """
        from mattekit.pipeline.video import convert_with_plan

        return convert_with_plan(
            input_path,
            plan,
            model=self.session(model),
            downsample_ratio=downsample_ratio,
            progress=progress,
            cancel=cancel,
        )


@dataclass
class _Running:
    cancel: threading.Event
    user_cancelled: bool = False


class JobRunner:
    """Worker threads running the store's queued jobs.

    Args:
        store: the :class:`JobStore`.
        jobs_dir: folder holding one sub-folder per job (named by its id).
        engine: the :class:`Engine`.
        video_workers, image_workers: threads per lane; default :func:`default_workers`.
    """

    def __init__(
        self,
        store: JobStore,
        jobs_dir: Path,
        engine: Engine,
        video_workers: int | None = None,
        image_workers: int | None = None,
    ):
        auto_video, auto_image = default_workers()
        self.store = store
        self.jobs_dir = Path(jobs_dir)
        self.engine = engine
        self.video_workers = video_workers or auto_video
        self.image_workers = image_workers or auto_image
        self._cond = threading.Condition()
        self._running: dict[str, _Running] = {}
        self._threads: list[threading.Thread] = []
        self._stopping = False
        self._store_problem: str | None = None  # the job database's last error, logged once

    # -- control ---------------------------------------------------------------------------------

    def start(self) -> None:
        lanes = [("video", self.video_workers), ("image", self.image_workers)]
        for kind, n in lanes:
            for i in range(n):
                t = threading.Thread(
                    target=self._loop, args=((kind,),), daemon=True, name=f"mattekit-{kind}-worker-{i}"
                )
                t.start()
                self._threads.append(t)

    def notify(self) -> None:
        """Wake the workers: a job was queued."""
        with self._cond:
            self._cond.notify_all()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the workers; a running job goes back to the queue to be re-run at next start."""
        with self._cond:
            self._stopping = True
            for run in self._running.values():
                run.cancel.set()
            self._cond.notify_all()
        deadline = time.monotonic() + timeout
        for t in self._threads:
            t.join(max(0.0, deadline - time.monotonic()))
        self._threads.clear()

    def cancel(self, job_id: str) -> str | None:
        """Cancel a job; a running one stops at its next frame. Returns the state now, or None."""
        state = self.store.request_cancel(job_id)
        if state == "running":
            with self._cond:
                run = self._running.get(job_id)
                if run is not None:
                    run.user_cancelled = True
                    run.cancel.set()
        return state

    def wait_stopped(self, job_id: str, timeout: float) -> bool:
        """Wait until no worker holds ``job_id``; True if it stopped within ``timeout`` s."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while job_id in self._running:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(min(left, 0.1))
        return True

    # -- work ------------------------------------------------------------------------------------

    def _loop(self, kinds: tuple[str, ...]) -> None:
        while True:
            with self._cond:
                if self._stopping:
                    return
            try:
                job = self.store.claim_next(kinds)
            except Exception as exc:  # a locked, full or broken database must not kill the worker
                self._store_failed("cannot claim a job", exc)
                job = None
            if job is None:
                with self._cond:
                    if not self._stopping:
                        self._cond.wait(1.0)
                continue
            run = _Running(threading.Event())
            with self._cond:
                self._running[job.id] = run
                if self._stopping:
                    run.cancel.set()
            # a cancel that came between the claim and the line above found no running entry
            fresh = self.store.get(job.id)
            if fresh is None or fresh.cancel_requested:
                run.user_cancelled = True
                run.cancel.set()
            try:
                self._run(job, run)
            except Exception as exc:  # its state could not be written (a full disk): the worker goes on
                self._store_failed(f"job {job.id}: its state could not be recorded; it is re-run after a restart", exc)
            finally:
                with self._cond:
                    self._running.pop(job.id, None)
                    self._cond.notify_all()

    def _store_failed(self, what: str, exc: Exception) -> None:
        """Log a failure of the job database in one line, once while the same problem lasts (the
        workers retry every second)."""
        line = f"{what} ({type(exc).__name__}: {(str(exc).splitlines() or [''])[0][:200]})"
        if line != self._store_problem:
            self._store_problem = line
            log.error("%s", line)

    def _run(self, job: Job, run: _Running) -> None:
        job_dir = self.jobs_dir / job.id
        out_dir = job_dir / "out"
        work = job_dir / f"work-{job.attempts}"
        for stale in [out_dir, job_dir / "out-staging", *job_dir.glob("work-*")]:
            shutil.rmtree(stale, ignore_errors=True)
        try:
            work.mkdir(parents=True)
            log.info("job %s (%s %s) started", job.id, job.kind, job.filename)
            if job.kind == "video":
                produced, frames, warning = self._run_video(job, job_dir, work, run.cancel)
            else:
                produced, frames, warning = self._run_image(job, job_dir, work, run.cancel), 1, None
            if run.cancel.is_set():
                raise Cancelled()
            outputs = self._publish(produced, out_dir)
        except Cancelled:
            shutil.rmtree(out_dir, ignore_errors=True)
            if run.user_cancelled or not self._stopping:
                self.store.finish(job.id, "cancelled", error=None)
                log.info("job %s cancelled", job.id)
            else:
                self.store.requeue(job.id, "interrupted by a server stop; queued again")
                log.info("job %s interrupted by shutdown; re-queued", job.id)
        except MattekitError as exc:
            shutil.rmtree(out_dir, ignore_errors=True)
            self.store.finish(job.id, "failed", error=problem_text(exc))
            log.info("job %s failed: %s", job.id, exc)
        except (ValueError, OSError) as exc:
            shutil.rmtree(out_dir, ignore_errors=True)
            self.store.finish(job.id, "failed", error=failure_text(exc))
            log.warning("job %s failed: %s", job.id, exc)
        except Exception as exc:
            shutil.rmtree(out_dir, ignore_errors=True)
            self.store.finish(job.id, "failed", error=f"internal error ({type(exc).__name__}: {problem_text(exc)})")
            log.exception("job %s crashed", job.id)
        else:
            self.store.finish(job.id, "done", outputs=outputs, warning=warning, frames_done=frames)
            if warning:
                log.warning("job %s done with a warning: %s", job.id, warning)
            else:
                log.info("job %s done", job.id)
        finally:
            shutil.rmtree(work, ignore_errors=True)

    @staticmethod
    def _plan(opts: Options, job_dir: Path, work: Path) -> OutputPlan:
        """The job's output plan, its outputs in ``work``."""
        picture = job_dir / opts.background_file if opts.background_file else None
        return opts.plan(work, background_of(opts.background, picture))

    def _run_video(self, job: Job, job_dir: Path, work: Path, cancel: threading.Event):
        """Returns (outputs made, frames written, the pipeline's warning without server paths)."""
        opts = Options.from_stored(job.options)
        started = time.monotonic()
        last = [0.0]

        def progress(done: int, total: int | None) -> None:
            if cancel.is_set():
                raise Cancelled()
            now = time.monotonic()
            if now - last[0] >= PROGRESS_INTERVAL or (total and done >= total):
                last[0] = now
                elapsed = now - started
                self.store.update_progress(job.id, done, total, done / elapsed if elapsed > 0 else None)

        plan = self._plan(opts, job_dir, work)  # its background is closed by the pipeline
        result = self.engine.convert_video(
            job_dir / job.input, plan, opts.downsample_ratio, progress, cancel, opts.model
        )
        warning = result.warning
        if warning:  # the pipeline names the file by its path on this server: the user knows it by name
            warning = warning.replace(f"{job_dir / job.input}: ", "").replace(str(job_dir), job.filename)
        return list(plan.paths.items()), result.frames, warning

    def _run_image(self, job: Job, job_dir: Path, work: Path, cancel: threading.Event) -> list[tuple[str, Path]]:
        from mattekit.io.image import write_image

        opts = Options.from_stored(job.options)
        started = time.monotonic()
        self.store.update_progress(job.id, 0, 1, None)
        with self.engine.image_slot():  # the background picture too is held only in the slot
            if cancel.is_set():
                raise Cancelled()
            plan = self._plan(opts, job_dir, work)
            try:
                matte = self.engine.matte_image(
                    job_dir / job.input, opts.downsample_ratio, plan.kinds, bool(opts.refine), opts.model
                )
                for kind, path in plan.paths.items():
                    if cancel.is_set():
                        raise Cancelled()
                    write_image(path, self.engine.render_image(matte, plan, kind))
                del matte
            finally:
                plan.close()
        self.store.update_progress(job.id, 1, 1, 1.0 / max(time.monotonic() - started, 1e-6))
        return list(plan.paths.items())

    @staticmethod
    def _publish(produced: list[tuple[str, Path]], out_dir: Path) -> list[dict]:
        """Move finished outputs into ``out`` (a PNG folder becomes one .zip); describe them."""
        staging = out_dir.with_name("out-staging")
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir()
        described = []
        for kind, path in produced:
            if path.is_dir():
                archive = staging / f"{kind}.zip"
                with zipfile.ZipFile(archive, "w", zipfile.ZIP_STORED) as zf:
                    for member in sorted(path.iterdir()):
                        zf.write(member, f"{kind}/{member.name}")
                final = archive
            else:
                final = staging / path.name
                os.replace(path, final)
            described.append(
                {
                    "name": final.name,
                    "kind": kind,
                    "media_type": MEDIA_TYPES.get(final.suffix, "application/octet-stream"),
                    "bytes": final.stat().st_size,
                }
            )
        os.replace(staging, out_dir)
        return described
