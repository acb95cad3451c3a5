"""Foreground colour estimation from an image and its alpha matte (pymatting)."""

from __future__ import annotations

import numpy as np
import pymatting

from mattekit.classical.estimate_alpha import as_float_image


def estimate_foreground(image: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Estimate the straight (not premultiplied) foreground colour F in I = αF + (1-α)B.

    Uses pymatting's multi-level foreground estimation: Germer, Uelwer, Conrad, Harmeling,
    'Fast Multi-Level Foreground Estimation', ICPR 2020 (``estimate_foreground_ml``).

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
