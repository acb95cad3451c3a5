"""mattekit: automatic human matting of images and videos.

Video matting runs Robust Video Matting (Lin et al., WACV 2022) on ONNX Runtime; classical trimap
methods come from pymatting; metrics follow Rhemann et al. (CVPR 2009) and Erofeev et al. (2015).

Python API: :func:`convert_video`, :func:`matte_image`, :func:`convert_folder`,
:func:`matte_folder`, :class:`RVMSession`.
"""

from mattekit.models.rvm_onnx import RVMSession, new_session
from mattekit.pipeline.batch import BatchResult, convert_folder, matte_folder
from mattekit.pipeline.image import Matte, matte_image
from mattekit.pipeline.video import VideoResult, convert_video

__version__ = "0.1.0"
__all__ = ["BatchResult", "Matte", "RVMSession", "VideoResult", "convert_folder", "convert_video",
           "matte_folder", "matte_image", "new_session"]
