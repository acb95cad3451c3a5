"""Write outputs under a temporary name and rename them when complete; never touch anything else.

A crash, an error, Ctrl-C or SIGTERM therefore never leaves a partial file under the name the user
asked for, and an earlier result stays intact until the new one is complete. The rules every
output follows (checked by :func:`check_output` before any work, and again by :func:`commit`):

* an output is never an input of the job (the same path, a symbolic or hard link to it, another
  spelling of it), never a folder that holds an input, never the current folder or one of its
  parents;
* a file output never replaces a folder; a folder output (``png_sequence``) never replaces a
  file, a symbolic link, or a folder holding anything mattekit did not write there as that
  output. Folder outputs carry a hidden list of what they hold (:data:`FOLDER_MANIFEST`), and only
  a folder whose every entry is on that list may be replaced (with ``overwrite``); an empty
  folder is used as if it did not exist;
* an output name longer than its file system allows (``NAME_MAX``, 255 bytes on most) is refused;
* temporaries are named ``.<stem>.partial-<pid>-<random><suffix>`` beside the output, the stem
  cut short (in bytes, on a character boundary) so the name always fits in ``NAME_MAX``.
  :func:`remove_partials` removes those of an output whose writing process has ended (a run killed
  outright by SIGKILL or a power cut) and never those of a process still running.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import threading
import uuid
from collections.abc import Iterable
from contextlib import contextmanager, suppress
from pathlib import Path

from mattekit.errors import OutputError
from mattekit.io.sniff import special_kind

#: Hidden file inside a folder output listing the entries mattekit wrote there (one name a line).
FOLDER_MANIFEST = ".mattekit-output"
_MANIFEST_HEADER = "# written by mattekit as one output; these entries may be replaced by a re-run"


def name_max(folder: str | os.PathLike) -> int:
    """The longest file name, in bytes, the file system of ``folder`` (or of its nearest existing
    parent) allows; 255 when it cannot be asked (Windows, a missing folder)."""
    folder = Path(folder)
    for candidate in (folder, *folder.parents):
        try:
            return int(os.pathconf(candidate, "PC_NAME_MAX"))
        except (OSError, ValueError, AttributeError):
            if os.path.isdir(candidate) or not hasattr(os, "pathconf"):
                break
    return 255


def _name_bytes(name: str) -> int:
    return len(os.fsencode(name))


#: the widest process id and random part a temporary's name holds, so the shortened stem does not
#: depend on the writing process (:func:`remove_partials` finds a dead run's temporaries)
_PID_WIDTH, _RANDOM_WIDTH = 10, 8


def _short_stem(stem: str, budget: int) -> str:
    """``stem`` cut to at most ``budget`` bytes (file system encoding) on a character boundary."""
    while stem and _name_bytes(stem) > budget:
        stem = stem[:-1]
    return stem


def _hidden_name(final: Path, kind: str, suffix: str) -> tuple[str, str]:
    """The fixed head and tail of a hidden sibling name of ``final``: ``.<stem>.<kind>-`` and
    ``suffix``, the stem shortened so that head + pid + ``-`` + random + tail fits in ``NAME_MAX``."""
    fixed = _name_bytes(f"..{kind}--{suffix}") + _PID_WIDTH + _RANDOM_WIDTH
    stem = _short_stem(final.name if not suffix else final.name[: -len(suffix)], name_max(final.parent) - fixed)
    return f".{stem}.{kind}-", suffix


def temp_sibling(path: Path) -> Path:
    """A hidden temporary name beside ``path`` that keeps its suffix (so containers are guessed).

    The name holds this process's id, so :func:`remove_partials` can tell a dead run's leftover
    from the temporary of a run still in progress. The stem is shortened (in bytes, UTF-8 aware)
    so the name fits in the file system's ``NAME_MAX`` whatever the output's name.
    """
    head, tail = _hidden_name(path, "partial", path.suffix)
    return path.with_name(f"{head}{os.getpid()}-{uuid.uuid4().hex[:_RANDOM_WIDTH]}{tail}")


def start_temp(path: Path) -> Path:
    """Create ``path``'s folder when missing, remove the stale temporaries of ``path``
    (:func:`remove_partials`) and return a fresh temporary name.

    Raises:
        mattekit.errors.OutputError: the folder cannot be created.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(path.parent, f"cannot create the output folder ({exc.strerror or exc})") from None
    remove_partials(path)
    return temp_sibling(path)


def existing_paths(*values) -> list[Path]:
    """The files or folders named by a job's arguments, to pass as ``inputs`` to :func:`check_output`.

    Strings and path-like values that name an existing path are taken; other objects (a
    background, a model session) contribute their ``path`` and ``source_path`` attributes when
    those exist. Everything else (a colour name, ``None``) is left out.
    """
    found = []
    for value in values:
        candidates = (
            [value]
            if isinstance(value, (str, os.PathLike))
            else [getattr(value, "path", None), getattr(value, "source_path", None)]
        )
        for item in candidates:
            if isinstance(item, (str, os.PathLike)) and os.fspath(item):
                path = Path(item).expanduser()
                if os.path.lexists(path):
                    found.append(path)
    return found


def _resolve(path: Path) -> Path:
    """``path`` made absolute with links followed; as far as possible for a link loop."""
    try:
        return path.resolve()
    except (OSError, RuntimeError):  # a symbolic link loop (RuntimeError before Python 3.13)
        return Path(os.path.abspath(path))


def _same(a: Path, b: Path) -> bool:
    """True when ``a`` and ``b`` name the same file (same resolved path, or same inode)."""
    if _resolve(a) == _resolve(b):
        return True
    key = file_key(a)
    return key is not None and key == file_key(b)


def file_key(path: str | os.PathLike) -> tuple[int, int] | None:
    """(device, inode) of the file ``path`` names, links followed; ``None`` when it does not exist.

    Equal keys mean the same file, whatever the spelling or link; a batch compares each output
    with the keys of all its inputs in one set look-up.
    """
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return None
    return st.st_dev, st.st_ino


def _is_within(inner: Path, outer: Path) -> bool:
    return outer in inner.parents


def foreign_entries(folder: Path) -> list[str]:
    """Names in ``folder`` that mattekit did not write there as one output, sorted.

    Those are every entry when the folder has no :data:`FOLDER_MANIFEST`, else every entry not
    listed in it (a sub-folder or symbolic link always counts as foreign).
    """
    listed: set[str] = set()
    try:
        lines = (folder / FOLDER_MANIFEST).read_text(encoding="utf-8").splitlines()
        if lines and lines[0] == _MANIFEST_HEADER:
            listed = set(lines[1:])
    except (OSError, UnicodeDecodeError):
        pass
    foreign = []
    with os.scandir(folder) as entries:
        for entry in entries:
            if entry.name == FOLDER_MANIFEST and listed:
                continue
            if entry.name in listed and entry.is_file(follow_symlinks=False):
                continue
            foreign.append(entry.name)
    return sorted(foreign)


def _is_empty(folder: Path) -> bool:
    with os.scandir(folder) as entries:
        return next(entries, None) is None


def seal_folder(folder: Path) -> None:
    """Write the :data:`FOLDER_MANIFEST` of a finished temporary folder output (lists its entries)."""
    names = sorted(name for name in os.listdir(folder) if name != FOLDER_MANIFEST)
    (folder / FOLDER_MANIFEST).write_text("\n".join([_MANIFEST_HEADER, *names]) + "\n", encoding="utf-8")


def _existing_problem(out: Path, overwrite: bool, folder: bool) -> str | None:
    """Why ``out`` (which exists, perhaps as a dangling link) cannot be written, or ``None``."""
    if folder:
        if out.is_symlink():
            return "is a symbolic link; give the folder itself or a new name"
        if not out.is_dir():
            return "is a file; this output type writes a folder of frames"
        try:
            foreign = foreign_entries(out)
        except OSError as exc:
            return f"cannot list the folder ({exc.strerror or exc})"
        if foreign:
            example = ", ".join(foreign[:3]) + (" ..." if len(foreign) > 3 else "")
            return (
                f"folder holds {len(foreign)} item(s) mattekit did not write there ({example}); "
                "give a new or empty folder"
            )
        if not _is_empty(out) and not overwrite:
            return "already exists (use --overwrite to replace it)"
        return None
    if out.is_dir():
        return "is a folder; this output is a file (give a file name)"
    special = special_kind(out, follow=False)
    if special:
        return f"is {special}, not a regular file; it is never replaced (give a file name)"
    if os.path.lexists(out) and not overwrite:
        return "already exists (use --overwrite to replace it)"
    return None


def check_output(
    path: str | os.PathLike, inputs: Iterable[str | os.PathLike] = (), overwrite: bool = False, folder: bool = False
) -> Path:
    """Validate an output path before any work is done; nothing is created or changed.

    Checks that the output's folder, or the nearest existing folder above it (the writer creates
    the missing ones, :func:`start_temp`), is writable.

    Args:
        path: the output (a file, or a folder when ``folder``).
        inputs: every file or folder the job reads (see :func:`existing_paths`).
        overwrite: an earlier output of the same kind may be replaced.
        folder: the output is a folder of files (``png_sequence``).

    Raises:
        mattekit.errors.OutputError: the path is an input (also through a link) or holds one, lies
            in the model cache, is the current folder or holds it, is a folder for a file output or a file, link or
            folder with foreign content for a folder output, exists and ``overwrite`` is false,
            or its folder cannot be created or written, or its name (or the name of a folder on its
            way) is longer than the file system allows.
    """
    out = Path(path).expanduser()
    _check_name_length(out)
    resolved = _resolve(out)
    for item in inputs:
        item = Path(item).expanduser()
        if _same(out, item):
            raise OutputError(out, f"is the same as the input {item}; choose another name")
        if _is_within(_resolve(item), resolved):
            raise OutputError(out, f"holds the input {item}; choose another name")
    cache = _model_cache()
    if cache is not None and (resolved == cache or _is_within(resolved, cache)):
        raise OutputError(
            out,
            f"lies in mattekit's model cache ({cache}), whose files mattekit replaces and removes "
            "by itself; choose another name",
        )
    try:
        cwd = Path.cwd().resolve()
    except OSError:  # the current folder was removed: nothing there to protect
        cwd = None
    if cwd is not None and (resolved == cwd or _is_within(cwd, resolved)):
        raise OutputError(out, "is the current folder or holds it; choose another name")
    if os.path.lexists(out):
        problem = _existing_problem(out, overwrite, folder)
        if problem:
            raise OutputError(out, problem)
    parent = out.parent
    for ancestor in (parent, *parent.parents):
        if ancestor.exists():
            if not ancestor.is_dir():
                raise OutputError(ancestor, "is a file, not a folder; cannot write outputs inside it")
            break
    try:
        probe = ancestor / f".mattekit-write-test-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        probe.touch(exist_ok=False)
        probe.unlink()
    except OSError as exc:
        raise OutputError(ancestor, f"output folder is not writable ({exc.strerror or exc})") from None
    return out


def _model_cache() -> Path | None:
    """The model cache folder, resolved (``None`` when it cannot be named). An output there
    would be lost: a fine-tuned model written over the cached published one was replaced by a
    fresh download on the next run, its hash being wrong."""
    try:
        from mattekit.home import cache_path

        return _resolve(cache_path())
    except Exception:  # no platformdirs, no home folder: nothing to protect
        return None


def _check_name_length(out: Path) -> None:
    """Refuse an output whose own name (or a folder name on its way) exceeds ``NAME_MAX``."""
    for part in (out, *out.parents):
        if not part.name:
            continue
        size, limit = _name_bytes(part.name), name_max(part.parent)
        if size > limit:
            raise OutputError(
                out if part == out else part, f"file name too long ({size} bytes; this file system allows {limit})"
            )


def check_outputs(
    paths: Iterable[str | os.PathLike],
    inputs: Iterable[str | os.PathLike] = (),
    overwrite: bool = False,
    folder: bool = False,
) -> list[Path]:
    """:func:`check_output` for each of a job's outputs, which must also be distinct and not nested.

    Raises:
        mattekit.errors.OutputError: as :func:`check_output`, or two outputs are the same path or
            one lies inside another.
    """
    inputs = list(inputs)
    finals = [check_output(p, inputs, overwrite, folder) for p in paths]
    resolved = [_resolve(p) for p in finals]
    for i, a in enumerate(resolved):
        for b in resolved[:i]:
            if a == b:
                raise OutputError(finals[i], "the same path is given for two outputs")
            if _is_within(a, b) or _is_within(b, a):
                raise OutputError(finals[i], "one output lies inside another; choose separate names")
    return finals


def _remove_folder_output(folder: Path) -> None:
    """Remove a replaced folder output: only the entries its manifest lists, then the folder if empty."""
    keep = set(foreign_entries(folder))
    for name in os.listdir(folder):
        if name not in keep:  # listed entries and the manifest itself
            (folder / name).unlink(missing_ok=True)
    with suppress(OSError):  # something foreign appeared meanwhile: left where it is
        folder.rmdir()


def commit(temp: Path, final: Path) -> None:
    """Move a finished temporary file or folder to its final name, replacing an older result.

    A folder replaces only nothing, an empty folder, or a folder output whose entries are all
    listed in its :data:`FOLDER_MANIFEST` (those entries are then removed). On refusal the
    temporary is removed.

    Raises:
        mattekit.errors.OutputError: the final name is a folder (for a file), a file or link, or
            a folder holding foreign entries (for a folder), or the rename fails.
    """
    try:
        with _signals_deferred():
            if temp.is_dir():
                _commit_folder(temp, final)
            else:
                if final.is_dir():
                    raise OutputError(final, "is a folder; cannot replace it with a file")
                special = special_kind(final, follow=False)
                if special:  # made while the output was written
                    raise OutputError(final, f"is {special}, not a regular file; it is never replaced")
                os.replace(temp, final)
    except OutputError:
        discard(temp)
        raise
    except OSError as exc:
        discard(temp)
        raise OutputError(final, f"cannot move the finished output into place ({exc.strerror or exc})") from None


@contextmanager
def _signals_deferred():
    """Hold Ctrl-C, SIGTERM and SIGHUP back (POSIX, main thread) until the block ends, so a folder
    is never left moved aside between the two renames that replace it."""
    if not hasattr(signal, "pthread_sigmask") or threading.current_thread() is not threading.main_thread():
        yield
        return
    held = {getattr(signal, n) for n in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, n)}
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, held)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _commit_folder(temp: Path, final: Path) -> None:
    if not os.path.lexists(final):
        os.replace(temp, final)
        return
    problem = _existing_problem(final, True, folder=True)
    if problem:
        raise OutputError(final, problem)
    if _is_empty(final):
        os.replace(temp, final)  # an empty folder is replaced atomically (fails if filled meanwhile)
        return
    # moved aside under a name remove_partials never matches: should anything foreign appear in
    # it meanwhile, it is left there rather than removed with a stale temporary
    head, tail = _hidden_name(final, "replaced", "")
    old = final.with_name(f"{head}{os.getpid()}-{uuid.uuid4().hex[:_RANDOM_WIDTH]}{tail}")
    os.replace(final, old)
    os.replace(temp, final)
    _remove_folder_output(old)


def discard(temp: Path) -> None:
    """Remove a temporary file or folder left by a failed or cancelled write."""
    if temp.is_dir() and not temp.is_symlink():
        shutil.rmtree(temp, ignore_errors=True)
    else:
        with suppress(OSError):
            temp.unlink()


def _process_alive(pid: int) -> bool:
    """True unless ``pid`` surely names no running process (unknown counts as running)."""
    if pid <= 0 or pid == os.getpid() or os.name != "posix":
        return True  # os.kill on Windows would terminate the process; never guess there
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (OSError, OverflowError):
        return True
    try:  # Linux: a zombie (killed, not yet reaped, e.g. in a container without an init) writes nothing
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat[stat.rindex(")") + 2] not in "ZX"
    except (OSError, ValueError, IndexError):
        return True


def remove_partials(final: Path) -> None:
    """Remove the temporaries (:func:`temp_sibling` names) of ``final`` whose writing process ended.

    A run killed outright (SIGKILL, power cut) cannot clean up; the next run of the same output
    does. Temporaries of a process still running (another run writing the same output, or this
    process's other threads) are left alone, as is every name not of that exact form.
    """
    head, tail = _hidden_name(final, "partial", final.suffix)
    pattern = re.compile(
        re.escape(head) + f"([0-9]{{1,{_PID_WIDTH}}})-[0-9a-f]{{{_RANDOM_WIDTH}}}" + re.escape(tail) + r"\Z"
    )
    try:
        names = os.listdir(final.parent)
    except OSError:
        return
    for name in names:
        match = pattern.match(name)
        if match and not _process_alive(int(match.group(1))):
            discard(final.parent / name)
