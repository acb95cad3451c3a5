"""Run per-frame 2-D layers over B×T×C×H×W clips."""

from __future__ import annotations

from typing import Callable

from torch import Tensor


def per_frame(fn: Callable[..., Tensor], *clips: Tensor) -> Tensor:
    """Apply ``fn`` (which takes N×C×H×W tensors) to B×T×C×H×W clips, frames folded into N.

    All ``clips`` share B and T; the result is B×T×C'×H'×W'.
    """
    b, t = clips[0].shape[:2]
    out = fn(*(c.flatten(0, 1) for c in clips))
    return out.unflatten(0, (b, t))
