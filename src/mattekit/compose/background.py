"""Backgrounds to composite the person over: a colour or a picture.

:func:`parse_background` turns what a user types (``green``, ``#00ff00``, ``photo.jpg``) into a
:class:`Background` that hands out one H×W×3 background per frame.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageColor

from mattekit.errors import InputError

# Robust Video Matting's own composite background (its inference.py): a light green.
DEFAULT_COLOR = (120, 255, 155)


class Background:
    """A source of background frames.

    Attributes:
        transparent: True when the output keeps alpha instead of a background (RGBA).
    """

    transparent = False

    def frame(self, index: int, height: int, width: int, src: np.ndarray | None = None) -> np.ndarray:
        """The background for frame ``index``: H×W×3 uint8 RGB, or a length-3 uint8 colour."""
        raise NotImplementedError

    def close(self) -> None:
        """Release any file this background reads."""


class ColorBackground(Background):
    """A uniform colour.

    Args:
        rgb: (r, g, b) with each component 0..255.
    """

    def __init__(self, rgb: tuple[int, int, int]):
        self.rgb = tuple(int(c) for c in rgb)
        self._color = np.asarray(self.rgb, dtype=np.uint8)

    def frame(self, index, height, width, src=None):
        return self._color

    def __repr__(self) -> str:
        return "ColorBackground(#%02x%02x%02x)" % self.rgb


def cover_resize(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """Scale an image to cover H×W (keeping its aspect ratio) and crop the centre.

    Args:
        image: h×w×3 uint8 RGB.

    Returns:
        height×width×3 uint8 RGB.
    """
    h, w = image.shape[:2]
    scale = max(height / h, width / w)
    new_w, new_h = max(width, round(w * scale)), max(height, round(h * scale))
    resized = np.asarray(Image.fromarray(image).resize((new_w, new_h), Image.Resampling.BICUBIC))
    top, left = (new_h - height) // 2, (new_w - width) // 2
    return np.ascontiguousarray(resized[top:top + height, left:left + width])


class ImageBackground(Background):
    """A still picture, scaled to cover the frame and centred.

    Raises:
        mattekit.errors.InputError: the picture cannot be read.
    """

    def __init__(self, path: str | os.PathLike):
        from mattekit.io.image import read_image

        self.path = Path(path)
        self._image = read_image(self.path)
        self._cache: dict[tuple[int, int], np.ndarray] = {}

    def frame(self, index, height, width, src=None):
        key = (height, width)
        if key not in self._cache:
            self._cache = {key: cover_resize(self._image, height, width)}
        return self._cache[key]


def parse_color(text: str) -> tuple[int, int, int] | None:
    """A colour name or ``#rgb``/``#rrggbb`` as (r, g, b) 0..255; ``None`` if it is not one."""
    try:
        return ImageColor.getrgb(text)[:3]
    except ValueError:
        return None


def parse_background(spec: "str | os.PathLike | tuple | Background | None",
                     default: tuple[int, int, int] = DEFAULT_COLOR) -> Background:
    """Turn a user's background choice into a :class:`Background`.

    Args:
        spec: ``None`` (``default`` colour), a :class:`Background`, an (r, g, b) tuple of
            0..255 ints, a colour name or ``#hex`` string, or an image path.

    Raises:
        mattekit.errors.InputError: the string is neither a colour nor a readable image.
    """
    if spec is None:
        return ColorBackground(default)
    if isinstance(spec, Background):
        return spec
    if isinstance(spec, (tuple, list, np.ndarray)):
        if len(spec) != 3:
            raise InputError(str(spec), "a background colour needs three components (r, g, b)")
        return ColorBackground(tuple(int(c) for c in spec))
    text = os.fspath(spec)
    rgb = parse_color(text)
    if rgb is not None and not Path(text).exists():
        return ColorBackground(rgb)
    path = Path(text)
    if not path.exists():
        raise InputError(text, "background is neither a colour name/#hex nor an existing file")
    return ImageBackground(path)
