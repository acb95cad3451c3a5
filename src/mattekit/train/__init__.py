"""Training and fine-tuning of Robust Video Matting in PyTorch (``pip install mattekit[train]``).

Inference (``mattekit.models``) never imports torch; everything here does. The data path of
training mirrors the paper's: ``dataset`` composites foreground+alpha sources over backgrounds,
``model`` is the MattingNetwork (one file per box of the paper's figure), ``loss`` holds the
matting and segmentation objectives, ``train`` runs the loop of one stage (``config``), and
``onnx_import`` / ``onnx_export`` move weights from and to RVM's published ONNX signature.

Source: Lin et al., "Robust High-Resolution Video Matting with Temporal Guidance", WACV 2022
(github.com/PeterL1n/RobustVideoMatting).
"""
