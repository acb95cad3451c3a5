"""RVM's MattingNetwork: encoder -> context -> recurrent decoder -> projection (-> Deep Guided Filter).

Source: Lin et al., "Robust High-Resolution Video Matting with Temporal Guidance", WACV 2022,
Fig. 2 and Sec. 3; the module structure follows github.com/PeterL1n/RobustVideoMatting
(``model/``), written anew for clips B×T×C×H×W throughout.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from mattekit.train.model.aspp import ASPP
from mattekit.train.model.decoder import RecurrentDecoder
from mattekit.train.model.deep_guided_filter import DeepGuidedFilterRefiner
from mattekit.train.model.encoders import EfficientNetV2SEncoder, MobileNetV3LargeEncoder, ResNet50Encoder
from mattekit.train.model.lraspp import LRASPP
from mattekit.train.model.projection import Projection
from mattekit.train.model.time_series import fold, per_frame, unfold

# variant -> (encoder class, context module factory, context output channels, decoder channels)
VARIANTS = {
    "mobilenetv3": (MobileNetV3LargeEncoder, LRASPP, 128, (80, 40, 32, 16)),
    "resnet50": (ResNet50Encoder, LRASPP, 256, (128, 64, 32, 16)),
    "efficientnetv2": (EfficientNetV2SEncoder, ASPP, 128, (80, 40, 32, 16)),
}


class MattingNetwork(nn.Module):
    """Robust Video Matting network.

    Args:
        variant: ``"mobilenetv3"`` (RVM's published model), ``"resnet50"`` or ``"efficientnetv2"``.

    ``forward(src, r1, r2, r3, r4, downsample_ratio, segmentation_pass, refine)``:

    - ``src``: B×T×3×H×W (a clip) or B×3×H×W (one frame), float32 RGB in 0..1.
    - ``r1..r4``: recurrent states from the previous call (None at the start of a clip; any
      tensor broadcastable to the state's shape, such as RVM's 1×1×1×1 zeros, is accepted).
    - ``downsample_ratio``: in (0, 1]; the encoder/decoder see ``src`` scaled by it. A float32
      tensor of shape [1] (how ONNX export passes it) always resizes, even at 1.
    - ``refine``: apply the Deep Guided Filter; ``None`` = only when ``downsample_ratio != 1``
      (RVM's training rule); the published ONNX file always applies it (``True``).
    - returns ``[fgr, pha, r1, r2, r3, r4]`` (fgr B×T×3×H×W, pha B×T×1×H×W, both in 0..1), or
      ``[seg, r1, r2, r3, r4]`` with segmentation logits B×T×1×h×w when ``segmentation_pass``.
      Outputs have the input's rank (T dropped for 4-D input).

    Raises:
        ValueError: unknown variant.
    """

    def __init__(self, variant: str = "mobilenetv3"):
        super().__init__()
        if variant not in VARIANTS:
            raise ValueError(f"unknown variant {variant!r} (known: {', '.join(VARIANTS)})")
        encoder, context, context_channels, decoder_channels = VARIANTS[variant]
        self.variant = variant
        self.backbone = encoder()
        f1, f2, f3, f4 = self.backbone.channels
        self.aspp = context(f4, context_channels)
        self.aspp_channels = context_channels
        self.decoder = RecurrentDecoder((f1, f2, f3, context_channels), decoder_channels)
        self.project_mat = Projection(decoder_channels[-1], 4)
        self.project_seg = Projection(decoder_channels[-1], 1)
        self.refiner = DeepGuidedFilterRefiner(decoder_channels[-1])

    def forward(
        self,
        src: Tensor,
        r1: Tensor | None = None,
        r2: Tensor | None = None,
        r3: Tensor | None = None,
        r4: Tensor | None = None,
        downsample_ratio: float = 1.0,
        segmentation_pass: bool = False,
        refine: bool | None = None,
    ) -> list[Tensor]:
        single = src.ndim == 4
        if single:
            src = src.unsqueeze(1)
        # a tensor ratio (ONNX export: an input of the graph) always resizes, as RVM's file does
        resize = isinstance(downsample_ratio, Tensor) or downsample_ratio != 1
        src_sm = per_frame(lambda x: _scale(x, downsample_ratio), src) if resize else src
        b, t = src.shape[:2]
        f1, f2, f3, f4 = (unfold(f, b, t) for f in self.backbone(fold(src_sm)))
        f4 = per_frame(self.aspp, f4)
        hid, *rec = self.decoder(src_sm, f1, f2, f3, f4, r1, r2, r3, r4)
        if segmentation_pass:
            out = [self.project_seg(hid)]
        else:
            fgr_residual, pha = self.project_mat(hid).split([3, 1], dim=2)
            if refine or (refine is None and resize):
                fgr_residual, pha = (
                    unfold(o, b, t)
                    for o in self.refiner(fold(src), fold(src_sm), fold(fgr_residual), fold(pha), fold(hid))
                )
            out = [(fgr_residual + src).clamp(0.0, 1.0), pha.clamp(0.0, 1.0)]
        if single:
            out = [o.squeeze(1) for o in out]
        return out + rec


def _scale(x: Tensor, ratio: float | Tensor) -> Tensor:
    """Bilinear resize by ``ratio`` (output floor(H·ratio); sampling with exactly 1/ratio).

    A float32 [1] tensor ``ratio`` goes through :class:`ResizeByRatio`, which exports as one ONNX
    ``Resize`` whose scales are computed from that tensor (so it stays a graph input)."""
    if isinstance(ratio, Tensor):
        return ResizeByRatio.apply(x, ratio)
    return F.interpolate(x, scale_factor=ratio, mode="bilinear", align_corners=False, recompute_scale_factor=False)


class ResizeByRatio(torch.autograd.Function):
    """``_scale`` with the ratio as a float32 [1] tensor, exported as ONNX
    ``Resize(x, roi=[], scales=[1, 1, r, r])`` (linear, half-pixel): the operation RVM's published
    file uses, so the exported graph takes ``downsample_ratio`` as an input instead of baking the
    tracing value in (RVM's onnx branch solves the same problem with a custom resize op)."""

    @staticmethod
    def forward(ctx, x: Tensor, ratio: Tensor) -> Tensor:
        return _scale(x, float(ratio.reshape(-1)[0]))

    @staticmethod
    def symbolic(g, x, ratio):
        ones = g.op("Constant", value_t=torch.ones(2, dtype=torch.float32))
        scales = g.op("Concat", ones, ratio, ratio, axis_i=0)
        roi = g.op("Constant", value_t=torch.zeros(0, dtype=torch.float32))
        out = g.op("Resize", x, roi, scales, mode_s="linear", coordinate_transformation_mode_s="half_pixel")
        # height and width depend on the ratio input: unknown to the exporter, which would
        # otherwise take the traced sizes and fold every later shape into a constant
        return out.setType(x.type().with_sizes([None] * 4))
