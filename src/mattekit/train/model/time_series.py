"""Run per-frame 2-D layers over B×T×C×H×W clips."""

from __future__ import annotations

from collections.abc import Callable

from torch import Tensor


def fold(clip: Tensor) -> Tensor:
    """B×T×C×H×W -> (B·T)×C×H×W.

    One-frame clips (T = 1, every ONNX export) use ``squeeze``: the same tensor, but ONNX shape
    inference follows a ``Squeeze`` where it loses a ``Reshape`` with a computed shape (and the
    TorchScript exporter would then fix later crops to the tracing frame size)."""
    return clip.squeeze(1) if clip.shape[1] == 1 else clip.flatten(0, 1)


def unfold(frames: Tensor, b: int, t: int) -> Tensor:
    """(B·T)×C×H×W -> B×T×C×H×W, the inverse of :func:`fold`."""
    return frames.unsqueeze(1) if t == 1 else frames.unflatten(0, (b, t))


def per_frame(fn: Callable[..., Tensor], *clips: Tensor) -> Tensor:
    """Apply ``fn`` (which takes N×C×H×W tensors) to B×T×C×H×W clips, frames folded into N.

    All ``clips`` share B and T; the result is B×T×C'×H'×W'.
    """
    b, t = clips[0].shape[:2]
    return unfold(fn(*(fold(c) for c in clips)), b, t)
