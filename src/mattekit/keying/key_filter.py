"""FFmpeg's keying filters on RGB frames, through PyAV's filter graph.

Methods (FFmpeg filter documentation, libavfilter ``vf_chromakey.c``, ``vf_hsvkey.c``,
``vf_despill.c``, ``vf_backgroundkey.c``):

- ``chromakey``: alpha from the distance of each pixel's (U, V) to the key colour's;
  then ``despill`` removes the screen's colour cast from the foreground.
- ``hsvkey``: alpha from the distance to the key colour's hue and saturation; then ``despill``.
- ``backgroundkey``: alpha from the difference to a clean plate (the scene without the subject),
  fed to the filter as its first frame.
"""

from __future__ import annotations

import itertools
import math
from fractions import Fraction
from typing import cast

import av
import numpy as np

from mattekit.keying.key_color import KeySettings, hsv_cone

METHODS = ("chromakey", "hsvkey", "backgroundkey")


def _hsv_args(settings: KeySettings) -> str:
    """``hsvkey``'s options for the key colour: its hue, saturation and value in the filter's own
    cone (:func:`mattekit.keying.key_color.hsv_cone`). The filter maps its ``hue`` option ``H`` (degrees)
    to ``(526 − H) mod 360``; the value given here lands exactly on the key's angle. A negative
    option would mean "ignore this component", so all three are given positive."""
    hue, sat, val = (float(x) for x in hsv_cone(np.array(settings.color, np.float32)))
    option = (166.0 - math.degrees(hue)) % 360.0 or 360.0
    return (
        f"hue={option:.3f}:sat={sat:.5f}:val={val:.5f}"
        f":similarity={max(settings.similarity, 1e-5):.5f}:blend={settings.blend:.5f}"
    )


def _backgroundkey_args(settings: KeySettings) -> str:
    """``backgroundkey``'s options: the plate is never replaced (``threshold=1``: the filter
    otherwise takes any frame that differs from it by more than ``threshold`` on average as a new
    background, i.e. the first frame with the subject); a pixel is opaque above ``similarity +
    blend`` and transparent below ``similarity`` (the filter ramps down *below* its own similarity
    over ``255 × blend`` of its 0..765 difference)."""
    top = min(1.0, settings.similarity + settings.blend)
    return f"threshold=1:similarity={top:.5f}:blend={min(1.0, 3 * settings.blend):.5f}"


class KeyFilter:
    """Key H×W×3 uint8 RGB frames into H×W×4 uint8 RGBA (straight alpha, despilled colour).

    Args:
        width, height: frame size.
        settings: key colour and thresholds (:func:`mattekit.keying.pick_key_settings`).
        method: ``"chromakey"``, ``"hsvkey"`` or ``"backgroundkey"``.
        clean_plate: H×W×3 uint8 RGB of the empty scene; required by ``backgroundkey``.
        despill: remove the screen colour's spill (``chromakey``/``hsvkey``).

    Raises:
        ValueError: unknown method, or ``backgroundkey`` without a clean plate of the frame size.
    """

    def __init__(
        self,
        width: int,
        height: int,
        settings: KeySettings,
        method: str = "chromakey",
        clean_plate: np.ndarray | None = None,
        despill: bool = True,
    ):
        if method not in METHODS:
            raise ValueError(f"unknown keying method {method!r} (known: {', '.join(METHODS)})")
        if method == "backgroundkey" and (clean_plate is None or clean_plate.shape[:2] != (height, width)):
            raise ValueError("backgroundkey needs a clean plate of the frame's size")
        self.graph = av.filter.Graph()
        chain = [
            self.graph.add_buffer(
                width=width,
                height=height,
                format="rgb24",  # type: ignore[arg-type]  # PyAV takes the name
                time_base=Fraction(1, 30),
            )
        ]
        if method == "chromakey":
            chain.append(
                self.graph.add(
                    "chromakey", f"color={settings.hex}:similarity={settings.similarity:.4f}:blend={settings.blend:.4f}"
                )
            )
        elif method == "hsvkey":
            chain.append(self.graph.add("hsvkey", _hsv_args(settings)))
        else:
            chain.append(self.graph.add("backgroundkey", _backgroundkey_args(settings)))
        if despill and method != "backgroundkey":
            chain.append(self.graph.add("format", "rgba"))
            chain.append(self.graph.add("despill", f"type={settings.spill}"))
        chain.append(self.graph.add("format", "rgba"))
        chain.append(self.graph.add("buffersink"))
        for a, b in itertools.pairwise(chain):
            a.link_to(b)
        self.graph.configure()
        self._pts = 0
        if method == "backgroundkey" and clean_plate is not None:
            self(clean_plate)  # the filter takes its first frame as the background

    def __call__(self, rgb: np.ndarray) -> np.ndarray:
        """One H×W×3 uint8 frame -> H×W×4 uint8 RGBA."""
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
        frame.pts = self._pts
        frame.time_base = Fraction(1, 30)
        self._pts += 1
        self.graph.push(frame)
        return cast(av.VideoFrame, self.graph.pull()).to_ndarray(format="rgba")
