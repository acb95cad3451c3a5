"""One validator per user-facing parameter, shared by every entry point.

The CLI, :func:`~mattekit.pipeline.video.convert_video`, :func:`~mattekit.pipeline.image.matte_image`,
the folder batches and the server all call these functions, so one value is accepted or refused
with the same message everywhere. Each returns the normalised value, or raises
:class:`~mattekit.errors.ParameterError` (a :class:`ValueError`) for a value out of range and
:class:`~mattekit.errors.ParameterTypeError` (a :class:`TypeError`) for a value of the wrong type
(a string, a bool, ``None`` where a number is needed). Both are
:class:`~mattekit.errors.MattekitError` s: the CLI prints one line and exits 2. Text typed by a
user (a CLI option, a form field) goes through :func:`parse` with the same validators.

Ranges (the reason for each bound is beside its constant):

===================== ======================================================= =================
parameter             accepted                                                ``None`` means
===================== ======================================================= =================
downsample_ratio      finite real in (0, 1], and shorter side × ratio ≥ 1 px   auto (RVM's rule)
seq_chunk             integer in [1, 1024]                                     (not allowed)
output_video_mbps     finite real in [0.01, 1000] Mbit/s                       quality-based
frame_rate            finite real in [0.01, 1000] frames per second            30
blur sigma            finite real in (0, 1000] pixels                          25
passes                integer in [1, 100]                                      (not allowed)
cancel                ``None`` or an object with ``is_set()`` (threading.Event) never cancelled
===================== ======================================================= =================
"""

from __future__ import annotations

import inspect
import math
import numbers
import operator
import os
from pathlib import Path

import numpy as np

from mattekit.errors import InputError, ParameterError, ParameterTypeError

# RVM's recommended working size: the encoder sees frames whose longer side is at most 512 px.
AUTO_LONG_SIDE = 512
# The network needs at least 1×1 pixels after downsampling. Measured with the real model
# (tests/test_validation.py): it runs when float32(ratio) * float32(side) >= 1 for both sides
# (a 1×1 frame at ratio 1, a 1000-px side at 0.001) and fails inside ONNX Runtime ("Invalid
# input shape: {0,0}") just below, as the resize floors float32(ratio * side).
MIN_NETWORK_SIDE = 1
SEQ_CHUNK_RANGE = (1, 1024)  # ignored by the ONNX model (one frame per step); RVM uses 1..12
# 10 kbit/s: libx264 refuses bit rates under 1 kbit/s; 1000 Mbit/s is above every H.264 and VP9
# level's maximum (H.264 level 6.2 High: 800 Mbit/s; VP9 level 6.2: 480 Mbit/s).
MBPS_RANGE = (0.01, 1000.0)
# Every output type writes and decodes back every frame from 0.001 to 1000 fps (GIF keeps one
# frame per 10 ms); at 10000 fps an H.264 MP4 decodes back with 0 frames.
FRAME_RATE_RANGE = (0.01, 1000.0)
# Gaussian sigma of ``blur:N``, pixels. Above the frame's longer side a blur is a flat average
# anyway (the compositor caps it there); 1000 px covers a 4K frame's width/4.
BLUR_SIGMA_MAX = 1000.0
PASSES_RANGE = (1, 100)  # STILL_PASSES = 3; alpha stops changing measurably after ~10


def validate_path(value, name: str) -> Path:
    """A file or folder path given to a Python entry point: a ``str`` or an ``os.PathLike``
    (``pathlib.Path``), as a :class:`~pathlib.Path`.

    Raises:
        mattekit.errors.ParameterTypeError: anything else (an int, a list, ``bytes``, a PIL
            image), instead of Python's "expected str, bytes or os.PathLike object, not int",
            which names no argument.
    """
    if isinstance(value, str) or (isinstance(value, os.PathLike) and isinstance(os.fspath(value), str)):
        return Path(value)
    raise ParameterTypeError(name, f"must be a path (str or os.PathLike), not {type(value).__name__}")


def pixel_limit(variable: str, default: int) -> int:
    """A limit in pixels: ``default``, or the environment variable ``variable`` when set (e.g.
    lowered in tests, or raised on a machine with more memory).

    Raises:
        mattekit.errors.InputError: the variable is not a whole number >= 1.
    """
    text = os.environ.get(variable)
    if text is None:
        return default
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise InputError(variable, f"must be a whole number of pixels >= 1, not {text!r}")
    return value


def _number(value, name: str, what: str = "a number") -> float:
    """``value`` as a float if it is a real number (not a bool or a string), else a type error."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        shown = f"the string {value!r}" if isinstance(value, str) else f"{value!r} ({type(value).__name__})"
        raise ParameterTypeError(name, f"must be {what}, not {shown}")
    number = float(value)
    if not math.isfinite(number):
        raise ParameterError(name, f"must be {what}, not {number}")
    return number


def _integer(value, name: str, low: int, high: int) -> int:
    if isinstance(value, (bool, np.bool_)):
        raise ParameterTypeError(name, f"must be an integer in [{low}, {high}], not {value!r}")
    try:
        number = operator.index(value)
    except TypeError:
        shown = f"the string {value!r}" if isinstance(value, str) else f"{value!r} ({type(value).__name__})"
        raise ParameterTypeError(name, f"must be an integer in [{low}, {high}], not {shown}") from None
    if not low <= number <= high:
        raise ParameterError(name, f"must be an integer in [{low}, {high}], not {number}")
    return number


def _in_range(value, name: str, low: float, high: float, unit: str = "") -> float | None:
    if value is None:
        return None
    what = f"a number in [{low:g}, {high:g}]{unit}"
    number = _number(value, name, what)
    if not low <= number <= high:
        raise ParameterError(name, f"must be {what}, not {number:g}")
    return number


def network_side(ratio: float, side: int) -> int:
    """Pixels the network's encoder gets for a frame side of ``side`` px at ``ratio``
    (its resize computes ``floor(float32(ratio) * side)`` in float32)."""
    return math.floor(np.float32(ratio) * np.float32(side))


def min_downsample_ratio(height: int, width: int) -> float:
    """The smallest ratio that leaves the network :data:`MIN_NETWORK_SIDE` px on both sides
    (rounded up to 4 significant digits, so it can be shown and typed back)."""
    side = max(1, min(int(height), int(width)))
    exact = MIN_NETWORK_SIDE / side
    digits = 3 - math.floor(math.log10(exact))
    ratio = min(1.0, math.ceil(exact * 10**digits) / 10**digits)
    while network_side(ratio, side) < MIN_NETWORK_SIDE:  # float32 rounding; never more than a step
        ratio = min(1.0, float(np.nextafter(np.float32(ratio), np.float32(2))))
    return ratio


def auto_downsample_ratio(height: int, width: int) -> float:
    """RVM's recommended ratio, ``min(512 / max(height, width), 1)``, raised when needed so the
    shorter side still gets :data:`MIN_NETWORK_SIDE` px (frames over 512:1, e.g. 16×10000)."""
    return max(min(AUTO_LONG_SIDE / max(height, width, 1), 1.0), min_downsample_ratio(height, width))


def validate_downsample_ratio(
    value,
    height: int | None = None,
    width: int | None = None,
    *,
    source: str | Path | None = None,
    name: str = "downsample_ratio",
) -> float | None:
    """Check a downsample ratio; with the frame size, return the ratio to use.

    Args:
        value: ``None`` (auto) or a finite real in (0, 1]. ``0`` is refused like any value out of
            range (it does not mean auto).
        height, width: the frame size in pixels, when known. Then a ratio that leaves the
            network less than 1 px on the shorter side is refused, naming the smallest ratio that
            works. ``None`` stays ``None``: the auto ratio is the model's
            (:meth:`mattekit.models.base.ModelSession.auto_downsample_ratio`).
        source: the input file (named in the message of the frame-size check).
        name: the parameter's name in messages.

    Returns:
        ``None`` (auto) or the ratio as a float.

    Raises:
        mattekit.errors.ParameterTypeError: not a real number (e.g. the string ``"0.5"``).
        mattekit.errors.ParameterError: NaN, infinite, <= 0, > 1, or too small for the frame.
    """
    if value is not None:
        what = "a number in (0, 1] (or left out for auto)"
        value = _number(value, name, what)
        if not 0 < value <= 1:
            raise ParameterError(name, f"must be {what}, not {value:g}")
    if value is None or height is None or width is None:
        return value
    if min(network_side(value, height), network_side(value, width)) < MIN_NETWORK_SIDE:
        low = min_downsample_ratio(height, width)
        problem = (
            f"{value:g} leaves the network {network_side(value, width)}x{network_side(value, height)} "
            f"px of this {width}x{height} frame; it needs at least {MIN_NETWORK_SIDE} px a side "
            f"(use a ratio >= {low:g}, or auto)"
        )
        if source is None:
            raise ParameterError(name, problem)
        raise ParameterError(source, f"{name} {problem}", path=source)
    return value


def validate_seq_chunk(value, name: str = "seq_chunk") -> int:
    """An integer in :data:`SEQ_CHUNK_RANGE` (RVM's ``seq_chunk``; the ONNX model ignores it)."""
    return _integer(value, name, *SEQ_CHUNK_RANGE)


def validate_passes(value, name: str = "passes") -> int:
    """An integer in :data:`PASSES_RANGE` (network passes over a still image)."""
    return _integer(value, name, *PASSES_RANGE)


def validate_output_video_mbps(value, name: str = "output_video_mbps") -> float | None:
    """``None`` (quality-based) or a bit rate in :data:`MBPS_RANGE` Mbit/s (``0`` is refused)."""
    return _in_range(value, name, *MBPS_RANGE, unit=" Mbit/s (or left out for quality-based)")


def validate_frame_rate(value, name: str = "frame_rate") -> float | None:
    """``None`` (30) or frames per second in :data:`FRAME_RATE_RANGE`."""
    return _in_range(value, name, *FRAME_RATE_RANGE, unit=" frames/s")


def validate_blur_sigma(value, name: str = "blur") -> float:
    """A Gaussian sigma in (0, :data:`BLUR_SIGMA_MAX`] pixels."""
    what = f"a blur strength in (0, {BLUR_SIGMA_MAX:g}] pixels"
    sigma = _number(value, name, what)
    if not 0 < sigma <= BLUR_SIGMA_MAX:
        raise ParameterError(name, f"must be {what}, not {sigma:g}")
    return sigma


def parse(text: str, validator, words: dict | None = None, name: str | None = None, integer: bool = False):
    """A value typed by a user (a CLI option, a form field) checked by ``validator``.

    Args:
        text: what was typed, e.g. ``"0.5"``, ``"auto"``, ``" 30 "``.
        validator: one of this module's ``validate_*`` functions.
        words: words that stand for a value, e.g. ``{"auto": None}`` (matched case-insensitively).
        name: the name in messages (default: the validator's own).
        integer: parse an integer (``"1.5"`` is then refused) instead of a float.

    Raises:
        mattekit.errors.ParameterError: not a number (nor one of ``words``), or refused by
            ``validator``.
    """
    kwargs = {} if name is None else {"name": name}
    word = text.strip().lower()
    if words and word in words:
        return validator(words[word], **kwargs) if words[word] is not None else None
    try:
        number = int(text) if integer else float(text)
    except ValueError:
        kind = "an integer" if integer else "a number"
        either = "".join(f"{w!r} or " for w in words or {})
        label = name or inspect.signature(validator).parameters["name"].default
        raise ParameterError(label, f"{text!r} is not {either}{kind}") from None
    return validator(number, **kwargs)


def validate_cancel(value, name: str = "cancel"):
    """``None`` or an object with an ``is_set()`` method (a :class:`threading.Event`)."""
    if value is not None and not callable(getattr(value, "is_set", None)):
        raise ParameterTypeError(name, f"must be a threading.Event (or None), not {value!r} ({type(value).__name__})")
    return value
