"""Per-image alpha matte errors: SAD, MSE, MAD, Grad and Conn.

All functions take the predicted and the ground-truth alpha as H×W arrays of floats in 0..1 and an
optional trimap (H×W, uint8 0/128/255 or float 0/0.5/1): when it is given, the error is summed or
averaged over its unknown region only (every value that is neither 0 nor 255). Values are returned
*unscaled*, in alpha units as published; :mod:`mattekit.metrics.conventions` applies the scale factors
used by Robust Video Matting and PaddleSeg tables.

References
----------
Rhemann et al., "A Perceptually Motivated Online Benchmark for Image Matting", CVPR 2009 (SAD, MSE,
gradient error, connectivity error; Gaussian first-derivative filters with sigma = 1.4,
connectivity thresholds in steps of 0.1, theta = 0.15).
"""

from __future__ import annotations

from functools import lru_cache

import cv2
import numpy as np

#: Standard deviation of the Gaussian derivative filters of the gradient error (Rhemann et al.).
GRAD_SIGMA = 1.4
#: Threshold step of the connectivity error.
CONN_STEP = 0.1
#: Minimum distance to the connected level below which a pixel counts as fully connected (theta).
CONN_THETA = 0.15


def as_float_alpha(name: str, array: np.ndarray, layout: str = "H×W") -> np.ndarray:
    """An alpha (``layout`` "H×W") or alpha clip ("T×H×W") as float64 in 0..1 (uint8 is /255).

    Raises:
        ValueError: the array does not have ``layout``'s number of dimensions.
    """
    a = np.asarray(array)
    if a.ndim != layout.count("×") + 1:
        raise ValueError(f"{name} must be a {layout} alpha array, got shape {a.shape}")
    if a.dtype == np.uint8:
        return a.astype(np.float64) / 255.0
    return a.astype(np.float64, copy=False)


def unknown_mask(trimap: np.ndarray | None, shape: tuple[int, int]) -> np.ndarray:
    """Boolean H×W mask of the unknown region of ``trimap`` (everything if ``trimap`` is None).

    A uint8 trimap's unknown pixels are those that are neither 0 nor 255 (so 128 and any value
    a resampler produced); a float trimap's are those strictly between 0 and 1.

    Raises
    ------
    ValueError
        If the trimap is not H×W or H×W×C with the alpha's H×W.
    """
    if trimap is None:
        return np.ones(shape, dtype=bool)
    t = np.asarray(trimap)
    if t.ndim == 3:
        t = t[..., 0]
    if t.shape != tuple(shape):
        raise ValueError(f"trimap shape {t.shape} differs from alpha shape {tuple(shape)}")
    if t.dtype == np.uint8:
        return (t != 0) & (t != 255)
    return (t > 0) & (t < 1)


def _prepare(pred, gt, trimap):
    p = as_float_alpha("pred", pred)
    g = as_float_alpha("gt", gt)
    if p.shape != g.shape:
        raise ValueError(f"pred shape {p.shape} differs from gt shape {g.shape}")
    return p, g, unknown_mask(trimap, g.shape)


def sad(pred: np.ndarray, gt: np.ndarray, trimap: np.ndarray | None = None) -> float:
    """Sum of absolute differences, sum |pred - gt| over the region (alpha units, not ÷1000).

    Parameters
    ----------
    pred, gt : ndarray, H×W, float in 0..1 (uint8 0..255 is divided by 255)
    trimap : ndarray, H×W, optional
        Restricts the sum to the unknown region.

    Returns
    -------
    float
        The sum over the region; tables usually print it ÷1000 (see ``conventions``).

    Raises
    ------
    ValueError
        If the shapes differ.
    """
    p, g, m = _prepare(pred, gt, trimap)
    return float(np.abs(p - g)[m].sum())


def mse(pred: np.ndarray, gt: np.ndarray, trimap: np.ndarray | None = None) -> float:
    """Mean squared error over the region, mean (pred - gt)**2 (0 for an empty region).

    Parameters and errors as :func:`sad`. Rhemann et al.; RVM prints it ×1e3.
    """
    p, g, m = _prepare(pred, gt, trimap)
    n = int(m.sum())
    return float(((p - g)[m] ** 2).sum() / n) if n else 0.0


def mad(pred: np.ndarray, gt: np.ndarray, trimap: np.ndarray | None = None) -> float:
    """Mean absolute difference over the region, mean |pred - gt| (0 for an empty region).

    Parameters and errors as :func:`sad`. Robust Video Matting (Lin et al., "Robust High-Resolution
    Video Matting with Temporal Guidance", WACV 2022) prints it ×1e3.
    """
    p, g, m = _prepare(pred, gt, trimap)
    n = int(m.sum())
    return float(np.abs(p - g)[m].sum() / n) if n else 0.0


@lru_cache(maxsize=4)
def gaussian_derivative_filters(sigma: float = GRAD_SIGMA, epsilon: float = 1e-2):
    """The x and y first-derivative-of-Gaussian kernels of the gradient error.

    The kernel is G(y)·G'(x) on a square support whose half size is
    ceil(sigma·sqrt(-2·ln(sqrt(2π)·sigma·epsilon))) (9×9 for sigma = 1.4), scaled to unit L2 norm,
    as in the alphamatting.com / Deep Image Matting evaluation code; the y kernel is its transpose.

    Returns
    -------
    (ndarray, ndarray)
        ``(kx, ky)``, each (2h+1)×(2h+1) float64.
    """
    half = int(np.ceil(sigma * np.sqrt(-2.0 * np.log(np.sqrt(2.0 * np.pi) * sigma * epsilon))))
    r = np.arange(-half, half + 1, dtype=np.float64)
    g = np.exp(-(r**2) / (2.0 * sigma**2)) / (sigma * np.sqrt(2.0 * np.pi))
    dg = -r * g / sigma**2
    kx = np.outer(g, dg)  # rows vary with y (smoothing), columns with x (derivative)
    kx /= np.sqrt((kx**2).sum())
    return kx, kx.T.copy()


def gradient_magnitude(alpha: np.ndarray, sigma: float = GRAD_SIGMA) -> np.ndarray:
    """Magnitude of the Gaussian-derivative gradient of an H×W alpha (replicated borders), float64."""
    kx, ky = gaussian_derivative_filters(float(sigma))
    a = np.ascontiguousarray(alpha, dtype=np.float64)
    gx = cv2.filter2D(a, cv2.CV_64F, kx, borderType=cv2.BORDER_REPLICATE)
    gy = cv2.filter2D(a, cv2.CV_64F, ky, borderType=cv2.BORDER_REPLICATE)
    return np.hypot(gx, gy)


def _minmax(a: np.ndarray) -> np.ndarray:
    lo, hi = float(a.min()), float(a.max())
    return (a - lo) / (hi - lo) if hi > lo else np.zeros_like(a)


def grad(
    pred: np.ndarray,
    gt: np.ndarray,
    trimap: np.ndarray | None = None,
    sigma: float = GRAD_SIGMA,
    normalize: bool = False,
) -> float:
    """Gradient error, sum (|∇pred| - |∇gt|)**2 over the region (alpha units, not ÷1000).

    Gradients are the responses of first-derivative-of-Gaussian filters (sigma = 1.4, see
    :func:`gaussian_derivative_filters`) with replicated borders, computed on the whole image and
    then summed over the region (Rhemann et al.).

    Parameters
    ----------
    pred, gt : ndarray, H×W, float in 0..1
    trimap : ndarray, H×W, optional
    sigma : float
        Filter standard deviation in pixels.
    normalize : bool
        Min-max stretch each alpha to 0..1 first, as the RVM and PaddleSeg Python evaluators do
        (a no-op when an alpha already spans 0..1).

    Raises
    ------
    ValueError
        If the shapes differ.
    """
    p, g, m = _prepare(pred, gt, trimap)
    if normalize:
        p, g = _minmax(p), _minmax(g)
    d = gradient_magnitude(p, sigma) - gradient_magnitude(g, sigma)
    return float((d[m] ** 2).sum())


def connectivity_levels(pred: np.ndarray, gt: np.ndarray, step: float = CONN_STEP) -> np.ndarray:
    """Per pixel, the highest threshold at which it still belongs to the source region.

    For each threshold t = step, 2·step, ..., 1 the source region is the largest 4-connected
    component of {pred >= t} ∩ {gt >= t}; a pixel's level is the last threshold before the first
    one at which it falls out of that component (1 if it never does).

    Returns
    -------
    ndarray, H×W float64 in 0..1
    """
    n = round(1.0 / step)
    thresholds = np.round(np.arange(n + 1) * step, 10)
    level = np.full(gt.shape, -1.0)
    for i in range(1, n + 1):
        both = ((pred >= thresholds[i]) & (gt >= thresholds[i])).astype(np.uint8)
        count, labels, stats, _ = cv2.connectedComponentsWithStats(both, connectivity=4)
        if count > 1:
            largest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
            inside = labels == largest
        else:
            inside = np.zeros(gt.shape, dtype=bool)
        level[(level < 0) & ~inside] = thresholds[i - 1]
    level[level < 0] = 1.0
    return level


def conn(
    pred: np.ndarray,
    gt: np.ndarray,
    trimap: np.ndarray | None = None,
    step: float = CONN_STEP,
    theta: float = CONN_THETA,
) -> float:
    """Connectivity error, sum |phi(pred) - phi(gt)| over the region (alpha units, not ÷1000).

    phi(a) = 1 - d·[d >= theta] with d = a - l, where l is the pixel's connectivity level
    (:func:`connectivity_levels`, computed on the whole image); Rhemann et al., with the
    threshold step 0.1 and theta = 0.15 of the alphamatting.com evaluation code.

    Raises
    ------
    ValueError
        If the shapes differ.
    """
    p, g, m = _prepare(pred, gt, trimap)
    level = connectivity_levels(p, g, step)
    dp, dg = p - level, g - level
    phi_p = 1.0 - dp * (dp >= theta)
    phi_g = 1.0 - dg * (dg >= theta)
    return float(np.abs(phi_p - phi_g)[m].sum())
