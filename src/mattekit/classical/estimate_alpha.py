"""Trimap-based alpha estimation with the classical methods of pymatting."""

from __future__ import annotations

import numpy as np
import pymatting

#: Method name -> (pymatting function, reference). Adding a method is adding a line here.
METHODS: dict[str, tuple] = {
    "cf": (
        pymatting.estimate_alpha_cf,
        'closed-form matting: Levin et al., "A Closed-Form Solution to Natural Image Matting", TPAMI 2008',
    ),
    "knn": (pymatting.estimate_alpha_knn, 'KNN matting: Chen et al., "KNN Matting", TPAMI 2013'),
    "lkm": (
        pymatting.estimate_alpha_lkm,
        'large-kernel matting: He et al., "Fast Matting Using Large Kernel Matting Laplacian Matrices", CVPR 2010',
    ),
    "rw": (
        pymatting.estimate_alpha_rw,
        'random-walk matting: Grady et al., "Random Walks for Interactive Alpha-Matting", VIIP 2005',
    ),
    "lbdm": (
        pymatting.estimate_alpha_lbdm,
        'learning-based matting: Zheng & Kambhamettu, "Learning Based Digital Matting", ICCV 2009',
    ),
    "sm": (
        pymatting.estimate_alpha_sm,
        'shared matting: Gastal & Oliveira, "Shared Sampling for Real-Time Alpha Matting", '
        "Computer Graphics Forum 2010",
    ),
}


def as_float_image(image: np.ndarray) -> np.ndarray:
    """H×W×3 uint8 (0..255) or float (0..1) RGB as float64 0..1 (ValueError on another shape)."""
    img = np.asarray(image)
    if img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f"image must be H×W×3 RGB, got shape {img.shape}")
    if img.dtype == np.uint8:
        return img.astype(np.float64) / 255.0
    return np.clip(img.astype(np.float64), 0.0, 1.0)


def as_float_trimap(trimap: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """A trimap as pymatting wants it: H×W float64 with 0 (background), 1 (foreground), 0.5 (unknown).

    Raises
    ------
    ValueError
        Wrong size, or no foreground or no background pixel.
    """
    t = np.asarray(trimap)
    if t.ndim == 3:
        t = t[..., 0]
    if t.shape != tuple(shape):
        raise ValueError(f"trimap size {t.shape[1]}x{t.shape[0]} differs from image size {shape[1]}x{shape[0]}")
    if t.dtype == np.uint8:
        bg, fg = t == 0, t == 255
    else:
        bg, fg = t <= 0, t >= 1
    if not fg.any():
        raise ValueError("trimap has no foreground (255) pixel")
    if not bg.any():
        raise ValueError("trimap has no background (0) pixel")
    out = np.full(t.shape, 0.5)
    out[bg] = 0.0
    out[fg] = 1.0
    return out


def estimate_alpha(image: np.ndarray, trimap: np.ndarray, method: str = "cf", **kwargs) -> np.ndarray:
    """Solve the alpha matte inside a trimap's unknown region with a classical method.

    Parameters
    ----------
    image : ndarray, H×W×3, uint8 0..255 or float 0..1, RGB
    trimap : ndarray, H×W, uint8 0/128/255 (or float 0/0.5/1)
        0 background, 255 foreground, anything else unknown.
    method : {'cf', 'knn', 'lkm', 'rw', 'lbdm', 'sm'}
        The pymatting solver (Germer et al., "PyMatting: A Python Library for Alpha Matting",
        JOSS 2020); see :data:`METHODS` for each method's paper.
    **kwargs
        Passed to the pymatting function (e.g. ``cg_kwargs``).

    Returns
    -------
    ndarray, H×W float32 in 0..1
        Equal to the trimap in its known regions.

    Raises
    ------
    ValueError
        Unknown method, shapes that differ, or a trimap without foreground or background.
    """
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    img = as_float_image(image)
    tri = as_float_trimap(trimap, img.shape[:2])
    func = METHODS[method][0]
    alpha = np.asarray(func(img, tri, **kwargs), dtype=np.float64)
    alpha = np.clip(alpha, 0.0, 1.0)
    alpha[tri == 0.0] = 0.0
    alpha[tri == 1.0] = 1.0
    return alpha.astype(np.float32)
