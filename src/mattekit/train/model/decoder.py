"""RVM's recurrent decoder (paper Sec. 3.1, Fig. 2): bottleneck, three upsampling blocks and an
output block, with a ConvGRU on half of the channels at the 1/16, 1/8, 1/4 and 1/2 scales.

Every block also sees the input image pooled to its scale (``s1..s3``), and every tensor is a
clip B×T×C×H×W. The four hidden states ``r1..r4`` (1/2, 1/4, 1/8, 1/16) carry time.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from mattekit.train.model.conv_gru import ConvGRU
from mattekit.train.model.time_series import per_frame


def _conv_bn_relu(cin: int, cout: int) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]


def _upsample_to(x: Tensor, like: Tensor) -> Tensor:
    """Bilinear ×2 (half-pixel centres), cropped to ``like``'s height and width."""
    x = F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)
    return x[:, :, : like.shape[-2], : like.shape[-1]]


class HalfGRU(nn.Module):
    """Pass the first half of the channels through, run a ConvGRU on the second half."""

    def __init__(self, channels: int):
        super().__init__()
        self.passthrough = channels // 2  # not `half`: that would hide nn.Module.half()
        self.gru = ConvGRU(channels - self.passthrough)

    def forward(self, x: Tensor, r: Tensor | None) -> tuple[Tensor, Tensor]:
        a, b = x.split([self.passthrough, x.shape[2] - self.passthrough], dim=2)
        b, r = self.gru(b, r)
        return torch.cat([a, b], dim=2), r


class UpsamplingBlock(nn.Module):
    """Upsample ×2, concatenate the encoder skip and the pooled image, conv-BN-ReLU, half ConvGRU."""

    def __init__(self, in_channels: int, skip_channels: int, src_channels: int, out_channels: int):
        super().__init__()
        self.conv = nn.Sequential(*_conv_bn_relu(in_channels + skip_channels + src_channels, out_channels))
        self.gru = HalfGRU(out_channels)

    def _frame(self, x: Tensor, f: Tensor, s: Tensor) -> Tensor:
        return self.conv(torch.cat([_upsample_to(x, s), f, s], dim=1))

    def forward(self, x: Tensor, f: Tensor, s: Tensor, r: Tensor | None) -> tuple[Tensor, Tensor]:
        return self.gru(per_frame(self._frame, x, f, s), r)


class OutputBlock(nn.Module):
    """Upsample ×2, concatenate the image, two conv-BN-ReLU (no recurrence at full resolution)."""

    def __init__(self, in_channels: int, src_channels: int, out_channels: int):
        super().__init__()
        self.conv = nn.Sequential(
            *_conv_bn_relu(in_channels + src_channels, out_channels), *_conv_bn_relu(out_channels, out_channels)
        )

    def _frame(self, x: Tensor, s: Tensor) -> Tensor:
        return self.conv(torch.cat([_upsample_to(x, s), s], dim=1))

    def forward(self, x: Tensor, s: Tensor) -> Tensor:
        return per_frame(self._frame, x, s)


def _pool(x: Tensor) -> Tensor:
    return F.avg_pool2d(x, 2, 2, ceil_mode=True, count_include_pad=False)


class RecurrentDecoder(nn.Module):
    """Features f1..f4 (strides 2..16) + image s0 -> hidden B×T×out[3]×H×W and states r1..r4.

    Args:
        feature_channels: channels of f1, f2, f3 and of f4 after the context module.
        decoder_channels: output channels of the 1/8, 1/4, 1/2 and full-resolution blocks.
    """

    def __init__(self, feature_channels: tuple[int, ...], decoder_channels: tuple[int, ...]):
        super().__init__()
        f1, f2, f3, f4 = feature_channels
        d3, d2, d1, d0 = decoder_channels
        self.decode4 = HalfGRU(f4)
        self.decode3 = UpsamplingBlock(f4, f3, 3, d3)
        self.decode2 = UpsamplingBlock(d3, f2, 3, d2)
        self.decode1 = UpsamplingBlock(d2, f1, 3, d1)
        self.decode0 = OutputBlock(d1, 3, d0)

    def forward(
        self,
        s0: Tensor,
        f1: Tensor,
        f2: Tensor,
        f3: Tensor,
        f4: Tensor,
        r1: Tensor | None,
        r2: Tensor | None,
        r3: Tensor | None,
        r4: Tensor | None,
    ):
        s1 = per_frame(_pool, s0)
        s2 = per_frame(_pool, s1)
        s3 = per_frame(_pool, s2)
        x4, r4 = self.decode4(f4, r4)
        x3, r3 = self.decode3(x4, f3, s3, r3)
        x2, r2 = self.decode2(x3, f2, s2, r2)
        x1, r1 = self.decode1(x2, f1, s1, r1)
        return self.decode0(x1, s0), r1, r2, r3, r4
