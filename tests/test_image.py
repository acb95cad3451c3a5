"""matte_image on real photos: the alpha agrees with the clean plate, and the files written."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from mattekit import matte_image
from mattekit.io.image import read_image

pytestmark = pytest.mark.slow  # the real model on full-size real stills


@pytest.fixture(scope="module")
def still(shared_data, rvm_session):
    path = shared_data / "people" / "stills" / "0001_img.png"
    return path, matte_image(path, model=rvm_session)


def test_alpha_agrees_with_the_clean_plate(shared_data, still):
    """The photo's clean plate (same scene, no person; hand-held, so not pixel-aligned) tells
    where the person can be: the matte's person lies where the photo differs from the plate, and
    where photo and plate agree the matte is background."""
    path, matte = still
    img = read_image(path).astype(np.float32) / 255
    plate = read_image(shared_data / "people" / "stills" / "0001_back.png").astype(np.float32) / 255
    diff = ndimage.uniform_filter(np.abs(img - plate).max(axis=2), 15)
    person = matte.alpha > 0.5
    assert 0.1 < person.mean() < 0.5
    assert (diff[person] > 0.1).mean() > 0.95
    unchanged = diff < 0.05  # 22 % of the frame
    assert (matte.alpha[unchanged] < 0.05).mean() > 0.97


def test_matte_arrays(still):
    _path, matte = still
    assert matte.alpha.shape == (1080, 1920) and matte.alpha.dtype == np.float32
    assert matte.fgr.shape == (1080, 1920, 3) and matte.fgr.dtype == np.float32
    assert matte.alpha.min() >= 0 and matte.alpha.max() <= 1
    rgba = matte.rgba()
    assert rgba.dtype == np.uint8 and rgba.shape == (1080, 1920, 4)
    assert np.array_equal(rgba[..., 3], np.clip(matte.alpha * 255 + 0.5, 0, 255).astype(np.uint8))
    # straight alpha: a half-transparent pixel keeps its full foreground colour
    semi = (matte.alpha > 0.3) & (matte.alpha < 0.7)
    assert semi.any()
    assert np.abs(rgba[..., :3][semi] / 255.0 - matte.fgr[semi]).max() <= 0.5 / 255 + 1e-6


def test_array_input_equals_path_input(still, rvm_session):
    path, matte = still
    again = matte_image(read_image(path), model=rvm_session)
    assert np.array_equal(again.alpha, matte.alpha)


def test_composite_over_colour(still):
    _, matte = still
    out = matte.composite("#0000ff")
    background = matte.alpha < 0.01
    assert out.dtype == np.uint8 and out.shape == (1080, 1920, 3)
    assert np.abs(out[background].astype(int) - [0, 0, 255]).max() <= 3


def test_bad_arrays_are_refused(rvm_session):
    with pytest.raises(ValueError, match="H×W×3 uint8"):
        matte_image(np.zeros((10, 10), np.uint8), model=rvm_session)
    with pytest.raises(ValueError, match="passes"):
        matte_image(np.zeros((10, 10, 3), np.uint8), model=rvm_session, passes=0)


def test_cli_writes_cutout_alpha_and_composition(shared_data, tmp_path):
    from mattekit.cli.main import main

    src = shared_data / "people" / "stills" / "1000_img.png"
    out = tmp_path / "out"
    assert main(["image", str(src), "-o", str(out), "--alpha", "--background", "white", "--quiet"]) == 0
    cut = Image.open(out / "1000_img.png")
    alpha = Image.open(out / "1000_img_alpha.png")
    comp = Image.open(out / "1000_img_composition.jpg")
    assert cut.mode == "RGBA" and cut.size == (1920, 1080)
    assert alpha.mode == "L" and comp.mode == "RGB" and comp.size == cut.size
    assert np.array_equal(np.asarray(cut)[..., 3], np.asarray(alpha))
    a = np.asarray(alpha)
    assert 0.02 < (a > 128).mean() < 0.9  # a person, not an empty or full matte
    assert np.asarray(comp)[a == 0].mean() > 245  # white where there is no person


def test_refine_changes_alpha_only_in_the_edge_band(shared_data, rvm_session):
    from mattekit.classical.refine import refinement_trimap

    rgb = np.asarray(
        Image.open(shared_data / "people" / "stills" / "1000_img.png")
        .convert("RGB")
        .resize((480, 270), Image.Resampling.LANCZOS)
    )
    plain = matte_image(rgb, model=rvm_session, fg_estimate="network")
    refined = matte_image(rgb, model=rvm_session, fg_estimate="network", refine=True)
    band = refinement_trimap(plain.alpha) == 128
    assert np.array_equal(refined.alpha[~band], plain.alpha[~band])
    changed = np.abs(refined.alpha - plain.alpha)[band]
    assert changed.max() > 0.05  # the solver did act inside the band
    assert refined.alpha.dtype == np.float32 and refined.alpha.min() >= 0 and refined.alpha.max() <= 1
