"""Run several models on a folder of images with ground truth and compare them, one row per model."""

from __future__ import annotations

import os
import re
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from mattekit.evaluation import EvalTable, evaluate_images, match_files
from mattekit.models.base import ModelSession


def compare_models(
    models: Sequence[str | ModelSession],
    images_dir: str | os.PathLike,
    gt_dir: str | os.PathLike,
    trimap_dir: str | os.PathLike | None = None,
    convention: str = "rvm",
    progress: Callable[[str, int, int], None] | None = None,
) -> EvalTable:
    """Matte every image that has a ground-truth alpha with each model and evaluate the results.

    Each model mattes the images with :func:`mattekit.matte_image` (its default settings; a
    recurrent model gets its still-image passes); the alphas are written as 8-bit PNGs to a
    temporary folder and measured by :func:`mattekit.evaluation.evaluate_images`.

    Args:
        models: model names, ONNX paths or loaded sessions (see :func:`mattekit.models.new_session`);
            a row is labelled with the name as given, or ``name (precision)`` for a session.
        images_dir: folder of input images, matched to ``gt_dir`` by file stem.
        gt_dir: folder of ground-truth alphas; trimap_dir: optional trimaps (unknown region only).
        convention: metric scale factors, ``"rvm"`` or ``"paddleseg"``.
        progress: called as ``progress(model, done, total)`` after each image.

    Returns:
        An :class:`~mattekit.evaluation.EvalTable` with one row per model: the mean of each metric
        over the images, and ``seconds``, the mean wall-clock seconds of one ``matte_image`` call
        (alpha only: no foreground colour is estimated).

    Raises:
        mattekit.errors.InputError: missing folders, images without ground truth, unreadable files.
        mattekit.errors.ModelError: an unknown or unloadable model.
    """
    from PIL import Image

    from mattekit.io.image import read_image
    from mattekit.models import new_session
    from mattekit.pipeline.image import matte_image

    pairs = match_files(Path(gt_dir), Path(images_dir), "image")
    sessions = [new_session(m) for m in models]  # every model loads before any work starts
    table = None
    with tempfile.TemporaryDirectory(prefix="mattekit-eval-") as tmp:
        for model, session in zip(models, sessions, strict=True):
            label = f"{session.name} ({session.precision})" if isinstance(model, ModelSession) else str(model)
            out = Path(tmp) / re.sub(r"[^A-Za-z0-9_.-]", "_", f"{len(os.listdir(tmp))}-{label}")
            out.mkdir()
            seconds = 0.0
            for i, (name, _, image_path) in enumerate(pairs):
                rgb = read_image(image_path)
                started = time.perf_counter()
                alpha = matte_image(rgb, session, fg_estimate="none").alpha
                seconds += time.perf_counter() - started
                Image.fromarray(np.floor(np.clip(alpha, 0, 1) * 255 + 0.5).astype(np.uint8)).save(out / f"{name}.png")
                if progress:
                    progress(label, i + 1, len(pairs))
            result = evaluate_images(out, gt_dir, trimap_dir, convention)
            if table is None:
                table = EvalTable(
                    result.convention, [*result.metrics, "seconds"], {**result.labels, "seconds": "s/image"}
                )
            table.rows.append((label, {**result.mean, "seconds": seconds / max(len(pairs), 1)}))
    if table is None:
        raise ValueError("compare_models: no model given")
    return table
