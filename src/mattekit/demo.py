"""The built-in demo: a short 720p clip made from scikit-image's astronaut photograph.

The photograph (NASA, public domain) ships inside the scikit-image wheel, so the demo works on a
fresh machine with no test data. A slow pan and zoom turns it into a 3-second 30 fps clip.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from PIL import Image

from mattekit.extras import require

DEMO_SIZE = (1280, 720)
DEMO_FRAMES = 90
DEMO_RATE = Fraction(30)


def make_demo_clip(path: Path, frames: int = DEMO_FRAMES, size: tuple[int, int] = DEMO_SIZE) -> Path:
    """Write an H.264 clip of the astronaut photograph with a slow pan and zoom.

    Args:
        path: destination ``.mp4``.
        frames: number of frames (at 30 fps).
        size: (width, height) in pixels.

    Returns:
        ``path``. The clip is written under a temporary name and renamed when complete.
    """
    from mattekit.io.atomic import commit, discard, start_temp

    path = Path(path)
    temp = start_temp(path)
    try:
        _write_clip(temp, frames, size)
        commit(temp, path)
    except BaseException:
        discard(temp)
        raise
    return path


def _write_clip(path: Path, frames: int, size: tuple[int, int]) -> None:
    require("demo", "the demo clip")
    from skimage import data

    photo = Image.fromarray(data.astronaut())  # 512×512 RGB
    width, height = size
    aspect = width / height
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=DEMO_RATE)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"crf": "18", "preset": "veryfast"}
        for i in range(frames):
            t = i / max(frames - 1, 1)
            zoom = 1.0 + 0.25 * t  # crop shrinks: the camera zooms in
            crop_w = photo.width / zoom
            crop_h = crop_w / aspect
            left = (photo.width - crop_w) * (0.2 + 0.6 * t)  # pans left to right
            top = (photo.height - crop_h) * 0.25
            frame = photo.resize(size, Image.Resampling.BICUBIC, box=(left, top, left + crop_w, top + crop_h))
            container.mux(stream.encode(av.VideoFrame.from_image(frame)))
        container.mux(stream.encode(None))


def side_by_side(panels: list[np.ndarray], height: int = 360) -> np.ndarray:
    """Join H×W×3 uint8 images left to right, each scaled to ``height`` pixels."""
    scaled = []
    for p in panels:
        img = Image.fromarray(p if p.ndim == 3 else np.repeat(p[:, :, None], 3, axis=2))
        scaled.append(np.asarray(img.resize((round(img.width * height / img.height), height))))
    return np.concatenate(scaled, axis=1)
