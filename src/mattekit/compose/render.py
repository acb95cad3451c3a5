"""Matte -> output image: the one place a matted frame becomes the 8-bit picture an output holds.

Used by the video pipeline's writers (one :class:`~mattekit.compose.composite.FrameCompositor`
per output, buffers reused frame after frame), by the image batch and by the server (a still,
through :func:`render_still`). What each output holds is the output plan's choice
(:meth:`mattekit.plan.OutputPlan.image_kind`):

========== ======================================================================
image kind  picture
========== ======================================================================
composite   H×W×3 uint8: foreground over the background (``C = F·α + B·(1 − α)``)
rgba        H×W×4 uint8: foreground colour with straight alpha (a cut-out)
rgb         H×W×3 uint8: foreground colour
gray        H×W uint8: alpha
========== ======================================================================
"""

from __future__ import annotations

import numpy as np

from mattekit.compose.background import Background, BlurBackground
from mattekit.compose.composite import FrameCompositor

IMAGE_KINDS = ("composite", "rgba", "rgb", "gray")


def render_output(
    image_kind: str,
    matte,
    compositor: FrameCompositor,
    background: Background | None = None,
    index: int = 0,
    frame: np.ndarray | None = None,
) -> np.ndarray:
    """The picture of one output for one matted frame.

    Args:
        image_kind: one of :data:`IMAGE_KINDS`.
        matte: a :class:`~mattekit.models.base.FrameMatte` (alpha and foreground by bands of rows).
        compositor: the output's :class:`FrameCompositor` (of the frame's size); the result is
            one of its buffers, valid until its next use.
        background: for ``composite``: the (opaque) :class:`Background`.
        index: the frame's number (a video background shows its frame for that time).
        frame: the input frame, H×W×3 uint8 RGB (a ``blur`` background blurs it).

    Returns:
        H×W×3, H×W×4 or H×W uint8 (see the module's table).

    Raises:
        ValueError: unknown ``image_kind``, or ``composite`` without an opaque background.
    """
    if image_kind not in IMAGE_KINDS:
        raise ValueError(f"image_kind must be one of {', '.join(IMAGE_KINDS)}, not {image_kind!r}")
    if image_kind != "composite":
        return compositor.render(image_kind, matte)
    if background is None or background.transparent:
        raise ValueError("a composite needs an opaque background (a transparent one is written as rgba)")
    h, w = matte.height, matte.width
    if isinstance(background, BlurBackground):  # the blur leaves the person out: it needs the whole alpha
        alpha = matte.whole_alpha if isinstance(matte, StillMatte) else compositor.alpha_plane(matte)
        return compositor.render("composite", matte, background.frame(index, h, w, frame, alpha), alpha)
    return compositor.render("composite", matte, background.frame(index, h, w, frame))


class StillMatte:
    """A still's whole alpha (H×W) and foreground (H×W×3) read by bands, as a
    :class:`~mattekit.models.base.FrameMatte` is (views, no copies)."""

    def __init__(self, alpha: np.ndarray, fgr: np.ndarray | None):
        self.height, self.width = alpha.shape
        self.whole_alpha, self._fgr = alpha, fgr

    def alpha(self, rows: slice, out: np.ndarray | None = None) -> np.ndarray:
        return self.whole_alpha[rows]

    def fgr(self, rows: slice, cols: slice = slice(None), out: np.ndarray | None = None) -> np.ndarray:
        if self._fgr is None:
            raise ValueError("this matte has alpha only (no foreground colour)")
        return self._fgr[rows, cols].transpose(2, 0, 1)


def render_still(
    image_kind: str,
    alpha: np.ndarray,
    fgr: np.ndarray | None,
    background: Background | None = None,
    image: np.ndarray | None = None,
) -> np.ndarray:
    """:func:`render_output` for a still image.

    Args:
        alpha: H×W float32 in 0..1; fgr: H×W×3 float32 RGB in 0..1 (straight), or ``None``
            (alpha only: ``gray`` is the only kind that can be rendered).
        image: the H×W×3 uint8 RGB photo (a ``blur`` background blurs it).

    Returns:
        A new H×W×3, H×W×4 or H×W uint8 array.
    """
    h, w = alpha.shape
    return render_output(image_kind, StillMatte(alpha, fgr), FrameCompositor(h, w), background, 0, image)
