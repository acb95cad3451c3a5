"""Training objectives of Robust Video Matting (Lin et al., "Robust High-Resolution Video Matting
with Temporal Guidance", WACV 2022, Sec. 4.3).

Matting (clips B×T×C×H×W, values 0..1):

- alpha: ``L1(α, α*) + L_lap(α, α*) + 5·MSE(∂α/∂t, ∂α*/∂t)``
- foreground, only where ``α* > 0``: ``L1(F, F*) + 5·MSE(∂F/∂t, ∂F*/∂t)``

``L_lap`` is the Laplacian-pyramid L1 loss of Hou & Liu ("Context-Aware Image Matting for Simultaneous
Foreground and Alpha Estimation", ICCV 2019) as RVM weights it:
``Σ_{s=1..5} 2^{s-1}/5 · L1(L^s(α), L^s(α*))``. The temporal terms compare frame-to-frame
differences (the temporal coherence loss of the paper; the weight 5 is the one in RVM's
``train_loss.py``). Segmentation: binary cross-entropy on logits.
"""

from __future__ import annotations

import functools
import operator

import torch
from torch import Tensor
from torch.nn import functional as F

_BINOMIAL = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0])
GAUSS_5X5 = torch.outer(_BINOMIAL, _BINOMIAL) / 256.0


def _blur(x: Tensor) -> Tensor:
    """5×5 binomial blur of N×C×H×W, channel by channel, reflect-padded."""
    n, c = x.shape[:2]
    kernel = GAUSS_5X5.to(x)[None, None]
    return F.conv2d(F.pad(x.reshape(n * c, 1, *x.shape[2:]), (2, 2, 2, 2), mode="reflect"), kernel).reshape(x.shape)


def laplacian_pyramid(x: Tensor, levels: int = 5) -> list[Tensor]:
    """Band-pass levels of N×C×H×W (Burt & Adelson 1983): each level is the image minus the
    expansion of its blurred, decimated copy; odd sizes are cropped to even first."""
    bands = []
    for _ in range(levels):
        x = x[..., : x.shape[-2] // 2 * 2, : x.shape[-1] // 2 * 2]
        down = _blur(x)[..., ::2, ::2]
        up = torch.zeros_like(x)
        up[..., ::2, ::2] = down * 4.0  # zero insertion; ×4 keeps the mean after blurring
        bands.append(x - _blur(up))
        x = down
    return bands


def laplacian_loss(pred: Tensor, true: Tensor, levels: int = 5) -> Tensor:
    """``Σ_s 2^s · L1(band_s(pred), band_s(true)) / levels`` over N×C×H×W tensors (H, W ≥ 2^levels·2)."""
    total = pred.new_zeros(())
    for s, (p, t) in enumerate(zip(laplacian_pyramid(pred, levels), laplacian_pyramid(true, levels), strict=True)):
        total = total + (2**s) * F.l1_loss(p, t)
    return total / levels


def _temporal(pred: Tensor, true: Tensor) -> Tensor:
    if pred.shape[1] < 2:
        return pred.new_zeros(())
    return F.mse_loss(pred[:, 1:] - pred[:, :-1], true[:, 1:] - true[:, :-1])


def matting_loss(pred_fgr: Tensor, pred_pha: Tensor, true_fgr: Tensor, true_pha: Tensor) -> dict[str, Tensor]:
    """The matting objective on clips (fgr B×T×3×H×W, pha B×T×1×H×W); returns each term and ``total``."""
    terms = {
        "pha_l1": F.l1_loss(pred_pha, true_pha),
        "pha_laplacian": laplacian_loss(pred_pha.flatten(0, 1), true_pha.flatten(0, 1)),
        "pha_coherence": 5.0 * _temporal(pred_pha, true_pha),
    }
    inside = (true_pha > 0).to(pred_fgr.dtype)
    fgr, true = pred_fgr * inside, true_fgr * inside
    terms["fgr_l1"] = F.l1_loss(fgr, true)
    terms["fgr_coherence"] = 5.0 * _temporal(fgr, true)
    terms["total"] = functools.reduce(operator.add, terms.values())
    return terms


def segmentation_loss(pred_logits: Tensor, true_mask: Tensor) -> Tensor:
    """Binary cross-entropy between logits and a 0/1 mask of the same shape."""
    return F.binary_cross_entropy_with_logits(pred_logits, true_mask)
