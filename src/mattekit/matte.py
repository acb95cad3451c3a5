"""``Matte``: the matting of one image (alpha + foreground colour), whichever method made it.

It sits below ``pipeline/`` (network mattes) and ``classical/`` (trimap mattes), which both return it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mattekit.compose.background import Background, parse_background
from mattekit.compose.render import render_still


@dataclass
class Matte:
    """The matting of one image.

    Attributes:
        alpha: H×W float32 in 0..1 (1 = person).
        fgr: H×W×3 float32 RGB in 0..1, the person's colour (straight, not premultiplied), or
            ``None`` when only the alpha was asked for (``matte_image(fg_estimate="none")``).
        image: the H×W×3 uint8 RGB input (used by a ``blur`` background), or ``None``.
    """

    alpha: np.ndarray
    fgr: np.ndarray | None
    image: np.ndarray | None = None

    def render(self, image_kind: str, background: Background | None = None) -> np.ndarray:
        """One output picture (:func:`mattekit.compose.render.render_still`): ``rgba`` (H×W×4
        cut-out), ``rgb`` (H×W×3 foreground), ``gray`` (H×W alpha) or ``composite`` (H×W×3 over
        the opaque ``background``), uint8.

        Raises:
            ValueError: a picture that needs the foreground colour from a matte without one.
        """
        if self.fgr is None and image_kind != "gray":
            raise ValueError(f"the {image_kind} picture needs the foreground colour; this matte has alpha only")
        return render_still(image_kind, self.alpha, self.fgr, background, self.image)

    def rgba(self) -> np.ndarray:
        """H×W×4 uint8 cut-out with straight alpha."""
        return self.render("rgba")

    def alpha_image(self) -> np.ndarray:
        """H×W uint8 alpha (0..255, rounded), as written to ``<stem>_alpha.png``."""
        return self.render("gray")

    def composite(self, background: str | tuple | Background | None = None) -> np.ndarray:
        """The person over ``background`` (see :func:`mattekit.compose.parse_background`;
        default RVM's green): H×W×3 uint8 RGB, or H×W×4 for ``"transparent"`` (the cut-out)."""
        bg = parse_background(background)
        return self.render("rgba" if bg.transparent else "composite", bg)
