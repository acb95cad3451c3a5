"""``matte_image``: matte a still photograph with any model (recurrent or per frame)."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from mattekit.errors import Cancelled, InputError
from mattekit.matte import Matte
from mattekit.models import ModelSession, new_session
from mattekit.models.base import to_src
from mattekit.params import min_downsample_ratio, pixel_limit, validate_downsample_ratio, validate_passes, validate_path

if TYPE_CHECKING:
    from mattekit.plan import OutputPlan

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
# fg_estimate for a caller that uses only the alpha (alpha-only server requests, model evaluation):
# no foreground is estimated or brought to full size; Matte.fgr is None
NO_FOREGROUND = "none"
# Memory bound: an image of more pixels than this is matted by the network at a working size of
# about this many pixels, its alpha (and foreground) brought to full size by a guided upsampling in
# bands of rows, and the multilevel foreground solved in tiles of this many pixels. 4 MP keeps a
# 48-megapixel photo under 2 GiB; the alpha's mean difference from a full-size run grows with the
# scale factor (benchmarks/image_cap.py, docs/outputs.md). Images up to this size are matted
# exactly as before.
WORKING_PIXELS = 4_000_000
# the smallest width and height matted (a 1×1 image is matted; 0 pixels is refused)
MIN_SIZE = 1


def matte_image(
    image: str | os.PathLike | np.ndarray,
    model: str | os.PathLike | ModelSession | None = None,
    downsample_ratio: float | None = None,
    passes: int = STILL_PASSES,
    fg_estimate: str = DEFAULT_FG_ESTIMATE,
    refine: bool = False,
) -> Matte:
    """Matte a still image.

    A recurrent model (Robust Video Matting, Lin et al., WACV 2022) is run on a short sequence
    of the same frame so its recurrent state settles; the last pass is returned. The default of
    3 passes comes from a measurement on real photos (see ``STILL_PASSES``). A per-frame model
    (ISNet, a model with a card) runs once.

    Memory is bounded by design. With RVM on the CPU (its guided filter's full-resolution step
    done outside the network, :mod:`mattekit.models.dgf_bands`), the network sees only the
    encoder-size image and the alpha (and network foreground) are computed at the image's own
    size in bands of rows, as the published graph would compute them on the whole photo.
    Otherwise (other models, ``refine``, or a ratio that gives the encoder more than the working
    size), an image of more than :data:`WORKING_PIXELS` pixels (4 MP;
    ``MATTEKIT_WORKING_PIXELS`` overrides it) is matted at a working size of about that many
    pixels (area-averaged), and its alpha (and, with ``fg_estimate="network"``, foreground) is
    brought to full size by a guided upsampling with the full photo, in bands of rows
    (:mod:`mattekit.pipeline.upsample`); ``refine`` then works at the working size and ``"ml"``
    solves the full-size foreground in tiles. Peak memory is then about 20 bytes per pixel of
    the photo plus a constant (measured: docs/outputs.md). Smaller images are matted at their
    own size, exactly as before. Any size from 1×1 up is matted.

    Args:
        image: a path, or an H×W×3 uint8 RGB array.
        model: ``None``, a registered model name, an ONNX path or a
            :class:`~mattekit.models.ModelSession` (see :func:`mattekit.models.new_session`).
        downsample_ratio: ratio in (0, 1]; ``None`` uses the model's own (RVM: ``min(512 / max(H,
            W), 1)``; see :func:`mattekit.params.validate_downsample_ratio`; ``0`` is refused, not auto).
        passes: how many times the frame is fed through a recurrent network, in [1, 100].
        fg_estimate: where ``fgr`` comes from: ``"ml"`` re-estimates it from the image and the
            alpha with pymatting's multilevel foreground estimation (Germer, Uelwer, Conrad,
            Harmeling, "Fast Multi-Level Foreground Estimation", ICPR 2020), ``"network"`` keeps
            the network's prediction (a model without one falls back to ``"ml"``). See
            ``docs/outputs.md`` for the measured difference. ``"none"``: alpha only, no
            foreground is computed (``Matte.fgr`` is ``None``; only the alpha can be rendered).
        refine: re-solve the alpha in a band around its edges with closed-form matting
            (:func:`mattekit.classical.refine_alpha`; Levin, Lischinski, Weiss, TPAMI 2008) and
            keep the network's alpha elsewhere; the foreground is then estimated from the refined
            alpha. Off by default: it costs seconds per 1080p image and its effect on real
            photos is small (``docs/refine.md``).

    Returns:
        A :class:`Matte`.

    Raises:
        mattekit.errors.InputError: the file is missing, not an image or has 0 pixels; memory
            ran out ("out of memory matting this W×H image").
        mattekit.errors.ParameterError: (a ``ValueError``) ``downsample_ratio`` or ``passes`` out
            of range, or a ratio that leaves the network less than 1 px of this image.
        mattekit.errors.ParameterTypeError: (a ``TypeError``) one of them is not a number, or ``image``
            is neither a path nor an array (see :func:`mattekit.params.validate_path`).
        ValueError: the array is not H×W×3 uint8 or has 0 pixels, or an unknown ``fg_estimate``.
    """
    from mattekit.io.image import read_image

    validate_downsample_ratio(downsample_ratio)
    passes = validate_passes(passes)
    if fg_estimate not in (*FG_ESTIMATES, NO_FOREGROUND):
        known = ", ".join((*FG_ESTIMATES, NO_FOREGROUND))
        raise ValueError(f"fg_estimate must be one of {known}, not {fg_estimate!r}")
    if isinstance(image, np.ndarray):
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f"image must be an H×W×3 uint8 RGB array, got {image.shape} {image.dtype}")
        rgb = image
    else:
        rgb = read_image(validate_path(image, "image"))
    height, width = _check_size(rgb, image)
    session = new_session(model)
    checked = validate_downsample_ratio(
        downsample_ratio, height, width, source=None if isinstance(image, np.ndarray) else Path(image)
    )
    ratio = session.auto_downsample_ratio(height, width) if checked is None else checked
    try:
        if _full_resolution_finish(session, ratio, height, width, refine):
            return _matte_banded(rgb, session, ratio, passes, fg_estimate, working_pixels())
        return _matte(rgb, session, ratio, downsample_ratio is None, passes, fg_estimate, refine, working_pixels())
    except MemoryError:
        raise InputError(
            _name(image), f"out of memory matting this {width}×{height} image ({height * width / 1e6:.0f} megapixels)"
        ) from None


def working_pixels() -> int:
    """The largest image (in pixels) matted at its own size: :data:`WORKING_PIXELS`, or the
    environment variable ``MATTEKIT_WORKING_PIXELS`` when set (e.g. lowered in tests).

    Raises:
        mattekit.errors.InputError: the variable is not a whole number >= 1.
    """
    return pixel_limit("MATTEKIT_WORKING_PIXELS", WORKING_PIXELS)


def _name(image) -> str:
    return "image array" if isinstance(image, np.ndarray) else os.fspath(image)


def _check_size(rgb: np.ndarray, image) -> tuple[int, int]:
    """(height, width) of the image, refusing an empty one (see :data:`MIN_SIZE`)."""
    height, width = rgb.shape[:2]
    if height < MIN_SIZE or width < MIN_SIZE:
        problem = f"image is {width}×{height} pixels; at least {MIN_SIZE}×{MIN_SIZE} is needed"
        if isinstance(image, np.ndarray):
            raise ValueError(problem)
        raise InputError(_name(image), problem)
    return height, width


def _working_ratio(ratio: float, height: int, width: int, work_height: int, work_width: int) -> float:
    """The downsample ratio at the working size for a ratio given for the full image: the encoder
    sees what ``ratio`` gives of the full image, at most the working size itself, and at least
    1 px on each side. (With auto, the model's own ratio for the working size is used instead.)"""
    scaled = min(1.0, ratio * max(height / work_height, width / work_width))
    return max(scaled, min_downsample_ratio(work_height, work_width))


def _full_resolution_finish(session: ModelSession, ratio: float, height: int, width: int, refine: bool) -> bool:
    """True when the image is matted by :func:`_matte_banded`: the model's full-resolution step is
    done in bands from the uint8 image (RVM's cut graph: ``session.guide_only``), the encoder's
    input stays within :func:`working_pixels`, and no refinement (which works at the working size)
    is asked."""
    encoder_pixels = height * ratio * width * ratio
    return bool(getattr(session, "guide_only", False)) and not refine and encoder_pixels <= working_pixels()


def _matte_banded(
    rgb: np.ndarray, session: ModelSession, ratio: float, passes: int, fg_estimate: str, max_pixels: int
) -> Matte:
    """Matte at the image's own size with the model's full-resolution step in bands of rows.

    The network sees only the encoder-size image (e.g. 512 px on the longer side), so its memory
    does not grow with the photo; its guided-filter finish fills the full-size alpha (and, with
    ``fg_estimate="network"``, foreground) band by band from the uint8 image (RVM:
    :class:`mattekit.models.dgf_bands.GuidedFinish`), equal to running the published graph on the
    whole photo (within 1e-6). Peak memory is the image, the alpha and the foreground (4 + 12
    bytes per pixel) plus the tiled multilevel solve; measured in docs/benchmarks.md."""
    from mattekit.classical.estimate_foreground import estimate_foreground_ml
    from mattekit.models.dgf_bands import band_rows

    height, width = rgb.shape[:2]
    state = session.initial_state()
    for _ in range(passes if session.capabilities.recurrent else 1):
        matte, state = session.step_deferred(None, state, ratio, guide=rgb)
    alpha = np.empty((height, width), np.float32)
    step = band_rows(width)
    bands = [slice(y, min(height, y + step)) for y in range(0, height, step)]
    for band in bands:
        matte.alpha(band, out=alpha[band])
    if fg_estimate == NO_FOREGROUND:
        return Matte(alpha=alpha, fgr=None, image=rgb)
    if fg_estimate == "ml":
        del matte
        return Matte(alpha=alpha, fgr=estimate_foreground_ml(rgb, alpha, max_pixels), image=rgb)
    fgr = np.empty((height, width, 3), np.float32)
    for band in bands:
        fgr[band] = matte.fgr(band).transpose(1, 2, 0)
    return Matte(alpha=alpha, fgr=fgr, image=rgb)


def _matte(
    rgb: np.ndarray,
    session: ModelSession,
    ratio: float,
    auto: bool,
    passes: int,
    fg_estimate: str,
    refine: bool,
    max_pixels: int,
) -> Matte:
    """Matte at the working size (:func:`~mattekit.pipeline.upsample.working_size`) and bring alpha
    (and the network's foreground) up to the full size with a guided upsampling, in bands; the
    multilevel foreground is solved at full size in tiles of ``max_pixels``."""
    import cv2

    from mattekit.classical.estimate_foreground import estimate_foreground_ml
    from mattekit.pipeline.upsample import working_size

    height, width = rgb.shape[:2]
    work_height, work_width = working_size(height, width, max_pixels)
    full = (work_height, work_width) == (height, width)
    small = rgb if full else cv2.resize(rgb, (work_width, work_height), interpolation=cv2.INTER_AREA)
    if not full:
        ratio = (
            session.auto_downsample_ratio(work_height, work_width)
            if auto
            else _working_ratio(ratio, height, width, work_height, work_width)
        )
    src = to_src(small)
    state = session.initial_state()
    passes = passes if session.capabilities.recurrent else 1
    for n in range(passes):
        result = session.step(src, state, ratio, release_memory=n == passes - 1)
        state = result.state
    del src, state
    alpha = result.pha[0, 0]
    if refine:
        from mattekit.classical.refine import refine_alpha

        alpha = refine_alpha(small, alpha).astype(np.float32, copy=False)
    network_fgr = None if result.fgr is None else result.fgr[0]  # 3×h×w, or None: the model has none
    del result
    if not full:
        alpha, network_fgr = _upsample(rgb, small, alpha, network_fgr if fg_estimate == "network" else None)
    if fg_estimate == NO_FOREGROUND:
        return Matte(alpha=alpha, fgr=None, image=rgb)
    if fg_estimate == "ml" or network_fgr is None:
        del network_fgr
        fgr = estimate_foreground_ml(rgb, alpha, max_pixels)
    elif full:
        fgr = np.ascontiguousarray(network_fgr.transpose(1, 2, 0))
    else:
        fgr = network_fgr
    return Matte(alpha=alpha, fgr=fgr, image=rgb)


def _upsample(
    rgb: np.ndarray, small: np.ndarray, alpha: np.ndarray, network_fgr: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray | None]:
    """Full-size alpha (H×W float32) and, when given, foreground (H×W×3 float32) from their
    working-size versions (h×w and 3×h×w), guided by the full-size image (:mod:`upsample`)."""
    from mattekit.pipeline.upsample import fit_coefficients, guided_upsample

    height, width = rgb.shape[:2]
    scale = np.float32(1.0 / 255.0)

    def gray_rows(image):
        return lambda band: image[band].sum(axis=2, dtype=np.float32) * np.float32(1.0 / 765.0)

    def channel_rows(image, c):
        return lambda band: image[band, :, c].astype(np.float32) * scale

    out_alpha = np.empty((height, width), np.float32)
    coefficients = fit_coefficients(gray_rows(small)(slice(None)), alpha)
    guided_upsample(coefficients, gray_rows(rgb), out_alpha)
    if network_fgr is None:
        return out_alpha, None
    out_fgr = np.empty((height, width, 3), np.float32)
    for c in range(3):
        coefficients = fit_coefficients(channel_rows(small, c)(slice(None)), network_fgr[c])
        guided_upsample(coefficients, channel_rows(rgb, c), out_fgr[:, :, c])
    return out_alpha, out_fgr


def matte_one_image(
    source: Path,
    plan: OutputPlan,
    session,
    downsample_ratio: float | None,
    options: dict,
    cancel: threading.Event | None = None,
) -> int:
    """Matte one image file of :func:`~mattekit.batch.matte_folder` and write the
    outputs of ``plan``.

    Args:
        source: the image.
        plan: an :data:`~mattekit.plan.IMAGE` :class:`~mattekit.plan.OutputPlan` with this
            image's paths (``foreground`` cut-out, ``alpha``, ``composition``); each is written
            (the batch chose which ones).
        session: a loaded :class:`~mattekit.models.ModelSession`.
        downsample_ratio, options: passed to :func:`matte_image` (``options``: ``refine`` and
            optionally ``fg_estimate``).
        cancel: checked after the network; set -> :class:`~mattekit.errors.Cancelled`.

    Returns:
        1 (frames matted).

    Raises:
        mattekit.errors.OutputError: an output is (or holds) an input, or cannot be written.
        mattekit.errors.InputError: the image cannot be read.
    """
    from mattekit.io.atomic import check_outputs, existing_paths
    from mattekit.io.image import read_image, write_image

    targets = plan.paths
    check_outputs(targets.values(), existing_paths(source, plan.background, session), overwrite=True)
    rgb = read_image(source)
    matte = matte_image(rgb, session, downsample_ratio, **options)
    if cancel is not None and cancel.is_set():
        raise Cancelled(f"{source}: cancelled")
    for kind, path in targets.items():
        write_image(path, matte.render(plan.image_kind(kind), plan.background))
    return 1
