"""``matte_trimap``: alpha and foreground of an image from a user-drawn trimap."""

from __future__ import annotations

import os

import numpy as np

from mattekit.classical.estimate_alpha import estimate_alpha
from mattekit.classical.estimate_foreground import estimate_foreground
from mattekit.errors import InputError
from mattekit.io.trimap import read_trimap


def matte_trimap(
    image: str | os.PathLike | np.ndarray,
    trimap: str | os.PathLike | np.ndarray,
    method: str = "cf",
    foreground: bool = True,
):
    """Matte an image given a trimap, with a classical method from pymatting.

    Parameters
    ----------
    image : path or ndarray H×W×3 uint8 RGB
    trimap : path or ndarray H×W uint8
        0 background, 255 foreground, other values unknown (3-channel PNGs are read by their first
        channel, see :func:`mattekit.io.trimap.read_trimap`).
    method : {'cf', 'knn', 'lkm', 'rw', 'lbdm', 'sm'}
        See :data:`mattekit.classical.estimate_alpha.METHODS`; 'cf' (closed-form matting, Levin et
        al. 2008) is the default.
    foreground : bool
        Also estimate the foreground colour (:func:`estimate_foreground`); else ``fgr`` is the image.

    Returns
    -------
    mattekit.matte.Matte
        ``.alpha`` H×W float32 0..1, ``.fgr`` H×W×3 float32 0..1, ``.rgba()``, ``.composite(bg)``.

    Raises
    ------
    InputError
        Unreadable files, sizes that differ, or a trimap without foreground or background.
    ValueError
        Unknown method, or bad arrays passed directly.
    """
    from mattekit.io.image import read_image
    from mattekit.matte import Matte

    img = read_image(image) if isinstance(image, (str, os.PathLike)) else np.asarray(image)
    tri = read_trimap(trimap) if isinstance(trimap, (str, os.PathLike)) else np.asarray(trimap)
    try:
        alpha = estimate_alpha(img, tri, method)
    except ValueError as exc:
        if isinstance(trimap, (str, os.PathLike)) and "unknown method" not in str(exc):
            raise InputError(trimap, str(exc)) from None
        raise
    fgr = (
        estimate_foreground(img, alpha)
        if foreground
        else (img.astype(np.float32) / 255.0 if img.dtype == np.uint8 else img.astype(np.float32))
    )
    return Matte(alpha=alpha, fgr=fgr)
