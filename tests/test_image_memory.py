"""matte_image in bounded memory: the working-size cap, its accuracy, its peak, and tiny images.

Figures behind the tolerances: benchmarks/image_cap.py and benchmarks/large_photo.py
(docs/outputs.md).
"""

from __future__ import annotations

import struct
import subprocess
import sys
import zlib

import cv2
import numpy as np
import pymatting
import pytest

from mattekit import matte_image
from mattekit.classical.estimate_foreground import estimate_foreground_ml
from mattekit.errors import InputError
from mattekit.io.image import read_image
from mattekit.models.base import to_src
from mattekit.models.rvm_onnx import auto_downsample_ratio

pytestmark = pytest.mark.slow  # large images in child processes, measuring their peak memory


@pytest.fixture(scope="module")
def still(shared_data):
    return read_image(shared_data / "people" / "stills" / "0001_img.png")


@pytest.fixture(scope="module")
def whole(rvm_session):
    """RVM with its published graph (no banded finish): takes the working-size path above the cap."""
    from mattekit.models.rvm_onnx import RVMSession

    return RVMSession(rvm_session.path, cut=False)


@pytest.fixture(scope="module")
def full_run(still, whole):
    """The 1920×1080 still matted at its own size (the cap above it)."""
    return matte_image(still, whole, fg_estimate="network")


def old_path(rgb, session, fg_estimate):
    """What matte_image computed before the cap: the network at full size, pymatting on the
    whole image in float32."""
    state = session.initial_state()
    for _ in range(3):
        result = session.step(to_src(rgb), state, auto_downsample_ratio(*rgb.shape[:2]))
        state = result.state
    alpha = result.pha[0, 0]
    if fg_estimate == "network":
        return alpha, result.fgr[0].transpose(1, 2, 0)
    fgr = pymatting.estimate_foreground_ml(rgb.astype(np.float32) * np.float32(1 / 255), alpha)
    return alpha, np.clip(fgr, 0, 1)


@pytest.mark.parametrize("fg_estimate", ["network", "ml"])
def test_at_the_cap_the_result_is_the_old_one(still, whole, monkeypatch, fg_estimate):
    rvm_session = whole
    rgb = cv2.resize(still, (480, 270), interpolation=cv2.INTER_AREA)
    monkeypatch.setenv("MATTEKIT_WORKING_PIXELS", str(480 * 270))
    matte = matte_image(rgb, rvm_session, fg_estimate=fg_estimate)
    alpha, fgr = old_path(rgb, rvm_session, fg_estimate)
    assert np.array_equal(matte.alpha, alpha)
    assert np.array_equal(matte.fgr, fgr)
    assert np.array_equal(matte.alpha_image(), np.clip(alpha * 255.0 + 0.5, 0, 255).astype(np.uint8))
    # one pixel more than the cap takes the other path
    monkeypatch.setenv("MATTEKIT_WORKING_PIXELS", str(480 * 270 - 1))
    assert not np.array_equal(matte_image(rgb, rvm_session, fg_estimate=fg_estimate).alpha, alpha)


def test_above_the_cap_alpha_and_foreground_match_the_full_size_run(still, whole, full_run, monkeypatch):
    """Working size half the width and height (factor 2): measured mean |Δα| 0.00064, 0.35 % of
    pixels off by more than 0.05, foreground colour error 1.0/255 (guided upsampling)."""
    monkeypatch.setenv("MATTEKIT_WORKING_PIXELS", str(1920 * 1080 // 4))
    capped = matte_image(still, whole, fg_estimate="network")
    assert capped.alpha.shape == (1080, 1920) and capped.alpha.dtype == np.float32
    assert capped.fgr.shape == (1080, 1920, 3) and capped.fgr.dtype == np.float32
    d = np.abs(capped.alpha - full_run.alpha)
    assert d.mean() < 0.001
    assert (d > 0.05).mean() < 0.005
    visible = full_run.alpha > 0.01
    colour = (np.abs(capped.fgr - full_run.fgr).max(axis=2) * full_run.alpha)[visible]
    assert colour.mean() < 2 / 255


def test_banded_finish_mattes_at_full_size_as_the_published_graph(still, rvm_session, whole, monkeypatch):
    """RVM on the CPU (cut graph + banded guided filter) mattes a still above the working-size cap
    at its own size: alpha and foreground equal the published graph run on the whole image
    (worst mean |Δ| < 1e-5), where the capped path differs by ~6e-4."""
    assert rvm_session.guide_only and not whole.guide_only
    monkeypatch.setenv("MATTEKIT_WORKING_PIXELS", str(1920 * 1080 // 4))
    banded = matte_image(still, rvm_session, fg_estimate="network")
    alpha, fgr = old_path(still, whole, "network")
    assert banded.alpha.shape == alpha.shape and banded.fgr.shape == fgr.shape
    assert np.abs(banded.alpha - alpha).mean() < 1e-5
    assert np.abs(banded.fgr - fgr).mean() < 1e-5
    assert 0.05 < alpha.mean() < 0.9  # a person is there
    capped = matte_image(still, whole, fg_estimate="network")
    assert np.abs(capped.alpha - alpha).mean() > 1e-4  # the check can fail: the capped path differs


def test_tiled_foreground_matches_the_whole_solve(still, full_run):
    """384×384 tiles (32 px of context) against one solve, on the still at 960×540 with the
    network's alpha: the composite's colour differs by less than 0.5/255 on average (measured
    0.16/255 with 512×512 tiles at 1920×1080, benchmarks/image_cap.py)."""
    rgb = cv2.resize(still, (960, 540), interpolation=cv2.INTER_AREA)
    alpha = cv2.resize(full_run.alpha, (960, 540), interpolation=cv2.INTER_AREA)
    whole = estimate_foreground_ml(rgb, alpha)
    tiled = estimate_foreground_ml(rgb, alpha, 384 * 384)
    visible = alpha > 0.01
    colour = (np.abs(tiled - whole).max(axis=2) * alpha)[visible]
    assert colour.mean() < 0.5 / 255, colour.mean() * 255
    assert not np.array_equal(tiled, whole)  # the tiles were used


PEAK_CHILD = """
import sys
import numpy as np
from mattekit.io.image import read_image
from mattekit.models import new_session
from mattekit.pipeline.image import matte_image
from mattekit.pipeline.upsample import working_size
def hwm():
    return int([l for l in open('/proc/self/status') if l.startswith('VmHWM')][0].split()[1]) * 1024
still, mode, height, width = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
rgb = np.ascontiguousarray(np.tile(read_image(still), (height // 1080 + 1, width // 1920 + 1, 1))[:height, :width])
session = new_session()
# load the model, compile pymatting and let ONNX Runtime size its arena for the working size
h, w = working_size(height, width, 250000)
matte_image(np.ascontiguousarray(rgb[:h, :w]), session, fg_estimate=mode)
before = hwm()
matte = matte_image(rgb, session, fg_estimate=mode)
rgba = matte.rgba()
print((hwm() - before) / (height * width))
"""


@pytest.mark.parametrize(("mode", "height", "width"), [("network", 3000, 4000), ("ml", 1500, 2000)])
def test_peak_memory_of_a_large_image_is_bounded(shared_data, monkeypatch, mode, height, width):
    """With a 0.25 MP cap, matting (after a first run at the working size) adds < 30 bytes per
    pixel to the peak (full-size alpha 4 + foreground 12 + cut-out 4 + bands and tiles; measured
    ~24); the uncapped network alone took ~130 bytes per pixel (benchmarks/large_photo.py)."""
    monkeypatch.setenv("MATTEKIT_WORKING_PIXELS", "250000")
    still = shared_data / "people" / "stills" / "0001_img.png"
    out = subprocess.run(
        [sys.executable, "-c", PEAK_CHILD, str(still), mode, str(height), str(width)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert float(out) < 30, f"{float(out):.1f} bytes per pixel"


@pytest.mark.parametrize("size", [(1, 1), (1, 600), (600, 1), (2, 2), (16, 4000), (4000, 16)])
@pytest.mark.parametrize("fg_estimate", ["network", "ml"])
def test_tiny_and_thin_images_are_matted(rvm_session, size, fg_estimate):
    rgb = np.random.default_rng(0).integers(0, 256, (*size, 3), dtype=np.uint8)
    matte = matte_image(rgb, rvm_session, fg_estimate=fg_estimate)
    assert matte.alpha.shape == size and matte.fgr.shape == (*size, 3)
    assert np.isfinite(matte.alpha).all() and np.isfinite(matte.fgr).all()
    assert matte.rgba().shape == (*size, 4)
    assert matte.composite("white").shape == (*size, 3)
    if size == (1, 1) and fg_estimate == "ml":
        assert np.allclose(matte.fgr[0, 0], rgb[0, 0] / 255)  # F = I


@pytest.mark.parametrize("shape", [(0, 0, 3), (0, 5, 3), (5, 0, 3)])
def test_empty_arrays_are_refused(rvm_session, shape):
    with pytest.raises(ValueError, match="at least 1×1"):
        matte_image(np.zeros(shape, np.uint8), rvm_session)


@pytest.mark.parametrize("colour", [(300, 0, 0), (-1, 0, 0), (0.5, 0, 0), (float("nan"), 0, 0), ("x", 0, 0)])
def test_bad_composite_colour_is_a_clear_error(rvm_session, colour):
    matte = matte_image(np.full((8, 8, 3), 100, np.uint8), rvm_session)
    with pytest.raises(InputError, match=r"three whole numbers 0\.\.255"):
        matte.composite(colour)


def test_bad_working_pixels_variable(rvm_session, monkeypatch):
    monkeypatch.setenv("MATTEKIT_WORKING_PIXELS", "-5")
    with pytest.raises(InputError, match="MATTEKIT_WORKING_PIXELS: must be a whole number"):
        matte_image(np.full((8, 8, 3), 100, np.uint8), rvm_session)


def test_out_of_memory_is_one_line_naming_the_file_and_size(tmp_path, rvm_session, monkeypatch):
    import mattekit.pipeline.image as image_module

    path = tmp_path / "big.png"
    cv2.imwrite(str(path), np.zeros((30, 40, 3), np.uint8))

    def exhausted(*args):
        raise MemoryError()

    monkeypatch.setattr(image_module, "_matte", exhausted)
    monkeypatch.setattr(image_module, "_matte_banded", exhausted)
    with pytest.raises(InputError) as info:
        matte_image(path, rvm_session)
    assert str(info.value) == f"{path}: out of memory matting this 40×30 image (0 megapixels)"


def bomb_png(path, width, height):
    """A ~250-byte PNG whose header declares width × height RGB pixels."""

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")
    )


def test_decompression_bomb_is_refused_from_its_header(tmp_path, capsys):
    from mattekit.cli.main import main

    path = tmp_path / "bomb.png"
    bomb_png(path, 30000, 30000)
    with pytest.raises(InputError, match="declares 900 megapixels, over the 179-megapixel limit"):
        read_image(path)
    assert main(["image", str(path), "-o", str(tmp_path / "out"), "--quiet"]) != 0
    err = capsys.readouterr().err
    assert f"mattekit: error: {path}: image too large: its header declares 900 megapixels" in err
    assert "Traceback" not in err


def test_blur_background_channel_by_channel_is_the_normalized_convolution():
    """BlurBackground works one channel at a time (48 MP: 1.27 GiB instead of 3.59 GiB added);
    the result is exactly G*(src·w) / G*w (w = 1 - alpha), with G*src where G*w <= 1e-3."""
    from mattekit.compose.background import BlurBackground, blur

    rng = np.random.default_rng(0)
    src = rng.integers(0, 256, (90, 160, 3), dtype=np.uint8)
    alpha = rng.random((90, 160)).astype(np.float32)
    alpha[:, :120] = 1  # a region far from any background: the plain blur is used there
    img, weight = src.astype(np.float32), 1 - alpha
    num, den, plain = blur(img * weight[..., None], 8), blur(weight, 8)[..., None], blur(img, 8)
    expected = np.clip(np.where(den > 1e-3, num / np.maximum(den, 1e-3), plain) + 0.5, 0, 255).astype(np.uint8)
    assert np.array_equal(BlurBackground(8).frame(0, 90, 160, src, alpha), expected)
    assert (den <= 1e-3).any()
