"""Deep Guided Filter (Wu et al., "Fast End-to-End Trainable Guided Filter", CVPR 2018), as RVM
uses it to bring a low-resolution fgr+alpha back to full resolution (paper Sec. 3.1).

At low resolution a local linear model ``y = A x + b`` is fitted per pixel between the guide
``x`` (RGB + grey of the small image) and the output ``y`` (fgr residual + alpha); ``A`` is
predicted by 1×1 convolutions from the box-filtered covariance, variance and the decoder's
hidden features. ``A`` and ``b`` are upsampled bilinearly and applied to the full-resolution guide.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F


class DeepGuidedFilterRefiner(nn.Module):
    """Low-res (fgr residual, alpha, hidden) + full/low-res image -> full-res (fgr residual, alpha).

    All tensors N×C×H×W: ``fine_src`` N×3×H×W, ``base_src`` N×3×h×w, ``base_fgr`` N×3×h×w,
    ``base_pha`` N×1×h×w, ``base_hid`` N×hid×h×w.
    """

    def __init__(self, hid_channels: int = 16):
        super().__init__()
        self.box_filter = nn.Conv2d(4, 4, kernel_size=3, padding=1, bias=False, groups=4)
        nn.init.constant_(self.box_filter.weight, 1.0 / 9.0)
        self.conv = nn.Sequential(
            nn.Conv2d(4 * 2 + hid_channels, hid_channels, 1, bias=False),
            nn.BatchNorm2d(hid_channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(hid_channels, hid_channels, 1, bias=False),
            nn.BatchNorm2d(hid_channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(hid_channels, 4, 1, bias=True),
        )

    def forward(
        self, fine_src: Tensor, base_src: Tensor, base_fgr: Tensor, base_pha: Tensor, base_hid: Tensor
    ) -> tuple[Tensor, Tensor]:
        fine_x = torch.cat([fine_src, fine_src.mean(1, keepdim=True)], dim=1)
        base_x = torch.cat([base_src, base_src.mean(1, keepdim=True)], dim=1)
        base_y = torch.cat([base_fgr, base_pha], dim=1)
        mean_x = self.box_filter(base_x)
        mean_y = self.box_filter(base_y)
        cov_xy = self.box_filter(base_x * base_y) - mean_x * mean_y
        var_x = self.box_filter(base_x * base_x) - mean_x * mean_x
        a = self.conv(torch.cat([cov_xy, var_x, base_hid], dim=1))
        b = mean_y - a * mean_x
        size = fine_src.shape[-2:]
        a = F.interpolate(a, size=size, mode="bilinear", align_corners=False)
        b = F.interpolate(b, size=size, mode="bilinear", align_corners=False)
        fgr, pha = (a * fine_x + b).split([3, 1], dim=1)
        return fgr, pha
