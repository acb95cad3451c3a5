"""Write outputs under a temporary name and rename them when complete.

A crash, an error or Ctrl-C therefore never leaves a partial file under the name the user asked
for, and an earlier result stays intact until the new one is complete.
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

from mattekit.errors import OutputError


def temp_sibling(path: Path) -> Path:
    """A hidden temporary name beside ``path`` that keeps its suffix (so containers are guessed)."""
    return path.with_name(f".{path.stem}.partial-{uuid.uuid4().hex[:8]}{path.suffix}")


def check_output(path: str | os.PathLike, inputs: list[str | os.PathLike] = (), overwrite: bool = False) -> Path:
    """Validate an output path before any work is done.

    Creates the parent folder when missing and checks that it is writable.

    Raises:
        mattekit.errors.OutputError: the path equals an input, exists and ``overwrite`` is
            false, or its folder cannot be created or written.
    """
    out = Path(path).expanduser()
    resolved = out.resolve()
    for item in inputs:
        if Path(item).expanduser().resolve() == resolved:
            raise OutputError(out, "output path is the same as the input; choose another name")
    if out.exists() and not overwrite:
        raise OutputError(out, "already exists (use --overwrite to replace it)")
    parent = out.parent
    for folder in (parent, *parent.parents):
        if folder.exists():
            if not folder.is_dir():
                raise OutputError(folder, "is a file, not a folder; cannot write outputs inside it")
            break
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(parent, f"cannot create the output folder ({exc.strerror or exc})") from None
    try:
        probe = parent / f".mattekit-write-test-{uuid.uuid4().hex[:8]}"
        probe.touch()
        probe.unlink()
    except OSError as exc:
        raise OutputError(parent, f"output folder is not writable ({exc.strerror or exc})") from None
    return out


def commit(temp: Path, final: Path) -> None:
    """Move a finished temporary file or folder to its final name, replacing an older result."""
    if temp.is_dir():
        if final.exists():
            old = final.with_name(f".{final.name}.old-{uuid.uuid4().hex[:8]}")
            os.replace(final, old)
            os.replace(temp, final)
            shutil.rmtree(old, ignore_errors=True) if old.is_dir() else old.unlink()
        else:
            os.replace(temp, final)
    else:
        if final.is_dir():
            raise OutputError(final, "is a folder; cannot replace it with a file")
        os.replace(temp, final)


def discard(temp: Path) -> None:
    """Remove a temporary file or folder left by a failed or cancelled write."""
    if temp.is_dir():
        shutil.rmtree(temp, ignore_errors=True)
    else:
        try:
            temp.unlink()
        except OSError:
            pass


def remove_partials(final: Path) -> None:
    """Remove the temporaries (:func:`temp_sibling` names) a killed run left beside ``final``."""
    import glob

    pattern = f".{glob.escape(final.stem)}.partial-????????{glob.escape(final.suffix)}"
    for leftover in final.parent.glob(pattern):
        discard(leftover)
