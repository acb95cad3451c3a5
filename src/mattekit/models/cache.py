"""The model cache folder and the file hash that names and verifies what is in it.

Below both the fetcher (:mod:`mattekit.models.fetch`) and the builders of derived files
(:mod:`mattekit.models.quantize`, :mod:`mattekit.models.rvm_cut`), which the fetcher calls by
name: they share this module instead of importing each other.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from mattekit.errors import ModelError
from mattekit.home import cache_path

__all__ = ["cache_dir", "cache_path", "sha256_of"]


def cache_dir() -> Path:
    """Return the model cache folder (:func:`cache_path`, created when missing).

    Raises:
        mattekit.errors.ModelError: the folder does not exist and cannot be created (read-only
            file system, a file in the way), naming it and the reason.
    """
    folder = cache_path()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ModelError(
            f"{folder}: cannot create the model cache folder ({exc.strerror or exc}); "
            f"set MATTEKIT_HOME to a writable folder"
        ) from None
    return folder


def sha256_of(path: Path) -> str:
    """Return the hex SHA-256 of the file at ``path``."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
