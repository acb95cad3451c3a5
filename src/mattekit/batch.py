"""Matte whole folders of videos or images, resumably.

:func:`convert_folder` (videos) and :func:`matte_folder` (images) process every supported file,
optionally recursively, writing each result under the same relative path in the output folder.
They are built for long unattended runs:

* **Resume.** Every output is written under a temporary name and renamed when complete (see
  :mod:`mattekit.io.atomic`), so a file whose outputs all exist under their final names is
  finished; it is skipped unless ``overwrite`` is set, and without ``overwrite`` only its missing
  outputs are written (an existing file is never replaced). Re-running after a crash, Ctrl-C or
  SIGTERM carries on with the first unfinished file. Hidden ``.<name>.partial-<pid>-*`` leftovers
  of a run that was killed outright (power cut, ``kill -9``) are removed when that output is
  written again, unless their process still runs.
* **Isolation.** A file that fails (not a video, truncated, unwritable output...) is recorded with
  its reason and the batch goes on.
* **Clean stop.** Ctrl-C (``KeyboardInterrupt``) or a set ``cancel`` event stops the batch at the
  current frame (videos) or after the current image; the interrupted file leaves nothing under
  its final name, and the result says ``cancelled``.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from mattekit.errors import Cancelled, InputError, OutputError, ParameterTypeError
from mattekit.io.atomic import file_key
from mattekit.params import validate_cancel, validate_downsample_ratio, validate_path
from mattekit.pipeline.outcome import CANCELLED, DONE, FAILED, SKIPPED, BatchResult, FileOutcome, failure_reason
from mattekit.plan import IMAGE, OutputPlan, warn_deprecated


def find_files(
    root: str | os.PathLike, suffixes: Iterable[str], recursive: bool = False, exclude: str | os.PathLike | None = None
) -> list[Path]:
    """Files under ``root`` whose suffix (case-insensitive) is in ``suffixes``, sorted by path.

    Hidden files and folders (name starting with ``.``) are left out, and so is everything under
    ``exclude`` (the output folder, when it lies inside the input folder).
    """
    root = Path(root)
    wanted = {s.lower() for s in suffixes}
    excluded = Path(exclude).resolve() if exclude is not None else None
    found = []
    pattern = root.rglob("*") if recursive else root.iterdir()
    for path in pattern:
        rel = path.relative_to(root)
        if any(part.startswith(".") for part in rel.parts):
            continue
        if excluded is not None and (path.resolve() == excluded or excluded in path.resolve().parents):
            continue
        if path.is_file() and path.suffix.lower() in wanted:
            found.append(path)
    return sorted(found)


def _expand(inputs, suffixes, recursive: bool, output_dir: Path) -> list[tuple[Path, Path]]:
    """(file, its path relative to its folder input, without suffix) for every input.

    Raises:
        mattekit.errors.OutputError: the output folder is one of the input folders (the results
            would mix with the inputs, be taken as inputs on the next run, and could replace them).
    """
    if isinstance(inputs, (str, os.PathLike)):
        inputs = [inputs]
    pairs: list[tuple[Path, Path]] = []
    out = output_dir.resolve()
    for item in map(Path, inputs):
        if item.is_dir() and item.resolve() == out:
            raise OutputError(
                output_dir,
                "the output folder is the input folder; the results would mix "
                "with the files they come from (choose another output folder)",
            )
        if item.is_dir():
            pairs.extend(
                (file, file.relative_to(item).with_suffix(""))
                for file in find_files(item, suffixes, recursive, exclude=output_dir)
            )
        else:
            pairs.append((item, Path(item.stem)))
    # two inputs that would share an output name (clip.mp4 and clip.mov): add the suffix
    seen: dict[Path, int] = {}
    for _, rel in pairs:
        seen[rel] = seen.get(rel, 0) + 1
    return [
        (f, rel.with_name(f"{rel.name}_{f.suffix.lstrip('.').lower()}") if seen[rel] > 1 else rel) for f, rel in pairs
    ]


def _claim_key(path: Path) -> str:
    """How an output path is compared with the others of a batch: absolute, normalised and
    case-folded (``A.png`` and ``a.png`` are one file on macOS and Windows disks)."""
    return os.path.normpath(os.path.abspath(path)).casefold()


def _jobs(pairs: list[tuple[Path, Path]], plan: OutputPlan, out_root: Path) -> list[tuple[Path, dict[str, Path], str]]:
    """(file, its output paths, its label) for every input of a batch, no two files sharing an
    output path and no file's output lying inside another's (a ``png_sequence`` folder).

    Names follow :meth:`~mattekit.plan.OutputPlan.named`; a file whose outputs would meet those
    of a file before it (``x.png``'s ``x_alpha.png`` is also the cut-out of an input ``x_alpha.png``;
    ``a.jpg`` and ``a_jpg.png``; names differing only in case) gets its suffix added to its
    stem, then a number, until they are free. Inputs are sorted, so the names are the same on
    every run (a stopped batch resumes).
    """
    claimed: set[str] = set()
    holders: set[str] = set()  # folders that hold a claimed output
    inputs = {key for f, _ in pairs if (key := file_key(f)) is not None}
    jobs = []
    for f, rel in pairs:
        folder = out_root / rel.parent
        stem, n = rel.name, 1
        while True:
            targets = plan.named(folder, stem)
            keys = [_claim_key(p) for p in targets.values()]
            if n == 1 and any(file_key(p) in inputs for p in targets.values()):
                break  # an output that is an input keeps its name: the file fails (_run), never renamed away
            clash = any(
                k in claimed or k in holders or any(_claim_key(a) in claimed for a in Path(k).parents) for k in keys
            )
            if not clash:
                break
            n += 1
            suffix = f.suffix.lstrip(".").lower()
            stem = f"{rel.name}_{suffix}" if n == 2 and not rel.name.endswith(f"_{suffix}") else f"{rel.name}_{n}"
        claimed.update(keys)
        holders.update(os.fspath(a) for k in keys for a in Path(k).parents)
        jobs.append((f, targets, (rel.parent / f.name).as_posix()))
    return jobs


def _run(
    jobs: list[tuple[Path, dict[str, Path], str]],
    process: Callable[[Path, dict[str, Path]], tuple[int, str | None]],
    overwrite: bool,
    cancel: threading.Event | None,
    on_file: Callable[[FileOutcome, int, int], None] | None,
    on_start: Callable[[Path, int, int], None] | None,
) -> BatchResult:
    result = BatchResult()
    total = len(jobs)
    # every input of the batch is protected from every file's outputs (a.png's a_alpha.png may be
    # another input); one (device, inode) set look-up per output, before the "complete output
    # exists" test, so an input is never taken for a finished output
    inputs = {key: source for source, _, _ in jobs if (key := file_key(source)) is not None}
    for i, (source, targets, label) in enumerate(jobs):
        if cancel is not None and cancel.is_set():
            result.cancelled = True
            break
        outputs = list(targets.values())
        # the input an output would overwrite, if any
        clash = next((inputs[key] for p in outputs if (key := file_key(p)) is not None and key in inputs), None)
        # without overwrite only the missing outputs are written: an existing one is never replaced
        todo = targets if overwrite else {k: p for k, p in targets.items() if not os.path.lexists(p)}
        if clash is not None:
            outcome = FileOutcome(
                source,
                FAILED,
                [],
                f"is the same as the input {clash}; choose another output folder",
                exit_code=3,
            )
        elif not todo:
            outcome = FileOutcome(source, SKIPPED, outputs, "complete output exists")
        else:
            if on_start is not None:
                on_start(source, i, total)
            started = time.perf_counter()
            try:
                frames, warning = process(source, todo)
                outcome = FileOutcome(source, DONE, outputs, warning or "", time.perf_counter() - started, frames)
            except (Cancelled, KeyboardInterrupt) as exc:
                reason = str(exc) if isinstance(exc, Cancelled) else "interrupted"
                reason = reason.removeprefix(f"{source}: ")
                outcome = FileOutcome(source, CANCELLED, [], reason, time.perf_counter() - started)
                result.cancelled = True
            except Exception as exc:  # one file's error (ours or a library's) must not end the batch
                outcome = FileOutcome(
                    source,
                    FAILED,
                    [],
                    failure_reason(exc, source),
                    time.perf_counter() - started,
                    exit_code=getattr(exc, "exit_code", 1),
                )
        outcome.label = label
        result.outcomes.append(outcome)
        if on_file is not None:
            on_file(outcome, i, total)
        if result.cancelled:
            break
    return result


EXECUTORS = ("local", "ray")


def _check_executor(executor: str) -> None:
    if executor not in EXECUTORS:
        raise ValueError(f"executor must be one of {', '.join(EXECUTORS)}, not {executor!r}")


def convert_folder(
    inputs: str | os.PathLike | Iterable[str | os.PathLike],
    output_dir: str | os.PathLike,
    *,
    recursive: bool = False,
    output_type: str = "video",
    outputs: Iterable[str] = ("composition",),
    background=None,
    output_video_mbps: float | None = None,
    downsample_ratio: float | None = None,
    model=None,
    overwrite: bool = False,
    cancel: threading.Event | None = None,
    progress=False,
    on_file: Callable[[FileOutcome, int, int], None] | None = None,
    on_start: Callable[[Path, int, int], None] | None = None,
    preset: str | None = None,
    executor: str = "local",
    ray_address: str | None = None,
    ray_options: dict | None = None,
    plan: OutputPlan | None = None,
) -> BatchResult:
    """Matte every video in a folder (or a list of files and folders) with :func:`convert_video`.

    Output names (:meth:`mattekit.plan.OutputPlan.named`):
    ``OUTPUT_DIR/<relative folder>/<stem>_<output><suffix>`` with ``output`` one of
    ``composition``, ``alpha``, ``foreground`` and the suffix of ``output_type`` (``.mp4``,
    ``.webm``, ``.mov``, ``.gif``; a folder for ``png_sequence``). Two inputs with the same stem in
    one folder get their suffix added (``clip_mov_composition.mp4``).

    Args:
        inputs: a folder, a video file, or a list of them. Folders are searched for
            :data:`~mattekit.io.video_reader.VIDEO_SUFFIXES` files.
        output_dir: where results go (created; may lie inside the input folder, it is not searched).
        recursive: also search sub-folders, keeping their structure in ``output_dir``.
        output_type, background, output_video_mbps, downsample_ratio, preset: as for
            :func:`~mattekit.pipeline.video.convert_video`.
        outputs: which outputs each file gets (any of ``composition``, ``alpha``, ``foreground``,
            or one comma-separated string).
        model: ``None``, a name, an ONNX path or a :class:`~mattekit.models.ModelSession`; loaded
            once for the whole batch.
        overwrite: redo files whose outputs exist (otherwise they are skipped).
        cancel: a :class:`threading.Event`; when set the current file stops at its current frame
            and the batch ends.
        progress: passed to ``convert_video`` for each file.
        on_start: called as ``on_start(path, index, total)`` before a file is processed.
        on_file: called as ``on_file(outcome, index, total)`` after each file.
        executor: ``"local"`` (this process, file by file) or ``"ray"`` (a Ray cluster: files in
            parallel, long videos cut into chunks; see :mod:`mattekit.cluster.executor`).
        ray_address: the Ray cluster (``None``: ``$RAY_ADDRESS``, else a new local cluster).
        ray_options: keyword arguments for :func:`~mattekit.cluster.executor.convert_folder_ray`
            (``chunk_frames``, ``warmup``, ``cpus_per_task``).
        plan: an :class:`~mattekit.plan.OutputPlan` already built (output names without paths)
            in place of ``outputs``, ``output_type``, ``background``, ``output_video_mbps``,
            ``preset`` and ``overwrite``, which must then be left out. Released (``close``) at the end.

    Returns:
        A :class:`BatchResult`; Ctrl-C is caught and reported as ``cancelled`` there.

    Raises:
        mattekit.errors.InputError: an input does not exist, or no video file was found; the
            background cannot be read.
        mattekit.errors.ParameterError: (a ``ValueError``) an output rule of :mod:`mattekit.plan`
            broken (unknown output or ``output_type``, a transparent background for ``video``,
            a ``preset`` for another type), ``downsample_ratio`` or ``output_video_mbps`` out of
            range or ``cancel`` not an Event (see :mod:`mattekit.params`), before any file is touched.
        ValueError: unknown executor.
        TypeError: ``plan`` and one of the options it replaces.
    """
    from mattekit.io.video_reader import VIDEO_SUFFIXES
    from mattekit.models import new_session
    from mattekit.pipeline.video import convert_with_plan

    _check_executor(executor)
    validate_downsample_ratio(downsample_ratio)
    validate_cancel(cancel)
    plan = _given(
        plan,
        {
            "outputs": (outputs, ("composition",)),
            "output_type": (output_type, "video"),
            "background": (background, None),
            "output_video_mbps": (output_video_mbps, None),
            "preset": (preset, None),
            "overwrite": (overwrite, False),
        },
    ) or OutputPlan(outputs, output_type, background, output_video_mbps, preset, overwrite)
    try:
        out_root = validate_path(output_dir, "output_dir")
        jobs = _jobs(_inputs(inputs, VIDEO_SUFFIXES, recursive, out_root, "video"), plan, out_root)
        if executor == "ray":
            plan.close()
            from mattekit.cluster.executor import convert_folder_ray

            return convert_folder_ray(
                jobs,
                output_type=plan.output_type,
                background=plan.background,
                output_video_mbps=plan.mbps,
                downsample_ratio=downsample_ratio,
                preset=plan.preset,
                model=model,
                overwrite=plan.overwrite,
                cancel=cancel,
                progress=progress,
                on_file=on_file,
                on_start=on_start,
                address=ray_address,
                **(ray_options or {}),
            )
        session = new_session(model)

        def process(source: Path, targets: dict[str, Path]) -> tuple[int, str | None]:
            result = convert_with_plan(
                source,
                plan.at(targets, overwrite=True),
                model=session,
                downsample_ratio=downsample_ratio,
                progress=progress,
                cancel=cancel,
            )
            return result.frames, result.warning and result.warning.removeprefix(f"{source}: ")

        return _run(jobs, process, plan.overwrite, cancel, on_file, on_start)
    finally:
        plan.close()


def _inputs(inputs, suffixes, recursive: bool, out_root: Path, what: str) -> list[tuple[Path, Path]]:
    """:func:`_expand` of the batch's inputs, refusing a missing single input or finding nothing."""
    items = [inputs] if isinstance(inputs, (str, os.PathLike)) else inputs
    try:
        items = [validate_path(item, "inputs") for item in items]
    except TypeError:  # not iterable, or an item is no path
        raise ParameterTypeError(
            "inputs", f"must be a path or a list of paths, not {type(inputs).__name__} {inputs!r:.60}"
        ) from None
    if len(items) == 1 and not Path(items[0]).exists():
        raise InputError(os.fspath(items[0]), "file or folder not found")
    pairs = _expand(items, suffixes, recursive, out_root)
    if not pairs:
        raise InputError(
            ", ".join(map(str, items)),
            f"no {what} files found" + ("" if recursive else " (use --recursive to search sub-folders)"),
        )
    return pairs


def matte_folder(
    inputs: str | os.PathLike | Iterable[str | os.PathLike],
    output_dir: str | os.PathLike,
    *,
    recursive: bool = False,
    alpha: bool = False,
    background=None,
    fg_estimate: str | None = None,
    refine: bool = False,
    downsample_ratio: float | None = None,
    model=None,
    overwrite: bool = False,
    cancel: threading.Event | None = None,
    on_file: Callable[[FileOutcome, int, int], None] | None = None,
    on_start: Callable[[Path, int, int], None] | None = None,
    executor: str = "local",
    ray_address: str | None = None,
    ray_options: dict | None = None,
    progress=False,
    composite=None,
    plan: OutputPlan | None = None,
) -> BatchResult:
    """Matte every image in a folder (or a list of files and folders) with :func:`matte_image`.

    Outputs per image, under the same relative folder in ``output_dir``
    (:meth:`mattekit.plan.OutputPlan.named`): ``<stem>.png``, the foreground as an RGBA cut-out
    (straight alpha); with ``alpha`` also ``<stem>_alpha.png`` (8-bit gray); with ``background``
    also ``<stem>_composition.jpg``, the person over that background (colour, picture, first
    frame of a video, or ``blur[:N]``; ``transparent`` gives ``<stem>_composition.png``).

    Args:
        inputs: a folder, an image file, or a list of them (folders are searched for
            :data:`~mattekit.io.image.IMAGE_SUFFIXES` files).
        output_dir: where results go.
        recursive: also search sub-folders, keeping their structure.
        alpha: also write the alpha matte.
        background: the composition's background, or ``None`` for no composition. The old name
            ``composite=`` still works, with a :class:`FutureWarning`.
        fg_estimate: foreground colour source, ``"network"`` or ``"ml"`` (see
            :func:`~mattekit.pipeline.image.matte_image`); ``None`` for its default.
        refine: refine the alpha near its edges (see :func:`~mattekit.pipeline.image.matte_image`).
        downsample_ratio, model, overwrite, cancel, on_file, on_start, executor, ray_address: as
            for :func:`convert_folder`.
        ray_options: keyword arguments for :func:`~mattekit.cluster.executor.matte_folder_ray`
            (``cpus_per_task``, ``images_per_task``).
        progress: with the ray executor, ``True`` shows one bar over all images.
        composite: the old name of ``background`` (deprecated).
        plan: an :class:`~mattekit.plan.OutputPlan` already built by :func:`image_plan`, in place
            of ``alpha``, ``background`` and ``overwrite`` (then left out).

    Returns:
        A :class:`BatchResult`.

    Raises:
        mattekit.errors.InputError: an input does not exist, no image was found, or the
            background cannot be read.
        mattekit.errors.ParameterError: ``downsample_ratio`` out of range or ``cancel`` not an
            Event, before any file is touched.
        TypeError: both ``background`` and its old name ``composite``, or ``plan`` and one of
            the options it replaces.
    """
    from mattekit.io.image import IMAGE_SUFFIXES
    from mattekit.models import new_session
    from mattekit.pipeline.image import matte_one_image

    if composite is not None:
        warn_deprecated("composite=", "background=")
        if background is not None:
            raise TypeError("matte_folder() got both background= and its old name composite=")
        background = composite
    _check_executor(executor)
    validate_downsample_ratio(downsample_ratio)
    validate_cancel(cancel)
    plan = _given(
        plan, {"alpha": (alpha, False), "background": (background, None), "overwrite": (overwrite, False)}
    ) or image_plan(alpha, background, overwrite)
    try:
        out_root = validate_path(output_dir, "output_dir")
        jobs = _jobs(_inputs(inputs, IMAGE_SUFFIXES, recursive, out_root, "image"), plan, out_root)
        kwargs = {"refine": refine} if fg_estimate is None else {"fg_estimate": fg_estimate, "refine": refine}
        if executor == "ray":
            plan.close()
            from mattekit.cluster.executor import matte_folder_ray

            return matte_folder_ray(
                jobs,
                background=plan.background,
                options=kwargs,
                downsample_ratio=downsample_ratio,
                model=model,
                overwrite=plan.overwrite,
                cancel=cancel,
                on_file=on_file,
                on_start=on_start,
                progress=progress,
                address=ray_address,
                **(ray_options or {}),
            )
        session = new_session(model)

        def process(source: Path, targets: dict[str, Path]) -> tuple[int, None]:
            return matte_one_image(source, plan.at(targets), session, downsample_ratio, kwargs, cancel), None

        return _run(jobs, process, plan.overwrite, cancel, on_file, on_start)
    finally:
        plan.close()


def image_plan(alpha: bool = False, background=None, overwrite: bool = False) -> OutputPlan:
    """The :class:`~mattekit.plan.OutputPlan` of :func:`matte_folder`: the foreground cut-out,
    with ``alpha`` the alpha, with a ``background`` the composition over it."""
    kinds = ("foreground", *(["alpha"] if alpha else []), *(["composition"] if background is not None else []))
    return OutputPlan(kinds, IMAGE, background, overwrite=overwrite)


def _given(plan: OutputPlan | None, replaced: dict[str, tuple]) -> OutputPlan | None:
    """``plan``, after checking that none of the options it replaces was given (value, default)."""
    if plan is not None:
        given = [name for name, (value, default) in replaced.items() if value is not default and value != default]
        if given:
            raise TypeError(f"give either plan= or {', '.join(given)}, not both")
    return plan
