"""Robust Video Matting on ONNX Runtime.

Source: Lin, Yang, Saleemi, Sengupta, "Robust High-Resolution Video Matting with Temporal
Guidance", WACV 2022 (github.com/PeterL1n/RobustVideoMatting). The network is a MobileNetV3
encoder, an LR-ASPP block, a recurrent ConvGRU decoder and a Deep Guided Filter; the ONNX export
takes one frame per batch item and returns the recurrent state (``r1o..r4o``) that is fed back as
``r1i..r4i`` with the next frame.

RVM's tensor names live in this backend (and its I/O-binding helper ``rvm_iobinding.py``) alone.
One :class:`RVMSession` holds the loaded model and may serve many videos at once (ONNX Runtime's
``run`` is thread-safe); the recurrent state belongs to each video and is passed in and out of
:meth:`RVMSession.step`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import cast

import numpy as np

from mattekit.errors import ModelError
from mattekit.models.base import Capabilities, FrameMatte, MatteResult, ModelSession, SizePolicy, load_onnx
from mattekit.params import AUTO_LONG_SIDE, auto_downsample_ratio

INPUT_NAMES = ("src", "r1i", "r2i", "r3i", "r4i", "downsample_ratio")
OUTPUT_NAMES = ("fgr", "pha", "r1o", "r2o", "r3o", "r4o")

RecurrentState = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


class RVMSession(ModelSession):
    """A loaded RVM ONNX model (the backend of ``rvm-mobilenetv3`` and of RVM exports given by path).

    Args:
        path: an ONNX file with RVM's signature (inputs ``src, r1i..r4i, downsample_ratio``;
            outputs ``fgr, pha, r1o..r4o``), e.g. the MobileNetV3 or the ResNet50 export.
        providers: ONNX Runtime execution providers; default
            :func:`~mattekit.models.base.default_providers`.
        intra_op_threads: threads for one operator; ``None`` lets ONNX Runtime decide
            (all physical cores).
        cut: run the graph cut before the Deep Guided Filter's full-resolution step
            (:mod:`mattekit.models.rvm_cut`, built once from the file and cached) and do that step
            in bands, fused, only for the outputs asked (:mod:`mattekit.models.dgf_bands`).
            ``None`` (the default) decides: the cut on the CPU, the whole graph on an accelerator
            (CUDA keeps the recurrent state on the device instead). ``False`` runs the published
            graph as it is (the reference of ``benchmarks/bench_video.py``'s bare-model column).
            Files whose graph does not end in RVM's guided filter always run whole. Why the cut
            is the CPU default whatever the outputs (docs/benchmarks.md): with it a 1080p job
            used about half the CPU per frame of the whole graph for a composition and for alpha
            alone (busy machine, interleaved runs), and its finish costs less than the graph's
            own full-resolution tail for every output kind (4K: composition 132 ms of one
            thread, alpha 22, foreground 79, against ~350 ms of CPU in the graph).

    Raises:
        mattekit.errors.ModelError: the file cannot be loaded or lacks RVM's inputs/outputs.
    """

    capabilities = Capabilities(recurrent=True, predicts_fgr=True, size_policy=SizePolicy("long_side", AUTO_LONG_SIDE))
    license = "GPL-3.0"
    source = (
        "Lin et al., Robust High-Resolution Video Matting with Temporal Guidance, WACV 2022; "
        "github.com/PeterL1n/RobustVideoMatting"
    )

    def __init__(
        self,
        path: str | os.PathLike,
        providers: list[str] | None = None,
        intra_op_threads: int | None = None,
        cut: bool | None = None,
    ):
        self.path = self.source_path = Path(path)
        self.name = self.path.stem
        self._session = load_onnx(self.path, providers, intra_op_threads)
        inputs = [i.name for i in self._session.get_inputs()]
        outputs = [o.name for o in self._session.get_outputs()]
        if not is_rvm_signature(inputs, outputs):
            missing = [n for n in INPUT_NAMES if n not in inputs] + [n for n in OUTPUT_NAMES if n not in outputs]
            raise ModelError(f"{self.path}: not an RVM model (missing {', '.join(missing)})")
        self.providers: list[str] = self._session.get_providers()
        # on an accelerator, keep the recurrent state on the device (mattekit.models.rvm_iobinding)
        from mattekit.models.rvm_iobinding import BoundStepper, device_for

        device = device_for(self.providers)
        self._bound = BoundStepper(self._session, device) if device else None
        #: the path of the cut graph in use, or ``None`` when the whole graph runs
        self.cut_path: Path | None = None
        if cut is None:
            cut = self._bound is None  # the CPU: the cut (see above); an accelerator: the whole graph
        if cut and self._bound is None:
            from mattekit.models.rvm_cut import cut_model

            try:
                self.cut_path = cut_model(self.path)
            except ModelError:
                self.cut_path = None  # not RVM's guided filter (or no cache): the whole graph runs
            else:
                # its full-resolution step now runs in the caller's other threads: ONNX Runtime's
                # idle workers block instead of spinning on the cores those threads need
                self._session = load_onnx(self.cut_path, providers, intra_op_threads, spinning=False)
        #: True when :meth:`step_deferred` reads only ``guide`` (``src`` may be ``None``)
        self.guide_only = self.cut_path is not None

    def auto_downsample_ratio(self, height: int, width: int) -> float:
        """RVM's own ratio (:func:`mattekit.params.auto_downsample_ratio`: longer side at most 512,
        raised so the shorter side keeps at least 1 px)."""
        return auto_downsample_ratio(height, width)

    def initial_state(self) -> RecurrentState:
        """The recurrent state of a first frame: four zero tensors of shape [1, 1, 1, 1]."""
        zero = np.zeros((1, 1, 1, 1), dtype=np.float32)
        return (zero, zero, zero, zero)

    def step(
        self, src: np.ndarray, state: RecurrentState, downsample_ratio: float | None, release_memory: bool = False
    ) -> MatteResult:
        """Run the network on one frame (or a batch of independent frames).

        Args:
            src: N×3×H×W float32 RGB in 0..1 (C-contiguous).
            state: the previous step's ``state``, or :meth:`initial_state` for a first frame
                (numpy arrays on CPU; device ``OrtValue`` s with CUDA: pass it on as it is).
            downsample_ratio: ratio in (0, 1] at which the encoder sees the frame; ``None`` for
                :func:`auto_downsample_ratio`.
            release_memory: give ONNX Runtime's unused CPU arena memory back at the end of this
                step (its arena otherwise keeps the step's peak; used after the last pass of a
                still: measured ~240 MB at 4 MP; costs a re-allocation on the next step).

        Returns:
            A :class:`~mattekit.models.base.MatteResult` with ``fgr`` N×3×H×W and ``pha``
            N×1×H×W (float32, 0..1).
        """
        ratio = downsample_ratio or auto_downsample_ratio(*src.shape[2:])
        if self._bound is not None:
            fgr, pha, new_state = self._bound.step(src, state, ratio)
            return MatteResult(fgr=fgr, pha=pha, state=new_state)
        run_options = arena_release_options() if release_memory else None
        if self.cut_path is None:
            fgr, pha, r1, r2, r3, r4 = self._session.run(list(OUTPUT_NAMES), feeds(src, state, ratio), run_options)
            return MatteResult(fgr=fgr, pha=pha, state=(r1, r2, r3, r4))
        from mattekit.models.dgf_bands import fill_arrays

        coefs, states = [], []
        for i in range(src.shape[0]):  # each item with its own state, as the whole graph does
            item_state = cast(RecurrentState, tuple(s[i : i + 1] if s.shape[0] == src.shape[0] else s for s in state))
            last = i == src.shape[0] - 1
            coef_a, coef_b, *new_state = self._run_cut(src[i : i + 1], item_state, ratio, run_options if last else None)
            coefs.append((coef_a, coef_b))
            states.append(new_state)
        fgr, pha = fill_arrays(np.concatenate([c[0] for c in coefs]), np.concatenate([c[1] for c in coefs]), src)
        return MatteResult(fgr=fgr, pha=pha, state=tuple(np.concatenate(s) for s in zip(*states, strict=True)))

    def _run_cut(self, frame: np.ndarray, state: RecurrentState, ratio: float, run_options=None) -> list[np.ndarray]:
        """Run the cut graph on one frame (H×W×3 uint8 or 1×3×H×W float32)."""
        from mattekit.models.dgf_bands import network_input
        from mattekit.models.rvm_cut import SMALL_INPUT

        return self._session.run(
            None,
            {
                SMALL_INPUT: network_input(frame, ratio),
                "r1i": state[0],
                "r2i": state[1],
                "r3i": state[2],
                "r4i": state[3],
            },
            run_options,
        )

    def step_deferred(
        self,
        src: np.ndarray | None,
        state: RecurrentState,
        downsample_ratio: float | None,
        guide: np.ndarray | None = None,
    ) -> tuple[FrameMatte, RecurrentState]:
        """One frame, its full-resolution guided-filter step left to the caller (see
        :meth:`ModelSession.step_deferred` and :class:`~mattekit.models.dgf_bands.GuidedFinish`).
        With the cut graph and a ``guide``, ``src`` is not read (may be ``None``)."""
        if self.cut_path is None:
            return super().step_deferred(src, state, downsample_ratio, guide)
        from mattekit.models.dgf_bands import GuidedFinish

        if guide is not None:
            frame, size = guide, guide.shape[:2]
        elif src is not None:
            frame, size = src, src.shape[2:]
        else:
            raise ValueError("step_deferred needs src or guide")
        ratio = downsample_ratio or auto_downsample_ratio(*size)
        coef_a, coef_b, *new_state = self._run_cut(frame, state, ratio)
        return GuidedFinish(coef_a, coef_b, frame), cast(RecurrentState, tuple(new_state))


def arena_release_options():
    """ONNX Runtime run options that give the CPU arena's unused memory back after the run."""
    import onnxruntime as ort

    run_options = ort.RunOptions()
    run_options.add_run_config_entry("memory.enable_memory_arena_shrinkage", "cpu:0")
    return run_options


def feeds(src: np.ndarray, state: RecurrentState, downsample_ratio: float) -> dict[str, np.ndarray]:
    """The input dict of one RVM step (``src``, ``r1i..r4i``, ``downsample_ratio``)."""
    return {
        "src": src,
        "r1i": state[0],
        "r2i": state[1],
        "r3i": state[2],
        "r4i": state[3],
        "downsample_ratio": np.asarray([downsample_ratio], dtype=np.float32),
    }


def is_rvm_signature(inputs: list[str], outputs: list[str]) -> bool:
    """True when a graph's input and output names are RVM's (any encoder: MobileNetV3, ResNet50)."""
    return set(INPUT_NAMES) <= set(inputs) and set(OUTPUT_NAMES) <= set(outputs)
