"""Temporal alpha errors of a clip: dtSSD and MESSDdt.

Both take the predicted and the ground-truth alpha sequences as T×H×W arrays of floats in 0..1
(uint8 is divided by 255) and return unscaled values; :mod:`mattekit.metrics.conventions` applies
table scale factors.

Reference
---------
Erofeev et al., "Perceptually Motivated Benchmark for Video Matting", BMVC 2015 (dtSSD and
MESSDdt). Motion: Farnebäck, "Two-Frame Motion Estimation Based on Polynomial Expansion", SCIA 2003
(OpenCV's ``calcOpticalFlowFarneback``).
"""

from __future__ import annotations

import cv2
import numpy as np

from mattekit.metrics.image import as_float_alpha


def _prepare(pred, gt):
    p, g = as_float_alpha("pred", pred, "T×H×W"), as_float_alpha("gt", gt, "T×H×W")
    if p.shape != g.shape:
        raise ValueError(f"pred shape {p.shape} differs from gt shape {g.shape}")
    if p.shape[0] < 2:
        raise ValueError(f"a temporal metric needs at least 2 frames, got {p.shape[0]}")
    return p, g


def dtssd_per_frame(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """dtSSD of each transition t-1 → t: sqrt(mean_pixels((Δpred - Δgt)**2)).

    Returns
    -------
    ndarray, (T-1,) float64
        Entry t-1 is the error of the change between frames t-1 and t.
    """
    p, g = _prepare(pred, gt)
    d = np.diff(p, axis=0) - np.diff(g, axis=0)
    return np.sqrt((d**2).reshape(d.shape[0], -1).mean(axis=1))


def dtssd(pred: np.ndarray, gt: np.ndarray) -> float:
    """Temporal gradient error (dtSSD) of a clip, averaged over its T-1 frame transitions.

    dtSSD = 1/(T-1) · Σ_t sqrt( 1/N · Σ_pixels ((pred_t - pred_{t-1}) - (gt_t - gt_{t-1}))**2 )
    (Erofeev et al.). It is 0 when the prediction changes exactly as the ground truth does,
    whatever its per-frame error, and grows with flicker. RVM prints it ×1e2.

    Parameters
    ----------
    pred, gt : ndarray, T×H×W, float in 0..1, T >= 2

    Raises
    ------
    ValueError
        If the shapes differ or T < 2.
    """
    return float(dtssd_per_frame(pred, gt).mean())


def optical_flow(frames: np.ndarray) -> np.ndarray:
    """Dense forward optical flow between consecutive frames (OpenCV Farnebäck).

    Parameters
    ----------
    frames : ndarray, T×H×W (grey, float 0..1 or uint8) or T×H×W×3 uint8 RGB

    Returns
    -------
    ndarray, (T-1)×H×W×2 float32
        ``flow[t, y, x] = (dx, dy)`` such that frame t at (x, y) moves to (x + dx, y + dy) in t+1.
    """
    f = np.asarray(frames)
    if f.ndim == 4:
        f = np.stack([cv2.cvtColor(np.ascontiguousarray(x), cv2.COLOR_RGB2GRAY) for x in f])
    if f.dtype != np.uint8:
        f = np.clip(np.rint(f * 255.0), 0, 255).astype(np.uint8)
    flows = [
        cv2.calcOpticalFlowFarneback(f[t], f[t + 1], None, 0.5, 3, 15, 3, 5, 1.2, 0)  # type: ignore[call-overload]
        for t in range(f.shape[0] - 1)
    ]
    return np.stack(flows).astype(np.float32)


def messddt_per_frame(pred: np.ndarray, gt: np.ndarray, flow: np.ndarray | None = None) -> np.ndarray:
    """MESSDdt of each transition t → t+1 (see :func:`messddt`), shape (T-1,) float64."""
    p, g = _prepare(pred, gt)
    t_count, h, w = g.shape
    if flow is None:
        flow = optical_flow(g)
    flow = np.asarray(flow, dtype=np.float32)
    if flow.shape != (t_count - 1, h, w, 2):
        raise ValueError(f"flow must have shape {(t_count - 1, h, w, 2)}, got {flow.shape}")
    err = (p - g) ** 2
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    out = np.empty(t_count - 1)
    for t in range(t_count - 1):
        warped = cv2.remap(
            err[t + 1].astype(np.float32),
            xs + flow[t, ..., 0],
            ys + flow[t, ..., 1],
            interpolation=cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_REPLICATE,
        )
        out[t] = np.abs(err[t] - warped).mean()
    return out


def messddt(
    pred: np.ndarray,
    gt: np.ndarray,
    flow: np.ndarray | None = None,
    frames: np.ndarray | None = None,
) -> float:
    """Motion-aware temporal change of the squared error (MESSDdt), averaged over T-1 transitions.

    MESSDdt = 1/(T-1) · Σ_t 1/N · Σ_p | E_t(p) - E_{t+1}(p + v_t(p)) |, with E_t = (pred_t - gt_t)**2
    and v_t the motion from frame t to t+1 (Erofeev et al.). An error that moves with the object
    costs nothing; an error that appears, vanishes or changes (flicker) does. The motion is OpenCV's
    Farnebäck optical flow on ``frames`` if given (e.g. the composited input clip), else on the
    ground-truth alpha sequence; or pass ``flow`` directly (see :func:`optical_flow`).

    Parameters
    ----------
    pred, gt : ndarray, T×H×W, float in 0..1, T >= 2
    flow : ndarray, (T-1)×H×W×2 float, optional
    frames : ndarray, T×H×W or T×H×W×3 uint8, optional

    Raises
    ------
    ValueError
        If shapes differ or T < 2.
    """
    if flow is None and frames is not None:
        flow = optical_flow(frames)
    return float(messddt_per_frame(pred, gt, flow).mean())
