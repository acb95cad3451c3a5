"""mattekit: automatic human matting of images and videos.

Models run on ONNX Runtime behind one interface: Robust Video Matting (Lin et al., WACV 2022) by
default, ISNet (Qin et al., ECCV 2022), or your own ONNX file with a model card; classical trimap
methods come from pymatting; metrics follow Rhemann et al. (CVPR 2009) and Erofeev et al. (2015).

Python API: :func:`convert_video`, :func:`matte_image`, :func:`convert_folder`,
:func:`matte_folder`, :func:`new_session` (every one takes ``model=``).
"""

from mattekit.batch import BatchResult, convert_folder, matte_folder
from mattekit.matte import Matte
from mattekit.models import ModelSession, new_session
from mattekit.pipeline.image import matte_image
from mattekit.pipeline.video import VideoResult, convert_video

__version__ = "0.1.0"
__all__ = [
    "BatchResult",
    "Matte",
    "ModelSession",
    "VideoResult",
    "convert_folder",
    "convert_video",
    "matte_folder",
    "matte_image",
    "new_session",
]
