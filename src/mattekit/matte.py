"""``Matte``: the matting of one image (alpha + foreground colour), whichever method made it.

It sits below ``pipeline/`` (network mattes) and ``classical/`` (trimap mattes), which both return it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mattekit.compose.background import Background, parse_background
from mattekit.compose.composite import composite, to_gray, to_rgba


@dataclass
class Matte:
    """The matting of one image.

    Attributes:
        alpha: H×W float32 in 0..1 (1 = person).
        fgr: H×W×3 float32 RGB in 0..1, the person's colour (straight, not premultiplied).
        image: the H×W×3 uint8 RGB input (used by a ``blur`` background), or ``None``.
    """

    alpha: np.ndarray
    fgr: np.ndarray
    image: np.ndarray | None = None

    def rgba(self) -> np.ndarray:
        """H×W×4 uint8 cut-out with straight alpha."""
        return to_rgba(self.fgr, self.alpha)

    def alpha_image(self) -> np.ndarray:
        """H×W uint8 alpha (0..255, rounded), as written to ``<stem>_alpha.png``."""
        return to_gray(self.alpha)

    def composite(self, background: "str | tuple | Background | None" = None) -> np.ndarray:
        """H×W×3 uint8 RGB of the person over ``background`` (see
        :func:`mattekit.compose.parse_background`)."""
        bg = parse_background(background)
        h, w = self.alpha.shape
        return composite(self.fgr, self.alpha, bg.frame(0, h, w, self.image, self.alpha))
