"""Training data made the way VideoMatte240K-style training is made (RVM, Sec. 4.1-4.2).

``sources``: foreground + alpha sources (RGBA frame folders, transparent clips, image + alpha
pairs), segmentation sources (image + mask) and backgrounds (pictures and videos).
``augmentation``: the paper's augmentations (motion over the clip, speed, colour, noise, blur,
crops, flips). ``compositing``: the on-the-fly compositing dataset, reproducible from a seed.
"""

from mattekit.train.dataset.compositing import CompositingDataset, SegmentationDataset, ValidationClip
from mattekit.train.dataset.sources import (
    BackgroundPool,
    ForegroundSource,
    SegmentationSource,
    open_backgrounds,
    open_foreground,
)

__all__ = [
    "BackgroundPool",
    "CompositingDataset",
    "ForegroundSource",
    "SegmentationDataset",
    "SegmentationSource",
    "ValidationClip",
    "open_backgrounds",
    "open_foreground",
]
