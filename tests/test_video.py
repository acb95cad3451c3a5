"""convert_video against the plain ONNX Runtime recipe, and what the written files contain."""

from __future__ import annotations

from fractions import Fraction

import av
import numpy as np
import onnxruntime as ort
import pytest
from PIL import Image

from mattekit import convert_video
from mattekit.cli.main import main
from media import write_clip

pytestmark = pytest.mark.slow  # the real model over real clips (one test runs 195 s here)


def reference_alphas(model_path, video_path, downsample_ratio):
    """RVM's documented ONNX recipe, written out plainly (docs/inference.md of RVM)."""
    sess = ort.InferenceSession(str(model_path), providers=["CPUExecutionProvider"])
    rec = [np.zeros([1, 1, 1, 1], dtype=np.float32)] * 4
    ratio = np.array([downsample_ratio], dtype=np.float32)
    alphas = []
    with av.open(str(video_path)) as container:
        for frame in container.decode(video=0):
            src = frame.to_ndarray(format="rgb24").astype(np.float32).transpose(2, 0, 1)[None] / 255.0
            _fgr, pha, *rec = sess.run(
                [], {"src": src, "r1i": rec[0], "r2i": rec[1], "r3i": rec[2], "r4i": rec[3], "downsample_ratio": ratio}
            )
            alphas.append(pha[0, 0])
    return alphas


def test_alpha_matches_plain_onnx_recipe(shared_data, rvm_session, tmp_path):
    video = shared_data / "people" / "test-sample1.mp4"
    out = tmp_path / "alpha"
    result = convert_video(video, output_type="png_sequence", output_alpha=out, progress=False, model=rvm_session)
    assert result.downsample_ratio == pytest.approx(512 / 1280)
    expected = reference_alphas(rvm_session.path, video, 512 / 1280)
    written = sorted(out.glob("*.png"))
    assert len(written) == len(expected) == 79
    for i, (png, ref) in enumerate(zip(written, expected, strict=True)):
        got = np.asarray(Image.open(png), dtype=np.float32) / 255.0
        assert got.shape == ref.shape == (720, 1280)
        # 8-bit PNG quantisation alone contributes at most 0.5/255 per pixel
        assert np.abs(got - ref).mean() < 1e-3, f"frame {i}"


def test_cli_composite_keeps_frames_rate_and_audio(shared_data, tmp_path, capsys):
    """The CLI's mechanics on a real clip with the fake model (alpha from luma, no network)."""
    from mattekit.models.fake import fake_alpha

    video = shared_data / "people" / "test-sample1.mp4"
    out = tmp_path / "com.mp4"
    assert (
        main(["video", str(video), "--output-composition", str(out), "--background", "white", "--model", "fake"]) == 0
    )
    assert "79 frames" in capsys.readouterr().out
    with av.open(str(out)) as container:
        vstream = container.streams.video[0]
        assert (vstream.codec_context.width, vstream.codec_context.height) == (1280, 720)
        assert vstream.average_rate == 30
        assert container.streams.audio, "audio track missing"
        assert container.streams.audio[0].codec_context.name == "aac"
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    assert len(frames) == 79
    # frame 40 is the fake model's alpha of input frame 40 over white (two lossy encodes apart)
    with av.open(str(video)) as container:
        rgb = next(f for i, f in enumerate(container.decode(video=0)) if i == 40).to_ndarray(format="rgb24")
    src = rgb.transpose(2, 0, 1)[None].astype(np.float32) / 255
    alpha = fake_alpha(src)[0, 0][..., None]
    expected = rgb * alpha + 255 * (1 - alpha)
    assert 0.05 < alpha.mean() < 0.95  # neither all background nor all foreground
    assert np.abs(frames[40].astype(float) - expected).mean() < 4
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]
    assert leftovers == []


def test_ntsc_frame_rate_is_kept_exactly(rvm_session, tmp_path):
    src = write_clip(tmp_path / "ntsc.mp4", 12, (96, 64), Fraction(30000, 1001), audio_tracks=1, audio_rate=44100)
    out = tmp_path / "out.mp4"
    result = convert_video(src, output_composition=out, progress=False, model=rvm_session)
    assert result.frames == 12
    with av.open(str(out)) as container:
        stream = container.streams.video[0]
        assert stream.average_rate == Fraction(30000, 1001)
        assert len(list(container.decode(video=0))) == 12
    with av.open(str(out)) as container:
        assert container.streams.audio


def test_folder_of_frames_is_a_video(rvm_session, tmp_path):
    frames = tmp_path / "frames"
    frames.mkdir()
    for i in range(5):
        img = np.full((64, 96, 3), 40, np.uint8)
        img[8:50, 10 + 4 * i : 40 + 4 * i] = 200
        Image.fromarray(img).save(frames / f"{i:03d}.png")
    out = tmp_path / "alpha.mp4"
    result = convert_video(frames, output_alpha=out, progress=False, model=rvm_session, frame_rate=25)
    assert result.frames == 5
    with av.open(str(out)) as container:
        assert container.streams.video[0].average_rate == 25
        assert not container.streams.audio
        assert len(list(container.decode(video=0))) == 5
