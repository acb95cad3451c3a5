"""The Deep Guided Filter's full-resolution step, done in bands of rows, only for what is asked.

Given RVM's low-resolution coefficients ``A`` and ``b`` (N×4×h×w, from the cut graph of
:mod:`mattekit.models.rvm_cut`) and the full-resolution frame ``x`` (H×W RGB), the outputs are

    pha = clip(A₃↑ · mean(x) + b₃↑, 0, 1)
    fgr = clip((A_c↑ + 1) · x_c + b_c↑, 0, 1)   for c in R, G, B   (the graph adds src to the residual)

where ``↑`` is bilinear upsampling with half-pixel centres (ONNX ``Resize``, mode ``linear``,
``pytorch_half_pixel``; Wu et al., "Fast End-to-End Trainable Guided Filter", CVPR 2018; Lin et
al., RVM, WACV 2022). The upsampling is separable: each needed coefficient plane is first
stretched along the rows with OpenCV (``h×w -> h×W``, small), then every band of output rows is
the two-tap vertical interpolation of its rows (numpy, in place, in a cache-sized block),
combined with the frame in place. Nothing of size
H×W×4 is ever built; alpha alone never touches the colour coefficients, and the foreground can be
computed for a column range only (e.g. where alpha > 0).

One :class:`GuidedFinish` holds one frame; several threads may read it at once (the row
stretching of each plane is done once, under a lock).
"""

from __future__ import annotations

import threading

import numpy as np

from mattekit.models.base import FrameMatte

_ONE = np.float32(1.0)
_ZERO = np.float32(0.0)
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
        raise ValueError(f"downsample_ratio {ratio} leaves the network {w}x{h} px of a {width}x{height} frame "
                         "(at least 1 px needed)")
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
    top += bottom                                   # h×W×3
    left, right = top[:, x0], top[:, x1]
    right -= left
    right *= tx[None, :, None]
    left += right                                   # h×w×3
    return np.ascontiguousarray(left.transpose(2, 0, 1)[None])


class GuidedFinish(FrameMatte):
    """Alpha and foreground of one frame from RVM's low-resolution guided-filter coefficients.

    Args:
        coef_a, coef_b: 1×4×h×w float32 (the cut graph's ``coef_a``, ``coef_b``).
        guide: the full-resolution frame: 1×3×H×W float32 RGB in 0..1 (the network's input) or
            H×W×3 uint8 RGB (read as ``x / 255``, RVM's own recipe, with the ``1/255`` folded into
            the low-resolution coefficients so the frame is never converted as a whole). It must
            not change while this object is in use.

    Cost (measured, one thread, 4K frame, all bands; ``benchmarks/profile_finish.py``): alpha
    ~25 ms, foreground ~45 ms of CPU. The constants of the formulas (``+1`` of the residual,
    ``1/255``, the ``1/3`` of the mean) are applied to the h×w coefficients, never per pixel;
    each coefficient plane is stretched along the rows once per frame (``cv2.resize``), and a
    band's rows are ``P[i0] + t·(P[i0+1] − P[i0])`` with the row differences also made once.
    """

    def __init__(self, coef_a: np.ndarray, coef_b: np.ndarray, guide: np.ndarray):
        if guide.dtype == np.uint8:
            self.height, self.width = guide.shape[:2]
            self._planar = False
            unit = _255
        else:
            self.height, self.width = guide.shape[2:]
            self._planar = True
            unit = _ONE
        self._guide = guide
        a, b = coef_a[0], coef_b[0]
        # fgr_c = (A_c + 1)·x_c + b_c; pha = A_3·(R + G + B)/3 + b_3, with x = guide / unit
        self._low = {("a", c): (a[c] + _ONE) / unit for c in range(3)}
        self._low[("a", 3)] = a[3] / (np.float32(3.0) * unit)
        self._low.update({("b", c): b[c] for c in range(4)})
        self._i0, _, self._t = _taps(self.height, a.shape[1])
        self._stretched: dict[tuple[str, int], tuple[np.ndarray, np.ndarray]] = {}
        self._lock = threading.Lock()

    # ------------------------------------------------------------ pieces
    def _plane(self, which: str, c: int) -> tuple[np.ndarray, np.ndarray]:
        """Folded coefficient plane ``(which, c)`` stretched to h×W, and its row differences."""
        key = (which, c)
        planes = self._stretched.get(key)
        if planes is None:
            import cv2

            with self._lock:
                planes = self._stretched.get(key)
                if planes is None:
                    low = np.ascontiguousarray(self._low[key])
                    plane = cv2.resize(low, (self.width, low.shape[0]), interpolation=cv2.INTER_LINEAR)
                    plane = plane.reshape(low.shape[0], self.width)  # OpenCV drops a 1-row axis
                    step = np.zeros_like(plane)
                    np.subtract(plane[1:], plane[:-1], out=step[:-1])
                    planes = self._stretched[key] = (plane, step)
        return planes

    def _upsample(self, which: str, c: int, rows: slice, cols: slice, out: np.ndarray) -> np.ndarray:
        """Rows ``rows`` × columns ``cols`` of the full-resolution coefficient plane, into ``out``.

        Contiguous row gathers of whole-width planes (``np.take`` of a column view copies the
        whole plane first: that made a 4K composition cost 660 instead of 85 ms)."""
        plane, step = self._plane(which, c)
        i0, t = self._i0[rows], self._t[rows, None]
        if cols.start == 0 and cols.stop == self.width:
            np.take(plane, i0, axis=0, out=out)
            delta = np.take(step, i0, axis=0)
        else:
            out[...] = plane[i0, cols]
            delta = step[i0, cols]
        delta *= t
        out += delta
        return out

    def _guide_channel(self, c: int, rows: slice, cols: slice) -> np.ndarray:
        """Channel ``c`` of the guide (in the guide's own units: 0..1 float or 0..255 uint8)."""
        return self._guide[0, c, rows, cols] if self._planar else self._guide[rows, cols, c]

    # ------------------------------------------------------------ FrameMatte
    def alpha(self, rows: slice, out: np.ndarray | None = None) -> np.ndarray:
        n = rows.stop - rows.start
        cols = slice(0, self.width)
        out = np.empty((n, self.width), np.float32) if out is None else out
        a = np.empty((n, self.width), np.float32)
        gray = np.add(self._guide_channel(0, rows, cols), self._guide_channel(1, rows, cols), dtype=np.float32)
        gray += self._guide_channel(2, rows, cols)
        self._upsample("b", 3, rows, cols, out)
        self._upsample("a", 3, rows, cols, a)
        a *= gray
        out += a
        np.clip(out, _ZERO, _ONE, out=out)
        return out

    def fgr(self, rows: slice, cols: slice = slice(None), out: np.ndarray | None = None) -> np.ndarray:
        cols = slice(*cols.indices(self.width))
        n, w = rows.stop - rows.start, cols.stop - cols.start
        out = np.empty((3, n, w), np.float32) if out is None else out
        a = np.empty((n, w), np.float32)
        for c in range(3):
            self._upsample("b", c, rows, cols, out[c])
            self._upsample("a", c, rows, cols, a)
            a *= self._guide_channel(c, rows, cols)
            out[c] += a
        np.clip(out, _ZERO, _ONE, out=out)
        return out


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
        finish = GuidedFinish(coef_a[i:i + 1], coef_b[i:i + 1], src[i:i + 1])
        for y in range(0, height, step):
            rows = slice(y, min(height, y + step))
            finish.alpha(rows, out=pha[i, 0, rows])
            finish.fgr(rows, out=fgr[i, :, rows])
    return fgr, pha
