"""Bring a matte computed at a reduced working size up to the photo's full size, in bands of rows.

The network's own last stage, RVM's Deep Guided Filter, is a local linear model ``y = A·x + b``
whose coefficients are computed at low resolution and bilinearly upsampled to be applied to the
full-resolution frame. This module does the same for a result computed at a working size: it fits
``y ≈ a·x + b`` in 3×3 windows of the working image (a guided filter: He, Sun, Tang, "Guided
Image Filtering", TPAMI 2013; applied across scales as in He & Sun, "Fast Guided Filter",
arXiv:1505.00996, 2015), upsamples ``a`` and ``b`` bilinearly (half-pixel centres, as
``cv2.resize``) and evaluates ``a·x + b`` with the full-size guide ``x``, a few rows at a time, so
no full-size float temporary is made. The guide of the alpha is the mean of R, G, B (as in RVM's
filter); the guide of each foreground channel is that channel.

Measured on the real 1920×1080 stills against the network run at full size
(``benchmarks/image_cap.py``): this is 20–30 % closer than plain bilinear upsampling of the
result.
"""

from __future__ import annotations

import cv2
import numpy as np

RADIUS = 1  # window 3×3 at the working size (radius 2 and 4 were farther from the full-size run)
EPS = 1e-4  # regularisation of a (guide in 0..1); 1e-6..1e-4 measured equal, 1e-2 worse
BAND_BYTES = 4 << 20  # float32 bytes per full-width row band


def working_size(height: int, width: int, max_pixels: int) -> tuple[int, int]:
    """The size at which an image of ``height`` × ``width`` is matted.

    Returns the size itself when it has at most ``max_pixels`` pixels, else the largest size of
    the same aspect ratio within ``max_pixels`` (each side at least 1).
    """
    if height * width <= max_pixels:
        return height, width
    scale = (max_pixels / (height * width)) ** 0.5
    return max(1, min(height, int(height * scale))), max(1, min(width, int(width * scale)))


def _box(x: np.ndarray) -> np.ndarray:
    k = 2 * RADIUS + 1
    return cv2.boxFilter(x, -1, (k, k), borderType=cv2.BORDER_REFLECT)


def fit_coefficients(guide: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Guided-filter coefficients of ``target ≈ a·guide + b`` at the working size.

    Args:
        guide, target: h×w float32.

    Returns:
        ``(a, b)``, two h×w float32 arrays, already averaged over the windows.
    """
    mean_g, mean_t = _box(guide), _box(target)
    cov = _box(guide * target) - mean_g * mean_t
    var = _box(guide * guide) - mean_g * mean_g
    a = cov / (var + np.float32(EPS))
    b = mean_t - a * mean_g
    return _box(a), _box(b)


def _bilinear_rows(coef: np.ndarray, rows: slice, height: int, width: int) -> np.ndarray:
    """Rows ``rows`` of ``coef`` (h×w) bilinearly resized to ``height`` × ``width``."""
    h = coef.shape[0]
    ys = (np.arange(rows.start, rows.stop, dtype=np.float64) + 0.5) * (h / height) - 0.5
    ys = np.clip(ys, 0.0, h - 1)
    i0 = np.floor(ys).astype(np.intp)
    i1 = np.minimum(i0 + 1, h - 1)
    wy = (ys - i0).astype(np.float32)[:, None]
    lo, hi = int(i0[0]), int(i1[-1]) + 1
    wide = cv2.resize(coef[lo:hi], (width, hi - lo), interpolation=cv2.INTER_LINEAR)
    if wide.ndim == 1:  # OpenCV drops a dimension of one row
        wide = wide.reshape(hi - lo, width)
    out = wide[i0 - lo]
    out *= 1 - wy
    out += wide[i1 - lo] * wy
    return out


def row_bands(height: int, width: int) -> list[slice]:
    """Slices of rows of about :data:`BAND_BYTES` of float32 each, covering ``height``."""
    rows = max(1, BAND_BYTES // (4 * max(width, 1)))
    return [slice(y, min(height, y + rows)) for y in range(0, height, rows)]


def guided_upsample(coefficients: tuple[np.ndarray, np.ndarray], guide_rows, out: np.ndarray) -> None:
    """Evaluate ``clip(a↑·x + b↑, 0, 1)`` into ``out`` band by band.

    Args:
        coefficients: ``(a, b)`` from :func:`fit_coefficients`, h×w float32.
        guide_rows: a function of a row slice returning those rows of the full-size guide x
            (rows×W float32, 0..1).
        out: H×W float32 array (or a strided H×W view, e.g. one channel of H×W×3) to fill.
    """
    height, width = out.shape
    a, b = coefficients
    for band in row_bands(height, width):
        value = _bilinear_rows(a, band, height, width)
        value *= guide_rows(band)
        value += _bilinear_rows(b, band, height, width)
        np.clip(value, 0.0, 1.0, out=out[band])
