"""Any single-image alpha model described by a model card, on ONNX Runtime (bring your own ONNX).

Each frame is resized to the card's working size (bilinear; area averaging when it shrinks by more
than 2x), normalised ``(x - mean) / std`` in the card's colour order and layout, run, passed
through the card's activation and resized back (bilinear) to the frame's size. The model is
stateless: frames of a video are matted one by one (no temporal smoothing).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from mattekit.errors import ModelError
from mattekit.models.base import Capabilities, MatteResult, ModelSession, first_line, load_onnx, resize_planar
from mattekit.models.card import ModelCard, load_card


class CardSession(ModelSession):
    """A per-frame ONNX matting model run as its card says.

    Args:
        path: the ONNX file.
        card: a :class:`~mattekit.models.card.ModelCard`, a shipped card name, a TOML path or a dict
            (see :mod:`mattekit.models.card`).
        providers, intra_op_threads: as for :func:`~mattekit.models.base.load_onnx`.

    Raises:
        mattekit.errors.ModelError: the file cannot be loaded, the card is invalid, or the
            card names an input/output the model does not have.
    """

    def __init__(
        self, path: str | os.PathLike, card, providers: list[str] | None = None, intra_op_threads: int | None = None
    ):
        self.card: ModelCard = load_card(card)
        self.path = self.source_path = Path(path)
        self.name = self.card.name or self.path.stem
        self.license = self.card.license
        self.source = self.card.source
        self.capabilities = Capabilities(
            recurrent=False, predicts_fgr=self.card.fgr_name is not None, size_policy=self.card.size_policy
        )
        self._session = load_onnx(self.path, providers, intra_op_threads)
        inputs = self._session.get_inputs()
        outputs = [o.name for o in self._session.get_outputs()]
        names = [i.name for i in inputs]
        self._input = self.card.input_name or names[0]
        if self._input not in names:
            raise ModelError(
                f"{self.path}: the card's input {self._input!r} is not in the model (inputs: {', '.join(names)})"
            )
        self._outputs = [self.card.output_name or outputs[0]]
        if self.card.fgr_name:
            self._outputs.append(self.card.fgr_name)
        missing = [n for n in self._outputs if n not in outputs]
        if missing:
            raise ModelError(
                f"{self.path}: the card's output {missing[0]!r} is not in the model (outputs: {', '.join(outputs)})"
            )
        kind = next(i.type for i in inputs if i.name == self._input)
        self._dtype = np.float16 if kind == "tensor(float16)" else np.float32
        self._mean = np.asarray(self.card.mean, np.float32)[:, None, None]
        self._std = np.asarray(self.card.std, np.float32)[:, None, None]

    def step(self, src: np.ndarray, state, downsample_ratio: float | None, release_memory: bool = False) -> MatteResult:
        """Matte each of N frames on its own (see :meth:`ModelSession.step`); ``state`` is ignored
        and returned as ``None``.

        Raises:
            mattekit.errors.ModelError: ONNX Runtime fails on the input (e.g. a size the export
                does not accept), naming the model file.
        """
        n, _, h, w = src.shape
        wh, ww = self.capabilities.size_policy.working_size(h, w, downsample_ratio)
        pha = np.empty((n, 1, h, w), np.float32)
        fgr = np.empty((n, 3, h, w), np.float32) if self.card.fgr_name else None
        for i in range(n):
            x = (resize_planar(src[i], wh, ww) - self._mean) / self._std
            if self.card.colour == "BGR":
                x = x[::-1]
            if self.card.layout == "NHWC":
                x = x.transpose(1, 2, 0)
            feed = np.ascontiguousarray(x[None], dtype=self._dtype)
            try:
                results = self._session.run(self._outputs, {self._input: feed})
            except Exception as exc:  # onnxruntime raises several unrelated types
                raise ModelError(f"{self.path}: inference failed at {ww}x{wh} ({first_line(exc)})") from None
            pha[i] = resize_planar(self._activate(_plane(results[0], self.path)), h, w)
            np.clip(pha[i], 0.0, 1.0, out=pha[i])
            if fgr is not None:
                colour = np.asarray(results[1], np.float32).reshape(3, *np.shape(results[1])[-2:])
                fgr[i] = np.clip(resize_planar(colour, h, w), 0.0, 1.0)
        return MatteResult(pha=pha, fgr=fgr, state=None)

    def _activate(self, plane: np.ndarray) -> np.ndarray:
        if self.card.activation == "sigmoid":
            return 1.0 / (1.0 + np.exp(-plane))
        if self.card.activation == "minmax":  # U²-Net's normPRED: (d - min) / (max - min)
            lo, hi = float(plane.min()), float(plane.max())
            return (plane - lo) / (hi - lo) if hi > lo else np.zeros_like(plane)
        return plane


def _plane(output: np.ndarray, path: Path | None) -> np.ndarray:
    """One alpha plane 1×h×w float32 from a 1×1×h×w, 1×h×w×1, 1×h×w or h×w output."""
    array = np.asarray(output, np.float32)
    plane = array[0] if array.ndim == 4 or (array.ndim == 3 and array.shape[0] == 1) else array
    if plane.ndim == 3 and plane.shape[0] == 1:
        plane = plane[0]
    elif plane.ndim == 3 and plane.shape[-1] == 1:
        plane = plane[..., 0]
    if plane.ndim != 2 or 0 in plane.shape:
        raise ModelError(f"{path}: alpha output has shape {list(array.shape)}, expected one h×w plane")
    return plane[None]
