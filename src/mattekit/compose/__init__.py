"""Compositing: backgrounds, alpha blending, RGBA cut-outs."""

from mattekit.compose.background import (
    Background,
    BlurBackground,
    ColorBackground,
    ImageBackground,
    TransparentBackground,
    VideoBackground,
    parse_background,
)
from mattekit.compose.composite import composite, to_rgba

__all__ = [
    "Background",
    "BlurBackground",
    "ColorBackground",
    "ImageBackground",
    "TransparentBackground",
    "VideoBackground",
    "composite",
    "parse_background",
    "to_rgba",
]
