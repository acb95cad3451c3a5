"""libx264 preset of the video output: default, --preset / preset=, and refused values."""

from __future__ import annotations

import av
import pytest
from PIL import Image

from mattekit import convert_video
from mattekit.cli.main import main
from mattekit.io.video_writer import DEFAULT_X264_PRESET


@pytest.fixture(scope="module")
def clip_dir(shared_data, tmp_path_factory):
    """8 real frames (PNG, 192x108)."""
    folder = tmp_path_factory.mktemp("preset") / "clip"
    folder.mkdir()
    with av.open(str(shared_data / "people" / "test-sample1.mp4")) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if i == 8:
                break
            Image.fromarray(frame.reformat(192, 108, format="rgb24", interpolation="AREA").to_ndarray()).save(
                folder / f"{i:04d}.png"
            )
    return folder


def x264_settings(path) -> bytes:
    """The option string libx264 writes into its stream (SEI user data)."""
    data = path.read_bytes()
    start = data.index(b"x264 - core")
    return data[start : data.index(b"\x00", start)]


def test_default_and_chosen_preset_reach_the_encoder(clip_dir, fake_session, tmp_path):
    assert DEFAULT_X264_PRESET == "ultrafast"
    default = tmp_path / "default.mp4"
    convert_video(clip_dir, output_composition=default, progress=False, model=fake_session)
    assert b"cabac=0" in x264_settings(default)  # ultrafast turns CABAC off
    chosen = tmp_path / "veryfast.mp4"
    assert main(["video", str(clip_dir), "-c", str(chosen), "--preset", "veryfast", "--model", "fake", "--quiet"]) == 0
    settings = x264_settings(chosen)
    assert b"cabac=1" in settings and b"subme=2" in settings  # veryfast's values
    with av.open(str(chosen)) as c:
        assert sum(1 for _ in c.decode(video=0)) == 8


@pytest.mark.parametrize(
    ("preset", "output_type", "message"),
    [
        ("fastest", "video", "^preset: must be one of ultrafast, .*, not 'fastest'$"),
        ("", "video", "^preset: must be one of ultrafast, .*, not ''$"),
        ("medium", "webm", "^preset: applies to the video \\(H.264\\) output type only, not webm$"),
    ],
)
def test_bad_preset_is_refused_before_anything_is_written(
    clip_dir, fake_session, tmp_path, preset, output_type, message
):
    out = tmp_path / ("out.webm" if output_type == "webm" else "out.mp4")
    with pytest.raises(ValueError, match=message):
        convert_video(
            clip_dir, output_type=output_type, output_composition=out, progress=False, model=fake_session, preset=preset
        )
    assert list(tmp_path.iterdir()) == []


def test_cli_refuses_unknown_preset(clip_dir, tmp_path, capsys):
    for args in (["--preset", "fastest"], ["--preset", "medium", "--output-type", "webm"]):
        out = tmp_path / ("o.webm" if "webm" in args else "o.mp4")
        assert main(["video", str(clip_dir), "-c", str(out), "--model", "fake", *args]) == 2
        err = capsys.readouterr().err
        assert "--preset" in err.strip().splitlines()[-1]  # click's usage error, as for every option
    assert list(tmp_path.iterdir()) == []
