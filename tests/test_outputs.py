"""Transparent outputs (WebM VP9 alpha, ProRes 4444, GIF, PNG sequence) decoded back and compared
with the alpha the model produced, plus audio in WebM/MOV and the rules around transparency."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from mattekit import convert_video
from mattekit.cli.main import main
from mattekit.errors import ParameterError
from mattekit.io.rgba_reader import read_rgba_frames
from mattekit.models.base import to_src
from media import cut_clip

FRAMES = 8
SIZE = (192, 108)


@pytest.fixture(scope="module")
def clip(shared_data, tmp_path_factory) -> Path:
    """The first 8 frames of people/test-sample1.mp4 at 192x108, with its audio (AAC)."""
    return cut_clip(
        shared_data / "people" / "test-sample1.mp4",
        tmp_path_factory.mktemp("clip") / "person.mp4",
        FRAMES,
        SIZE,
        30,
        stream_options={"crf": "12"},
        audio=True,
    )


@pytest.fixture(scope="module")
def model_alpha(clip, rvm_session) -> list[np.ndarray]:
    """The model's alpha for each frame of the clip (float32 0..1), stepped as convert_video does."""
    alphas = []
    state = rvm_session.initial_state()
    with av.open(str(clip)) as container:
        for frame in container.decode(video=0):
            result = rvm_session.step(to_src(frame.to_ndarray(format="rgb24")), state, 1.0)
            state = result.state
            alphas.append(result.pha[0, 0])
    assert len(alphas) == FRAMES
    return alphas


def test_png_sequence_alpha_is_exact(clip, model_alpha, rvm_session, tmp_path):
    out = tmp_path / "com"
    convert_video(clip, output_type="png_sequence", output_composition=out, progress=False, model=rvm_session)
    files = sorted(out.glob("*.png"))
    assert len(files) == FRAMES
    for png, ref in zip(files, model_alpha, strict=True):
        rgba = np.asarray(Image.open(png))
        assert rgba.shape == (SIZE[1], SIZE[0], 4)
        expected = np.clip(ref * 255.0 + 0.5, 0, 255).astype(np.uint8)
        assert np.array_equal(rgba[:, :, 3], expected)


@pytest.mark.parametrize(
    ("output_type", "suffix", "codec", "audio", "tolerance"),
    [
        ("webm", ".webm", "vp9", "opus", 2.0),  # VP9 alpha layer, lossy: aim <= 2/255
        ("prores", ".mov", "prores", "aac", 0.5),  # ProRes 4444, 16-bit alpha: rounding only
    ],
)
def test_transparent_video_alpha_round_trip(
    clip, model_alpha, rvm_session, tmp_path, output_type, suffix, codec, audio, tolerance
):
    out = tmp_path / f"com{suffix}"
    result = convert_video(clip, output_type=output_type, output_composition=out, progress=False, model=rvm_session)
    assert result.frames == FRAMES
    with av.open(str(out)) as container:
        assert container.streams.video[0].codec_context.name == codec
        assert [s.codec_context.name for s in container.streams.audio] == [audio]
    decoded = list(read_rgba_frames(out))
    assert len(decoded) == FRAMES
    assert decoded[0].pix_fmt.startswith("yuva"), "alpha plane lost"
    errors = []
    for got, ref in zip(decoded, model_alpha, strict=True):
        assert got.rgba.shape == (SIZE[1], SIZE[0], 4)
        errors.append(np.abs(got.rgba[:, :, 3].astype(np.float32) - ref * 255.0).mean())
    # the person is there: the matte is neither empty nor full
    assert 0.05 < np.mean([(r > 0.5).mean() for r in model_alpha]) < 0.95
    assert max(errors) <= tolerance, f"alpha MAE per frame (0..255): {errors}"
    # timestamps follow the source's 30 fps
    assert [round(d.time * 30) for d in decoded] == list(range(FRAMES))


def test_gif_alpha_is_the_thresholded_matte(clip, model_alpha, rvm_session, tmp_path):
    out = tmp_path / "com.gif"
    convert_video(clip, output_type="gif", output_composition=out, progress=False, model=rvm_session)
    decoded = list(read_rgba_frames(out))
    assert len(decoded) == FRAMES
    for got, ref in zip(decoded, model_alpha, strict=True):
        expected = np.where(np.clip(ref * 255.0 + 0.5, 0, 255).astype(np.uint8) >= 128, 255, 0)
        assert np.array_equal(got.rgba[:, :, 3], expected)
    with av.open(str(out)) as container:
        assert not container.streams.audio


def test_background_makes_a_transparent_type_opaque(clip, rvm_session, tmp_path):
    out = tmp_path / "white.webm"
    convert_video(
        clip, output_type="webm", output_composition=out, background="white", progress=False, model=rvm_session
    )
    frames = list(read_rgba_frames(out))
    assert all(f.rgba[:, :, 3].min() == 255 for f in frames)
    assert frames[4].rgba[:10, :10, :3].mean() > 235  # top-left is background in this clip


def test_alpha_output_is_gray_and_opaque(clip, model_alpha, rvm_session, tmp_path):
    out = tmp_path / "alpha.mov"
    convert_video(clip, output_type="prores", output_alpha=out, progress=False, model=rvm_session)
    frames = list(read_rgba_frames(out))
    got = frames[3].rgba
    assert got[:, :, 3].min() == 255
    # gray: R = G = B, and it is the matte (limited-range YUV round trip: within 2/255 on average)
    assert np.abs(got[:, :, 0].astype(int) - got[:, :, 2]).max() <= 1
    assert np.abs(got[:, :, 1].astype(np.float32) - model_alpha[3] * 255).mean() < 2.0


def test_transparent_background_needs_a_transparent_type(clip, rvm_session, tmp_path):
    with pytest.raises(
        ParameterError,
        match=r"^background: transparent needs an output type that keeps alpha "
        r"\(png_sequence, webm, prores, gif\), not video$",
    ):
        convert_video(
            clip, output_composition=tmp_path / "x.mp4", background="transparent", progress=False, model=rvm_session
        )
    assert list(tmp_path.iterdir()) == []


def test_suffix_must_fit_the_output_type(clip, rvm_session, tmp_path):
    with pytest.raises(ParameterError, match=r"x\.mp4: output type webm writes \.webm or \.mkv files, not \.mp4"):
        convert_video(
            clip, output_type="webm", output_composition=tmp_path / "x.mp4", progress=False, model=rvm_session
        )


def test_cli_webm_with_alpha(clip, tmp_path, capsys):
    out = tmp_path / "cli.webm"
    assert main(["video", str(clip), "--output-type", "webm", "-c", str(out), "-q"]) == 0
    frames = list(read_rgba_frames(out))
    assert len(frames) == FRAMES
    alpha = frames[-1].rgba[:, :, 3]
    assert alpha.min() < 10 and alpha.max() > 245
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


@pytest.mark.slow
def test_fg_estimate_ml_recovers_fur_colour_better(shared_data, rvm_session):
    """Rendered fur with exact straight colour F and alpha, over a real room. Given the true
    alpha, pymatting's estimate (the default ``ml``) is closer to F in the semi-transparent fur
    than the network's own foreground (full comparison: benchmarks/fg_estimate.py)."""
    from mattekit import matte_image
    from mattekit.classical.estimate_foreground import estimate_foreground_ml

    rgba = np.asarray(Image.open(shared_data / "hairball" / "in0001.png").convert("RGBA")).astype(np.float32) / 255
    f_true, a_true = rgba[..., :3], rgba[..., 3]
    room = Image.open(shared_data / "people" / "stills" / "background_0001.png").convert("RGB").resize((960, 540))
    room = np.asarray(room).astype(np.float32) / 255.0
    image = np.clip((f_true * a_true[..., None] + room * (1 - a_true[..., None])) * 255 + 0.5, 0, 255).astype(np.uint8)
    net = matte_image(image, rvm_session, fg_estimate="network")
    ml = estimate_foreground_ml(image, a_true)
    fur = (a_true > 0.05) & (a_true < 0.95)
    err = {
        name: float((np.abs(f - f_true).mean(axis=2) * a_true)[fur].mean() * 255)
        for name, f in (("ml", ml), ("network", net.fgr))
    }
    assert err["ml"] < 0.5 * err["network"], err
    # the default is ml, computed from the network's alpha; the alpha itself does not change
    default = matte_image(image, rvm_session)
    assert np.array_equal(default.alpha, net.alpha)
    assert np.allclose(default.fgr, estimate_foreground_ml(image, net.alpha))
    with pytest.raises(ValueError, match="fg_estimate"):
        matte_image(image, rvm_session, fg_estimate="magic")


def test_gif_above_100_fps_keeps_increasing_times(rvm_session, tmp_path):
    frames = tmp_path / "fast"
    frames.mkdir()
    for i in range(12):
        img = np.full((32, 48, 3), 40, np.uint8)
        img[4:28, 10 + i : 30 + i] = 200
        Image.fromarray(img).save(frames / f"{i:02d}.png")
    out = tmp_path / "fast.gif"
    convert_video(frames, output_type="gif", output_alpha=out, frame_rate=240, progress=False, model=rvm_session)
    times = [d.time for d in read_rgba_frames(out)]
    # 12 frames at 240 fps span 46 ms: one frame per hundredth of a second survives
    assert times == sorted(set(times)) and 4 <= len(times) <= 6
