"""Feature extractors (the "Encoder" box): four feature maps at 1/2, 1/4, 1/8 and 1/16.

Each encoder takes N×3×H×W RGB in 0..1, normalises it with ImageNet's mean and standard
deviation, and returns ``[f1, f2, f3, f4]`` at strides 2, 4, 8, 16. The deepest stage is
dilated instead of strided so that f4 stays at 1/16 (RVM, Sec. 3.1).

- MobileNetV3-Large (Howard et al., "Searching for MobileNetV3", ICCV 2019): torchvision's
  ``mobilenet_v3_large`` with ``dilated=True``; f1..f4 = 16, 24, 40, 960 channels. RVM's default
  variant.
- ResNet-50 (He et al., "Deep Residual Learning for Image Recognition", CVPR 2016): torchvision's
  ``resnet50`` with the last stage dilated; f1..f4 = 64, 256, 512, 2048 channels. RVM's larger
  variant.
- EfficientNetV2-S (Tan & Le, "EfficientNetV2: Smaller Models and Faster Training", ICML 2021):
  torchvision's ``efficientnet_v2_s`` cut after the 1/16 stage; f1..f4 = 24, 48, 64, 160
  channels. The ModelScope video human matting design (damo/cv_effnetv2_video-human-matting)
  pairs this backbone family with ASPP + GRU + DGF.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class _Encoder(nn.Module):
    """Normalise, then run ``self.stages`` and return the outputs listed in ``self.taps``."""

    channels: tuple[int, int, int, int]
    mean: Tensor  # buffers registered in __init__
    std: Tensor

    def __init__(self, stages: nn.Sequential, taps: tuple[int, int, int, int]):
        super().__init__()
        self.stages = stages
        self.taps = taps
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def forward(self, x: Tensor) -> list[Tensor]:
        x = (x - self.mean) / self.std
        features = []
        for i, stage in enumerate(self.stages):
            x = stage(x)
            if i in self.taps:
                features.append(x)
            if i == self.taps[-1]:
                break
        return features


class MobileNetV3LargeEncoder(_Encoder):
    """MobileNetV3-Large features, last stage dilated (output stride 16)."""

    channels = (16, 24, 40, 960)

    def __init__(self):
        from torchvision.models import mobilenet_v3_large

        super().__init__(mobilenet_v3_large(weights=None, dilated=True).features, taps=(1, 3, 6, 16))


class ResNet50Encoder(_Encoder):
    """ResNet-50 stem and four stages, the fourth dilated (output stride 16)."""

    channels = (64, 256, 512, 2048)

    def __init__(self):
        from torchvision.models import resnet50

        net = resnet50(weights=None, replace_stride_with_dilation=[False, False, True])
        stages = nn.Sequential(
            nn.Sequential(net.conv1, net.bn1, net.relu),
            nn.Sequential(net.maxpool, net.layer1),
            net.layer2,
            net.layer3,
            net.layer4,
        )
        super().__init__(stages, taps=(0, 1, 2, 4))


class EfficientNetV2SEncoder(_Encoder):
    """EfficientNetV2-S features up to the 1/16 stage (stages 0-5; the 1/32 stage is dropped)."""

    channels = (24, 48, 64, 160)

    def __init__(self):
        from torchvision.models import efficientnet_v2_s

        features = efficientnet_v2_s(weights=None).features
        super().__init__(nn.Sequential(*list(features)[:6]), taps=(1, 2, 3, 5))
