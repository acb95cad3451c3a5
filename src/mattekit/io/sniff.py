"""What a file's first bytes say it is, whatever its name says.

Used to make "cannot read this file" messages true when a file lies about its type (MP4 bytes
named ``.png``, an SVG drawing, a PDF, a text file named ``.mp4``). The signatures are the
registered magic numbers of each format (PNG, JPEG/JFIF, GIF87a/89a, RIFF WEBP/AVI, TIFF II*/MM*,
BMP, ISO BMFF ``ftyp``, EBML, MPEG-TS sync bytes, ``%PDF``, ``<svg``/``<?xml``).
"""

from __future__ import annotations

import os
import stat

_PREFIXES = (
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF87a", "a GIF image"),
    (b"GIF89a", "a GIF image"),
    (b"II*\x00", "a TIFF image"),
    (b"MM\x00*", "a TIFF image"),
    (b"BM", "a BMP image"),
    (b"\x1aE\xdf\xa3", "Matroska/WebM video"),
    (b"%PDF", "a PDF document"),
    (b"PK\x03\x04", "a ZIP archive"),
)


def special_kind(path: str | os.PathLike, follow: bool = True) -> str | None:
    """What ``path`` is when it is a device, a FIFO or a socket (``"a named pipe (FIFO)"``), else
    ``None`` (a regular file, a folder, nothing). ``follow``: through a symbolic link.

    Such a node is neither read as an input (opening a FIFO waits for a writer forever: ``-b
    pipe.png`` hung; /dev/zero never ends) nor replaced as an output (as root, ``--csv /dev/null
    --overwrite`` turned /dev/null into a regular file)."""
    try:
        mode = os.stat(path).st_mode if follow else os.lstat(path).st_mode
    except (OSError, ValueError):
        return None
    kinds = (
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISFIFO, "a named pipe (FIFO)"),
        (stat.S_ISSOCK, "a socket"),
    )
    return next((name for test, name in kinds if test(mode)), None)


def refuse_special(path: str | os.PathLike) -> None:
    """Raise when the input ``path`` is a device, FIFO or socket (:func:`special_kind`).

    Raises:
        mattekit.errors.InputError: ``"<path>: is a named pipe (FIFO), not a regular file"``.
    """
    kind = special_kind(path)
    if kind:
        from mattekit.errors import InputError

        raise InputError(path, f"is {kind}, not a regular file")


def sniff(path: str | os.PathLike) -> str | None:
    """The kind of content at the start of ``path`` (``"a PNG image"``, ``"MP4/QuickTime video"``,
    ``"an SVG drawing (vector graphics)"``, ``"text"``...), or ``None`` when unknown or unreadable
    (or not a regular file, which is never opened)."""
    if special_kind(path):
        return None
    try:
        with open(path, "rb") as fh:
            head = fh.read(512)
    except OSError:
        return None
    for prefix, kind in _PREFIXES:
        if head.startswith(prefix):
            return kind
    if head[:4] == b"RIFF" and head[8:12] in (b"WEBP", b"AVI "):
        return "a WebP image" if head[8:12] == b"WEBP" else "AVI video"
    if head[4:8] == b"ftyp":
        return "HEIF/AVIF image" if head[8:12] in (b"heic", b"heix", b"avif", b"mif1") else "MP4/QuickTime video"
    if len(head) >= 377 and head[0] == head[188] == head[376] == 0x47:
        return "MPEG-TS video"
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if text.startswith(b"<svg") or (text.startswith(b"<?xml") and b"<svg" in head.lower()):
        return "an SVG drawing (vector graphics)"
    if head and all(b >= 32 or b in b"\t\r\n" for b in head):
        return "text"
    return None
