"""Backgrounds: colour, picture (cover + centre), video (looped/cut, resampled), blur, transparent."""

from __future__ import annotations

from fractions import Fraction

import av
import numpy as np
import pytest
from PIL import Image

from mattekit import convert_video
from mattekit.compose.background import (
    BlurBackground,
    ColorBackground,
    ImageBackground,
    TransparentBackground,
    VideoBackground,
    parse_background,
)
from mattekit.compose.composite import composite
from mattekit.errors import InputError
from mattekit.io.rgba_reader import read_rgba_frames
from media import cut_clip, write_clip


def numbered_clip(path, rate, count, size=(64, 48), start_pts=0):
    """A clip whose frame k is uniformly gray at level 20 + 20·k (k < 12), lossless."""
    return write_clip(
        path,
        count,
        size,
        rate,
        images=lambda w, h, k: np.full((h, w, 3), 20 + 20 * k, np.uint8),
        pix_fmt="yuv444p",
        stream_options={"crf": "0"},
        pts=[start_pts + k for k in range(count)],
    )


def level_to_index(image) -> int:
    return round((float(np.median(image)) - 20) / 20)


def test_parse_background_words_and_files(tmp_path):
    assert parse_background("red").rgb == (255, 0, 0)
    assert parse_background("#102030").rgb == (16, 32, 48)
    assert parse_background((1, 2, 3)).rgb == (1, 2, 3)
    assert isinstance(parse_background("transparent"), TransparentBackground)
    assert parse_background("blur").sigma == 25
    assert parse_background("blur:40").sigma == 40
    Image.new("RGB", (8, 8)).save(tmp_path / "pic.png")
    assert isinstance(parse_background(tmp_path / "pic.png"), ImageBackground)
    clip = numbered_clip(tmp_path / "bg.mp4", 10, 3)
    bg = parse_background(str(clip))
    assert isinstance(bg, VideoBackground)
    bg.close()
    for bad in ("blur:abc", "blur:-3", "no-such-colour-or-file"):
        with pytest.raises(InputError):
            parse_background(bad)


def test_image_background_covers_and_centres(tmp_path):
    # 200x100 picture: left quarter red, middle half green, right quarter blue
    pic = np.zeros((100, 200, 3), np.uint8)
    pic[:, :50] = (255, 0, 0)
    pic[:, 50:150] = (0, 255, 0)
    pic[:, 150:] = (0, 0, 255)
    Image.fromarray(pic).save(tmp_path / "wide.png")
    frame = ImageBackground(tmp_path / "wide.png").frame(0, 100, 100)
    # a square frame covered by a 2:1 picture shows its centre half: all green
    assert frame.shape == (100, 100, 3)
    assert (np.abs(frame.astype(int) - (0, 255, 0)).max(axis=2) < 8).mean() > 0.98
    # a tall frame (scale x2) shows the middle 100 of 400 columns: green as well
    tall = ImageBackground(tmp_path / "wide.png").frame(0, 200, 100)
    assert tall.shape == (200, 100, 3) and np.abs(tall[:, 5:-5].astype(int) - (0, 255, 0)).max() < 8


def test_video_background_is_resampled_and_looped(tmp_path):
    # background: 10 fps, 5 frames (0.5 s); input at 25 fps for 2 s -> looped 4 times
    clip = numbered_clip(tmp_path / "bg.mp4", 10, 5)
    bg = VideoBackground(clip)
    bg.prepare(Fraction(25))
    assert bg.duration == pytest.approx(0.5)
    shown = [level_to_index(bg.frame(i, 30, 40)) for i in range(50)]
    expected = [int((i / 25 % 0.5) * 10 + 1e-9) for i in range(50)]
    assert shown == expected
    assert bg.frame(0, 30, 40).shape == (30, 40, 3)
    bg.close()


def test_video_background_longer_than_input_is_cut(tmp_path):
    clip = numbered_clip(tmp_path / "bg.mp4", 30, 12, start_pts=3)  # timestamps need not start at 0
    bg = VideoBackground(clip)
    bg.prepare(Fraction(15))  # input at half the rate: every other background frame
    assert [level_to_index(bg.frame(i, 48, 64)) for i in range(6)] == [0, 2, 4, 6, 8, 10]
    bg.close()


def test_blur_keeps_the_person_out_of_the_background():
    src = np.full((80, 80, 3), 60, np.uint8)
    src[20:60, 30:50] = 250  # the person, bright
    src[::4, :] = 200  # background stripes the blur must smooth
    alpha = np.zeros((80, 80), np.float32)
    alpha[20:60, 30:50] = 1.0
    out = BlurBackground(6).frame(0, 80, 80, src, alpha)
    plain = BlurBackground(6).frame(0, 80, 80, src)
    background = src[:20].astype(float)
    # the stripes are smoothed away
    assert out[:15].std() < background.std() / 4
    # right next to the person: no bright halo with the person left out; a plain blur has one
    ring = out[20:60, 24:28].astype(float).mean()
    assert ring < 110 < plain[20:60, 24:28].astype(float).mean()


def test_blur_needs_the_frame():
    with pytest.raises(ValueError, match="needs the input frame"):
        BlurBackground(5).frame(0, 10, 10)


def test_composite_uses_the_models_foreground():
    fgr = np.zeros((4, 4, 3), np.float32)
    fgr[..., 0] = 1.0  # the model says: red hair
    alpha = np.full((4, 4), 0.5, np.float32)
    out = composite(fgr, alpha, ColorBackground((0, 0, 255)).frame(0, 4, 4))
    assert out[0, 0].tolist() == [128, 0, 128]


@pytest.fixture(scope="module")
def person_clip(shared_data, tmp_path_factory):
    return cut_clip(
        shared_data / "people" / "test-sample1.mp4", tmp_path_factory.mktemp("person") / "p.mp4", 6, (160, 90), 30
    )


def test_convert_video_with_a_video_background(person_clip, rvm_session, tmp_path):
    bg = numbered_clip(tmp_path / "bg.mp4", 15, 2, size=(320, 180))  # 2 frames at 15 fps: looped
    out = tmp_path / "out.mp4"
    convert_video(person_clip, output_composition=out, background=bg, progress=False, model=rvm_session)
    frames = [f.rgba for f in read_rgba_frames(out)]
    corners = [level_to_index(f[:12, :12]) for f in frames]
    # input 30 fps, background 15 fps with 2 frames: each shown twice, then looped
    assert corners == [0, 0, 1, 1, 0, 0]


def test_convert_video_with_blur_and_transparent(person_clip, fake_session, tmp_path):
    out = tmp_path / "blur.mp4"
    convert_video(person_clip, output_composition=out, background="blur:8", progress=False, model=fake_session)
    with av.open(str(person_clip)) as c:
        src = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    frames = [f.rgba[:, :, :3] for f in read_rgba_frames(out)]
    assert len(frames) == 6
    # the background corner is the input's, smoothed: similar mean, far less detail
    corner_in, corner_out = src[3][:30, :40].astype(float), frames[3][:30, :40].astype(float)
    assert abs(corner_in.mean() - corner_out.mean()) < 12
    assert np.abs(np.diff(corner_out, axis=1)).mean() < np.abs(np.diff(corner_in, axis=1)).mean()
    png = tmp_path / "rgba"
    convert_video(
        person_clip,
        output_type="png_sequence",
        output_composition=png,
        background="transparent",
        progress=False,
        model=fake_session,
    )
    assert np.asarray(Image.open(sorted(png.glob("*.png"))[0])).shape == (90, 160, 4)
