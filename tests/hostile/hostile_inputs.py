"""Generators of hostile inputs: small files that lie, break or provoke (issue 9's corpus).

Every function writes into a folder it is given and returns the path(s) it made; nothing here
needs ../shared/data or the network. Sizes are kept small so the whole corpus runs in seconds:
videos are 64×48 to 160×96 with a handful of frames; the "big" images are smooth gradients or
all-zero pixels, so a 12000×12000 PNG is a few hundred KB on disk (a decompression bomb).
"""

from __future__ import annotations

import random
import struct
import zlib
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from PIL import Image

# -- images ---------------------------------------------------------------------------------------


def pattern(width: int, height: int, seed: int = 0) -> np.ndarray:
    """H×W×3 uint8: a bright disc (a stand-in for a person) on a darker gradient."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    bg = np.stack([xx / max(width - 1, 1), yy / max(height - 1, 1), np.full_like(xx, 0.3)], axis=2) * 120
    r = 0.3 * min(width, height)
    disc = ((xx - width / 2) ** 2 + (yy - height / 2) ** 2) < r * r
    img = bg.copy()
    img[disc] = (220, 180, 150)
    rng = np.random.default_rng(seed)
    img += rng.normal(0, 4, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def png(path: Path, width: int, height: int, seed: int = 0) -> Path:
    """A valid RGB PNG of :func:`pattern`."""
    Image.fromarray(pattern(width, height, seed)).save(path, format="PNG")  # whatever the name says
    return path


def jpeg(path: Path, width: int, height: int) -> Path:
    Image.fromarray(pattern(width, height)).save(path, format="JPEG", quality=90)
    return path


def jpeg_corrupt_exif(path: Path, width: int, height: int) -> Path:
    """A JPEG whose EXIF block is cut short (an orientation entry whose value is missing), as
    some cameras and editors write them; the pixels are intact."""
    exif = b"Exif\x00\x00MM\x00*\x00\x00\x00\x08\x00\x01\x01\x12\x00\x03\x00\x00\x00\x01\x00\x06\x00\x00\x00\x00"
    Image.fromarray(pattern(width, height)).save(path, "JPEG", exif=exif)
    return path


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_header_lie(path: Path, width: int, height: int) -> Path:
    """A PNG whose IHDR declares width×height but whose data holds one 16-pixel row (truncated)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" + b"\x00" * 3 * 16)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b""))
    return path


def png_bomb(path: Path, width: int, height: int) -> Path:
    """A complete, valid RGB PNG of width×height black pixels: tiny on disk, huge decoded.

    12000×12000 is about 420 KB on disk and 432 MB as RGB (a decompression bomb); the rows are
    compressed one at a time so building it needs little memory.
    """
    comp = zlib.compressobj(9)
    row = b"\x00" * (1 + 3 * width)
    parts = [comp.compress(row) for _ in range(height)]
    parts.append(comp.flush())
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", b"".join(parts)) + _chunk(b"IEND", b"")
    )
    return path


def jpeg_header_lie(path: Path, width: int = 60000, height: int = 60000) -> Path:
    """A real small JPEG whose SOF marker is patched to declare width×height."""
    jpeg(path, 32, 32)
    data = bytearray(path.read_bytes())
    i = 2
    while i < len(data) - 9:
        marker = data[i + 1]
        length = struct.unpack(">H", data[i + 2 : i + 4])[0]
        if marker in (0xC0, 0xC1, 0xC2):
            data[i + 5 : i + 9] = struct.pack(">HH", height, width)
            break
        i += 2 + length
    path.write_bytes(bytes(data))
    return path


def svg(path: Path) -> Path:
    path.write_text(
        '<svg xmlns="http://www.w3.org/2000/svg" width="64" height="48">'
        '<script>alert(1)</script><rect width="64" height="48" fill="red"/></svg>\n'
    )
    return path


def html(path: Path) -> Path:
    path.write_text("<!doctype html><html><body><script>fetch('/api/jobs')</script></body></html>\n")
    return path


def empty(path: Path) -> Path:
    path.write_bytes(b"")
    return path


def text(path: Path, content: str = "this is a text file, not a video\n") -> Path:
    path.write_text(content)
    return path


# -- videos ---------------------------------------------------------------------------------------


def video(
    path: Path, frames: int = 4, width: int = 64, height: int = 48, fps: int = 24, audio: bool = False, seed: int = 0
) -> Path:
    """An H.264 MP4 (yuv420p) of a moving disc, optionally with an AAC sine track of equal length."""
    rate = Fraction(fps)
    with av.open(str(path), "w", format="mp4") as out:  # whatever the name says
        vs = out.add_stream("libx264", rate=rate)
        vs.width, vs.height, vs.pix_fmt = width, height, "yuv420p"
        vs.options = {"preset": "ultrafast", "g": "4"}
        if audio:
            a_s = out.add_stream("aac", rate=48000)
            a_s.layout = "mono"
        base = pattern(width, height, seed)
        for i in range(frames):
            img = np.roll(base, i * max(1, width // 32), axis=1)
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            frame.pts, frame.time_base = i, 1 / rate
            out.mux(vs.encode(frame))
        out.mux(vs.encode(None))
        if audio:
            samples = int(48000 * frames / fps)
            t = np.arange(samples) / 48000
            pcm = (0.2 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)[None, :]
            for start in range(0, samples, 1024):
                af = av.AudioFrame.from_ndarray(pcm[:, start : start + 1024], format="fltp", layout="mono")
                af.sample_rate, af.pts, af.time_base = 48000, start, Fraction(1, 48000)
                out.mux(a_s.encode(af))
            out.mux(a_s.encode(None))
    return path


def ffv1_video(path: Path, width: int, height: int, frames: int = 2) -> Path:
    """A Matroska FFV1 (lossless) video of flat colour blocks: large frames in a small file (an
    8K frame of this takes ~65 KB), what a video made to exhaust memory looks like."""
    with av.open(str(path), "w", format="matroska") as out:
        vs = out.add_stream("ffv1", rate=24)
        vs.width, vs.height, vs.pix_fmt = width, height, "yuv420p"
        img = np.zeros((height, width, 3), np.uint8)
        img[:, : width // 2] = (200, 120, 90)
        for i in range(frames):
            frame = av.VideoFrame.from_ndarray(np.roll(img, i * 8, axis=1), format="rgb24")
            frame.pts = i
            out.mux(vs.encode(frame))
        out.mux(vs.encode(None))
    return path


def transparent_clip(path: Path, frames: int = 4, width: int = 64, height: int = 48) -> Path:
    """A VP9 WebM with alpha (yuva420p): an opaque rectangle of the pattern on transparency, what
    ``mattekit finetune --foreground`` takes."""
    with av.open(str(path), "w", format="webm") as out:
        vs = out.add_stream("libvpx-vp9", rate=24)
        vs.width, vs.height, vs.pix_fmt = width, height, "yuva420p"
        for i in range(frames):
            rgba = np.zeros((height, width, 4), np.uint8)
            rgba[..., :3] = pattern(width, height, i)
            rgba[height // 5 : -height // 5, width // 3 : -width // 3, 3] = 255
            frame = av.VideoFrame.from_ndarray(rgba, format="rgba")
            frame.pts = i
            out.mux(vs.encode(frame))
        out.mux(vs.encode(None))
    return path


def zero_frame_video(path: Path, width: int = 64, height: int = 48) -> Path:
    """A Matroska file whose H.264 video stream (width×height) holds no frame, beside one second of
    silent Opus audio (MP4 drops an empty track; Matroska declares it in its header)."""
    with av.open(str(path), "w", format="matroska") as out:
        vs = out.add_stream("libx264", rate=24)
        vs.width, vs.height, vs.pix_fmt = width, height, "yuv420p"
        a_s = out.add_stream("libopus", rate=48000)
        a_s.layout = "mono"
        pcm = np.zeros((1, 48000), np.float32)
        for start in range(0, 48000, 960):
            af = av.AudioFrame.from_ndarray(pcm[:, start : start + 960], format="fltp", layout="mono")
            af.sample_rate, af.pts, af.time_base = 48000, start, Fraction(1, 48000)
            out.mux(a_s.encode(af))
        out.mux(a_s.encode(None))
        out.mux(vs.encode(None))
    return path


def corrupt_middle(src: Path, dst: Path, nbytes: int = 200, seed: int = 9) -> Path:
    """A copy of ``src`` with ``nbytes`` bytes flipped (XOR 0xFF) at random places in its middle third."""
    data = bytearray(src.read_bytes())
    rng = random.Random(seed)
    third = len(data) // 3
    for pos in rng.sample(range(third, 2 * third), nbytes):
        data[pos] ^= 0xFF
    dst.write_bytes(bytes(data))
    return dst


def mp4_header_lie(path: Path) -> Path:
    """An ``ftyp`` box of a real MP4 followed by garbage: looks like MP4 to sniffers, decodes to nothing."""
    ftyp = struct.pack(">I", 24) + b"ftypisom" + struct.pack(">I", 512) + b"isomiso2"
    rng = random.Random(1)
    path.write_bytes(ftyp + bytes(rng.getrandbits(8) for _ in range(4096)))
    return path


def frame_folder(folder: Path, count: int, width: int, height: int) -> Path:
    """A folder of ``count`` PNG frames named 0000.png, 0001.png, ..."""
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        png(folder / f"{i:04d}.png", width, height, seed=i)
    return folder


# -- models and server data -----------------------------------------------------------------------


def garbage_model(path: Path) -> Path:
    """A file named ``.onnx`` that is not an ONNX model."""
    path.write_bytes(b"not an onnx model\x00" * 64)
    return path


def card_model(path: Path, card: str | bytes) -> Path:
    """A valid 32x32 single-image ONNX model (alpha = mean of the channels) with ``card`` written
    beside it as ``<stem>.toml``."""
    import onnx
    from onnx import TensorProto, helper

    node = helper.make_node("ReduceMean", ["input"], ["out"], keepdims=1, axes=[1])
    graph = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, 32, 32])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, 1, 32, 32])],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(path))
    toml = path.with_suffix(".toml")
    toml.write_bytes(card if isinstance(card, bytes) else card.encode())
    return path


def not_sqlite(path: Path) -> Path:
    """A ``jobs.db`` that is not an SQLite database."""
    path.write_bytes(b"this is not an SQLite database, it is a text file\n" * 100)
    return path


def user_file(path: Path, content: str = "the user's own file; must never change\n") -> Path:
    """A file of the user's that mattekit must never touch."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content)
    return path
