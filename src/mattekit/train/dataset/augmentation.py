"""The augmentations of RVM's training data (Lin et al., "Robust High-Resolution Video Matting with
Temporal Guidance", WACV 2022, Sec. 4.2).

"Motion" is an affine transform (scale, rotation, shear, translation) whose parameters move from
a random start to a random end over the clip with a random easing, so a still foreground or
picture background moves like video; foreground and background move independently. Colour
(brightness, contrast, saturation, hue), Gaussian noise and blur, horizontal flips and the
crop/scale to the training size are applied per clip; speed changes and pauses are the frame
sampler's (:func:`frame_indices`). Every draw comes from the ``numpy.random.Generator`` passed
in, so a sample is a pure function of the seed.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

SPEEDS = (0.5, 1.0, 1.0, 2.0, 3.0)


def frame_indices(rng: np.random.Generator, length: int, count: int) -> np.ndarray:
    """``count`` frame numbers of a clip of ``length`` frames: a random start, a random speed
    from :data:`SPEEDS`, sometimes a pause; played back and forth at the ends."""
    speed = rng.choice(SPEEDS)
    steps = np.full(count, speed)
    steps[0] = 0
    if count > 2 and rng.random() < 0.1:  # pause for a few frames
        a = rng.integers(1, count)
        steps[a : a + rng.integers(1, count)] = 0
    pos = rng.uniform(0, length) + np.cumsum(steps)
    period = max(1, 2 * length - 2)
    j = np.floor(pos).astype(int) % period
    return np.where(j < length, j, period - j).clip(0, length - 1)


@dataclass
class Motion:
    """Affine parameters at the start and end of a clip; :meth:`matrix` interpolates them."""

    scale: tuple[float, float]
    angle: tuple[float, float]
    shear: tuple[float, float]
    shift: tuple[tuple[float, float], tuple[float, float]]
    ease: float
    flip: bool

    @classmethod
    def random(cls, rng: np.random.Generator, scale: tuple[float, float], moving: bool = True) -> Motion:
        """Draw a motion; ``scale`` bounds the zoom relative to covering the output."""

        def pair(lo, hi):
            a = rng.uniform(lo, hi)
            return (a, rng.uniform(lo, hi) if moving and rng.random() < 0.5 else a)

        s = pair(*scale)
        shift = ((rng.uniform(-0.1, 0.1), rng.uniform(-0.1, 0.1)),) * 2
        if moving and rng.random() < 0.5:
            shift = (shift[0], (rng.uniform(-0.1, 0.1), rng.uniform(-0.1, 0.1)))
        return cls(
            scale=s,
            angle=pair(-10, 10),
            shear=pair(-5, 5),
            shift=shift,
            ease=float(rng.choice([0.5, 1.0, 2.0])),
            flip=bool(rng.random() < 0.5),
        )

    def matrix(self, t: float, src_hw: tuple[int, int], out_hw: tuple[int, int]) -> np.ndarray:
        """2×3 matrix mapping source pixels to output pixels at clip time ``t`` in 0..1."""
        u = t**self.ease
        lerp = lambda p: p[0] + (p[1] - p[0]) * u  # noqa: E731
        (h, w), (oh, ow) = src_hw, out_hw
        cover = max(oh / h, ow / w) * lerp(self.scale)
        a, sh = np.deg2rad(lerp(self.angle)), np.deg2rad(lerp(self.shear))
        rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
        linear = cover * rot @ np.array([[1.0, np.tan(sh)], [0.0, 1.0]])
        if self.flip:
            linear = linear @ np.array([[-1.0, 0.0], [0.0, 1.0]])
        dx = lerp((self.shift[0][0], self.shift[1][0])) * ow
        dy = lerp((self.shift[0][1], self.shift[1][1])) * oh
        centre_out = np.array([ow / 2 + dx, oh / 2 + dy])
        offset = centre_out - linear @ np.array([w / 2, h / 2])
        return np.hstack([linear, offset[:, None]])


def warp_clip(frames: list[np.ndarray], motion: Motion, out_hw: tuple[int, int], border: int) -> np.ndarray:
    """Apply ``motion`` to each frame (H×W×C uint8) -> T×oh×ow×C uint8.

    ``border``: ``cv2.BORDER_CONSTANT`` (transparent outside, for foregrounds) or
    ``cv2.BORDER_REFLECT`` (backgrounds).
    """
    count = len(frames)
    out = []
    for k, frame in enumerate(frames):
        m = motion.matrix(k / max(1, count - 1), frame.shape[:2], out_hw)
        warped = cv2.warpAffine(
            frame, m, (out_hw[1], out_hw[0]), flags=cv2.INTER_LINEAR, borderMode=border, borderValue=0
        )
        out.append(warped.reshape((*out_hw, frame.shape[2])))
    return np.stack(out)


def color_jitter(rgb: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Random brightness, contrast, saturation (±30 %) and hue (±0.05 turn), the same for all
    frames; T×H×W×3 float32 in 0..1 -> same."""
    x = rgb * rng.uniform(0.7, 1.3)
    mean = x.mean()
    x = (x - mean) * rng.uniform(0.7, 1.3) + mean
    grey = x @ np.array([0.299, 0.587, 0.114], np.float32)
    x = (x - grey[..., None]) * rng.uniform(0.7, 1.3) + grey[..., None]
    x = np.clip(x, 0, 1).astype(np.float32)
    hue = rng.uniform(-0.05, 0.05)
    if abs(hue) > 1e-3:
        hsv = np.stack([cv2.cvtColor(f, cv2.COLOR_RGB2HSV) for f in x])
        hsv[..., 0] = (hsv[..., 0] + hue * 360.0) % 360.0
        x = np.stack([cv2.cvtColor(f, cv2.COLOR_HSV2RGB) for f in hsv])
    return np.clip(x, 0, 1).astype(np.float32)


def noise_and_blur(rgb: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """With probability 0.3 each: Gaussian noise (σ up to 0.03) and Gaussian blur (σ up to 1.5 px)."""
    if rng.random() < 0.3:
        rgb = rgb + rng.normal(0, rng.uniform(0, 0.03), rgb.shape).astype(np.float32)
    if rng.random() < 0.3:
        sigma = rng.uniform(0.1, 1.5)
        rgb = np.stack([cv2.GaussianBlur(f, (0, 0), sigma) for f in rgb])
    return np.clip(rgb, 0, 1).astype(np.float32)
