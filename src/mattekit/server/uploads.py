"""Uploads: stream a multipart body to disk under a size limit, then check that it decodes.

:func:`read_multipart` parses ``multipart/form-data`` as the bytes arrive (python-multipart's
streaming parser), writing file parts straight into a folder of the server's data dir, so an upload
never sits in memory and a body over the limit is refused as soon as it crosses it.

:func:`probe_media` decides what a file is from its content, never its name: Pillow first (an
image's header gives its size before any pixel is decoded, so an image that declares 30000×30000
is refused without allocating it), then PyAV for videos (the first frame must decode). Every
refusal is an :class:`UploadError` carrying an HTTP status, a short code and one sentence.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import threading
import unicodedata
import uuid
import warnings
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import anyio
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import ClientDisconnect

log = logging.getLogger("mattekit.server")

# Pillow formats and PyAV demuxers -> the suffix the stored copy gets (content decides, not the
# name the user gave).
_IMAGE_SUFFIX = {"JPEG": ".jpg", "MPO": ".jpg", "TIFF": ".tif"}
_VIDEO_SUFFIX = {
    "mov": ".mp4",
    "matroska": ".mkv",
    "avi": ".avi",
    "mpegts": ".ts",
    "flv": ".flv",
    "ogg": ".ogv",
    "mpeg": ".mpg",
    "gif": ".gif",
    "asf": ".wmv",
}
# ... and the content type it is served with (never the client's file name)
_VIDEO_TYPE = {
    ".mp4": "video/mp4",
    ".mkv": "video/x-matroska",
    ".avi": "video/x-msvideo",
    ".ts": "video/mp2t",
    ".flv": "video/x-flv",
    ".ogv": "video/ogg",
    ".mpg": "video/mpeg",
    ".gif": "image/gif",
    ".wmv": "video/x-ms-wmv",
}
# full decodes of uploaded images at once (each holds one image: 4 bytes a pixel at most)
_DECODE_SLOTS = threading.BoundedSemaphore(2)
_NO_SPACE = (errno.ENOSPC, errno.EDQUOT)
# PyAV opens some text files as "videos" (ANSI art, subtitles); they are not what anyone uploads.
_REFUSED_VIDEO_CODECS = {"ansi", "bintext", "xbin", "idf", "tty"}
MIN_SIDE = 16


class UploadError(Exception):
    """An upload the server refuses.

    Attributes:
        status: HTTP status (413 too big, 415 not an image/video, 422 decodes badly or too large).
        code: a short machine-readable reason, e.g. ``"too_large"``.
        message: one sentence for the user.
    """

    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


@dataclass
class SavedFile:
    """A file part written to disk: its form field, the client's file name, path and size."""

    field: str
    filename: str
    path: Path
    size: int


@dataclass
class Form:
    """A parsed form: text fields and saved files (by field name)."""

    fields: dict[str, str] = field(default_factory=dict)
    files: dict[str, SavedFile] = field(default_factory=dict)

    def cleanup(self) -> None:
        """Delete every saved file that is still where the parser put it."""
        for f in self.files.values():
            f.path.unlink(missing_ok=True)


@dataclass
class MediaInfo:
    """What :func:`probe_media` found.

    Attributes:
        kind: ``"image"`` or ``"video"``.
        format: Pillow format or PyAV demuxer name.
        width, height: frame size in pixels.
        frames: frame count when known (1 for images), else ``None``.
        fps: video frame rate when known.
        suffix: the file suffix the stored copy should have.
        media_type: the content type it is served with (from its content, never its name).
    """

    kind: str
    format: str
    width: int
    height: int
    frames: int | None
    fps: float | None
    suffix: str
    media_type: str = "application/octet-stream"

    def as_dict(self) -> dict:
        return {
            "kind": self.kind,
            "format": self.format,
            "width": self.width,
            "height": self.height,
            "frames": self.frames,
            "fps": self.fps,
            "media_type": self.media_type,
        }


def storage_error(exc: OSError, what: str) -> UploadError:
    """The answer to an ``OSError`` while storing ``what``: 507 when the disk or quota is full,
    else 500, naming the problem (``strerror``) but no server path."""
    if exc.errno in _NO_SPACE:
        return UploadError(507, "disk_full", f"the server's disk is full; {what} could not be stored")
    return UploadError(500, "storage_error", f"{what} could not be stored ({exc.strerror or exc})")


def _mb(n: int) -> str:
    return f"{n / 1e6:.0f} MB" if n >= 1e6 else f"{n} bytes"


async def read_multipart(
    request,
    dest_dir: Path,
    *,
    max_bytes: int,
    file_fields: tuple[str, ...],
    max_field_bytes: int = 16 * 1024,
    max_parts: int = 32,
    idle_seconds: float = 120.0,
) -> Form:
    """Stream a ``multipart/form-data`` request body to disk.

    Args:
        request: a Starlette ``Request``.
        dest_dir: folder for the file parts (created if missing); files get random names
            ending ``.part``.
        max_bytes: limit on the whole body in bytes; crossing it stops the upload with 413.
        file_fields: the names of the fields allowed to carry files.
        max_field_bytes: limit on one text field.
        max_parts: limit on the number of parts.
        idle_seconds: longest wait for the next piece of the body; a client that sends nothing for
            this long is cut off (its connection and part file would otherwise be held forever).

    Returns:
        The :class:`Form`; the caller owns (and must clean up) its files.

    Raises:
        UploadError: not multipart (415), too big (413), malformed or unexpected fields (400),
            the disk full (507) or another storage failure (500), the client gone before the end
            (400 ``disconnected``) or silent for ``idle_seconds`` (408 ``upload_stalled``); each
            logged as one line, nothing is left on disk.
    """
    ctype, params = parse_options_header(request.headers.get("content-type", ""))
    if ctype != b"multipart/form-data" or not params.get(b"boundary"):
        raise UploadError(415, "not_multipart", "send the file as multipart/form-data (a form with a 'file' field)")
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > max_bytes:
        raise UploadError(
            413, "too_large", f"upload is {_mb(int(declared))}, above this server's limit of {_mb(max_bytes)}"
        )
    dest_dir.mkdir(parents=True, exist_ok=True)

    form = Form()
    state: dict = {"headers": {}, "hname": b"", "hvalue": b"", "parts": 0, "error": None}

    def fail(error: UploadError) -> None:
        if state["error"] is None:
            state["error"] = error

    def on_part_begin():
        state.update(headers={}, hname=b"", hvalue=b"", fh=None, buf=None, saved=None, name=None)
        state["parts"] += 1
        if state["parts"] > max_parts:
            fail(UploadError(400, "bad_form", f"too many form parts (limit {max_parts})"))

    def on_header_field(data, start, end):
        state["hname"] += data[start:end]

    def on_header_value(data, start, end):
        state["hvalue"] += data[start:end]

    def on_header_end():
        state["headers"][state["hname"].lower()] = state["hvalue"]
        state["hname"], state["hvalue"] = b"", b""

    def on_headers_finished():
        if state["error"]:
            return
        _, disp = parse_options_header(state["headers"].get(b"content-disposition", b""))
        name = disp.get(b"name", b"").decode("utf-8", "replace")
        state["name"] = name
        if b"filename" in disp:
            if name not in file_fields:
                fail(
                    UploadError(
                        400,
                        "bad_form",
                        f"unexpected file field {name!r}; files go in {', '.join(repr(f) for f in file_fields)}",
                    )
                )
                return
            filename = client_file_name(disp[b"filename"])
            path = dest_dir / f"upload-{uuid.uuid4().hex}.part"
            state["fh"] = open_part(path)
            state["saved"] = SavedFile(name, filename, path, 0)
            if name in form.files:  # a second file in the same field replaces the first
                form.files.pop(name).path.unlink(missing_ok=True)
            form.files[name] = state["saved"]
        else:
            state["buf"] = bytearray()

    def on_part_data(data, start, end):
        if state["error"]:
            return
        if state.get("fh") is not None:
            state["fh"].write(data[start:end])
            state["saved"].size += end - start
        elif state.get("buf") is not None:
            state["buf"] += data[start:end]
            if len(state["buf"]) > max_field_bytes:
                fail(UploadError(400, "bad_form", f"form field {state['name']!r} is too long"))

    def on_part_end():
        if state.get("fh") is not None:
            state["fh"].close()
            state["fh"] = None
        elif state.get("buf") is not None and state["name"]:
            form.fields[state["name"]] = state["buf"].decode("utf-8", "replace")

    parser = MultipartParser(
        params[b"boundary"],
        callbacks={
            "on_part_begin": on_part_begin,
            "on_header_field": on_header_field,
            "on_header_value": on_header_value,
            "on_header_end": on_header_end,
            "on_headers_finished": on_headers_finished,
            "on_part_data": on_part_data,
            "on_part_end": on_part_end,
        },
    )
    total = 0
    try:
        async for chunk in _arriving(request.stream(), idle_seconds):
            total += len(chunk)
            if total > max_bytes:
                raise UploadError(413, "too_large", f"upload is larger than this server's limit of {_mb(max_bytes)}")
            try:
                parser.write(chunk)
            except (UploadError, OSError):
                raise
            except Exception as exc:  # python-multipart raises its own parse errors
                raise UploadError(400, "bad_form", f"malformed multipart body ({exc})") from None
            if state["error"]:
                raise state["error"]
        parser.finalize()
    except _Stalled:
        _discard(state, form)
        log.info("upload to %s stalled for %.0f s after %d bytes; discarded", request.url.path, idle_seconds, total)
        raise UploadError(
            408, "upload_stalled", f"no data arrived for {idle_seconds:.0f} s; the upload was abandoned"
        ) from None
    except OSError as exc:  # writing the parts: a full disk, a quota, an I/O error
        _discard(state, form)
        raise storage_error(exc, "the upload") from None
    except ClientDisconnect:
        _discard(state, form)
        log.info("upload to %s abandoned by the client after %d bytes; discarded", request.url.path, total)
        raise UploadError(400, "disconnected", "the client disconnected before the upload ended") from None
    except BaseException:
        if state.get("fh") is not None:
            state["fh"].close()
        form.cleanup()
        raise
    if state.get("fh") is not None:  # a body that ended inside a file part
        _discard(state, form)
        raise UploadError(400, "bad_form", "malformed multipart body (it ends inside a part)")
    # a browser sends an empty file part for a file input left empty
    for name in [n for n, f in form.files.items() if f.size == 0 and not f.filename]:
        form.files.pop(name).path.unlink(missing_ok=True)
    return form


async def _arriving(chunks: AsyncIterator[bytes], idle_seconds: float) -> AsyncIterator[bytes]:
    """``chunks`` as they arrive; :class:`_Stalled` when the next one takes over ``idle_seconds``."""
    iterator = chunks.__aiter__()
    while True:
        try:
            with anyio.fail_after(idle_seconds):
                chunk = await iterator.__anext__()
        except StopAsyncIteration:
            return
        except TimeoutError:
            raise _Stalled() from None
        yield chunk


class _Stalled(Exception):
    """No part of the body arrived for the allowed time."""


def client_file_name(raw: bytes) -> str:
    """The name a client gave its file, fit to be shown back (job list, page, log, download name):
    its last path component, at most 200 characters, without control or invisible formatting
    characters (an escape sequence in a name would reach the server's terminal through the log;
    a right-to-left override, U+202E, would make ``x<U+202E>gnp.html`` look like ``xlmth.png``)."""
    name = Path(raw.decode("utf-8", "replace").replace("\\", "/")).name
    return "".join(c for c in name if unicodedata.category(c) not in ("Cc", "Cf"))[:200]


def open_part(path: Path):
    """Open a new file part for writing (a separate function so tests can put a full disk here)."""
    return open(path, "wb")


def _discard(state: dict, form: Form) -> None:
    fh = state.get("fh")
    if fh is not None:
        state["fh"] = None
        with contextlib.suppress(OSError):  # the close flushes; on a full disk that fails too
            fh.close()
    form.cleanup()


def _probe_image(path: Path, max_pixels: int) -> MediaInfo | None:
    from PIL import Image, UnidentifiedImageError

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            img = Image.open(path)
        except UnidentifiedImageError:
            return None
        except Image.DecompressionBombError:
            raise UploadError(
                422,
                "image_too_large",
                "the image's header declares more pixels than Pillow will decode; "
                f"this server accepts at most {max_pixels / 1e6:.0f} megapixels",
            ) from None
        except Exception as exc:
            raise UploadError(422, "undecodable", f"the image cannot be read ({exc})") from None
        with img:
            fmt = img.format or "image"
            w, h = img.size
            if w * h > max_pixels:
                raise UploadError(
                    422,
                    "image_too_large",
                    f"the image is {w}×{h} ({w * h / 1e6:.0f} megapixels); this server "
                    f"accepts at most {max_pixels / 1e6:.0f} megapixels",
                )
            if min(w, h) < MIN_SIDE:
                raise UploadError(
                    422, "image_too_small", f"the image is {w}×{h}; both sides must be at least {MIN_SIDE} px"
                )
            try:
                with _DECODE_SLOTS:
                    img.load()
            except MemoryError:
                raise UploadError(
                    503, "busy", "the server has no memory left to check this image; try again later"
                ) from None
            except Exception as exc:  # truncated data, bad checksums, broken compression
                raise UploadError(422, "undecodable", f"the {fmt} image does not decode ({exc})") from None
            media_type = Image.MIME.get(fmt, "application/octet-stream")
    suffix = _IMAGE_SUFFIX.get(fmt, "." + fmt.lower())
    return MediaInfo("image", fmt, w, h, 1, None, suffix, media_type)


def _probe_video(path: Path, max_pixels: int) -> MediaInfo | None:
    import av

    try:
        container = av.open(str(path), metadata_errors="ignore")
    except (av.FFmpegError, ValueError, OSError):
        return None
    with container:
        # a stream FFmpeg has no decoder for (an SVG: svg_pipe without librsvg) has no codec context
        streams = [
            s
            for s in container.streams.video
            if s.codec_context is not None and s.codec_context.name not in _REFUSED_VIDEO_CODECS
        ]
        if not streams:
            return None
        stream = streams[0]
        w, h = stream.codec_context.width, stream.codec_context.height
        if w * h > max_pixels:
            raise UploadError(
                422,
                "video_too_large",
                f"the video is {w}×{h} ({w * h / 1e6:.0f} megapixels per frame); this "
                f"server accepts at most {max_pixels / 1e6:.0f} megapixels",
            )
        if min(w, h) < MIN_SIDE:
            raise UploadError(
                422, "video_too_small", f"the video is {w}×{h}; both sides must be at least {MIN_SIDE} px"
            )
        try:
            first = next(iter(container.decode(stream)), None)
        except (av.FFmpegError, ValueError, OSError) as exc:
            raise UploadError(422, "undecodable", f"the video's first frame does not decode ({exc})") from None
        if first is None:
            raise UploadError(422, "undecodable", "the video has no frame that decodes")
        rate = stream.average_rate or stream.guessed_rate
        fps = float(rate) if rate else None
        frames = stream.frames or None
        if frames is None and stream.duration and stream.time_base and fps:
            frames = round(float(stream.duration * stream.time_base) * fps) or None
        fmt = container.format.name
    suffix = _VIDEO_SUFFIX.get(fmt.split(",")[0], ".mkv")
    return MediaInfo("video", fmt, w, h, frames, fps, suffix, _VIDEO_TYPE.get(suffix, "application/octet-stream"))


def probe_media(path: str | os.PathLike, *, max_pixels: int, kinds: tuple[str, ...] = ("image", "video")) -> MediaInfo:
    """Find out whether a file is an image or a video that decodes, from its content.

    Args:
        path: the uploaded file.
        max_pixels: largest accepted frame (width × height).
        kinds: what is acceptable here (a background picture must be an image).

    Returns:
        A :class:`MediaInfo`.

    Raises:
        UploadError: empty (422), neither an image nor a video (415), an image or video that does
            not decode or whose frame is too large or too small (422), or a kind not in ``kinds`` (415).
    """
    path = Path(path)
    if path.stat().st_size == 0:
        raise UploadError(422, "empty", "the uploaded file is empty (0 bytes)")
    info = _probe_image(path, max_pixels)
    if info is None and "video" in kinds:
        info = _probe_video(path, max_pixels)
    wanted = " or ".join(kinds)
    if info is None:
        from mattekit.io.sniff import sniff

        kind = sniff(path)
        raise UploadError(
            415,
            "unsupported_media",
            f"the file is not an {wanted} that can be decoded" + (f" (its content is {kind})" if kind else ""),
        )
    if info.kind not in kinds:
        raise UploadError(415, "unsupported_media", f"expected an {wanted}, got a {info.kind}")
    return info
