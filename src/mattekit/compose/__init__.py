"""Compositing: backgrounds, alpha blending, RGBA cut-outs."""

from mattekit.compose.background import Background, ColorBackground, ImageBackground, parse_background
from mattekit.compose.composite import composite, to_rgba

__all__ = ["Background", "ColorBackground", "ImageBackground", "composite", "parse_background", "to_rgba"]
