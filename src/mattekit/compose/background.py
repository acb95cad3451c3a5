"""Backgrounds to composite the person over: a colour, a picture, a video, the input blurred, or
transparency.

:func:`parse_background` turns what a user types (``green``, ``#00ff00``, ``photo.jpg``,
``beach.mp4``, ``blur``, ``blur:40``, ``transparent``) into a :class:`Background` that hands out
one H×W×3 background per frame.
"""

from __future__ import annotations

import bisect
import os
from fractions import Fraction
from pathlib import Path

import numpy as np
from PIL import Image, ImageColor

from mattekit.errors import InputError, ParameterError
from mattekit.params import validate_blur_sigma

# Robust Video Matting's own composite background (its inference.py): a light green.
DEFAULT_COLOR = (120, 255, 155)
DEFAULT_BLUR_SIGMA = 25.0


class Background:
    """A source of background frames.

    Attributes:
        transparent: True when the output keeps alpha instead of a background (RGBA).
    """

    transparent = False

    def prepare(self, frame_rate: Fraction | float) -> None:
        """Called once before the first frame with the input's frame rate (frames per second)."""

    def frame(
        self, index: int, height: int, width: int, src: np.ndarray | None = None, alpha: np.ndarray | None = None
    ) -> np.ndarray:
        """The background for frame ``index``.

        Args:
            index: 0-based frame number.
            height, width: frame size in pixels.
            src: the input frame, H×W×3 uint8 RGB (needed by :class:`BlurBackground`).
            alpha: the model's alpha for that frame, H×W float32 0..1 (optional).

        Returns:
            H×W×3 uint8 RGB, or a length-3 uint8 colour.
        """
        raise NotImplementedError

    def close(self) -> None:
        """Release any file this background reads."""


class ColorBackground(Background):
    """A uniform colour.

    Args:
        rgb: (r, g, b) with each component 0..255.

    Raises:
        mattekit.errors.InputError: a component is not a whole number in 0..255.
    """

    def __init__(self, rgb: tuple[int, int, int]):
        try:
            values = [float(c) for c in rgb]
        except (TypeError, ValueError):
            values = [float("nan")]
        if len(values) != 3 or not all(0 <= v <= 255 and v == int(v) for v in values):
            raise InputError(str(tuple(rgb)), "a background colour needs three whole numbers 0..255 (r, g, b)")
        self.rgb = tuple(int(v) for v in values)
        self._color = np.asarray(self.rgb, dtype=np.uint8)

    def frame(self, index, height, width, src=None, alpha=None):
        return self._color

    def __repr__(self) -> str:
        return "ColorBackground(#{:02x}{:02x}{:02x})".format(*self.rgb)


class TransparentBackground(Background):
    """No background: the composition keeps the alpha (RGBA), for transparent output types."""

    transparent = True

    def frame(self, index, height, width, src=None, alpha=None):
        raise ValueError("a transparent background has no colour; write RGBA instead")

    def __repr__(self) -> str:
        return "TransparentBackground()"


def cover_resize(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """Scale an image to cover H×W (keeping its aspect ratio) and crop the centre.

    Args:
        image: h×w×3 uint8 RGB.

    Returns:
        height×width×3 uint8 RGB.
    """
    h, w = image.shape[:2]
    if (h, w) == (height, width):
        return image
    scale = max(height / h, width / w)
    new_w, new_h = max(width, round(w * scale)), max(height, round(h * scale))
    resized = np.asarray(Image.fromarray(image).resize((new_w, new_h), Image.Resampling.BICUBIC))
    top, left = (new_h - height) // 2, (new_w - width) // 2
    return np.ascontiguousarray(resized[top : top + height, left : left + width])


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

    def frame(self, index, height, width, src=None, alpha=None):
        key = (height, width)
        if key not in self._cache:
            self._cache = {key: cover_resize(self._image, height, width)}
        return self._cache[key]

    def __repr__(self) -> str:
        return f"ImageBackground({str(self.path)!r})"


class VideoBackground(Background):
    """A video clip behind the person, resampled to the input's frame rate.

    Output frame ``i`` shows the background frame on screen at time ``i / fps`` (``fps`` the
    input's rate): the latest background frame whose timestamp is <= that time. A background
    shorter than the input is looped; a longer one is cut. Frames are scaled to cover the output
    and centred, as for a picture, and turned upright (display rotation). Decoding is
    sequential, so memory does not grow with the clip.

    Args:
        path: any video PyAV opens.

    Raises:
        mattekit.errors.InputError: the file is not a readable video.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.times, self.duration = self._scan()
        self._rate = Fraction(30)
        self._reader = None
        self._frames = None
        self._pos = -1  # index (into times) of the current decoded frame
        self._current = None
        self._resized: tuple[int, tuple[int, int], np.ndarray] | None = None

    def _open(self):
        from mattekit.io.video_reader import VideoFileReader

        return VideoFileReader(self.path)

    def __getstate__(self) -> dict:
        """Pickled (sent to a cluster's worker) without an open decoder; it reopens there."""
        state = dict(self.__dict__)
        state.update(_reader=None, _frames=None, _pos=-1, _current=None, _resized=None)
        return state

    def _scan(self) -> tuple[list[float], float]:
        """Presentation times (s, from 0) of every frame, from the packets (no decoding)."""
        import av

        reader = self._open()  # refuses anything that is not a video with a decodable frame
        rate = float(reader.frame_rate) or 30.0
        index = reader._stream.index
        reader.close()
        stamps = []
        end = 0.0
        try:
            with av.open(str(self.path), metadata_errors="ignore") as container:
                stream = container.streams[index]
                for packet in container.demux(stream):
                    if packet.pts is None or packet.size == 0:
                        continue
                    t = float(packet.pts * stream.time_base)
                    stamps.append(t)
                    dur = float(packet.duration * stream.time_base) if packet.duration else 1.0 / rate
                    end = max(end, t + dur)
        except av.error.FFmpegError:  # damaged or cut short: the frames up to there
            pass
        if not stamps:
            raise InputError(self.path, "background video holds no frame")
        stamps.sort()
        start = stamps[0]
        return [t - start for t in stamps], max(end - start, 1e-6)

    def prepare(self, frame_rate):
        self._rate = Fraction(frame_rate) if frame_rate else Fraction(30)

    def _restart(self) -> None:
        self.close()
        reader = self._reader = self._open()
        self._frames = iter(reader)
        self._pos = -1
        self._current = None

    def source_index(self, index: int) -> int:
        """Which background frame (0-based, in presentation order) output frame ``index`` shows."""
        t = float(index / self._rate) % self.duration
        return max(0, bisect.bisect_right(self.times, t + 1e-9) - 1)

    def frame(self, index, height, width, src=None, alpha=None):
        target = self.source_index(index)
        if self._reader is None or target < self._pos:
            self._restart()
        while self._pos < target:
            item = next(self._frames, None)
            if item is None:  # fewer decodable frames than packets: hold the last one
                break
            self._current = item.rgb
            self._pos += 1
        if self._current is None:
            raise InputError(self.path, "no frame of the background video could be decoded")
        key = (height, width)
        if self._resized is None or self._resized[0] != self._pos or self._resized[1] != key:
            self._resized = (self._pos, key, cover_resize(self._current, height, width))
        return self._resized[2]

    def close(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None
            self._frames = None

    def __repr__(self) -> str:
        return f"VideoBackground({str(self.path)!r})"


def blur(image: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur of an H×W or H×W×C float32 image; large ``sigma`` runs on a reduced copy
    (each axis reduced by up to ``sigma / 6`` and at most to 8 px, so a 16×4000 frame is reduced
    along its long side only)."""
    import cv2

    h, w = image.shape[:2]
    fy = max(1, min(int(sigma // 6), h // 8 or 1))
    fx = max(1, min(int(sigma // 6), w // 8 or 1))
    if fx > 1 or fy > 1:
        small = cv2.resize(image, (max(1, w // fx), max(1, h // fy)), interpolation=cv2.INTER_AREA)
        small = cv2.GaussianBlur(small, (0, 0), sigmaX=sigma / fx, sigmaY=sigma / fy, borderType=cv2.BORDER_REFLECT)
        return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
    return cv2.GaussianBlur(image, (0, 0), sigma, borderType=cv2.BORDER_REFLECT)


class BlurBackground(Background):
    """The input's own background, blurred (as in video calls).

    The person is left out of the blur: with ``w = 1 - alpha``, the background is
    ``G*(src·w) / G*w`` (a normalized convolution, Knutsson & Westin, CVPR 1993), so no halo of
    the person's colours spreads around them; where no background is near (``G*w`` tiny), the
    plain blur ``G*src`` is used.

    Args:
        sigma: standard deviation of the Gaussian in pixels (``blur:25`` -> 25), in
            (0, :data:`~mattekit.params.BLUR_SIGMA_MAX`]; on a frame whose longer side is shorter
            than ``sigma`` the blur uses that side instead (the result is then close to a flat
            average either way), so the time per frame stays bounded by the frame size.

    Raises:
        mattekit.errors.ParameterError: ``sigma`` is NaN, infinite, <= 0 or too large.
    """

    def __init__(self, sigma: float = DEFAULT_BLUR_SIGMA):
        self.sigma = validate_blur_sigma(sigma)

    def frame(self, index, height, width, src=None, alpha=None):
        if src is None:
            raise ValueError("a blurred background needs the input frame (src)")
        sigma = min(self.sigma, float(max(height, width)))
        # one channel at a time, in place: a few H×W float32 planes at once instead of H×W×3
        # temporaries (48 MP: 3.6 GiB -> about 1.2 GiB); the result is the same
        out = np.empty(src.shape, np.uint8)
        if alpha is not None:
            weight = (1.0 - np.clip(alpha, 0.0, 1.0)).astype(np.float32)
            den = blur(weight, sigma)
            near = den > 1e-3
            np.maximum(den, 1e-3, out=den)
        for c in range(src.shape[2]):
            channel = src[:, :, c].astype(np.float32)
            plain = blur(channel, sigma)
            if alpha is not None:
                channel *= weight
                num = blur(channel, sigma)
                num /= den
                plain = np.where(near, num, plain)
                del num
            plain += 0.5
            np.clip(plain, 0, 255, out=plain)
            out[:, :, c] = plain  # truncation == floor for values >= 0
        return out

    def __repr__(self) -> str:
        return f"BlurBackground(sigma={self.sigma:g})"


def parse_color(text: str) -> tuple[int, int, int] | None:
    """A colour name or ``#rgb``/``#rrggbb`` as (r, g, b) 0..255; ``None`` if it is not one."""
    try:
        return ImageColor.getrgb(text)[:3]
    except ValueError:
        return None


def parse_background(
    spec: str | os.PathLike | tuple | Background | None, default: tuple[int, int, int] = DEFAULT_COLOR
) -> Background:
    """Turn a user's background choice into a :class:`Background`.

    Args:
        spec: ``None`` (``default`` colour), a :class:`Background`, an (r, g, b) tuple of
            0..255 ints, a colour name or ``#hex`` string, ``"transparent"``, ``"blur"`` or
            ``"blur:SIGMA"`` (Gaussian sigma in pixels, default 25, at most 1000), an image path or a video
            path (by suffix, see :data:`mattekit.io.video_reader.VIDEO_SUFFIXES`, or by content when
            the file holds video under another name).

    Raises:
        mattekit.errors.InputError: the string is none of these (a blur strength must be a
            finite number in (0, 1000]), or the file cannot be read.
    """
    from mattekit.io.sniff import refuse_special, sniff
    from mattekit.io.video_reader import VIDEO_SUFFIXES

    if spec is None:
        return ColorBackground(default)
    if isinstance(spec, Background):
        return spec
    if isinstance(spec, (tuple, list, np.ndarray)):
        if len(spec) != 3:
            raise InputError(str(spec), "a background colour needs three components (r, g, b)")
        return ColorBackground(tuple(spec))
    text = os.fspath(spec)
    path = Path(text)
    if not path.exists():
        word = text.strip().lower()
        if word == "transparent":
            return TransparentBackground()
        if word == "blur" or word.startswith("blur:"):
            value = word.partition(":")[2]
            try:
                sigma = float(value) if value else DEFAULT_BLUR_SIGMA
            except ValueError:
                raise InputError(text, "blur strength must be a number of pixels, e.g. blur:25") from None
            try:
                return BlurBackground(sigma)
            except ParameterError as exc:  # a bad background string is a bad input, as above
                raise InputError(text, exc.problem) from None
        rgb = parse_color(text)
        if rgb is not None:
            return ColorBackground(rgb)
        raise InputError(
            text, "background is neither a colour name/#hex, 'blur[:N]', 'transparent' nor an existing file"
        )
    if path.is_dir():
        raise InputError(text, "background is a folder; give an image or a video file")
    refuse_special(path)
    if path.suffix.lower() in VIDEO_SUFFIXES or (sniff(path) or "").endswith("video"):  # content over name
        return VideoBackground(path)
    return ImageBackground(path)
