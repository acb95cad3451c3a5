"""On-the-fly compositing of foreground + alpha clips over backgrounds (RVM, Sec. 4.1).

Sample ``i`` of a :class:`CompositingDataset` is a pure function of ``(seed, i)``: which
foreground and background, which frames at which speed, the motion and the colour changes are
all drawn from ``numpy.random.default_rng([seed, i])``. A training run that resumes at step ``k``
therefore sees exactly the samples an uninterrupted run would have seen.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch

from mattekit.train.dataset.augmentation import Motion, color_jitter, frame_indices, noise_and_blur, warp_clip
from mattekit.train.dataset.sources import BackgroundPool, ForegroundSource, SegmentationSource


def _to_tensor(clip: np.ndarray) -> torch.Tensor:
    """T×H×W×C float32 -> T×C×H×W tensor."""
    return torch.from_numpy(np.ascontiguousarray(clip.transpose(0, 3, 1, 2)))


class CompositingDataset:
    """Matting clips made on the fly.

    Args:
        foregrounds: foreground + alpha sources.
        backgrounds: background pictures and videos.
        size: (height, width) of the samples, pixels.
        seq_length: frames per sample (T).
        seed: base of every random draw.
        augment: False gives plain, motionless composites (validation).

    ``dataset[i]`` -> ``(fgr T×3×H×W, pha T×1×H×W, bgr T×3×H×W)`` float32 tensors in 0..1; the
    composite is ``fgr·pha + bgr·(1-pha)``.
    """

    def __init__(
        self,
        foregrounds: list[ForegroundSource],
        backgrounds: BackgroundPool,
        size: tuple[int, int],
        seq_length: int,
        seed: int = 0,
        augment: bool = True,
    ):
        if not foregrounds or len(backgrounds) == 0:
            raise ValueError("need at least one foreground source and one background")
        if seq_length < 1 or min(size) < 32:
            raise ValueError(f"seq_length must be >= 1 and size >= 32 px, got {seq_length}, {size}")
        self.foregrounds, self.backgrounds = foregrounds, backgrounds
        self.size, self.seq_length, self.seed, self.augment = (size[0], size[1]), seq_length, seed, augment

    def __getitem__(self, index: int):
        rng = np.random.default_rng([self.seed, index])
        source = self.foregrounds[rng.integers(len(self.foregrounds))]
        t = self.seq_length
        frames = [source.read(int(j)) for j in frame_indices(rng, source.length, t)]
        bg_index = int(rng.integers(len(self.backgrounds)))
        bgr = self.backgrounds.frames(bg_index, rng.random(), t, float(rng.choice([0.5, 1.0, 2.0])))
        fg_motion = Motion.random(rng, (0.6, 1.1) if self.augment else (1.0, 1.0), moving=self.augment)
        bg_motion = Motion.random(rng, (1.0, 1.3) if self.augment else (1.0, 1.0), moving=self.augment)
        if not self.augment:
            fg_motion = bg_motion = Motion((1, 1), (0, 0), (0, 0), ((0, 0), (0, 0)), 1.0, False)
        rgba = warp_clip(frames, fg_motion, self.size, cv2.BORDER_CONSTANT).astype(np.float32) / 255.0
        bg = warp_clip(bgr, bg_motion, self.size, cv2.BORDER_REFLECT).astype(np.float32) / 255.0
        fgr, pha = rgba[..., :3], rgba[..., 3:]
        if self.augment:
            fgr, bg = color_jitter(fgr, rng), color_jitter(bg, rng)
            fgr, bg = noise_and_blur(fgr, rng), noise_and_blur(bg, rng)
        return _to_tensor(fgr), _to_tensor(pha), _to_tensor(bg)

    def batch(self, first_index: int, batch_size: int):
        """Samples ``first_index .. first_index + batch_size - 1`` stacked: B×T×C×H×W each."""
        items = [self[first_index + k] for k in range(batch_size)]
        return tuple(torch.stack(parts) for parts in zip(*items, strict=True))


class SegmentationDataset:
    """Image + mask samples for the segmentation objective, augmented like the matting data.

    ``dataset[i]`` -> ``(image T×3×H×W, mask T×1×H×W)`` float32 (a still image moved over T frames).
    """

    def __init__(self, sources: list[SegmentationSource], size: tuple[int, int], seq_length: int, seed: int = 0):
        if not sources:
            raise ValueError("need at least one segmentation source")
        self.sources, self.size, self.seq_length, self.seed = sources, (size[0], size[1]), seq_length, seed

    def __getitem__(self, index: int):
        rng = np.random.default_rng([self.seed, 1_000_003, index])
        source = self.sources[rng.integers(len(self.sources))]
        rgb, mask = source.read(int(rng.integers(len(source))))
        motion = Motion.random(rng, (1.0, 1.3))
        clip = warp_clip([np.dstack([rgb, mask])] * self.seq_length, motion, self.size, cv2.BORDER_REFLECT)
        image = noise_and_blur(color_jitter(clip[..., :3].astype(np.float32) / 255.0, rng), rng)
        return _to_tensor(image), _to_tensor((clip[..., 3:] > 127).astype(np.float32))

    def batch(self, first_index: int, batch_size: int):
        items = [self[first_index + k] for k in range(batch_size)]
        return tuple(torch.stack(parts) for parts in zip(*items, strict=True))


class ValidationClip:
    """Held-back foreground frames, in order, over one held-back background, no augmentation:
    ``(fgr, pha, bgr)`` T×C×H×W tensors for the whole clip (see :func:`validate` in ``train``)."""

    def __init__(
        self, source: ForegroundSource, backgrounds: BackgroundPool, size: tuple[int, int], max_frames: int = 30
    ):
        count = min(source.length, max_frames)
        frames = [source.read(i) for i in range(count)]
        still = Motion((1, 1), (0, 0), (0, 0), ((0, 0), (0, 0)), 1.0, False)
        rgba = warp_clip(frames, still, (size[0], size[1]), cv2.BORDER_CONSTANT).astype(np.float32) / 255.0
        bg = warp_clip(backgrounds.frames(0, 0.0, count, 1.0), still, (size[0], size[1]), cv2.BORDER_REFLECT)
        self.fgr, self.pha = _to_tensor(rgba[..., :3]), _to_tensor(rgba[..., 3:])
        self.bgr = _to_tensor(bg.astype(np.float32) / 255.0)
