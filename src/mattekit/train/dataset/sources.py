"""Foreground, segmentation and background sources for the compositing dataset.

Foreground + alpha (:func:`open_foreground`), each frame H×W×4 uint8 RGBA (straight alpha):

- a folder of RGBA images (PNG/WebP/TIFF with alpha): one clip, frames in name order;
- a folder with ``fgr/`` (or ``image/``) and ``pha/`` (or ``alpha/``) sub-folders of equally named
  images: colour + alpha pairs (VideoMatte240K's and the image matting sets' layout);
- a transparent clip: WebM (VP8/VP9 alpha), ProRes 4444 .mov, GIF (what ``mattekit key`` writes);
- one RGBA image.

Segmentation (:class:`SegmentationSource`): a folder with ``image/`` and ``mask/`` sub-folders
(mask: 0 background, >127 person). Backgrounds (:func:`open_backgrounds`): folders of pictures
and videos.

Frames are read lazily (the last 64 per source kept decoded); clips are decoded once, each frame
scaled so its longer side is at most ``max_side``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image

from mattekit.errors import InputError
from mattekit.io.image import IMAGE_SUFFIXES
from mattekit.io.video_reader import VIDEO_SUFFIXES

COLOR_DIRS = ("fgr", "image", "images", "rgb")
ALPHA_DIRS = ("pha", "alpha", "alphas", "matte")


def _shrink(image: Image.Image, max_side: int | None) -> Image.Image:
    if max_side and max(image.size) > max_side:
        scale = max_side / max(image.size)
        image = image.resize(
            (max(1, round(image.width * scale)), max(1, round(image.height * scale))), Image.Resampling.BILINEAR
        )
    return image


def _read(path: Path, mode: str, max_side: int | None) -> np.ndarray:
    try:
        with Image.open(path) as im:
            im.load()
            if mode == "RGBA" and "A" not in im.getbands() and "transparency" not in im.info:
                raise InputError(path, "has no alpha channel (need RGBA frames, or fgr/ + pha/ folders)")
            return np.asarray(_shrink(im.convert(mode), max_side))
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        raise InputError(path, f"cannot read image ({exc})") from None


def _images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith("."))


@dataclass
class ForegroundSource:
    """A clip of foreground frames with alpha.

    Attributes:
        name: where it came from.
        length: number of frames.
        read: ``read(i)`` -> H×W×4 uint8 RGBA of frame ``i`` (0 <= i < length).
    """

    name: str
    length: int
    read: Callable[[int], np.ndarray] = field(repr=False)

    def subset(self, start: int, stop: int) -> ForegroundSource:
        """Frames ``start..stop-1`` as a source of their own (a train or held-back split)."""
        start, stop = max(0, start), min(self.length, stop)
        return ForegroundSource(f"{self.name}[{start}:{stop}]", stop - start, lambda i: self.read(start + i))


def open_foreground(path: str | os.PathLike, max_side: int | None = None) -> ForegroundSource:
    """Open a foreground + alpha source (see the module docstring).

    Raises:
        mattekit.errors.InputError: missing, empty, no alpha, unpaired colour/alpha files.
    """
    p = Path(path)
    if not p.exists():
        raise InputError(p, "not found")
    if p.is_dir():
        color = next((p / d for d in COLOR_DIRS if (p / d).is_dir()), None)
        alpha = next((p / d for d in ALPHA_DIRS if (p / d).is_dir()), None)
        if color is not None and alpha is not None:
            colors, alphas = _images(color), {f.stem: f for f in _images(alpha)}
            missing = [f.name for f in colors if f.stem not in alphas]
            if not colors or missing:
                raise InputError(alpha, f"no alpha image for {missing[0]}" if missing else "no images")
            pairs = [(f, alphas[f.stem]) for f in colors]

            @lru_cache(maxsize=64)
            def read_pair(i: int) -> np.ndarray:
                rgb, a = _read(pairs[i][0], "RGB", max_side), _read(pairs[i][1], "L", max_side)
                if rgb.shape[:2] != a.shape:
                    raise InputError(pairs[i][1], f"size differs from {pairs[i][0].name}")
                return np.dstack([rgb, a])

            return ForegroundSource(str(p), len(pairs), read_pair)
        files = _images(p)
        if not files:
            raise InputError(p, "folder holds no images (need RGBA frames, or fgr/ + pha/ folders)")

        @lru_cache(maxsize=64)
        def read_frame(i: int) -> np.ndarray:
            return _read(files[i], "RGBA", max_side)

        read_frame(0)  # fail early on frames without alpha
        return ForegroundSource(str(p), len(files), read_frame)
    if p.suffix.lower() in IMAGE_SUFFIXES:
        frame = _read(p, "RGBA", max_side)
        return ForegroundSource(str(p), 1, lambda i: frame)
    from mattekit.io.rgba_reader import read_rgba_frames

    frames: list[np.ndarray] = []
    try:
        frames.extend(np.asarray(_shrink(Image.fromarray(decoded.rgba), max_side)) for decoded in read_rgba_frames(p))
    except InputError:
        raise
    except Exception as exc:  # PyAV raises many types on damaged files
        raise InputError(p, f"cannot decode clip ({type(exc).__name__})") from None
    if not frames:
        raise InputError(p, "no frames decoded")
    if all(f[:, :, 3].min() == 255 for f in frames[:3]):
        raise InputError(p, "has no transparency (key it first: mattekit key ... --output-type webm)")
    return ForegroundSource(str(p), len(frames), frames.__getitem__)


@dataclass
class SegmentationSource:
    """Image + person mask pairs: ``read(i)`` -> (H×W×3 uint8 RGB, H×W uint8 mask 0/255)."""

    name: str
    pairs: list[tuple[Path, Path]]
    max_side: int | None = None

    @classmethod
    def open(cls, path: str | os.PathLike, max_side: int | None = None) -> SegmentationSource:
        """Open a folder with ``image/`` and ``mask/`` sub-folders.

        Raises:
            mattekit.errors.InputError: missing folders or unpaired files.
        """
        p = Path(path)
        if not (p / "image").is_dir() or not (p / "mask").is_dir():
            raise InputError(p, "segmentation data needs image/ and mask/ sub-folders")
        masks = {f.stem: f for f in _images(p / "mask")}
        pairs = [(f, masks[f.stem]) for f in _images(p / "image") if f.stem in masks]
        if not pairs:
            raise InputError(p, "no image with a mask of the same name")
        return cls(str(p), pairs, max_side)

    def __len__(self) -> int:
        return len(self.pairs)

    def read(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        image, mask = self.pairs[i]
        rgb, m = _read(image, "RGB", self.max_side), _read(mask, "L", self.max_side)
        if m.shape != rgb.shape[:2]:
            m = np.asarray(Image.fromarray(m).resize(rgb.shape[1::-1], Image.Resampling.NEAREST))
        return rgb, np.where(m > 127, 255, 0).astype(np.uint8)


@dataclass
class BackgroundPool:
    """Background pictures (read lazily) and videos (decoded up to ``max_frames`` each).

    ``items``: list of ("image", path) or ("video", list of H×W×3 uint8 frames).
    """

    items: list
    max_side: int | None = None

    def __len__(self) -> int:
        return len(self.items)

    def frames(self, index: int, start: float, count: int, speed: float) -> list[np.ndarray]:
        """``count`` RGB frames of item ``index``: the picture repeated, or video frames from
        ``start`` (0..1 of its length) at ``speed`` (looping back and forth)."""
        kind, data = self.items[index]
        if kind == "image":
            image = _cached_background(data, self.max_side)
            return [image] * count
        n = len(data)
        first = int(start * n)
        out = []
        for k in range(count):
            j = int(first + k * speed) % (2 * n - 2) if n > 1 else 0
            out.append(data[j if j < n else 2 * n - 2 - j])
        return out

    def split(self, held_back: int) -> tuple[BackgroundPool, BackgroundPool]:
        """(training pool, last ``held_back`` items) in a stable order."""
        return (
            BackgroundPool(self.items[: len(self.items) - held_back], self.max_side),
            BackgroundPool(self.items[len(self.items) - held_back :], self.max_side),
        )


@lru_cache(maxsize=256)
def _cached_background(path: Path, max_side: int | None) -> np.ndarray:
    return _read(path, "RGB", max_side)


def open_backgrounds(
    paths: Sequence[str | os.PathLike], max_side: int | None = None, max_frames: int = 100
) -> BackgroundPool:
    """Collect the pictures and videos in ``paths`` (folders, searched recursively, or files).

    Raises:
        mattekit.errors.InputError: a path is missing or nothing usable was found.
    """
    files: list[Path] = []
    for path in paths:
        p = Path(path)
        if not p.exists():
            raise InputError(p, "not found")
        files += sorted(f for f in p.rglob("*") if f.is_file() and not f.name.startswith(".")) if p.is_dir() else [p]
    items: list[tuple[str, Path | list[np.ndarray]]] = []
    for f in files:
        suffix = f.suffix.lower()
        if suffix in IMAGE_SUFFIXES:
            items.append(("image", f))
        elif suffix in VIDEO_SUFFIXES:
            items.append(("video", _decode_video(f, max_side, max_frames)))
    if not items:
        raise InputError(Path(paths[0]) if paths else Path("."), "no background pictures or videos found")
    return BackgroundPool(items, max_side)


def _decode_video(path: Path, max_side: int | None, max_frames: int) -> list[np.ndarray]:
    import av

    frames = []
    try:
        with av.open(str(path)) as container:
            for frame in container.decode(video=0):
                frames.append(np.asarray(_shrink(frame.to_image(), max_side).convert("RGB")))
                if len(frames) >= max_frames:
                    break
    except (av.error.FFmpegError, IndexError) as exc:
        raise InputError(path, f"cannot decode background video ({exc})") from None
    if not frames:
        raise InputError(path, "background video has no frames")
    return frames
