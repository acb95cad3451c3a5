"""Build an INT8 copy of the RVM model with ONNX Runtime's quantization tools.

Method: static post-training quantization (ONNX Runtime ``quantize_static``) in QDQ format,
per-channel INT8 weights and per-tensor UINT8 activations (ONNX Runtime fuses the pattern into
``QLinearConv`` kernels, which use AVX-512 VNNI / AVX-VNNI where the CPU has them). Only the
recurrent decoder is quantized (:data:`QUANTIZED_RANGE`: its up-sampling blocks, ConvGRU cells
and the output block's two 3x3 convolutions, which take most of the time at video resolutions).
The MobileNetV3 encoder, the 1/16 ConvGRU, the output projection and the Deep Guided Filter
stay FP32: quantizing the encoder turns blurred people in the background into foreground (see
``docs/int8.md``). Per-channel QDQ needs opset >= 13, so the
opset-12 file is first converted with :func:`onnx.version_converter.convert_version` and then
pre-processed with :func:`onnxruntime.quantization.shape_inference.quant_pre_process`.

Calibration does not use any user or test data: the frames are synthetic pans and zooms over
three pictures shipped inside scikit-image (``astronaut``, ``coffee``, ``chelsea``), fed through
the FP32 model in order so that the recurrent state seen in calibration is a real one. The build
is deterministic (same FP32 file, same ONNX Runtime version -> same INT8 file).

The INT8 file lives in mattekit's model cache, named by the FP32 file's SHA-256
(``<cache>/int8/<sha256>.onnx``, see :func:`int8_path_for`), whether the FP32 file is a
registered model or a user's own ``--model`` file: nothing is ever written beside a user's
model. It is built in a temporary folder of the cache and moved into place with
:func:`os.replace`, under a :class:`filelock.FileLock` (also in the cache), so concurrent first
uses build it once. The file records the recipe version and the FP32 file's SHA-256 in its
metadata; a stale file is rebuilt.

Sources: Lin et al., "Robust High-Resolution Video Matting with Temporal Guidance", WACV 2022
(github.com/PeterL1n/RobustVideoMatting); ONNX Runtime quantization
(onnxruntime.ai/docs/performance/model-optimizations/quantization.html).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

from mattekit.errors import ModelError
from mattekit.extras import require

#: Bumped whenever the recipe below changes, so cached files built by an older recipe are rebuilt.
RECIPE_VERSION = "1"

#: The nodes quantized, by the number in their name in RVM's ONNX export (``Conv_290``...), which
#: follows the export's node order: 0-168 input scaling and the MobileNetV3 + LR-ASPP encoder,
#: 169-188 source pooling and the 1/16 ConvGRU, 189-293 decoder 1/8, 1/4, 1/2 blocks and the
#: output block's 3x3 convolutions, 294 the output projection, 295- the Deep Guided Filter.
QUANTIZED_RANGE = (189, 293)

#: Calibration frames: size (height, width), ratio and number of frames per picture.
CALIB_SIZE = (360, 640)
CALIB_RATIO = 0.8  # the encoder sees 288 x 512, as with 720p video at the auto ratio 0.4
CALIB_FRAMES_PER_IMAGE = 8


def int8_path_for(fp32_sha256: str) -> Path:
    """Where the INT8 copy of the FP32 file with this SHA-256 is cached: ``<cache>/int8/<sha256>.onnx``.

    Keyed by content, so two copies of one model share it, an edited model gets a new one, and
    the folder of a user's model is never written to.
    """
    from mattekit.models.cache import cache_dir

    if len(fp32_sha256) != 64 or not all(c in "0123456789abcdef" for c in fp32_sha256):
        raise ValueError(f"not a hex SHA-256: {fp32_sha256!r}")
    return cache_dir() / "int8" / f"{fp32_sha256}.onnx"


def _node_index(name: str) -> int:
    try:
        return int(name.rsplit("_", 1)[1])
    except (IndexError, ValueError):
        return -1


def excluded_nodes(model) -> list[str]:
    """The names of the nodes of ``model`` (an ``onnx.ModelProto``) that stay FP32."""
    lo, hi = QUANTIZED_RANGE
    return sorted({n.name for n in model.graph.node if not lo <= _node_index(n.name) <= hi})


def calibration_frames() -> list[np.ndarray]:
    """Synthetic calibration clips: pans and zooms over three scikit-image pictures.

    Returns:
        ``3 * CALIB_FRAMES_PER_IMAGE`` frames, each ``CALIB_SIZE + (3,)`` uint8 RGB; every run
        of ``CALIB_FRAMES_PER_IMAGE`` frames is one continuous clip.

    Raises:
        mattekit.extras.MissingExtra: the int8 extra (scikit-image) is not installed.
    """
    require("int8", "building the INT8 model")
    import cv2
    import skimage.data

    height, width = CALIB_SIZE
    frames = []
    per = CALIB_FRAMES_PER_IMAGE
    for image in (skimage.data.astronaut(), skimage.data.coffee(), skimage.data.chelsea()):
        h, w = image.shape[:2]
        for k in range(per):
            t = k / (per - 1)
            scale = 0.95 - 0.25 * t  # slow zoom in
            ch = int(min(h, w * height / width) * scale)
            cw = int(ch * width / height)
            y = int(np.round((h - ch) * (0.5 + 0.4 * np.sin(np.pi * t) - 0.2)))
            x = int(np.round((w - cw) * t))  # pan left to right
            y = min(max(y, 0), h - ch)
            crop = np.ascontiguousarray(image[y : y + ch, x : x + cw, :3])
            frames.append(cv2.resize(crop, (width, height), interpolation=cv2.INTER_AREA))
    return frames


def _calibration_reader(fp32_path: Path):
    import onnxruntime as ort
    from onnxruntime.quantization import CalibrationDataReader

    from mattekit.models.rvm_onnx import OUTPUT_NAMES
    from mattekit.models.rvm_onnx import feeds as rvm_feeds

    session = ort.InferenceSession(str(fp32_path), providers=["CPUExecutionProvider"])
    feeds = []
    zero = np.zeros((1, 1, 1, 1), dtype=np.float32)
    for i, frame in enumerate(calibration_frames()):
        if i % CALIB_FRAMES_PER_IMAGE == 0:
            state = (zero, zero, zero, zero)
        src = np.ascontiguousarray(frame.transpose(2, 0, 1)[None], dtype=np.float32) / np.float32(255)
        feed = rvm_feeds(src, state, CALIB_RATIO)
        feeds.append(feed)
        r1, r2, r3, r4 = session.run(list(OUTPUT_NAMES), feed)[2:]
        state = (r1, r2, r3, r4)

    class Reader(CalibrationDataReader):
        def __init__(self):
            self._it = iter(feeds)

        def get_next(self):
            return next(self._it, None)

        def rewind(self):
            self._it = iter(feeds)

    return Reader()


def _metadata(path: Path) -> dict[str, str]:
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    return {p.key: p.value for p in model.metadata_props}


def _is_current(int8: Path, fp32_sha: str) -> bool:
    if not int8.is_file():
        return False
    try:
        meta = _metadata(int8)
    except Exception:  # a truncated or foreign file: rebuild it
        return False
    return meta.get("mattekit.int8_recipe") == RECIPE_VERSION and meta.get("mattekit.fp32_sha256") == fp32_sha


def build_int8(fp32_path: str | os.PathLike, out_path: str | os.PathLike | None = None, force: bool = False) -> Path:
    """Return the INT8 copy of an RVM FP32 ONNX file, building and caching it when needed.

    Args:
        fp32_path: the FP32 RVM file (opset 12 as exported by RVM, or later).
        out_path: where to write; default :func:`int8_path_for` (in the model cache, by the
            FP32 file's SHA-256).
        force: rebuild even when an up-to-date file exists.

    Returns:
        The path of the INT8 ONNX file (same inputs and outputs as the FP32 file, float32 I/O).

    Raises:
        mattekit.errors.ModelError: the FP32 file cannot be converted or quantized.
        mattekit.extras.MissingExtra: the int8 extra (scikit-image, for the calibration
            pictures) is not installed and no up-to-date INT8 file is cached.
    """
    import onnx
    from filelock import FileLock
    from onnx import version_converter
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    from mattekit.models.cache import sha256_of

    fp32_path = Path(fp32_path)
    fp32_sha = sha256_of(fp32_path)
    target = Path(out_path) if out_path is not None else int8_path_for(fp32_sha)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ModelError(f"{target.parent}: cannot create the INT8 model folder ({exc.strerror or exc})") from None
    with FileLock(str(target) + ".lock"):
        if not force and _is_current(target, fp32_sha):
            return target
        require("int8", "building the INT8 model")
        with tempfile.TemporaryDirectory(prefix="mattekit-int8-", dir=target.parent) as tmp:
            tmpdir = Path(tmp)
            try:
                model = onnx.load(str(fp32_path))
                opset = max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), default=0)
                if opset < 13:
                    model = version_converter.convert_version(model, 13)
                converted = tmpdir / "op13.onnx"
                onnx.save(model, str(converted))
                prepared = tmpdir / "prepared.onnx"
                quant_pre_process(str(converted), str(prepared), skip_symbolic_shape=True)
                prepared_model = onnx.load(str(prepared))
                quantized = tmpdir / "int8.onnx"
                quantize_static(
                    str(prepared),
                    str(quantized),
                    _calibration_reader(fp32_path),
                    quant_format=QuantFormat.QDQ,
                    per_channel=True,
                    activation_type=QuantType.QUInt8,
                    weight_type=QuantType.QInt8,
                    nodes_to_exclude=excluded_nodes(prepared_model),
                    calibrate_method=CalibrationMethod.MinMax,
                )
                result = onnx.load(str(quantized))
            except ModelError:
                raise
            except Exception as exc:  # onnx / onnxruntime raise many unrelated types
                first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                raise ModelError(f"{fp32_path}: cannot build the INT8 model ({first})") from None
            for key, value in (("mattekit.int8_recipe", RECIPE_VERSION), ("mattekit.fp32_sha256", fp32_sha)):
                prop = result.metadata_props.add()
                prop.key, prop.value = key, value
            staged = tmpdir / target.name
            onnx.save(result, str(staged))
            os.replace(staged, target)
    return target
