"""Classical trimap matting with pymatting, and refinement of a network's alpha.

One public function per module: :func:`estimate_alpha` (cf, knn, lkm, rw, lbdm, sm),
:func:`estimate_foreground`, :func:`estimate_foreground_blur_fusion`, :func:`matte_trimap`,
:func:`refine_alpha`; :func:`read_trimap` (from :mod:`mattekit.io.trimap`) is re-exported here.
"""

from mattekit.classical.estimate_alpha import METHODS, estimate_alpha
from mattekit.classical.estimate_foreground import estimate_foreground
from mattekit.classical.estimate_foreground_blur_fusion import estimate_foreground_blur_fusion
from mattekit.classical.matte_trimap import matte_trimap
from mattekit.classical.refine import refine_alpha, refinement_trimap
from mattekit.io.trimap import read_trimap

__all__ = [
    "METHODS",
    "estimate_alpha",
    "estimate_foreground",
    "estimate_foreground_blur_fusion",
    "matte_trimap",
    "read_trimap",
    "refine_alpha",
    "refinement_trimap",
]
