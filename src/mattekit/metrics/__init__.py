"""Standard alpha matting metrics on numpy arrays.

Image metrics (H×W alpha in 0..1, optional trimap): :func:`sad`, :func:`mse`, :func:`mad`,
:func:`grad`, :func:`conn` (Rhemann et al., "A Perceptually Motivated Online Benchmark for
Image Matting", CVPR 2009). Video metrics (T×H×W): :func:`dtssd`, :func:`messddt` (Erofeev et al.,
"Perceptually Motivated Benchmark for Video Matting", BMVC 2015). They return unscaled values;
:func:`image_metrics` / :func:`video_metrics` compute them all and scale them by the Robust Video
Matting or PaddleSeg table convention (:data:`CONVENTIONS`).
"""

from mattekit.metrics.conventions import (
    CONVENTIONS,
    IMAGE_METRICS,
    VIDEO_METRICS,
    Convention,
    get_convention,
    image_metrics,
    video_metrics,
)
from mattekit.metrics.image import conn, grad, mad, mse, sad, unknown_mask
from mattekit.metrics.video import dtssd, messddt, optical_flow

__all__ = [
    "CONVENTIONS",
    "IMAGE_METRICS",
    "VIDEO_METRICS",
    "Convention",
    "conn",
    "dtssd",
    "get_convention",
    "grad",
    "image_metrics",
    "mad",
    "messddt",
    "mse",
    "optical_flow",
    "sad",
    "unknown_mask",
    "video_metrics",
]
