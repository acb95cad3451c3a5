"""The output heads (paper Fig. 2, "Projection"): a 1×1 convolution from the decoder's hidden
features to fgr residual + alpha (4 channels) or to segmentation logits (1 channel)."""

from __future__ import annotations

from torch import Tensor, nn

from mattekit.train.model.time_series import per_frame


class Projection(nn.Module):
    """B×T×C_in×H×W -> B×T×C_out×H×W."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, 1)

    def forward(self, x: Tensor) -> Tensor:
        return per_frame(self.conv, x)
