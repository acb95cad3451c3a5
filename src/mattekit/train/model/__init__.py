"""The MattingNetwork of Robust Video Matting, one module per box of the paper's Figure 2.

``encoders``: feature extractor (MobileNetV3-Large, ResNet-50, EfficientNetV2-S);
``lraspp`` / ``aspp``: context module on the deepest features; ``decoder`` + ``conv_gru``:
the recurrent decoder; ``projection``: 1×1 heads for fgr+alpha and segmentation;
``deep_guided_filter``: the learnable upsampler for high resolutions; ``matting_network``
puts them together.
"""

from mattekit.train.model.matting_network import VARIANTS, MattingNetwork

__all__ = ["VARIANTS", "MattingNetwork"]
