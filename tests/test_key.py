"""mattekit key: FFmpeg's keying filters on the CorridorKey green-screen sample."""

from __future__ import annotations

import av
import numpy as np
import pytest

from mattekit.cli.main import main
from mattekit.io.rgba_reader import read_rgba_frames
from media import cut_clip


@pytest.fixture(scope="module")
def small_greenscreen(shared_data, tmp_path_factory):
    """girl_4k.mp4 (15 frames, 3840x2026) scaled to 480x254 (H.264, near-lossless) for speed."""
    return cut_clip(
        shared_data / "greenscreen" / "girl_4k.mp4",
        tmp_path_factory.mktemp("key") / "girl.mp4",
        15,
        (480, 254),
        24,
        pix_fmt="yuv444p",
        stream_options={"crf": "8", "preset": "ultrafast"},
    )


def test_auto_key_makes_screen_transparent_and_person_opaque(small_greenscreen, tmp_path, capsys):
    out = tmp_path / "girl.webm"
    assert main(["key", str(small_greenscreen), "-o", str(out)]) == 0
    assert "15 frames" in capsys.readouterr().out
    frames = [f.rgba for f in read_rgba_frames(out)]
    assert len(frames) == 15
    for rgba in frames:
        alpha = rgba[:, :, 3].astype(np.float32) / 255
        assert alpha[:25].mean() < 0.02  # the screen above the head
        assert alpha[:, -60:].mean() < 0.02  # right of the person
        assert alpha[:, :60].mean() < 0.1  # left: a darker, shadowed part of the screen
        assert alpha[100:140, 200:260].mean() > 0.97  # face
        assert alpha[200:240, 180:300].mean() > 0.97  # shirt
        # despill: the opaque foreground has no green cast left (G not above both R and B)
        fg = rgba[alpha > 0.99][:, :3].astype(int)
        assert (fg[:, 1] > np.maximum(fg[:, 0], fg[:, 2]) + 3).mean() < 0.01


def _alpha_frames(folder) -> np.ndarray:
    from PIL import Image

    return np.stack([np.asarray(Image.open(p), np.float32) / 255 for p in sorted(folder.glob("*.png"))])


def _clean_plate(rgb: np.ndarray) -> np.ndarray:
    """A stand-in clean plate of the first frame (the sample has none): where chroma keying finds
    the person, each row's screen is interpolated between the screen pixels around it."""
    from mattekit.keying import KeyFilter, pick_key_settings

    h, w = rgb.shape[:2]
    subject = KeyFilter(w, h, pick_key_settings(rgb))(rgb)[:, :, 3] >= 5
    plate, cols = rgb.astype(np.float32), np.arange(w)
    for y in range(h):
        for c in range(3):
            plate[y, subject[y], c] = np.interp(cols[subject[y]], cols[~subject[y]], plate[y, ~subject[y], c])
    return np.round(plate).astype(np.uint8)


def test_given_colour_alpha_png_sequence_and_backgroundkey(small_greenscreen, tmp_path):
    from PIL import Image

    alpha_dir = tmp_path / "alpha"
    assert (
        main(
            [
                "key",
                str(small_greenscreen),
                "-a",
                str(alpha_dir),
                "--output-type",
                "png_sequence",
                "--color",
                "#5b6e46",
                "--method",
                "hsvkey",
                "-q",
            ]
        )
        == 0
    )
    alpha = _alpha_frames(alpha_dir)
    assert len(alpha) == 15
    # hsvkey's distance includes brightness: the dim screen keys out, the white shirt stays
    assert alpha[:, :25].mean() < 0.02 and alpha[:, :, -60:].mean() < 0.02
    assert alpha[:, 200:240, 180:300].mean() > 0.97
    with av.open(str(small_greenscreen)) as c:
        first = next(c.decode(video=0)).to_ndarray(format="rgb24")
    Image.fromarray(_clean_plate(first)).save(tmp_path / "plate.png")
    out = tmp_path / "bg"
    assert (
        main(
            [
                "key",
                str(small_greenscreen),
                "-a",
                str(out),
                "--output-type",
                "png_sequence",
                "--method",
                "backgroundkey",
                "--clean-plate",
                str(tmp_path / "plate.png"),
                "-q",
            ]
        )
        == 0
    )
    # every frame, not only the first: the plate stays the background (FFmpeg's scene-change
    # threshold would otherwise take the first frame, person included, as the new background)
    alpha = _alpha_frames(out)
    assert len(alpha) == 15
    for frame in alpha:
        assert frame[:25].mean() < 0.05 and frame[20:100, 120:160].mean() < 0.05  # screen, beside the head
        assert frame[100:140, 200:260].mean() > 0.97 and frame[200:240, 180:300].mean() > 0.97  # face, shirt


def test_bad_inputs_give_one_line_errors(small_greenscreen, tmp_path, capsys):
    assert main(["key", str(tmp_path / "missing.mp4"), "-o", str(tmp_path / "x.webm")]) == 2
    assert "missing.mp4: file not found" in capsys.readouterr().err
    assert main(["key", str(small_greenscreen), "-o", str(tmp_path / "x.mp4"), "--output-type", "video"]) == 3
    assert "no transparency" in capsys.readouterr().err
    (tmp_path / "keep.webm").write_bytes(b"mine")
    assert main(["key", str(small_greenscreen), "-o", str(tmp_path / "keep.webm")]) == 3
    assert (tmp_path / "keep.webm").read_bytes() == b"mine"
    assert main(["key", str(small_greenscreen), "-o", str(tmp_path / "y.webm"), "--color", "notacolour"]) == 2
    plate = tmp_path / "plate.png"
    from PIL import Image

    Image.fromarray(np.zeros((10, 10, 3), np.uint8)).save(plate)
    assert (
        main(
            [
                "key",
                str(small_greenscreen),
                "-a",
                str(tmp_path / "a.webm"),
                "--method",
                "backgroundkey",
                "--clean-plate",
                str(plate),
            ]
        )
        == 2
    )
    assert "clean plate is 10x10" in capsys.readouterr().err
    assert not list(tmp_path.glob(".*partial*"))


def test_thresholds_must_be_finite_numbers_in_0_1(small_greenscreen, tmp_path, capsys):
    for bad in ("nan", "inf", "-0.1", "2"):
        assert main(["key", str(small_greenscreen), "-o", str(tmp_path / "x.webm"), "--similarity", bad]) == 2
        assert "between 0 and 1" in capsys.readouterr().err
    assert not (tmp_path / "x.webm").exists()


def test_same_path_for_both_outputs_is_refused(small_greenscreen, tmp_path, capsys):
    same = tmp_path / "out.webm"
    assert main(["key", str(small_greenscreen), "-o", str(same), "-a", str(same)]) == 3
    assert "the same path is given for two outputs" in capsys.readouterr().err
    assert not same.exists()
