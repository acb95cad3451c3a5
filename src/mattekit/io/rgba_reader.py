"""Read back a written video with its alpha channel (WebM/VP9 with alpha, ProRes 4444, GIF).

The pipeline's own input reader (:mod:`mattekit.io.video_reader`) gives RGB frames; this one
gives RGBA, decoding WebM's alpha layer with libvpx. Its users: training reads transparent clips
as foreground sources with it (:mod:`mattekit.train.dataset.sources`), the tests and benchmarks
check what mattekit wrote with it, and users may read their outputs back (docs/outputs.md).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np

from mattekit.errors import InputError
from mattekit.io.video_reader import display_orientation, orient


@dataclass
class DecodedRGBA:
    """A frame read back with its alpha.

    Attributes:
        rgba: H×W×4 uint8 (straight alpha; 255 everywhere for formats without alpha).
        pts: presentation timestamp in ``time_base`` units.
        time: seconds (``pts * time_base``), or ``None``.
        pix_fmt: the decoder's pixel format (e.g. ``yuva420p``).
    """

    rgba: np.ndarray
    pts: int | None
    time: float | None
    pix_fmt: str


def _alpha_plane(frame: av.VideoFrame) -> np.ndarray | None:
    """The alpha plane of a planar YUVA frame as uint8, rounded from its bit depth."""
    name = frame.format.name
    if not name.startswith("yuva"):
        return None
    plane = frame.planes[3]
    deep = "p8" not in name and ("le" in name or "be" in name)
    dtype = np.dtype("<u2" if name.endswith("le") else ">u2") if deep else np.dtype(np.uint8)
    width = plane.line_size // dtype.itemsize
    raw = np.frombuffer(memoryview(plane), dtype=dtype).reshape(-1, width)[: frame.height, : frame.width]
    if not deep:
        return raw.copy()
    bits = int("".join(c for c in name.split("p")[-1] if c.isdigit()) or 8)
    return np.clip(raw.astype(np.float32) * (255.0 / ((1 << bits) - 1)) + 0.5, 0, 255).astype(np.uint8)


def read_rgba_frames(path: str | os.PathLike) -> Iterator[DecodedRGBA]:
    """Decode a written video with its alpha channel: WebM/VP9 (or VP8) with alpha, ProRes 4444,
    GIF, or any video without alpha (alpha 255).

    FFmpeg's native VP9 decoder ignores the alpha layer, which WebM stores as a second VP9 stream
    in each block's BlockAdditional data (``alpha_mode=1``); this reader decodes such files with
    libvpx, which reads it. Deep alpha (ProRes' 12/16-bit) is rounded to 8 bits.

    Yields:
        :class:`DecodedRGBA` per frame, in presentation order, upright.

    Raises:
        mattekit.errors.InputError: missing file or no video stream.
    """
    p = Path(path)
    if not p.is_file():
        raise InputError(p, "file not found")
    with av.open(str(p), metadata_errors="ignore") as container:
        if not container.streams.video:
            raise InputError(p, "has no video stream")
        stream = container.streams.video[0]
        name = stream.codec_context.name
        has_alpha = (stream.metadata or {}).get("alpha_mode") == "1"
        decoder = None
        if name in ("vp9", "vp8") and has_alpha:
            decoder = av.CodecContext.create("libvpx-vp9" if name == "vp9" else "libvpx", "r")
            if stream.codec_context.extradata:
                decoder.extradata = stream.codec_context.extradata
        time_base = stream.time_base

        def decoded():
            if decoder is None:
                yield from container.decode(stream)
                return
            for packet in container.demux(stream):
                try:
                    yield from decoder.decode(packet)
                except av.error.EOFError:
                    return

        for frame in decoded():
            alpha = _alpha_plane(frame)
            if frame.format.name in ("bgra", "rgba", "argb", "abgr", "pal8") or alpha is None:
                rgba = frame.to_ndarray(format="rgba")
            else:
                rgba = frame.to_ndarray(format="rgba")
                rgba[:, :, 3] = alpha
            how = display_orientation(frame, stream)
            if how:
                rgba = np.ascontiguousarray(orient(rgba, how))
            pts = frame.pts
            t = float(pts * time_base) if pts is not None and time_base else None
            yield DecodedRGBA(rgba=rgba, pts=pts, time=t, pix_fmt=frame.format.name)
