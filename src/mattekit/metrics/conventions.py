"""Scaling conventions of published matting tables, and one call that computes every metric.

The metric functions return unscaled values (alpha in 0..1). Papers print them scaled, and two
conventions are common:

``rvm``
    Robust Video Matting (Lin et al., "Robust High-Resolution Video Matting with Temporal
    Guidance", WACV 2022; PeterL1n/RobustVideoMatting, evaluation/):
    MAD and MSE ×1e3, Grad and Conn ÷1000, dtSSD ×1e2, computed over the whole frame; Grad on
    min-max-stretched alphas; a clip's dtSSD is averaged over its T frames with 0 for the first frame,
    as that evaluator does. RVM prints no SAD or MESSDdt: here SAD is ÷1000 as in Deep Image Matting
    tables and MESSDdt is unscaled.
``paddleseg``
    PaddleSeg Matting (PaddlePaddle/PaddleSeg, Matting/ppmatting/metrics): SAD, Grad and Conn ÷1000,
    MSE unscaled, over the trimap's unknown region when a trimap is given; the prediction is set to 0
    and 1 in the trimap's known background and foreground first; Grad on min-max-stretched alphas.
    PaddleSeg prints no MAD or temporal metrics: they are unscaled here.
``raw``
    Everything unscaled, as the functions in :mod:`mattekit.metrics` return it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from mattekit.metrics import image as _image
from mattekit.metrics import video as _video

IMAGE_METRICS = ("SAD", "MSE", "MAD", "Grad", "Conn")
VIDEO_METRICS = (*IMAGE_METRICS, "dtSSD", "MESSDdt")


@dataclass(frozen=True)
class Convention:
    """How one family of papers scales and computes the metrics.

    Attributes
    ----------
    name : str
    scale : dict
        Metric name -> factor the unscaled value is multiplied by (missing means 1).
    grad_normalize : bool
        Min-max stretch both alphas before the gradient error.
    clamp_known : bool
        With a trimap, set the prediction to 0/1 in the known background/foreground first.
    dtssd_first_frame_zero : bool
        Average a clip's dtSSD over T frames with a 0 for frame 0 (else over the T-1 transitions).
    """

    name: str
    scale: dict[str, float] = field(default_factory=dict)
    grad_normalize: bool = False
    clamp_known: bool = False
    dtssd_first_frame_zero: bool = False

    def factor(self, metric: str) -> float:
        return self.scale.get(metric, 1.0)

    def label(self, metric: str) -> str:
        """Column name with the factor, e.g. ``'MSE ×1e3'`` or ``'SAD ÷1000'``."""
        f = self.factor(metric)
        if f == 1.0:
            return metric
        if f > 1.0:
            return f"{metric} ×1e{round(np.log10(f))}"
        return f"{metric} ÷{round(1.0 / f)}"


CONVENTIONS: dict[str, Convention] = {
    "rvm": Convention(
        "rvm",
        {"SAD": 1e-3, "MSE": 1e3, "MAD": 1e3, "Grad": 1e-3, "Conn": 1e-3, "dtSSD": 1e2},
        grad_normalize=True,
        dtssd_first_frame_zero=True,
    ),
    "paddleseg": Convention(
        "paddleseg",
        {"SAD": 1e-3, "Grad": 1e-3, "Conn": 1e-3},
        grad_normalize=True,
        clamp_known=True,
    ),
    "raw": Convention("raw"),
}


def get_convention(convention: str | Convention) -> Convention:
    """The :class:`Convention` named ``convention`` ('rvm', 'paddleseg', 'raw'); ValueError if unknown."""
    if isinstance(convention, Convention):
        return convention
    try:
        return CONVENTIONS[convention]
    except KeyError:
        raise ValueError(f"unknown convention {convention!r}; choose one of {', '.join(CONVENTIONS)}") from None


def _clamp_known(pred: np.ndarray, trimap: np.ndarray | None) -> np.ndarray:
    if trimap is None:
        return pred
    t = np.asarray(trimap)
    if t.ndim == 3 and t.shape[-1] in (1, 3, 4) and t.shape[:2] == pred.shape:
        t = t[..., 0]
    bg = t == 0
    fg = (t == 255) if t.dtype == np.uint8 else (t == 1)
    out = np.array(pred, dtype=np.float64) / (255.0 if np.asarray(pred).dtype == np.uint8 else 1.0)
    out[bg] = 0.0
    out[fg] = 1.0
    return out


def image_metrics(
    pred: np.ndarray,
    gt: np.ndarray,
    trimap: np.ndarray | None = None,
    convention: str | Convention = "rvm",
    metrics: tuple[str, ...] = IMAGE_METRICS,
) -> dict[str, float]:
    """Every image metric of one alpha, scaled by ``convention``.

    Parameters
    ----------
    pred, gt : ndarray, H×W, float in 0..1 (or uint8)
    trimap : ndarray, H×W uint8 0/128/255, optional
        Restricts every metric to the unknown region.
    convention : {'rvm', 'paddleseg', 'raw'} or Convention
    metrics : tuple of str
        Subset of ``IMAGE_METRICS``.

    Returns
    -------
    dict
        Metric name -> scaled value (see :meth:`Convention.label` for the column names).

    Raises
    ------
    ValueError
        On mismatched shapes or an unknown convention or metric.
    """
    conv = get_convention(convention)
    if conv.clamp_known:
        pred = _clamp_known(pred, trimap)
    funcs = {
        "SAD": lambda: _image.sad(pred, gt, trimap),
        "MSE": lambda: _image.mse(pred, gt, trimap),
        "MAD": lambda: _image.mad(pred, gt, trimap),
        "Grad": lambda: _image.grad(pred, gt, trimap, normalize=conv.grad_normalize),
        "Conn": lambda: _image.conn(pred, gt, trimap),
    }
    out = {}
    for m in metrics:
        if m not in funcs:
            raise ValueError(f"unknown image metric {m!r}; choose from {', '.join(funcs)}")
        out[m] = funcs[m]() * conv.factor(m)
    return out


def video_metrics(
    pred: np.ndarray,
    gt: np.ndarray,
    trimap: np.ndarray | None = None,
    convention: str | Convention = "rvm",
    metrics: tuple[str, ...] = VIDEO_METRICS,
    frames: np.ndarray | None = None,
) -> dict[str, float]:
    """Per-frame image metrics averaged over the clip, plus dtSSD and MESSDdt, scaled by ``convention``.

    Parameters
    ----------
    pred, gt : ndarray, T×H×W, float in 0..1 (or uint8), T >= 2
    trimap : ndarray, T×H×W or H×W uint8, optional
        For the image metrics only.
    convention : {'rvm', 'paddleseg', 'raw'} or Convention
    metrics : tuple of str
        Subset of ``VIDEO_METRICS``.
    frames : ndarray, T×H×W×3 uint8, optional
        Input frames for MESSDdt's optical flow (default: flow of the ground-truth alpha).

    Raises
    ------
    ValueError
        On mismatched shapes, T < 2, or an unknown convention or metric.
    """
    conv = get_convention(convention)
    pred, gt = np.asarray(pred), np.asarray(gt)
    if pred.shape != gt.shape or pred.ndim != 3:
        raise ValueError(f"pred {pred.shape} and gt {gt.shape} must be equal T×H×W shapes")
    per_image = tuple(m for m in metrics if m in IMAGE_METRICS)
    out: dict[str, float] = {}
    if per_image:
        rows = []
        for t in range(gt.shape[0]):
            tri = None if trimap is None else (trimap if np.ndim(trimap) == 2 else trimap[t])
            rows.append(image_metrics(pred[t], gt[t], tri, conv, per_image))
        for m in per_image:
            out[m] = float(np.mean([r[m] for r in rows]))
    if "dtSSD" in metrics:
        d = _video.dtssd_per_frame(pred, gt)
        value = d.sum() / gt.shape[0] if conv.dtssd_first_frame_zero else d.mean()
        out["dtSSD"] = float(value) * conv.factor("dtSSD")
    if "MESSDdt" in metrics:
        out["MESSDdt"] = _video.messddt(pred, gt, frames=frames) * conv.factor("MESSDdt")
    unknown = set(metrics) - set(VIDEO_METRICS)
    if unknown:
        raise ValueError(f"unknown video metric(s) {sorted(unknown)}; choose from {', '.join(VIDEO_METRICS)}")
    return out
