"""Robust Video Matting on ONNX Runtime.

Source: Lin, Yang, Saleemi, Sengupta, "Robust High-Resolution Video Matting with Temporal
Guidance", WACV 2022 (github.com/PeterL1n/RobustVideoMatting). The network is a MobileNetV3
encoder, an LR-ASPP block, a recurrent ConvGRU decoder and a Deep Guided Filter; the ONNX export
takes one frame per batch item and returns the recurrent state (``r1o..r4o``) that is fed back as
``r1i..r4i`` with the next frame.

One :class:`RVMSession` holds the loaded model and may serve many videos at once (ONNX Runtime's
``run`` is thread-safe); the recurrent state belongs to each video and is passed in and out of
:meth:`RVMSession.step`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mattekit.errors import ModelError
from mattekit.params import auto_downsample_ratio  # noqa: F401 - RVM's ratio rule, kept with its validator

INPUT_NAMES = ("src", "r1i", "r2i", "r3i", "r4i", "downsample_ratio")
OUTPUT_NAMES = ("fgr", "pha", "r1o", "r2o", "r3o", "r4o")

RecurrentState = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def to_src(rgb: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """H×W×3 uint8 RGB -> 1×3×H×W float32 in 0..1 (the network's input layout).

    Computed as RVM's own recipe does (``x / 255`` in float32, so values are identical), in one
    pass, into ``out`` (1×3×H×W float32, C-contiguous) when given.
    """
    if out is None:
        out = np.empty((1, 3) + rgb.shape[:2], dtype=np.float32)
    np.divide(rgb.transpose(2, 0, 1), np.float32(255.0), out=out[0])
    return out


def default_providers() -> list[str]:
    """ONNX Runtime execution providers, best first: CUDA when present, always CPU last."""
    import onnxruntime as ort

    available = ort.get_available_providers()
    preferred = [p for p in ("CUDAExecutionProvider",) if p in available]
    return preferred + ["CPUExecutionProvider"]


@dataclass
class MatteResult:
    """What one network step returns.

    Attributes:
        fgr: foreground colour, N×3×H×W float32 in 0..1, RGB.
        pha: alpha, N×1×H×W float32 in 0..1.
        state: the recurrent state to pass with the next frame.
    """

    fgr: np.ndarray
    pha: np.ndarray
    state: RecurrentState


class RVMSession:
    """A loaded RVM ONNX model.

    Args:
        model: ``None`` (the default registered model), a registered name, or a path to an ONNX
            file with RVM's signature (inputs ``src, r1i..r4i, downsample_ratio``; outputs
            ``fgr, pha, r1o..r4o``).
        providers: ONNX Runtime execution providers; default :func:`default_providers`.
        intra_op_threads: threads for one operator; ``None`` lets ONNX Runtime decide
            (all physical cores).
        precision: ``"fp32"`` (the file as published) or ``"int8"`` (a quantized copy built
            on first use and kept in the model cache, see :mod:`mattekit.models.quantize`).

    Raises:
        mattekit.errors.ModelError: the file cannot be loaded or lacks RVM's inputs/outputs.
        mattekit.errors.InputError: a model path was given and does not exist.
    """

    def __init__(self, model: str | os.PathLike | None = None, providers: list[str] | None = None,
                 intra_op_threads: int | None = None, precision: str = "fp32"):
        import onnxruntime as ort

        from mattekit.models.fetch import resolve_model_path

        from mattekit.models.quantize import model_for_precision

        self.precision = precision
        #: the model file as given or fetched (an input of every job; never written to)
        self.source_path: Path = resolve_model_path(model)
        #: the file loaded: ``source_path``, or its INT8 copy in the model cache
        self.path: Path = model_for_precision(self.source_path, precision)
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
        try:
            self._session = ort.InferenceSession(str(self.path), sess_options=options,
                                                 providers=providers or default_providers())
        except Exception as exc:  # onnxruntime raises several unrelated types
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ModelError(f"{self.path}: cannot load ONNX model ({first})") from None
        inputs = {i.name for i in self._session.get_inputs()}
        outputs = {o.name for o in self._session.get_outputs()}
        missing = [n for n in INPUT_NAMES if n not in inputs] + [n for n in OUTPUT_NAMES if n not in outputs]
        if missing:
            raise ModelError(f"{self.path}: not an RVM model (missing {', '.join(missing)})")
        self.providers: list[str] = self._session.get_providers()
        # on an accelerator, keep the recurrent state on the device (mattekit.models.rvm_iobinding)
        from mattekit.models.rvm_iobinding import BoundStepper, device_for

        device = device_for(self.providers)
        self._bound = BoundStepper(self._session, device) if device else None

    @staticmethod
    def initial_state() -> RecurrentState:
        """The recurrent state of a first frame: four zero tensors of shape [1, 1, 1, 1]."""
        zero = np.zeros((1, 1, 1, 1), dtype=np.float32)
        return (zero, zero, zero, zero)

    def step(self, src: np.ndarray, state: RecurrentState, downsample_ratio: float,
             release_memory: bool = False) -> MatteResult:
        """Run the network on one frame (or a batch of independent frames).

        Args:
            src: N×3×H×W float32 RGB in 0..1 (C-contiguous).
            state: the previous step's ``state``, or :meth:`initial_state` for a first frame
                (numpy arrays on CPU; device ``OrtValue`` s with CUDA: pass it on as it is).
            downsample_ratio: ratio in (0, 1] at which the encoder sees the frame.
            release_memory: give ONNX Runtime's unused CPU arena memory back at the end of this
                step (its arena otherwise keeps the step's peak; used after the last pass of a
                still: measured ~240 MB at 4 MP; costs a re-allocation on the next step).

        Returns:
            A :class:`MatteResult` with ``fgr`` N×3×H×W and ``pha`` N×1×H×W (float32, 0..1).
        """
        if self._bound is not None:
            fgr, pha, new_state = self._bound.step(src, state, downsample_ratio)
            return MatteResult(fgr=fgr, pha=pha, state=new_state)
        feeds = {
            "src": src,
            "r1i": state[0], "r2i": state[1], "r3i": state[2], "r4i": state[3],
            "downsample_ratio": np.asarray([downsample_ratio], dtype=np.float32),
        }
        run_options = None
        if release_memory:
            import onnxruntime as ort

            run_options = ort.RunOptions()
            run_options.add_run_config_entry("memory.enable_memory_arena_shrinkage", "cpu:0")
        fgr, pha, r1, r2, r3, r4 = self._session.run(list(OUTPUT_NAMES), feeds, run_options)
        return MatteResult(fgr=fgr, pha=pha, state=(r1, r2, r3, r4))


def new_session(model: "str | os.PathLike | RVMSession | None" = None, **kwargs) -> RVMSession:
    """Return ``model`` if it is already a session, else load one (see :class:`RVMSession`)."""
    if isinstance(model, RVMSession):
        return model
    return RVMSession(model, **kwargs)
