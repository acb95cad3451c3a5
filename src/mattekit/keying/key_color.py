"""Pick the key colour and thresholds of a green/blue screen from a frame's border.

Method: the screen fills most of a frame's border in keying footage. The key colour is the
per-channel median of a border band (5 % of the shorter side wide). Each keyer has its own distance
of a pixel to the key (FFmpeg's ``vf_chromakey.c``, ``vf_hsvkey.c``, ``vf_backgroundkey.c``):

- ``chromakey``: ``d = sqrt((ΔU² + ΔV²) / (2·255²))`` in BT.601 chroma (FFmpeg converts the frame
  to limited range, chroma scaled by 224/255);
- ``hsvkey``: the distance in FFmpeg's HSV cone, saturation ``s = |(U, V) − 128| / (√2·127.5)``,
  value ``v = Y / 255`` and hue the angle of (U, V) (limited-range BT.601):
  ``d = sqrt(s²v² + s_k²v_k² − 2·s·v·s_k·v_k·cos(h − h_k) + (v − v_k)²)``;
- ``backgroundkey``: the difference to the clean plate, ``d = (|ΔR| + |ΔG| + |ΔB|) / 765`` (FFmpeg
  keys RGB input in planar RGB).

The thresholds come from the screen's own spread: the 75th percentile of ``d`` over the border band
(whose remaining quarter may be the subject touching the edge), times 1.25, gives ``similarity``
(screen pixels closer than that become fully transparent), and ``blend`` (the soft ramp to opaque
above it) is 0.75 of that. On the CorridorKey green-screen sample (a dim, vignetted screen)
chromakey keys 99.9 % of the screen to 0 while the white shirt, twice as far in chroma, stays
opaque; dark hair, nearly neutral like a dim screen, is where any chroma keyer becomes partly
transparent.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class KeySettings:
    """What the keyer needs.

    Attributes:
        color: the screen colour, (R, G, B) uint8.
        similarity: distance to the key (0..1, the keyer's own: see the module docstring) keyed
            fully transparent.
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


def yuv_limited(rgb: np.ndarray) -> np.ndarray:
    """Limited-range BT.601 (Y, U, V) of RGB values ``...×3`` (0..255), as float32 ``...×3``: what
    FFmpeg's scaler gives the YUV keyers from RGB frames (Y 16..235, U and V 16..240)."""
    m = (
        np.array([[0.299, -0.168736, 0.5], [0.587, -0.331264, -0.418688], [0.114, 0.5, -0.081312]], np.float32)
        * np.array([219.0, 224.0, 224.0], np.float32)
        / 255.0
    )
    return rgb.astype(np.float32) @ m + np.array([16.0, 128.0, 128.0], np.float32)


def hsv_cone(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """FFmpeg ``hsvkey``'s (hue in radians 0..2π, saturation, value) of RGB values ``...×3``."""
    y, u, v = np.moveaxis(yuv_limited(rgb), -1, 0)
    uf, vf = u - 127.5, v - 127.5
    return np.arctan2(uf, vf) + np.pi, np.sqrt((uf**2 + vf**2) / (127.5**2 * 2)), y / 255.0


def hsv_distance(rgb: np.ndarray, color: tuple[int, int, int]) -> np.ndarray:
    """``hsvkey``'s distance of RGB values ``...×3`` to the key colour (see the module docstring)."""
    h, s, v = hsv_cone(rgb)
    hk, sk, vk = hsv_cone(np.array(color, np.float32))
    sq = (s * v) ** 2 + (sk * vk) ** 2 - 2 * s * v * sk * vk * np.cos(hk - h) + (v - vk) ** 2
    return np.sqrt(np.maximum(sq, 0.0))


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
    method: str = "chromakey",
    clean_plate: np.ndarray | None = None,
) -> KeySettings:
    """Key colour and thresholds for an H×W×3 uint8 RGB frame of screen footage.

    Any of ``color``, ``similarity``, ``blend`` given is kept as given; the others are measured
    on the frame's border in the distance of ``method`` (``chromakey``, ``hsvkey``, or
    ``backgroundkey``, which measures against ``clean_plate``, H×W×3 uint8 RGB; see the module
    docstring).

    Raises:
        ValueError: a given similarity/blend is outside 0..1 or not finite; ``backgroundkey``
            without a clean plate of the frame's size.
    """
    for name, value in (("similarity", similarity), ("blend", blend)):
        if value is not None and not (np.isfinite(value) and 0.0 <= value <= 1.0):
            raise ValueError(f"{name} must be between 0 and 1, got {value}")
    band = border_band(rgb)
    if color is None:
        r, g, b = (int(c) for c in np.median(band, axis=0))
        color = (r, g, b)
    if method == "backgroundkey":
        if clean_plate is None or clean_plate.shape[:2] != rgb.shape[:2]:
            raise ValueError("backgroundkey needs a clean plate of the frame's size")
        distance = np.abs(band.astype(np.float32) - border_band(clean_plate)).sum(axis=1) / 765.0
    elif method == "hsvkey":
        distance = hsv_distance(band, color)
    else:
        uv = yuv_limited(band)[:, 1:] - yuv_limited(np.array(color))[1:]
        distance = np.sqrt((uv**2).sum(axis=1) / (2 * 255.0**2))
    spread = float(np.percentile(distance, 75))
    if similarity is None:
        similarity = float(np.clip(1.25 * spread, 0.005, 0.4))
    if blend is None:
        blend = float(np.clip(0.75 * similarity, 0.005, 0.4))
    spill = "blue" if color[2] > color[1] else "green"
    return KeySettings(color=color, similarity=similarity, blend=blend, spill=spill)
