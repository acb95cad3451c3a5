"""Fused per-pixel loops of RVM's guided-filter finish (:mod:`mattekit.models.dgf_bands`), compiled
with Numba (already installed with pymatting, which mattekit depends on).

Each loop reads the coefficient planes already stretched along the rows (h×W float32, the ``+1``
of the residual folded in), interpolates them between two of their rows (``P[i0] + t·(P[i1] −
P[i0])``, the half-pixel bilinear rule of ONNX ``Resize``) and applies them to the full-resolution
guide (``H×W×3`` view: uint8, read as ``x / 255`` exactly as :func:`mattekit.models.base.to_src`
makes the network's input, or float32 with ``unit`` 1) in one pass, with no temporaries: a 4K
frame's alpha, foreground and composition each touch every pixel once. The arithmetic is done
operation by operation in float32 (no fast-math), so a uint8 frame and its float32 copy give
bit-identical results.

The loops release the GIL (``nogil``) so the video pipeline's writer threads run them side by
side; compiled code is cached on disk (``cache=True``) after a process's first call.
"""

from __future__ import annotations

import numpy as np
from numba import njit

_ZERO = np.float32(0.0)
_ONE = np.float32(1.0)
_255 = np.float32(255.0)
_HALF = np.float32(0.5)
_THIRD = np.float32(1.0 / 3.0)


@njit(inline="always")
def _between(p, k0, k1, x, tt):  # pragma: no cover - compiled
    """Plane ``p`` at column ``x`` interpolated between its rows ``k0`` and ``k1``:
    ``p[k0, x] + (p[k1, x] − p[k0, x])·tt`` (the loops below inline it)."""
    p0 = p[k0, x]
    return p0 + (p[k1, x] - p0) * tt


@njit(nogil=True, cache=True)
def alpha_rows(pa, pb, i0, i1, t, guide, unit, row0, col0, out):  # pragma: no cover - compiled
    """``out[r, j] = clip(A(y, x)·mean(R, G, B) + B(y, x), 0, 1)`` for ``y = row0 + r``, ``x = col0 + j``.

    ``pa``, ``pb``: h×W stretched planes; ``i0``, ``i1``, ``t``: per output row (H); ``guide``:
    H×W×3; ``out``: n×w float32."""
    n, w = out.shape
    for r in range(n):
        y = row0 + r
        k0, k1, tt = i0[y], i1[y], t[y]
        for j in range(w):
            x = col0 + j
            a = _between(pa, k0, k1, x, tt)
            b = _between(pb, k0, k1, x, tt)
            g = np.float32(guide[y, x, 0]) / unit + np.float32(guide[y, x, 1]) / unit
            g = (g + np.float32(guide[y, x, 2]) / unit) * _THIRD
            v = b + a * g
            out[r, j] = min(max(v, _ZERO), _ONE)


@njit(nogil=True, cache=True)
def fgr_rows(pa, pb, i0, i1, t, guide, unit, c, row0, col0, out):  # pragma: no cover - compiled
    """Channel ``c`` of the foreground: ``out[r, j] = clip(A(y, x)·x_c + B(y, x), 0, 1)``."""
    n, w = out.shape
    for r in range(n):
        y = row0 + r
        k0, k1, tt = i0[y], i1[y], t[y]
        for j in range(w):
            x = col0 + j
            a = _between(pa, k0, k1, x, tt)
            b = _between(pb, k0, k1, x, tt)
            v = b + a * (np.float32(guide[y, x, c]) / unit)
            out[r, j] = min(max(v, _ZERO), _ONE)


@njit(nogil=True, cache=True)
def over_rows(
    pa0, pa1, pa2, pb0, pb1, pb2, i0, i1, t, guide, unit, row0, col0, alpha, background, out
):  # pragma: no cover - compiled
    """The composition, 8-bit: ``floor(clip(α·(F·255 − B) + B + 0.5, 0, 255))`` per channel, with
    ``F`` as :func:`fgr_rows` (planes ``pa0..2``, ``pb0..2`` of R, G, B), ``α`` = ``alpha`` (n×w),
    ``B`` = ``background`` (n×w×3 uint8, or 1×1×3 for a colour) and ``out`` n×w×3 uint8. Where
    α = 0 the result is ``B`` itself and the foreground is not computed (the same bytes: the
    formula gives ``floor(B + 0.5)``); measured on a real 4K frame (56 % of pixels at α = 0):
    43 instead of 73 ms for three channel passes."""
    n, w = alpha.shape
    colour = background.shape[0] == 1 and background.shape[1] == 1
    for r in range(n):
        y = row0 + r
        k0, k1, tt = i0[y], i1[y], t[y]
        rb = 0 if colour else r
        for j in range(w):
            x = col0 + j
            jb = 0 if colour else j
            al = alpha[r, j]
            if al == _ZERO:
                for c in range(3):
                    out[r, j, c] = background[rb, jb, c]
                continue
            for c in range(3):
                pa = pa0 if c == 0 else (pa1 if c == 1 else pa2)
                pb = pb0 if c == 0 else (pb1 if c == 1 else pb2)
                a = _between(pa, k0, k1, x, tt)
                b = _between(pb, k0, k1, x, tt)
                f = min(max(b + a * (np.float32(guide[y, x, c]) / unit), _ZERO), _ONE)
                bg = np.float32(background[rb, jb, c])
                s = (f * _255 - bg) * al + (bg + _HALF) if colour else (f * _255 - bg) * al + bg + _HALF
                out[r, j, c] = np.uint8(min(max(s, _ZERO), _255))
