"""Foreground colour estimation from an image and its alpha matte (pymatting)."""

from __future__ import annotations

import numpy as np
import pymatting

from mattekit.classical.estimate_alpha import as_float_image


def estimate_foreground(image: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Estimate the straight (not premultiplied) foreground colour F in I = αF + (1-α)B.

    Uses pymatting's multi-level foreground estimation: Germer et al., "Fast Multi-Level
    Foreground Estimation", ICPR 2020 (``estimate_foreground_ml``).

    Parameters
    ----------
    image : ndarray, H×W×3, uint8 0..255 or float 0..1, RGB
    alpha : ndarray, H×W, float 0..1

    Returns
    -------
    ndarray, H×W×3 float32 RGB in 0..1

    Raises
    ------
    ValueError
        If the image is not H×W×3 or the alpha's size differs.
    """
    img = as_float_image(image)
    a = np.asarray(alpha, dtype=np.float64)
    if a.shape != img.shape[:2]:
        raise ValueError(f"alpha size {a.shape} differs from image size {img.shape[:2]}")
    fgr = pymatting.estimate_foreground_ml(img, np.clip(a, 0.0, 1.0))
    return np.clip(fgr, 0.0, 1.0).astype(np.float32)


# pixels of context on each side of a tile. Measured against the whole solve on the 1920×1080 stills
# with 512×512 tiles (benchmarks/image_cap.py): mean |ΔF|·α 0.15–0.16/255 for 16, 32, 64 and 128 px
# alike (the largest, 21–32/255 at a few pixels, comes from the shallower pyramid of a tile, not
# from missing context), so a small overlap suffices.
TILE_OVERLAP = 32


def _ml32(rgb: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """pymatting's multilevel estimate on float32 copies (half the memory of float64)."""
    if rgb.shape[0] * rgb.shape[1] == 1:
        # one pixel has no neighbours to borrow colour from: F = I solves I = αF + (1-α)B with
        # B = I (pymatting divides by its zero pyramid depth here)
        return rgb.astype(np.float32) * np.float32(1.0 / 255.0)
    image = rgb.astype(np.float32) * np.float32(1.0 / 255.0)
    fgr = pymatting.estimate_foreground_ml(image, np.clip(alpha, 0.0, 1.0).astype(np.float32))
    return np.clip(fgr, 0.0, 1.0).astype(np.float32, copy=False)


def estimate_foreground_ml(rgb: np.ndarray, alpha: np.ndarray, max_pixels: int | None = None) -> np.ndarray:
    """Foreground colour from an image and its alpha, by pymatting's multilevel estimation.

    Germer et al., "Fast Multi-Level Foreground Estimation", ICPR 2020
    (``pymatting.estimate_foreground_ml``), in float32. An image of more than ``max_pixels``
    pixels is solved in square tiles of about ``max_pixels`` pixels, each with
    :data:`TILE_OVERLAP` pixels of context on every side of the part it keeps, so memory is
    bounded by the tile; up to ``max_pixels`` the whole image is solved at once.

    Args:
        rgb: H×W×3 uint8 RGB.
        alpha: H×W float32 in 0..1.
        max_pixels: largest area solved at once; ``None`` for no limit.

    Returns:
        H×W×3 float32 RGB in 0..1 (straight).
    """
    height, width = alpha.shape
    if max_pixels is None or height * width <= max_pixels:
        return _ml32(rgb, alpha)
    side = max(int(max_pixels**0.5), 4 * TILE_OVERLAP)
    step = side - 2 * TILE_OVERLAP
    out = np.empty((height, width, 3), np.float32)
    for top in range(0, height, step):
        for left in range(0, width, step):
            y0, x0 = max(0, top - TILE_OVERLAP), max(0, left - TILE_OVERLAP)
            y1, x1 = min(height, top + step + TILE_OVERLAP), min(width, left + step + TILE_OVERLAP)
            fgr = _ml32(rgb[y0:y1, x0:x1], alpha[y0:y1, x0:x1])
            bottom, right = min(height, top + step), min(width, left + step)
            out[top:bottom, left:right] = fgr[top - y0 : bottom - y0, left - x0 : right - x0]
    return out
