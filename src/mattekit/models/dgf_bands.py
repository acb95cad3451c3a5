"""The Deep Guided Filter's full-resolution step, done in bands of rows, only for what is asked.

Given RVM's low-resolution coefficients ``A`` and ``b`` (N×4×h×w, from the cut graph of
:mod:`mattekit.models.rvm_cut`) and the full-resolution frame ``x`` (H×W RGB), the outputs are

    pha = clip(A₃↑ · mean(x) + b₃↑, 0, 1)
    fgr = clip((A_c↑ + 1) · x_c + b_c↑, 0, 1)   for c in R, G, B   (the graph adds src to the residual)

where ``↑`` is bilinear upsampling with half-pixel centres (ONNX ``Resize``, mode ``linear``,
``pytorch_half_pixel``; Wu et al., "Fast End-to-End Trainable Guided Filter", CVPR 2018; Lin et
al., RVM, WACV 2022). The upsampling is separable: each needed coefficient plane is first
stretched along the rows with OpenCV (``h×w -> h×W``, small), then every band of output rows is
the two-tap vertical interpolation of its rows fused with ``A·x + b`` in one compiled pass
(:mod:`mattekit.models.dgf_kernels`). Nothing of size H×W×4 is ever built; alpha alone never
touches the colour coefficients, the foreground can be computed for a column range only (e.g.
where alpha > 0), and a composition over a background is written straight to 8 bits
(:meth:`GuidedFinish.over`) without storing the foreground.

One :class:`GuidedFinish` holds one frame; several threads may read it at once (the row
stretching of each plane is done once, under a lock).
"""

from __future__ import annotations

import threading

import numpy as np

from mattekit.models.base import FrameMatte

_ONE = np.float32(1.0)
_255 = np.float32(255.0)


def _taps(out_size: int, in_size: int, scale: float | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Indices ``i0``, ``i1`` and weight ``t`` of half-pixel bilinear sampling (ONNX ``Resize``).

    ``scale`` is input pixels per output pixel; default ``in_size / out_size`` (a ``Resize`` given
    sizes), or ``1 / scales`` for a ``Resize`` given scale factors."""
    scale = in_size / out_size if scale is None else scale
    pos = (np.arange(out_size, dtype=np.float64) + 0.5) * scale - 0.5
    pos = np.clip(pos, 0.0, in_size - 1)
    i0 = np.floor(pos).astype(np.int64)
    i1 = np.minimum(i0 + 1, in_size - 1)
    return i0, i1, (pos - i0).astype(np.float32)


def network_input(frame: np.ndarray, ratio: float) -> np.ndarray:
    """The frame at the encoder's resolution, as RVM's graph makes it from ``src`` (its first node:
    ``Resize`` by ``downsample_ratio``, bilinear, half-pixel, no antialiasing).

    Args:
        frame: H×W×3 uint8 RGB, or 1×3×H×W float32 RGB in 0..1.
        ratio: the downsample ratio in (0, 1].

    Returns:
        1×3×h×w float32 in 0..1 with ``h = floor(H · ratio)``, ``w = floor(W · ratio)`` (computed in
        float32 like ONNX Runtime). Only the 2 source rows around each output row are read.

    Raises:
        ValueError: ``h`` or ``w`` would be 0 (the published graph fails there too; the ratio
            rule that avoids it is :func:`mattekit.params.min_downsample_ratio`).
    """
    planar = frame.dtype != np.uint8
    height, width = frame.shape[2:] if planar else frame.shape[:2]
    r = np.float32(ratio)
    h = int(np.floor(np.float32(height) * r))
    w = int(np.floor(np.float32(width) * r))
    if h < 1 or w < 1:
        raise ValueError(
            f"downsample_ratio {ratio} leaves the network {w}x{h} px of a {width}x{height} frame (at least 1 px needed)"
        )
    y0, y1, ty = _taps(h, height, 1.0 / float(r))
    x0, x1, tx = _taps(w, width, 1.0 / float(r))
    if planar:
        rows = frame[0].transpose(1, 2, 0)  # H×W×3 view
        top, bottom = rows[y0].astype(np.float32), rows[y1].astype(np.float32)
    else:
        top = np.divide(frame[y0], _255, dtype=np.float32)
        bottom = np.divide(frame[y1], _255, dtype=np.float32)
    bottom -= top
    bottom *= ty[:, None, None]
    top += bottom  # h×W×3
    left, right = top[:, x0], top[:, x1]
    right -= left
    right *= tx[None, :, None]
    left += right  # h×w×3
    return np.ascontiguousarray(left.transpose(2, 0, 1)[None])


class GuidedFinish(FrameMatte):
    """Alpha and foreground of one frame from RVM's low-resolution guided-filter coefficients.

    Args:
        coef_a, coef_b: 1×4×h×w float32 (the cut graph's ``coef_a``, ``coef_b``).
        guide: the full-resolution frame: 1×3×H×W float32 RGB in 0..1 (the network's input) or
            H×W×3 uint8 RGB (read pixel by pixel as ``x / 255`` in float32, RVM's own recipe, so
            the results equal those of its float32 copy bit for bit; the frame is never converted
            as a whole). It must not change while this object is in use.

    Each needed coefficient plane (with the ``+1`` of the residual folded in at low resolution)
    is stretched along the rows once per frame (``cv2.resize``, h×w -> h×W); every band is then one
    fused pass per output
    (:mod:`mattekit.models.dgf_kernels`). Measured (``benchmarks/profile_finish.py``, one thread,
    4K frame, every band): see docs/benchmarks.md.
    """

    def __init__(self, coef_a: np.ndarray, coef_b: np.ndarray, guide: np.ndarray):
        if guide.dtype == np.uint8:
            self.height, self.width = guide.shape[:2]
            self._guide, self._unit = guide, _255
        else:
            self.height, self.width = guide.shape[2:]
            self._guide, self._unit = guide[0].transpose(1, 2, 0), _ONE  # H×W×3 view of the planar input
        a, b = coef_a[0], coef_b[0]
        # fgr_c = (A_c + 1)·x_c + b_c (the graph adds src to the residual); pha = A_3·mean(x) + b_3
        self._low = {("a", c): a[c] + _ONE for c in range(3)}
        self._low.update({("a", 3): a[3]} | {("b", c): b[c] for c in range(4)})
        self._i0, self._i1, self._t = _taps(self.height, a.shape[1])
        self._stretched: dict[tuple[str, int], np.ndarray] = {}
        self._lock = threading.Lock()

    def _plane(self, which: str, c: int) -> np.ndarray:
        """Folded coefficient plane ``(which, c)`` stretched to h×W (made once, cached)."""
        key = (which, c)
        plane = self._stretched.get(key)
        if plane is None:
            import cv2

            with self._lock:
                plane = self._stretched.get(key)
                if plane is None:
                    low = np.ascontiguousarray(self._low[key])
                    plane = cv2.resize(low, (self.width, low.shape[0]), interpolation=cv2.INTER_LINEAR)
                    plane = self._stretched[key] = plane.reshape(low.shape[0], self.width)  # 1-row case
        return plane

    def _pair(self, c: int) -> tuple:
        return self._plane("a", c), self._plane("b", c), self._i0, self._i1, self._t, self._guide, self._unit

    # ------------------------------------------------------------ FrameMatte
    def alpha(self, rows: slice, out: np.ndarray | None = None) -> np.ndarray:
        from mattekit.models.dgf_kernels import alpha_rows

        out = np.empty((rows.stop - rows.start, self.width), np.float32) if out is None else out
        alpha_rows(*self._pair(3), rows.start, 0, out)  # type: ignore[call-arg]  # Numba dispatcher
        return out

    def fgr(self, rows: slice, cols: slice = slice(None), out: np.ndarray | None = None) -> np.ndarray:
        from mattekit.models.dgf_kernels import fgr_rows

        cols = slice(*cols.indices(self.width))
        out = np.empty((3, rows.stop - rows.start, cols.stop - cols.start), np.float32) if out is None else out
        for c in range(3):
            fgr_rows(*self._pair(c), c, rows.start, cols.start, out[c])  # type: ignore[call-arg]
        return out

    def over(self, rows: slice, cols: slice, alpha: np.ndarray, background: np.ndarray, out: np.ndarray) -> None:
        """The composition of ``rows`` × ``cols`` over ``background``, 8-bit, in one pass (the
        foreground colour is never stored, and not computed where alpha is 0):
        ``floor(clip(α·(F·255 − B) + B + 0.5, 0, 255))``,
        bit for bit :func:`mattekit.compose.composite.composite` of :meth:`fgr`.

        Args:
            rows, cols: step-1 slices of the frame.
            alpha: n×w float32 in 0..1, this block's alpha.
            background: length-3 uint8 colour, or n×w×3 uint8 RGB (this block's).
            out: n×w×3 uint8, written.
        """
        from mattekit.models.dgf_kernels import over_rows

        background = np.asarray(background, dtype=np.uint8)
        if background.ndim == 1:
            background = background.reshape(1, 1, 3)
        planes = [self._plane(which, c) for which in "ab" for c in range(3)]
        over_rows(  # type: ignore[call-arg]
            *planes,
            self._i0,
            self._i1,
            self._t,
            self._guide,
            self._unit,
            rows.start,
            cols.start,
            alpha,
            background,
            out,
        )


#: Rows per band when whole arrays are filled (about 256 KiB of float32 per plane at 1080p).
def band_rows(width: int, block_bytes: int = 256 * 1024) -> int:
    """Rows of a band whose float32 plane is about ``block_bytes``."""
    return max(8, block_bytes // (4 * max(width, 1)))


def fill_arrays(coef_a: np.ndarray, coef_b: np.ndarray, src: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Whole ``fgr`` (N×3×H×W) and ``pha`` (N×1×H×W) float32, band by band, from the cut graph's
    coefficients (N×4×h×w) and the network's input ``src`` (N×3×H×W float32)."""
    n, _, height, width = src.shape
    fgr = np.empty((n, 3, height, width), np.float32)
    pha = np.empty((n, 1, height, width), np.float32)
    step = band_rows(width)
    for i in range(n):
        finish = GuidedFinish(coef_a[i : i + 1], coef_b[i : i + 1], src[i : i + 1])
        for y in range(0, height, step):
            rows = slice(y, min(height, y + step))
            finish.alpha(rows, out=pha[i, 0, rows])
            finish.fgr(rows, out=fgr[i, :, rows])
    return fgr, pha
