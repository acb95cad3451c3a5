"""The one interface every matting model backend implements.

A backend is one file (``rvm_onnx.py``, ``isnet_onnx.py``, ``card_onnx.py``, ``fake.py``) defining a
:class:`ModelSession` subclass; the registry (:mod:`mattekit.models.registry`) says which backend
loads each named model, and :func:`mattekit.models.new_session` builds it. The pipeline, the image
path, the compositor, the CLI and the server only see this interface: frames in, alpha (and the
foreground colour when the model predicts it) out, with an opaque per-video state carried between
steps. The shape follows rembg's ``sessions/base.py`` (github.com/danielgatis/rembg) and the
recurrent stepping of Robust Video Matting (github.com/PeterL1n/RobustVideoMatting).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mattekit.errors import ModelError

SIZE_POLICIES = ("fixed", "short_side", "long_side")


@dataclass(frozen=True)
class SizePolicy:
    """How a model picks the resolution its network works at.

    Attributes:
        kind: ``"fixed"`` (always ``size`` × ``size``), ``"short_side"`` (scale so the shorter side
            is ``size``) or ``"long_side"`` (scale so the longer side is at most ``size``; never
            up-scales).
        size: the side in pixels (1..16384).
        multiple: each side of the working size is rounded down to a multiple of this (1..16384),
            and is at least one multiple.
        upscale: for ``short_side``, whether a frame whose shorter side is below ``size`` is
            enlarged (``False``: PaddleSeg's ``LimitShort``, only shrinks).
    """

    kind: str
    size: int
    multiple: int = 1
    upscale: bool = True

    def __post_init__(self):
        if self.kind not in SIZE_POLICIES:
            raise ModelError(f"size policy must be one of {', '.join(SIZE_POLICIES)}, not {self.kind!r}")
        for label, value in (("size", self.size), ("multiple", self.multiple)):
            if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 16384:
                raise ModelError(f"size policy {label} must be an integer in 1..16384, not {value!r}")
        if not isinstance(self.upscale, bool):
            raise ModelError(f"size policy upscale must be true or false, not {self.upscale!r}")

    def ratio(self, height: int, width: int) -> float:
        """The scale from the frame to the working size (``short_side`` may enlarge: > 1); for
        ``fixed``, 1.0: the frame is handed over whole and resized to ``size`` × ``size``, no
        ratio applies."""
        if self.kind == "short_side":
            scale = self.size / min(height, width)
            return scale if self.upscale else min(scale, 1.0)
        if self.kind == "long_side":
            return min(self.size / max(height, width), 1.0)
        return 1.0

    def working_size(self, height: int, width: int, ratio: float | None = None) -> tuple[int, int]:
        """(height, width) the network sees for an H×W frame.

        Args:
            height, width: the frame size in pixels (>= 1).
            ratio: a scale in (0, 1] to use instead of the policy's own (ignored by ``fixed``).
        """
        if self.kind == "fixed":
            return self.size, self.size
        scale = ratio if ratio else self.ratio(height, width)
        k = self.multiple

        def side(n: int) -> int:
            return max(k, int(n * scale + 1e-6) // k * k)

        return side(height), side(width)


@dataclass(frozen=True)
class Capabilities:
    """What a model can do.

    Attributes:
        recurrent: the model carries a state from frame to frame (video model); ``False`` for a
            per-frame (single-image) model whose state is ignored.
        predicts_fgr: the model returns the foreground colour; otherwise callers estimate it
            when an output needs it (multilevel estimate for images; blur fusion for video
            frames, see ``docs/models.md``).
        size_policy: the working resolution the model prefers.
    """

    recurrent: bool
    predicts_fgr: bool
    size_policy: SizePolicy


@dataclass
class MatteResult:
    """What one step returns.

    Attributes:
        pha: alpha, N×1×H×W float32 in 0..1 (H×W of the input frames).
        fgr: foreground colour, N×3×H×W float32 RGB in 0..1, or ``None`` when the model has none.
        state: the state to pass with the next frame of the same video (opaque).
    """

    pha: np.ndarray
    fgr: np.ndarray | None
    state: Any


class FrameMatte(ABC):
    """One matted frame whose full-resolution outputs are computed on demand, band by band.

    Returned by :meth:`ModelSession.step_deferred`, so that a caller (the video pipeline's writer
    threads) computes only the rows, columns and outputs it writes, in cache-sized pieces. Safe
    to read from several threads at once.

    Attributes:
        height, width: the frame's size in pixels.
    """

    height: int
    width: int

    @abstractmethod
    def alpha(self, rows: slice, out: np.ndarray | None = None) -> np.ndarray:
        """Alpha of rows ``rows`` (a step-1 slice): n×W float32 in 0..1 (may be a view)."""

    @abstractmethod
    def fgr(self, rows: slice, cols: slice = slice(None), out: np.ndarray | None = None) -> np.ndarray:
        """Foreground colour of ``rows`` × ``cols``: 3×n×w float32 RGB in 0..1 (may be a view)."""


class ArrayMatte(FrameMatte):
    """A :class:`FrameMatte` over whole arrays already computed (``pha`` 1×1×H×W, ``fgr`` 1×3×H×W,
    or ``None`` for a model that predicts no foreground colour: :meth:`fgr` then raises)."""

    def __init__(self, pha: np.ndarray, fgr: np.ndarray | None):
        self.height, self.width = pha.shape[2:]
        self.pha, self.fgr_array = pha, fgr

    def alpha(self, rows: slice, out: np.ndarray | None = None) -> np.ndarray:
        return self.pha[0, 0, rows]

    def fgr(self, rows: slice, cols: slice = slice(None), out: np.ndarray | None = None) -> np.ndarray:
        if self.fgr_array is None:
            raise ValueError("this model predicts no foreground colour")
        return self.fgr_array[0, :, rows, cols]


class ModelSession(ABC):
    """A loaded matting model (one per process may serve many videos at once).

    Attributes:
        capabilities: see :class:`Capabilities`.
        name: the registry name or the file's stem.
        license: licence of the weights; source: paper / repository they come from.
        path: the model file loaded, or ``None`` (the fake model).
        source_path: the file as given or fetched (``path``, or the file ``path`` was derived
            from, e.g. RVM's FP32 file for its INT8 copy); an input of every job, never written.
        precision: ``fp32``, ``fp16`` or ``int8`` (set by :func:`mattekit.models.new_session`).
    """

    capabilities: Capabilities
    name: str = ""
    license: str = ""
    source: str = ""
    path: Path | None = None
    source_path: Path | None = None
    precision: str = ""

    def initial_state(self) -> Any:
        """The state to pass with the first frame of a video (``None`` unless recurrent)."""
        return None

    @abstractmethod
    def step(
        self, src: np.ndarray, state: Any, downsample_ratio: float | None, release_memory: bool = False
    ) -> MatteResult:
        """Matte a batch of frames.

        Args:
            src: N×3×H×W float32 RGB in 0..1 (C-contiguous).
            state: the previous step's ``state`` for the same video, or :meth:`initial_state`.
            downsample_ratio: scale in (0, 1] at which the network sees the frame, or ``None``
                for the model's size policy (:meth:`auto_downsample_ratio`). Fixed-size models
                ignore it.
            release_memory: a hint that no step follows soon (the last pass of a still): a
                backend may hand its inference arena's memory back (RVM does; others ignore it).

        Returns:
            A :class:`MatteResult` (alpha at the input's H×W).
        """

    #: True when :meth:`step_deferred` given a ``guide`` does not read ``src`` (the caller may then
    #: skip making the full-resolution float copy and pass ``None``).
    guide_only: bool = False

    def step_deferred(
        self, src: np.ndarray | None, state: Any, downsample_ratio: float | None, guide: np.ndarray | None = None
    ) -> tuple[FrameMatte, Any]:
        """Like :meth:`step` for one frame, with the full-resolution outputs left to the caller.

        Backends whose last stage is cheap per band of rows (RVM's guided filter) return a
        :class:`FrameMatte` that computes alpha and foreground on demand; the default runs
        :meth:`step` and wraps its arrays (an :class:`ArrayMatte`, without foreground when the
        model predicts none).

        Args:
            src, state, downsample_ratio: as for :meth:`step` (N = 1); ``src`` may be ``None``
                when :attr:`guide_only` and a ``guide`` is given.
            guide: the same frame as H×W×3 uint8 RGB; when given, ``src`` may be reused by the
                caller as soon as this returns (the result reads ``guide`` instead).

        Returns:
            ``(matte, state)``.

        Raises:
            ValueError: ``src`` is ``None`` for a backend that needs it.
        """
        if src is None:
            raise ValueError(f"{type(self).__name__}.step_deferred needs src (1×3×H×W float32)")
        result = self.step(src, state, downsample_ratio)
        return ArrayMatte(result.pha, result.fgr), result.state

    def auto_downsample_ratio(self, height: int, width: int) -> float:
        """The model's own ratio for an H×W frame (from its size policy)."""
        return self.capabilities.size_policy.ratio(height, width)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name or self.path}>"


def to_src(rgb: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """H×W×3 uint8 RGB -> 1×3×H×W float32 in 0..1 (the layout :meth:`ModelSession.step` takes).

    Computed as RVM's own recipe does (``x / 255`` in float32, so values are identical), in one
    pass, into ``out`` (1×3×H×W float32, C-contiguous) when given.
    """
    if out is None:
        out = np.empty((1, 3, *rgb.shape[:2]), dtype=np.float32)
    np.divide(rgb.transpose(2, 0, 1), np.float32(255.0), out=out[0])
    return out


def default_providers() -> list[str]:
    """ONNX Runtime execution providers, best first: CUDA when present, always CPU last."""
    import onnxruntime as ort

    available = ort.get_available_providers()
    preferred = [p for p in ("CUDAExecutionProvider",) if p in available]
    return [*preferred, "CPUExecutionProvider"]


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message, or its type name."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def load_onnx(
    path: str | Path, providers: list[str] | None = None, intra_op_threads: int | None = None, spinning: bool = True
):
    """An ``onnxruntime.InferenceSession`` of ``path`` with mattekit's measured CPU settings.

    ``spinning=False`` makes ONNX Runtime's idle worker threads block instead of spinning
    (``session.intra_op.allow_spinning=0``), for sessions whose caller does other work on the
    same cores between runs (see :mod:`mattekit.pipeline.video`).

    Raises:
        mattekit.errors.ModelError: the file cannot be loaded (one line, naming the file).
    """
    import onnxruntime as ort

    options = ort.SessionOptions()
    # measured on 2 cores (docs/int8.md): full graph optimisation (NCHWc layout), sequential
    # execution, memory pattern and CPU arena on, intra-op threads = cores; each alternative
    # was slower on a quiet machine (turning thread spinning off: 5-8 % slower)
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.enable_mem_pattern = True
    options.enable_cpu_mem_arena = True
    if intra_op_threads:
        options.intra_op_num_threads = intra_op_threads
    if not spinning:
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    try:
        return ort.InferenceSession(str(path), sess_options=options, providers=providers or default_providers())
    except Exception as exc:  # onnxruntime raises several unrelated types
        raise ModelError(f"{path}: cannot load ONNX model ({first_line(exc)})") from None


def resize_planar(x: np.ndarray, height: int, width: int) -> np.ndarray:
    """Bilinear resize of a C×H×W float32 array to C×height×width (OpenCV, half-pixel centres).

    Down-scaling by more than 2x uses area averaging instead, so thin hair does not alias.
    """
    import cv2

    _c, h, w = x.shape
    if (h, w) == (height, width):
        return x
    interp = cv2.INTER_AREA if height < h / 2 and width < w / 2 else cv2.INTER_LINEAR
    hwc = np.ascontiguousarray(x.transpose(1, 2, 0))
    out = cv2.resize(hwc, (width, height), interpolation=interp)
    if out.ndim == 2:
        out = out[:, :, None]
    return np.ascontiguousarray(out.transpose(2, 0, 1))
