"""Robust Video Matting's ``convert_video`` call, understood here.

RVM's README (github.com/PeterL1n/RobustVideoMatting, ``inference.py``) calls::

    convert_video(
        model,
        input_source="input.mp4",
        input_resize=None,
        downsample_ratio=None,
        output_type="video",
        output_composition="com.mp4",
        output_alpha="pha.mp4",
        output_foreground="fgr.mp4",
        output_video_mbps=4,
        seq_chunk=12,
        num_workers=0,
        progress=True,
        device=None,
        dtype=None,
    )

with the model first. mattekit's own short form puts the input first
(``convert_video("clip.mp4", output_composition=..., model=...)``). :func:`split_call` tells them
apart; :func:`session_for_call`, :func:`validate_input_resize` and :class:`ResizedSource` give
RVM's ``device``, ``dtype`` and ``input_resize`` their meaning here.
"""

from __future__ import annotations

import contextlib
import numbers
import os
from pathlib import Path

import numpy as np

from mattekit.errors import ModelError, ParameterError, ParameterTypeError
from mattekit.io.video_reader import FrameSource, SourceFrame, frame_size_problem
from mattekit.plan import OUTPUT_TYPES, warn_deprecated

# the largest side ``input_resize`` may ask for: a 16384×16384 RGB frame is 768 MiB, and the
# pipeline holds several (queues, float input buffers, one per output writer); the area is also
# held to the video frame cap (mattekit.io.video_reader.MAX_VIDEO_PIXELS, 8192x4320)
MAX_RESIZE_SIDE = 16384
# RVM's DataLoader workers: accepted up to this many (they do nothing here, see convert_video)
MAX_NUM_WORKERS = 1024
# dtype names (torch.float16, numpy.float16, "float16", "half"...) -> mattekit precision
_PRECISIONS = {"float16": "fp16", "half": "fp16", "fp16": "fp16", "float32": "fp32", "float": "fp32", "fp32": "fp32"}


def split_call(first, input_source, output_type: str, model):
    """``(input, output_type, model)`` of a call whose first positional argument is ``first``.

    * ``convert_video(model, input_source=...)`` (RVM): ``first`` is the model.
    * ``convert_video(input, ...)`` (mattekit; ``input_source`` not given): ``first`` is the input.
    * ``convert_video(input, "png_sequence", ...)`` (mattekit's earlier positional order: a second
      positional argument naming an output type, and no file of that name): the input and the
      output type, with a :class:`FutureWarning`.

    Raises:
        TypeError: no input at all, or the model given twice (first and ``model=``).
    """
    if input_source is None:
        if first is None:
            raise TypeError(
                "convert_video() needs an input: convert_video(model, input_source=...) or "
                "convert_video(input_source=..., model=...)"
            )
        return first, output_type, model
    if first is None:
        return input_source, output_type, model
    if (
        isinstance(input_source, str)
        and input_source in OUTPUT_TYPES
        and not os.path.lexists(input_source)
        and output_type == "video"
    ):
        warn_deprecated("convert_video(input, output_type) with output_type positional", "output_type=", stacklevel=4)
        return first, input_source, model
    if model is not None:
        raise TypeError("convert_video() got the model twice (first argument and model=)")
    return input_source, output_type, first


def precision_of(dtype) -> str | None:
    """mattekit's precision for RVM's ``dtype``: ``None`` -> ``None`` (the model's published
    precision); ``torch.float16``/``numpy.float16``/``"float16"``/``"half"`` -> ``"fp16"``;
    ``torch.float32``/``"float32"``/``"float"`` -> ``"fp32"``.

    Raises:
        mattekit.errors.ParameterError: any other dtype (the ONNX models run in fp32 or fp16;
            INT8 is ``new_session(precision="int8")``).
    """
    if dtype is None:
        return None
    text = str(dtype).removeprefix("torch.")
    if text not in _PRECISIONS:
        with contextlib.suppress(TypeError):
            text = np.dtype(dtype).name
    if text not in _PRECISIONS:
        raise ParameterError("dtype", f"must be float32 or float16 (torch, numpy or a name), not {dtype!r}")
    return _PRECISIONS[text]


def providers_for(device) -> list | None:
    """ONNX Runtime execution providers for RVM's ``device``.

    ``None``: mattekit's default (CUDA when ONNX Runtime has it, else CPU); ``"cpu"``: CPU only;
    ``"cuda"`` or ``"cuda:N"`` (a string or a ``torch.device``): CUDA (GPU ``N``), CPU behind it
    for operators CUDA lacks.

    Raises:
        mattekit.errors.ModelError: ``"cuda"`` but the installed ONNX Runtime has no CUDA provider
            (no silent fall-back to the CPU: a run meant for the GPU would be many times slower;
            ``pip install onnxruntime-gpu`` on a machine with CUDA, or ``device="cpu"``).
        mattekit.errors.ParameterError: another device.
    """
    if device is None:
        return None
    text = str(device).strip().lower()
    if text == "cpu":
        return ["CPUExecutionProvider"]
    kind, _, index = text.partition(":")
    if kind != "cuda" or (index and not index.isdigit()):
        raise ParameterError("device", f"must be 'cpu', 'cuda' or 'cuda:N', not {device!r}")
    import onnxruntime as ort

    if "CUDAExecutionProvider" not in ort.get_available_providers():
        raise ModelError(
            f"device {text}: this ONNX Runtime has no CUDA provider (available: "
            f"{', '.join(ort.get_available_providers())}); install onnxruntime-gpu or use device='cpu'"
        )
    return [("CUDAExecutionProvider", {"device_id": int(index or 0)}), "CPUExecutionProvider"]


def session_for_call(model, device=None, dtype=None):
    """The :class:`~mattekit.models.ModelSession` of a call: ``model`` loaded (see
    :func:`mattekit.models.new_session`) on ``device`` at ``dtype``.

    A session already loaded keeps its providers and precision: a different ``dtype`` is refused
    (:class:`~mattekit.errors.ModelError`), and so is ``device="cuda"`` for a session without
    the CUDA provider.

    Raises:
        mattekit.errors.ModelError, mattekit.errors.ParameterError: see :func:`providers_for`,
            :func:`precision_of`, :func:`~mattekit.models.new_session`.
        TypeError: a PyTorch module (RVM's model): here the model is a name, an ONNX path or a
            session.
    """
    from mattekit.models import ModelSession, new_session

    if hasattr(model, "parameters") and hasattr(model, "forward"):
        raise ParameterTypeError(
            "model",
            "is a PyTorch module; mattekit runs ONNX models: give a name "
            "('rvm-mobilenetv3'), an ONNX path or a ModelSession",
        )
    precision = precision_of(dtype)
    providers = providers_for(device)
    if isinstance(model, ModelSession):
        live = getattr(getattr(model, "_session", None), "get_providers", lambda: None)()
        if (
            providers is not None
            and live is not None
            and providers[0] != "CPUExecutionProvider"
            and "CUDAExecutionProvider" not in live
        ):
            raise ModelError(f"{model.name}: loaded without CUDA ({', '.join(live)}); load it with device='cuda'")
        return new_session(model, precision=precision)
    return new_session(model, precision=precision, providers=providers)


def validate_num_workers(value) -> int:
    """RVM's ``num_workers``: an integer in [0, :data:`MAX_NUM_WORKERS`]."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise ParameterTypeError("num_workers", f"must be an integer >= 0, not {value!r}")
    number = int(value)
    if not 0 <= number <= MAX_NUM_WORKERS:
        raise ParameterError("num_workers", f"must be an integer in [0, {MAX_NUM_WORKERS}], not {number}")
    return number


def validate_input_resize(value) -> tuple[int, int] | None:
    """RVM's ``input_resize``: ``None`` or ``(width, height)``, whole pixels in [1, :data:`MAX_RESIZE_SIDE`].

    Raises:
        mattekit.errors.ParameterTypeError: not a pair of integers.
        mattekit.errors.ParameterError: a side out of range.
    """
    if value is None:
        return None
    if (
        isinstance(value, (str, bytes))
        or not hasattr(value, "__len__")
        or len(value) != 2
        or any(isinstance(v, (bool, np.bool_)) or not isinstance(v, numbers.Integral) for v in value)
    ):
        raise ParameterTypeError("input_resize", f"must be (width, height) in whole pixels, not {value!r}")
    width, height = (int(v) for v in value)
    if not (1 <= width <= MAX_RESIZE_SIDE and 1 <= height <= MAX_RESIZE_SIDE):
        raise ParameterError("input_resize", f"sides must be in [1, {MAX_RESIZE_SIDE}] pixels, not {width}x{height}")
    problem = frame_size_problem(width, height)  # the frames matted are this size: the video cap
    if problem:
        raise ParameterError("input_resize", f"frames of {problem}")
    return width, height


class ResizedSource(FrameSource):
    """A frame source whose frames are resized to ``size`` = (width, height) before matting
    (area averaging when shrinking, bilinear when enlarging; OpenCV). Timing, audio, frame count
    and warnings are the wrapped source's."""

    def __init__(self, source: FrameSource, size: tuple[int, int]):
        self._source = source
        self.width, self.height = size
        self.path: Path = source.path
        self.frame_rate, self.time_base = source.frame_rate, source.time_base
        self.frame_count, self.has_audio = source.frame_count, source.has_audio

    @property
    def frames_read(self) -> int:  # type: ignore[override]
        return self._source.frames_read

    @property
    def warning(self) -> str | None:  # type: ignore[override]
        return self._source.warning

    def __iter__(self):
        import cv2

        size = (self.width, self.height)
        for frame in self._source:
            h, w = frame.rgb.shape[:2]
            shrink = self.width * self.height < w * h
            rgb = cv2.resize(frame.rgb, size, interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
            yield SourceFrame(rgb, frame.index, frame.pts)

    def close(self) -> None:
        self._source.close()
