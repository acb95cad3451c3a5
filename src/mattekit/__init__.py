"""mattekit: automatic human matting of images and videos.

Video matting runs Robust Video Matting (Lin et al., WACV 2022) on ONNX Runtime; classical trimap
methods come from pymatting; metrics follow Rhemann et al. (CVPR 2009) and Erofeev et al. (2015).
"""

__version__ = "0.1.0"
