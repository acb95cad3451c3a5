"""Alpha compositing of the network's foreground over a background.

``C = F·α + B·(1 − α)`` (Porter & Duff, "Compositing Digital Images", SIGGRAPH 1984), with the
foreground colour ``F`` predicted by the network rather than the raw frame, so that the old
background's colour does not bleed into semi-transparent hair.
"""

from __future__ import annotations

import numpy as np


def composite(fgr: np.ndarray, alpha: np.ndarray, background: np.ndarray) -> np.ndarray:
    """Blend a foreground over a background.

    Args:
        fgr: H×W×3 float32 RGB in 0..1 (straight, not premultiplied).
        alpha: H×W float32 in 0..1.
        background: H×W×3 uint8 or float32 (0..1) RGB, or a length-3 colour of the same kind.

    Returns:
        H×W×3 uint8 RGB.
    """
    bg = np.asarray(background)
    bg = bg.astype(np.float32) * (1.0 / 255.0) if bg.dtype == np.uint8 else bg.astype(np.float32, copy=False)
    a = alpha[..., None]
    out = bg + (fgr - bg) * a
    return np.clip(out * 255.0 + 0.5, 0, 255).astype(np.uint8)


def to_rgba(fgr: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Build a straight-alpha RGBA cut-out.

    Args:
        fgr: H×W×3 float32 RGB in 0..1.
        alpha: H×W float32 in 0..1.

    Returns:
        H×W×4 uint8; colour channels are the foreground colour (not multiplied by alpha).
    """
    h, w = alpha.shape
    out = np.empty((h, w, 4), dtype=np.uint8)
    out[..., :3] = np.clip(fgr * 255.0 + 0.5, 0, 255)
    out[..., 3] = np.clip(alpha * 255.0 + 0.5, 0, 255)
    return out
