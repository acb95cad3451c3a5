"""Read a trimap image file (user-drawn: background, foreground, unknown).

In ``io/`` so that readers of trimaps (evaluation, classical matting) need not load pymatting.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from mattekit.errors import InputError
from mattekit.io.image import read_image_unchanged


def read_trimap(path: str | os.PathLike) -> np.ndarray:
    """Read a trimap: 0 = background, 255 = foreground, any other value = unknown.

    Grey, RGB (e.g. the alphamatting.com 3-channel PNGs) or RGBA images are accepted; the first
    channel is used. 16-bit images are scaled to 8 bits.

    Parameters
    ----------
    path : str or PathLike

    Returns
    -------
    ndarray, H×W uint8 with values in {0, 128, 255}

    Raises
    ------
    InputError
        Missing or unreadable file, or a trimap with no unknown and no foreground pixel.
    """
    path = Path(path)
    t = read_image_unchanged(path)
    if t.ndim == 3:
        t = t[..., 2] if t.shape[2] >= 3 else t[..., 0]  # OpenCV stores BGR(A): index 2 is red
    if t.dtype == np.uint16:
        t = (t.astype(np.uint32) * 255 // 65535).astype(np.uint8)
    t = t.astype(np.uint8)
    out = np.full(t.shape, 128, np.uint8)
    out[t == 0] = 0
    out[t == 255] = 255
    if not (out != 0).any():
        raise InputError(path, "trimap is all background (no foreground or unknown pixels)")
    return out
