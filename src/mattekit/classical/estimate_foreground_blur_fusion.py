"""Fast foreground colour from an image and its alpha by blur fusion (Forte & Pitié,
"Approximate Fast Foreground Colour Estimation", ICIP 2021)."""

from __future__ import annotations

import numpy as np

#: Box-filter sizes of the two passes, as in the paper: a wide pass, then a narrow one from its result.
RADII = (90, 6)


def estimate_foreground_blur_fusion(image: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Estimate the straight foreground colour F in I = αF + (1 − α)B with two box-blur passes.

    Forte & Pitié: each pass takes the alpha-weighted local means of the foreground and background
    estimates (box filters of size 90, then 6) and moves the foreground mean along the compositing
    equation so that it explains the pixel. About 6x faster than the multilevel estimate and 2.4x
    more accurate than using the image's own colour, on the hairball clip (``docs/models.md``).

    Args:
        image: H×W×3 float32 RGB in 0..1.
        alpha: H×W float32 in 0..1.

    Returns:
        H×W×3 float32 RGB in 0..1.

    Raises:
        ValueError: the shapes do not match.
    """
    import cv2

    if image.ndim != 3 or image.shape[2] != 3 or alpha.shape != image.shape[:2]:
        raise ValueError(f"image must be H×W×3 and alpha H×W of the same size, got {image.shape} and {alpha.shape}")
    image = np.asarray(image, np.float32)
    alpha = np.clip(np.asarray(alpha, np.float32), 0.0, 1.0)
    a = alpha[..., None]
    fgr, bgr = image, image
    for size in RADII:
        mean_a = cv2.blur(alpha, (size, size))[..., None]
        mean_f = cv2.blur(fgr * a, (size, size)) / (mean_a + 1e-5)
        bgr = cv2.blur(bgr * (1 - a), (size, size)) / ((1 - mean_a) + 1e-5)
        fgr = np.clip(mean_f + a * (image - a * mean_f - (1 - a) * bgr), 0.0, 1.0)
    return fgr.astype(np.float32, copy=False)
