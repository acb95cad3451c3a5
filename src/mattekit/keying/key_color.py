"""Pick the key colour and thresholds of a green/blue screen from a frame's border.

Method: the screen fills most of a frame's border in keying footage. The key colour is the
per-channel median of a border band (5 % of the shorter side wide). The thresholds follow
FFmpeg's ``chromakey`` distance, ``d = sqrt((ΔU² + ΔV²) / (2·255²))`` in BT.601 chroma: the
screen's own spread, the 75th percentile of ``d`` over the border band (whose remaining quarter
may be the subject touching the edge), times 1.25 gives ``similarity`` (screen pixels closer than
that become fully transparent), and ``blend`` (the soft ramp to opaque) is 0.75 of that. Both are
in FFmpeg's units: its RGB->YUV conversion is limited range, chroma scaled by 224/255. On the CorridorKey
green-screen sample (a dim, vignetted screen) this keys 99.9 % of the screen to 0 while the white
shirt, twice as far in chroma, stays opaque; dark hair, nearly neutral like a dim screen, is where
any chroma keyer becomes partly transparent.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

LIMITED_RANGE_CHROMA = 224.0 / 255.0


@dataclass(frozen=True)
class KeySettings:
    """What the keyer needs.

    Attributes:
        color: the screen colour, (R, G, B) uint8.
        similarity: chroma distance (0..1, FFmpeg units) keyed fully transparent.
        blend: width of the soft ramp above ``similarity`` (0 = hard edge).
        spill: ``"green"`` or ``"blue"``: which colour ``despill`` removes.
    """

    color: tuple[int, int, int]
    similarity: float
    blend: float
    spill: str

    @property
    def hex(self) -> str:
        """``0xRRGGBB``, as FFmpeg's colour options take it."""
        return "0x" + "".join(f"{c:02x}" for c in self.color)


def chroma(rgb: np.ndarray) -> np.ndarray:
    """BT.601 (U, V) of RGB values ``...×3`` (0..255), as float32 ``...×2``."""
    m = np.array([[-0.168736, 0.5], [-0.331264, -0.418688], [0.5, -0.081312]], np.float32)
    return rgb.astype(np.float32) @ m + 128.0


def border_band(rgb: np.ndarray, fraction: float = 0.05) -> np.ndarray:
    """The pixels of a band along the four edges of an H×W×3 image, as N×3."""
    h, w = rgb.shape[:2]
    k = max(1, round(min(h, w) * fraction))
    return np.concatenate(
        [rgb[:k].reshape(-1, 3), rgb[-k:].reshape(-1, 3), rgb[k:-k, :k].reshape(-1, 3), rgb[k:-k, -k:].reshape(-1, 3)]
    )


def pick_key_settings(
    rgb: np.ndarray,
    color: tuple[int, int, int] | None = None,
    similarity: float | None = None,
    blend: float | None = None,
) -> KeySettings:
    """Key colour and thresholds for an H×W×3 uint8 RGB frame of screen footage.

    Any of ``color``, ``similarity``, ``blend`` given is kept as given; the others are measured
    on the frame's border (see the module docstring).

    Raises:
        ValueError: a given similarity/blend is outside 0..1 or not finite.
    """
    for name, value in (("similarity", similarity), ("blend", blend)):
        if value is not None and not (np.isfinite(value) and 0.0 <= value <= 1.0):
            raise ValueError(f"{name} must be between 0 and 1, got {value}")
    band = border_band(rgb)
    if color is None:
        r, g, b = (int(c) for c in np.median(band, axis=0))
        color = (r, g, b)
    distance = np.sqrt(((chroma(band) - chroma(np.array(color))) ** 2).sum(axis=1) / (2 * 255.0**2))
    spread = float(np.percentile(distance, 75)) * LIMITED_RANGE_CHROMA
    if similarity is None:
        similarity = float(np.clip(1.25 * spread, 0.005, 0.4))
    if blend is None:
        blend = float(np.clip(0.75 * similarity, 0.005, 0.4))
    spill = "blue" if color[2] > color[1] else "green"
    return KeySettings(color=color, similarity=similarity, blend=blend, spill=spill)
