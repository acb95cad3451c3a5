"""Lite R-ASPP (Howard et al., "Searching for MobileNetV3", ICCV 2019): the context box of RVM.

``out = relu(bn(conv1x1(x))) * sigmoid(conv1x1(global_avg_pool(x)))``.
"""

from __future__ import annotations

from torch import Tensor, nn


class LRASPP(nn.Module):
    """N×C_in×H×W -> N×C_out×H×W."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, 1, bias=False), nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True)
        )
        self.gate = nn.Sequential(
            nn.AdaptiveAvgPool2d(1), nn.Conv2d(in_channels, out_channels, 1, bias=False), nn.Sigmoid()
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.features(x) * self.gate(x)
