"""``matte_image``: matte a still photograph with the recurrent video model."""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from mattekit.compose.background import Background, parse_background
from mattekit.compose.composite import composite, to_rgba
from mattekit.models.rvm_onnx import RVMSession, new_session, to_src
from mattekit.params import validate_downsample_ratio, validate_passes

# How many times a still is fed through the recurrent network. Measured on the two 1920x1080
# photos in ../shared/data/people/stills (benchmarks/still_passes.py, 10 passes): the mean change
# of alpha from one pass to the next is 5.0e-4 / 4.7e-4 at pass 2, 2.1e-4 / 1.4e-4 at pass 3 and
# then shrinks slowly (3e-5 at pass 10); after pass 3, 0.13 % / 0.04 % of pixels still differ by
# more than 0.05 from pass 10 (0.49 % / 0.37 % after pass 1). Three passes take most of the
# settling for 3x the cost of one.
STILL_PASSES = 3
# foreground colour of cut-outs: "ml" = pymatting's estimate_foreground_ml from the image and alpha
# (Germer et al. 2020), "network" = RVM's fgr; the default is the one measured better
# (benchmarks/fg_estimate.py, figures in docs/outputs.md)
FG_ESTIMATES = ("ml", "network")
DEFAULT_FG_ESTIMATE = "ml"


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

    def composite(self, background: "str | tuple | Background | None" = None) -> np.ndarray:
        """H×W×3 uint8 RGB of the person over ``background`` (see
        :func:`mattekit.compose.parse_background`)."""
        bg = parse_background(background)
        h, w = self.alpha.shape
        return composite(self.fgr, self.alpha, bg.frame(0, h, w, self.image, self.alpha))


def matte_image(image: "str | os.PathLike | np.ndarray",
                model: "str | os.PathLike | RVMSession | None" = None,
                downsample_ratio: float | None = None,
                passes: int = STILL_PASSES,
                fg_estimate: str = DEFAULT_FG_ESTIMATE,
                refine: bool = False) -> Matte:
    """Matte a still image.

    The recurrent network (Robust Video Matting, Lin et al., WACV 2022) is run on a short
    sequence of the same frame so its recurrent state settles; the last pass is returned.
    The default of 3 passes comes from a measurement on real photos (see ``STILL_PASSES``).

    Args:
        image: a path, or an H×W×3 uint8 RGB array.
        model: ``None``, a registered model name, an ONNX path or an :class:`RVMSession`.
        downsample_ratio: ratio in (0, 1]; ``None`` picks ``min(512 / max(H, W), 1)`` (see
            :func:`mattekit.params.validate_downsample_ratio`; ``0`` is refused, not auto).
        passes: how many times the frame is fed through the network, in [1, 100].
        fg_estimate: where ``fgr`` comes from: ``"ml"`` re-estimates it from the image and the
            alpha with pymatting's multilevel foreground estimation (Germer, Uelwer, Conrad,
            Harmeling, "Fast Multi-Level Foreground Estimation", ICPR 2020), ``"network"`` keeps
            the network's prediction. See ``docs/outputs.md`` for the measured difference.
        refine: re-solve the alpha in a band around its edges with closed-form matting
            (:func:`mattekit.classical.refine_alpha`; Levin, Lischinski, Weiss, TPAMI 2008) and
            keep the network's alpha elsewhere; the foreground is then estimated from the refined
            alpha. Off by default: it costs seconds per 1080p image and its effect on real
            photos is small (``docs/refine.md``).

    Returns:
        A :class:`Matte`.

    Raises:
        mattekit.errors.InputError: the file is missing or not an image.
        mattekit.errors.ParameterError: (a ``ValueError``) ``downsample_ratio`` or ``passes`` out
            of range, or a ratio that leaves the network less than 1 px of this image.
        mattekit.errors.ParameterTypeError: (a ``TypeError``) one of them is not a number.
        ValueError: the array is not H×W×3 uint8, or an unknown ``fg_estimate``.
    """
    from mattekit.io.image import read_image

    validate_downsample_ratio(downsample_ratio)
    passes = validate_passes(passes)
    if fg_estimate not in FG_ESTIMATES:
        raise ValueError(f"fg_estimate must be one of {', '.join(FG_ESTIMATES)}, not {fg_estimate!r}")
    if isinstance(image, np.ndarray):
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f"image must be an H×W×3 uint8 RGB array, got {image.shape} {image.dtype}")
        rgb = image
    else:
        rgb = read_image(image)
    session = new_session(model)
    ratio = validate_downsample_ratio(downsample_ratio, *rgb.shape[:2],
                                      source=None if isinstance(image, np.ndarray) else image)
    src = to_src(rgb)
    state = session.initial_state()
    for _ in range(passes):
        result = session.step(src, state, ratio)
        state = result.state
    alpha = result.pha[0, 0]
    if refine:
        from mattekit.classical.refine import refine_alpha

        alpha = refine_alpha(rgb, alpha).astype(np.float32, copy=False)
    if fg_estimate == "ml":
        fgr = estimate_foreground_ml(rgb, alpha)
    else:
        fgr = np.ascontiguousarray(result.fgr[0].transpose(1, 2, 0))
    return Matte(alpha=alpha, fgr=fgr, image=rgb)


def estimate_foreground_ml(rgb: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Foreground colour from an image and its alpha, by pymatting's multilevel estimation.

    Germer, Uelwer, Conrad, Harmeling, "Fast Multi-Level Foreground Estimation", ICPR 2020
    (``pymatting.estimate_foreground_ml``). Runs in float32 to halve its memory.

    Args:
        rgb: H×W×3 uint8 RGB.
        alpha: H×W float32 in 0..1.

    Returns:
        H×W×3 float32 RGB in 0..1 (straight).
    """
    from pymatting import estimate_foreground_ml as ml

    image = rgb.astype(np.float32) * np.float32(1.0 / 255.0)
    fgr = ml(image, np.clip(alpha, 0.0, 1.0).astype(np.float32))
    return np.clip(fgr, 0.0, 1.0).astype(np.float32, copy=False)
