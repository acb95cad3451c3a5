"""Evaluate predicted alpha mattes against ground truth: match files by name, compute metric tables.

Images: ``pred`` and ``gt`` are folders of alpha images; an item is a ground-truth file, matched to
the prediction (and optional trimap) with the same name stem, so ``GT01.png`` may be predicted as
``GT01.jpg``. Video: an item is a clip, either a sub-folder of frames (frames matched by stem) or a
video file; a ``gt`` folder with no sub-folders or videos is itself one clip.

Alpha files: single-channel images are used as they are, RGBA images by their alpha channel, and
3-channel images only when their channels are equal (a grey matte saved as RGB, like the
alphamatting.com ground truth); 16-bit images are scaled by 1/65535.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mattekit.errors import InputError
from mattekit.io.image import IMAGE_SUFFIXES, read_image_unchanged
from mattekit.io.trimap import read_trimap
from mattekit.io.video_reader import VIDEO_SUFFIXES
from mattekit.metrics import IMAGE_METRICS, VIDEO_METRICS, get_convention, image_metrics, video_metrics


def read_alpha(path: str | os.PathLike) -> np.ndarray:
    """Read an alpha matte file.

    Returns
    -------
    ndarray, H×W float32 in 0..1

    Raises
    ------
    InputError
        Missing or unreadable file, or a colour image whose channels differ (not a matte).
    """
    path = Path(path)
    a = read_image_unchanged(path)
    peak = 65535.0 if a.dtype == np.uint16 else 255.0 if a.dtype == np.uint8 else 1.0
    if a.ndim == 3:
        if a.shape[2] == 4:
            a = a[..., 3]
        elif a.shape[2] == 3:
            if np.abs(a.astype(np.int32) - a[..., :1].astype(np.int32)).max() > 2 * peak / 255.0:
                raise InputError(path, "is a colour image, not an alpha matte (channels differ)")
            a = a[..., 0]
        else:
            a = a[..., 0]
    return np.clip(a.astype(np.float32) / np.float32(peak), 0.0, 1.0)


def _read_video_alpha(path: Path) -> tuple[list[str], np.ndarray]:
    from mattekit.io.video_reader import VideoFileReader

    with VideoFileReader(path) as reader:
        frames = [f.rgb[..., 0].astype(np.float32) / 255.0 for f in reader]
    if not frames:
        raise InputError(path, "has no frames")
    return [f"{i:06d}" for i in range(len(frames))], np.stack(frames)


def _listing(folder: Path, suffixes: set[str], role: str) -> dict[str, Path]:
    if not folder.exists():
        raise InputError(folder, f"{role} folder not found")
    if not folder.is_dir():
        raise InputError(folder, f"{role} must be a folder")
    found: dict[str, Path] = {}
    for p in sorted(folder.iterdir()):
        if p.name.startswith(".") or p.suffix.lower() not in suffixes or not p.is_file():
            continue
        if p.stem in found:
            raise InputError(p, f"two {role} files are named {p.stem!r} ({found[p.stem].name}, {p.name})")
        found[p.stem] = p
    return found


def _names(items, limit=5) -> str:
    items = sorted(items)
    shown = ", ".join(items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


def match_files(gt_dir: Path, other_dir: Path, role: str, suffixes=IMAGE_SUFFIXES) -> list[tuple[str, Path, Path]]:
    """Pair every ground-truth file in ``gt_dir`` with the file of the same stem in ``other_dir``.

    Returns
    -------
    list of (name, gt_path, other_path), sorted by name.

    Raises
    ------
    InputError
        A folder is missing, ``gt_dir`` holds no images, or some ground-truth names have no match.
    """
    gt = _listing(gt_dir, suffixes, "ground-truth")
    if not gt:
        raise InputError(gt_dir, "no ground-truth images found (" + ", ".join(sorted(suffixes)) + ")")
    other = _listing(other_dir, suffixes, role)
    missing = set(gt) - set(other)
    if missing:
        raise InputError(other_dir, f"no {role} for {len(missing)} of {len(gt)} ground-truth files: {_names(missing)}")
    return [(name, gt[name], other[name]) for name in sorted(gt)]


def _check_size(name_path: Path, a: np.ndarray, gt_path: Path, g: np.ndarray, role: str) -> None:
    if a.shape != g.shape:
        raise InputError(
            name_path,
            f"{role} size {a.shape[1]}x{a.shape[0]} differs from ground truth {gt_path.name} {g.shape[1]}x{g.shape[0]}",
        )


@dataclass
class EvalTable:
    """Per-item metric values and their mean.

    Attributes
    ----------
    convention : str
        'rvm', 'paddleseg' or 'raw'; the values are scaled by it.
    metrics : list of str
        Metric names in column order ('SAD', 'MSE', ...).
    labels : dict
        Metric name -> column label with its scale, e.g. 'MSE ×1e3'.
    rows : list of (str, dict)
        Item name and its metric values.
    unmatched : list of str
        Prediction names with no ground truth (ignored).
    """

    convention: str
    metrics: list[str]
    labels: dict[str, str]
    rows: list[tuple[str, dict[str, float]]] = field(default_factory=list)
    unmatched: list[str] = field(default_factory=list)

    @property
    def mean(self) -> dict[str, float]:
        return {m: float(np.mean([r[m] for _, r in self.rows])) for m in self.metrics}

    def to_json(self) -> dict:
        return {
            "convention": self.convention,
            "columns": {m: self.labels[m] for m in self.metrics},
            "items": [{"name": n, **r} for n, r in self.rows],
            "mean": self.mean,
        }

    def write_csv(self, path: Path) -> None:
        _atomic_write(path, lambda f: _csv(self, f))

    def write_json(self, path: Path) -> None:
        _atomic_write(path, lambda f: json.dump(self.to_json(), f, indent=2))


def _csv(table: EvalTable, f) -> None:
    w = csv.writer(f)
    w.writerow(["name"] + [table.labels[m] for m in table.metrics])
    for name, r in [*table.rows, ("mean", table.mean)]:
        w.writerow([name] + [repr(float(r[m])) for m in table.metrics])


def _atomic_write(path: Path, write: Callable) -> None:
    from mattekit.errors import OutputError
    from mattekit.io.atomic import commit, discard, start_temp

    tmp = start_temp(path)
    try:
        with open(tmp, "w", newline="", encoding="utf-8") as f:
            write(f)
        commit(tmp, path)
    except OSError as exc:  # disk full, size limit: one line naming the output
        discard(tmp)
        raise OutputError.writing(path, exc) from None
    except BaseException:
        discard(tmp)
        raise


def evaluate_images(
    pred_dir: str | os.PathLike,
    gt_dir: str | os.PathLike,
    trimap_dir: str | os.PathLike | None = None,
    convention: str = "rvm",
    progress: Callable[[int, int], None] | None = None,
) -> EvalTable:
    """Compute SAD, MSE, MAD, Grad and Conn for every ground-truth image.

    Parameters
    ----------
    pred_dir, gt_dir : path
        Folders of alpha images matched by name stem.
    trimap_dir : path, optional
        Folder of trimaps (same stems); restricts the metrics to their unknown region.
    convention : {'rvm', 'paddleseg', 'raw'}
    progress : callable(done, total), optional

    Raises
    ------
    InputError
        Missing folders or files, unreadable images, or sizes that differ from the ground truth.
    """
    conv = get_convention(convention)
    pred_dir, gt_dir = Path(pred_dir), Path(gt_dir)
    pairs = match_files(gt_dir, pred_dir, "prediction")
    trimaps = {n: t for n, _, t in match_files(gt_dir, Path(trimap_dir), "trimap")} if trimap_dir else {}
    table = EvalTable(conv.name, list(IMAGE_METRICS), {m: conv.label(m) for m in IMAGE_METRICS})
    table.unmatched = sorted(set(_listing(pred_dir, IMAGE_SUFFIXES, "prediction")) - {n for n, _, _ in pairs})
    for i, (name, gt_path, pred_path) in enumerate(pairs):
        g = read_alpha(gt_path)
        p = read_alpha(pred_path)
        _check_size(pred_path, p, gt_path, g, "prediction")
        tri = None
        if name in trimaps:
            tri = read_trimap(trimaps[name])
            _check_size(trimaps[name], tri, gt_path, g, "trimap")
        table.rows.append((name, image_metrics(p, g, tri, conv)))
        if progress:
            progress(i + 1, len(pairs))
    return table


def _clips(folder: Path, role: str) -> dict[str, Path]:
    if not folder.exists():
        raise InputError(folder, f"{role} folder not found")
    if folder.is_file():
        return {folder.stem: folder}
    clips = {}
    for p in sorted(folder.iterdir()):
        if p.name.startswith("."):
            continue
        if p.is_dir() or p.suffix.lower() in VIDEO_SUFFIXES:
            if p.stem in clips:
                raise InputError(p, f"two {role} clips are named {p.stem!r}")
            clips[p.stem if p.is_file() else p.name] = p
    return clips or {folder.name: folder}


def read_clip(path: Path, names: list[str] | None = None) -> tuple[list[str], np.ndarray]:
    """Read a clip's alpha: a folder of frame images (sorted by name) or a video file.

    Parameters
    ----------
    path : Path
    names : list of str, optional
        Frame stems to read from a folder (InputError if one is missing).

    Returns
    -------
    (list of str, ndarray T×H×W float32 0..1)

    Raises
    ------
    InputError
        Empty clip, missing frames, unreadable files or frames of different sizes.
    """
    if path.is_file():
        stems, clip = _read_video_alpha(path)
        if names is not None and len(names) != len(stems):
            raise InputError(path, f"has {len(stems)} frames, the ground truth has {len(names)}")
        return (names or stems), clip
    files = _listing(path, IMAGE_SUFFIXES, "frame")
    if not files:
        raise InputError(path, "no frame images found")
    if names is not None:
        missing = set(names) - set(files)
        if missing:
            raise InputError(path, f"missing {len(missing)} of {len(names)} frames: {_names(missing)}")
    else:
        names = sorted(files)
    frames = [read_alpha(files[n]) for n in names]
    for n, f in zip(names, frames, strict=True):
        if f.shape != frames[0].shape:
            raise InputError(files[n], f"size {f.shape[1]}x{f.shape[0]} differs from the clip's first frame")
    return names, np.stack(frames)


def evaluate_videos(
    pred_dir: str | os.PathLike,
    gt_dir: str | os.PathLike,
    trimap_dir: str | os.PathLike | None = None,
    convention: str = "rvm",
    progress: Callable[[int, int], None] | None = None,
) -> EvalTable:
    """Compute the per-frame image metrics (averaged per clip), dtSSD and MESSDdt for every clip.

    MESSDdt's motion comes from OpenCV Farnebäck optical flow on the ground-truth alpha.

    Raises
    ------
    InputError
        Missing clips or frames, fewer than 2 frames, or sizes/frame counts that differ.
    """
    conv = get_convention(convention)
    pred_dir, gt_dir = Path(pred_dir), Path(gt_dir)
    gt_clips = _clips(gt_dir, "ground-truth")
    pred_clips = _clips(pred_dir, "prediction")
    if len(gt_clips) == 1 and len(pred_clips) == 1:
        pred_clips = {next(iter(gt_clips)): next(iter(pred_clips.values()))}
    missing = set(gt_clips) - set(pred_clips)
    if missing:
        raise InputError(pred_dir, f"no prediction for {len(missing)} of {len(gt_clips)} clips: {_names(missing)}")
    tri_clips = _clips(Path(trimap_dir), "trimap") if trimap_dir else {}
    table = EvalTable(conv.name, list(VIDEO_METRICS), {m: conv.label(m) for m in VIDEO_METRICS})
    table.unmatched = sorted(set(pred_clips) - set(gt_clips))
    for i, name in enumerate(sorted(gt_clips)):
        names, g = read_clip(gt_clips[name])
        if g.shape[0] < 2:
            raise InputError(gt_clips[name], "a clip needs at least 2 frames for dtSSD and MESSDdt")
        _, p = read_clip(pred_clips[name], names)
        if p.shape != g.shape:
            raise InputError(
                pred_clips[name],
                f"prediction {p.shape[0]} frames of {p.shape[2]}x{p.shape[1]} differ from ground truth "
                f"{g.shape[0]} frames of {g.shape[2]}x{g.shape[1]}",
            )
        tri = None
        if trimap_dir:
            if name not in tri_clips:
                raise InputError(trimap_dir, f"no trimap clip for {name}")
            _, t = read_clip(tri_clips[name], names)
            tri = np.where(t <= 0, 0, np.where(t >= 1, 255, 128)).astype(np.uint8)
        table.rows.append((name, video_metrics(p, g, tri, conv)))
        if progress:
            progress(i + 1, len(gt_clips))
    return table
