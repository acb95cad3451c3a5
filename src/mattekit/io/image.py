"""Read and write still images with Pillow.

Every image becomes H×W×3 uint8 RGB, upright as a viewer shows it (EXIF orientation applied),
whatever its mode: grayscale, palette (with or without a transparent entry), RGBA (the colour
channels are kept, the alpha dropped), 16-bit gray or RGB (scaled to 8 bits). Large photos are
read with a peak of about Pillow's decoded image (4 bytes a pixel) plus the 3-byte RGB array:
~420 MB for 8000×6000 (measured by tests/test_media.py).
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from mattekit.errors import FormatError, InputError, OutputError
from mattekit.io.atomic import commit, discard, start_temp
from mattekit.io.sniff import refuse_special

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"}
# Pillow prints a DecompressionBombWarning (two lines on stderr) for pictures over half its bomb
# limit and refuses those over the limit; mattekit refuses the latter in one line (read_image) and
# reads the former, so the warning would only break the one-line rule.
warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)
# Pillow's TIFF/EXIF reader warns (two lines on stderr, a path into site-packages) about damaged
# metadata, e.g. "Corrupt EXIF data" in a camera's JPEG; the pixels read fine, so the warning
# would only break the one-line rule
warnings.filterwarnings("ignore", category=UserWarning, module=r"PIL\.TiffImagePlugin")


def _to_rgb8(img: Image.Image) -> np.ndarray:
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(img, dtype=np.uint32 if img.mode == "I" else np.uint16).astype(np.float32)
        peak = 65535.0 if img.mode != "I" or arr.max() > 255 else 255.0
        gray = np.clip(arr * (255.0 / peak) + 0.5, 0, 255).astype(np.uint8)
        return np.repeat(gray[:, :, None], 3, axis=2)
    if img.mode != "RGB":
        img = img.convert("RGBA" if img.mode in ("P", "PA", "LA") else img.mode).convert("RGB")
    # copy band by band: np.asarray(img) would first make a whole-image bytes copy (a 48 MP photo
    # would then need Pillow's 192 MB + 144 MB of bytes + the 144 MB array at once)
    w, h = img.size
    out = np.empty((h, w, 3), dtype=np.uint8)
    band = max(1, (8 << 20) // (3 * max(w, 1)))
    for top in range(0, h, band):
        out[top : top + band] = np.asarray(img.crop((0, top, w, min(h, top + band))), dtype=np.uint8)
    return out


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Read an image file as RGB.

    Args:
        path: any image Pillow opens (PNG, JPEG, TIFF, BMP, WebP...).

    Returns:
        H×W×3 uint8 RGB array, EXIF orientation applied.

    Raises:
        mattekit.errors.FormatError: the content is not a picture Pillow reads (an SVG drawing,
            a video, text...), whatever the file's name says; the message names what it holds.
        mattekit.errors.InputError: missing, empty, truncated or damaged, or too large.
    """
    p = Path(path)
    if not p.exists():
        raise InputError(p, "file not found")
    if p.is_dir():
        raise InputError(p, "is a folder, expected an image file")
    refuse_special(p)
    if p.stat().st_size == 0:
        raise InputError(p, "file is empty (0 bytes)")
    try:
        with Image.open(p) as img:
            img.load()
            ImageOps.exif_transpose(img, in_place=True)  # no copy when already upright
            return _to_rgb8(img)
    except UnidentifiedImageError:
        raise _unidentified(p) from None
    except Image.DecompressionBombError as exc:
        raise InputError(p, _too_large(exc)) from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise InputError(p, f"cannot decode image ({exc})") from None


def _too_large(exc: Exception) -> str:
    """Pillow's decompression-bomb refusal in a line: the pixels the header declares and the limit."""
    import re

    found = re.search(r"\((\d+) pixels\) exceeds limit of (\d+)", str(exc))
    if found is None:
        return f"image too large ({exc})"
    declared, limit = map(int, found.groups())
    return (
        f"image too large: its header declares {declared / 1e6:,.0f} megapixels, over the "
        f"{limit / 1e6:,.0f}-megapixel limit (a decompression bomb?)"
    )


def _unidentified(p: Path) -> InputError:
    """The error for a file Pillow cannot identify, saying what the file holds when known."""
    from mattekit.io.sniff import sniff

    kind = sniff(p)
    if kind is None:
        return FormatError(p, "not an image file (cannot identify its format)")
    if kind.endswith("image") and not kind.startswith("HEIF"):
        return InputError(p, f"cannot decode image: it starts like {kind} but is damaged or cut short")
    named = f" despite its {p.suffix} name" if p.suffix.lower() in IMAGE_SUFFIXES else ""
    return FormatError(p, f"not an image file: it holds {kind}{named}")


def write_image(
    path: str | os.PathLike, array: np.ndarray, quality: int = 95, compress_level: int = 6, atomic: bool = True
) -> Path:
    """Write an image atomically (temporary name, then rename).

    Args:
        path: destination; the format follows the suffix (.png, .jpg, ...).
        array: H×W (gray), H×W×3 (RGB) or H×W×4 (RGBA, straight alpha) uint8.
        quality: JPEG quality (1..100).
        compress_level: PNG zlib level (0..9); 1 writes about 3x faster than the default 6 for
            files about a third larger (used for PNG sequences).
        atomic: ``False`` writes straight to ``path``; only for files inside a folder that is
            itself a temporary (the frames of a PNG sequence).

    Returns:
        The final path.

    Raises:
        mattekit.errors.OutputError: the file system refused the write (disk full, size limit);
            nothing is left under either name.
    """
    final = Path(path)
    temp = start_temp(final) if atomic else final
    try:
        image = Image.fromarray(np.ascontiguousarray(array))
        if final.suffix.lower() in (".jpg", ".jpeg"):
            image.convert("RGB").save(temp, quality=quality)
        elif final.suffix.lower() == ".png":
            image.save(temp, compress_level=compress_level)
        else:
            image.save(temp)
        if atomic:
            commit(temp, final)
    except OSError as exc:
        discard(temp)
        raise OutputError.writing(final, exc) from None
    except BaseException:
        discard(temp)
        raise
    return final


def read_image_unchanged(path: str | os.PathLike) -> np.ndarray:
    """Read an image file as stored, with OpenCV: for mattes and trimaps, where the values matter.

    Returns:
        H×W, H×W×3 (BGR) or H×W×4 (BGRA) array of the file's own dtype (uint8 or uint16).

    Raises:
        mattekit.errors.InputError: missing file, or OpenCV cannot read it as an image.
    """
    import cv2

    p = Path(path)
    refuse_special(p)
    if p.is_dir():
        raise InputError(p, "is a folder, expected an image file")
    if not p.is_file():
        raise InputError(p, "file not found")
    array = cv2.imread(str(p), cv2.IMREAD_UNCHANGED)
    if array is None:
        raise InputError(p, "cannot be read as an image")
    return array
