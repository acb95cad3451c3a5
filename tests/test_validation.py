"""Hostile values and files by class (issue 9, items 10-16, 20, 23): one line, the right exit code
or a typed error, nothing left behind; damaged videos decode past the damage."""

from __future__ import annotations

import contextlib
import hashlib
import math
import os
import shutil
import subprocess
import sys
import threading
import zlib
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

import mattekit
from mattekit import params
from mattekit.cli.main import main
from mattekit.errors import FormatError, InputError, OutputError, ParameterError, ParameterTypeError
from media import moving_block, write_clip

MATTEKIT = [sys.executable, "-m", "mattekit"]


# ---------------------------------------------------------------- generated inputs


def make_clip(
    path: Path,
    frames: int = 24,
    size=(96, 64),
    rate: int = 24,
    audio: bool = True,
    noise: bool = False,
    container_options=None,
    codec: str = "libx264",
) -> Path:
    """An H.264 clip with a 440 Hz AAC tone as long as the video; ``noise``: random pixels around the block."""
    rng = np.random.default_rng(0)

    def noisy(w, h, i):
        img = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
        img[h // 4 : 3 * h // 4, (2 * i) % w : (2 * i) % w + w // 4] = 210
        return img

    return write_clip(
        path,
        frames,
        size,
        rate,
        images=noisy if noise else moving_block,
        codec=codec,
        audio_tracks=int(audio),
        container_options=container_options,
    )


def png_bytes(width: int, height: int, idat: bytes = b"") -> bytes:
    """A PNG whose header declares ``width``×``height`` (the data need not match)."""

    def chunk(kind, data):
        return len(data).to_bytes(4, "big") + kind + data + zlib.crc32(kind + data).to_bytes(4, "big")

    ihdr = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([8, 2, 0, 0, 0])
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", idat or zlib.compress(b"\0" * 10))
        + chunk(b"IEND", b"")
    )


SVG = b'<svg xmlns="http://www.w3.org/2000/svg" width="64" height="48"><rect width="64" height="48"/></svg>'


def folder_state(folder: Path) -> dict[str, str]:
    """Relative path -> sha256 of every file under ``folder`` (hidden ones included)."""
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def cli(args, capsys) -> tuple[int, list[str]]:
    code = main([str(a) for a in args])
    return code, capsys.readouterr().err.strip().splitlines()


def run(args, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([*MATTEKIT, *map(str, args)], capture_output=True, text=True, **kwargs)


def assert_one_line(proc: subprocess.CompletedProcess, code: int, line: str) -> None:
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.stderr.strip().splitlines() == [line], proc.stderr
    assert proc.returncode == code


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    return make_clip(tmp_path_factory.mktemp("clip") / "clip.mp4", frames=6)


# ---------------------------------------------------------------- item 12: downsample_ratio and friends


@pytest.mark.parametrize("side", [1, 7, 180])
def test_network_minimum_is_one_pixel_measured_with_the_real_model(rvm_session, side):
    """The rule in mattekit.params is the network's own: min_downsample_ratio runs, the next
    float32 below it fails inside ONNX Runtime (the published graph) and is refused by the cut
    graph's encoder input (mattekit.models.dgf_bands.network_input)."""
    from mattekit.models.rvm_onnx import RVMSession

    whole = RVMSession(rvm_session.path, cut=False)
    cut = RVMSession(rvm_session.path, cut=True)
    assert whole.cut_path is None and cut.cut_path is not None
    h, w = side, side + 3
    src = np.random.default_rng(0).random((1, 3, h, w), dtype=np.float32)
    low = params.min_downsample_ratio(h, w)
    for session in (whole, cut):
        result = session.step(src, session.initial_state(), low)
        assert result.pha.shape == (1, 1, h, w)
    below = float(np.nextafter(np.float32(1.0 / side), np.float32(0)))
    assert params.network_side(below, side) == 0
    with pytest.raises(Exception, match="Invalid input shape"):
        whole.step(src, whole.initial_state(), below)
    with pytest.raises(ValueError, match=rf"leaves the network \d+x0 px of a {w}x{h} frame \(at least 1 px"):
        cut.step(src, cut.initial_state(), below)
    with pytest.raises(ParameterError):
        params.validate_downsample_ratio(below, h, w)


def test_auto_ratio_keeps_a_pixel_on_very_long_frames(rvm_session):
    assert params.auto_downsample_ratio(1080, 1920) == 512 / 1920
    ratio = params.auto_downsample_ratio(2, 1100)  # RVM's rule alone gives 0.465 -> 0 px tall
    assert params.network_side(ratio, 2) == 1 and ratio == 0.5
    matte = mattekit.matte_image(np.full((2, 1100, 3), 90, np.uint8), rvm_session, fg_estimate="network")
    assert matte.alpha.shape == (2, 1100)


BAD_RATIOS = [
    (-1, ParameterError, "downsample_ratio: must be a number in (0, 1] (or left out for auto), not -1"),
    (0, ParameterError, "downsample_ratio: must be a number in (0, 1] (or left out for auto), not 0"),
    (1.5, ParameterError, "downsample_ratio: must be a number in (0, 1] (or left out for auto), not 1.5"),
    (float("nan"), ParameterError, "downsample_ratio: must be a number in (0, 1] (or left out for auto), not nan"),
    (float("inf"), ParameterError, "downsample_ratio: must be a number in (0, 1] (or left out for auto), not inf"),
    (
        "0.5",
        ParameterTypeError,
        "downsample_ratio: must be a number in (0, 1] (or left out for auto), not the string '0.5'",
    ),
    (True, ParameterTypeError, "downsample_ratio: must be a number in (0, 1] (or left out for auto), not True (bool)"),
]


@pytest.mark.parametrize(("value", "kind", "message"), BAD_RATIOS)
@pytest.mark.parametrize("entry", ["matte_image", "convert_video", "matte_folder", "convert_folder"])
def test_every_entry_point_refuses_a_bad_ratio_alike(entry, value, kind, message, clip, rvm_session, tmp_path):
    image = tmp_path / "in" / "a.png"
    image.parent.mkdir()
    Image.fromarray(np.full((48, 64, 3), 90, np.uint8)).save(image)
    calls = {
        "matte_image": lambda: mattekit.matte_image(image, rvm_session, downsample_ratio=value),
        "convert_video": lambda: mattekit.convert_video(
            clip, output_alpha=tmp_path / "out" / "a.mp4", downsample_ratio=value, model=rvm_session, progress=False
        ),
        "matte_folder": lambda: mattekit.matte_folder(
            image.parent, tmp_path / "out", downsample_ratio=value, model=rvm_session
        ),
        "convert_folder": lambda: mattekit.convert_folder(
            clip, tmp_path / "out", downsample_ratio=value, model=rvm_session
        ),
    }
    with pytest.raises(kind) as caught:
        calls[entry]()
    assert str(caught.value) == message
    assert isinstance(caught.value, ValueError) and isinstance(caught.value, TypeError) == (kind is ParameterTypeError)
    assert not (tmp_path / "out").exists()


def test_typed_text_is_parsed_by_the_same_rules():
    """What the CLI and the server's form fields use: mattekit.params.parse."""
    ratio = params.validate_downsample_ratio
    assert params.parse("AUTO", ratio, {"auto": None}) is None
    assert params.parse(" 0.25 ", ratio, {"auto": None}) == 0.25
    for text, problem in (
        ("half", "'half' is not 'auto' or a number"),
        ("0", "must be a number in (0, 1] (or left out for auto), not 0"),
        ("NaN", "must be a number in (0, 1] (or left out for auto), not nan"),
    ):
        with pytest.raises(ParameterError) as caught:
            params.parse(text, ratio, {"auto": None})
        assert (caught.value.name, caught.value.problem) == ("downsample_ratio", problem)
    assert params.parse("12", params.validate_seq_chunk, integer=True) == 12
    with pytest.raises(ParameterError, match=r"^seq_chunk: '1.5' is not an integer$"):
        params.parse("1.5", params.validate_seq_chunk, integer=True)


def test_cancel_must_be_an_event(clip, rvm_session, tmp_path):
    with pytest.raises(TypeError, match=r"^cancel: must be a threading.Event \(or None\), not True \(bool\)$"):
        mattekit.convert_video(clip, output_alpha=tmp_path / "a.mp4", cancel=True, model=rvm_session, progress=False)
    with pytest.raises(TypeError, match=r"^cancel: must be a threading\.Event"):
        mattekit.convert_folder(clip, tmp_path / "o", cancel="yes", model=rvm_session)
    result = mattekit.convert_video(
        clip, output_alpha=tmp_path / "a.mp4", cancel=threading.Event(), model=rvm_session, progress=False
    )
    assert result.frames == 6


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"seq_chunk": 0}, "seq_chunk: must be an integer in [1, 1024], not 0"),
        ({"seq_chunk": 1.5}, "seq_chunk: must be an integer in [1, 1024], not 1.5 (float)"),
        ({"seq_chunk": "4"}, "seq_chunk: must be an integer in [1, 1024], not the string '4'"),
        (
            {"output_video_mbps": 0},
            "output_video_mbps: must be a number in [0.01, 1000] Mbit/s (or left out for quality-based), not 0",
        ),
        (
            {"output_video_mbps": 1e12},
            "output_video_mbps: must be a number in [0.01, 1000] Mbit/s (or left out for quality-based), not 1e+12",
        ),
        ({"frame_rate": float("nan")}, "frame_rate: must be a number in [0.01, 1000] frames/s, not nan"),
    ],
)
def test_convert_video_other_numbers(kwargs, message, clip, rvm_session, tmp_path):
    with pytest.raises(ParameterError) as caught:
        mattekit.convert_video(clip, output_alpha=tmp_path / "a.mp4", model=rvm_session, progress=False, **kwargs)
    assert str(caught.value) == message


def test_matte_image_passes_are_bounded(rvm_session):
    image = np.full((8, 8, 3), 90, np.uint8)
    for bad in (0, 10**9, "3", 2.0):
        with pytest.raises(ParameterError, match=r"^passes: must be an integer in \[1, 100\]"):
            mattekit.matte_image(image, rvm_session, passes=bad)


def test_ratio_too_small_for_the_frame_names_the_input(rvm_session, tmp_path):
    frames = tmp_path / "one"
    frames.mkdir()
    for i in range(2):
        Image.new("RGB", (1, 1), (i * 90, 0, 0)).save(frames / f"{i:03d}.png")
    with pytest.raises(ParameterError) as caught:
        mattekit.convert_video(
            frames, output_alpha=tmp_path / "a.mp4", downsample_ratio=0.5, model=rvm_session, progress=False
        )
    assert str(caught.value) == (
        f"{frames}: downsample_ratio 0.5 leaves the network 0x0 px of this 1x1 frame; "
        f"it needs at least 1 px a side (use a ratio >= 1, or auto)"
    )
    assert caught.value.path == str(frames)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["one"]  # no output, not even a partial
    result = mattekit.convert_video(frames, output_alpha=tmp_path / "a.mp4", model=rvm_session, progress=False)
    assert result.frames == 2 and result.downsample_ratio == 1.0
    with pytest.raises(
        ParameterError,
        match=r"^downsample_ratio: 0.001 leaves the network 0x0 px of this 64x48 "
        r"frame; it needs at least 1 px a side \(use a ratio >= 0.02084",
    ):
        mattekit.matte_image(np.zeros((48, 64, 3), np.uint8), rvm_session, downsample_ratio=0.001)


def test_cli_ratio_too_small_in_a_real_process(tmp_path):
    src = make_clip(tmp_path / "in.mp4", frames=2, size=(320, 180), audio=False)
    proc = run(["video", src, "-c", tmp_path / "out.mp4", "--downsample-ratio", "0.001"])
    assert_one_line(
        proc,
        2,
        f"mattekit: error: {src}: downsample_ratio 0.001 leaves the network 0x0 px of this "
        f"320x180 frame; it needs at least 1 px a side (use a ratio >= 0.005556, or auto)",
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mp4"]


# ---------------------------------------------------------------- items 13, 14: CLI numbers


@pytest.mark.parametrize(
    ("option", "value", "line"),
    [
        ("--downsample-ratio", "nan", "--downsample-ratio: must be a number in (0, 1] (or left out for auto), not nan"),
        ("--downsample-ratio", "0", "--downsample-ratio: must be a number in (0, 1] (or left out for auto), not 0"),
        ("--downsample-ratio", "half", "--downsample-ratio: 'half' is not 'auto' or a number"),
        (
            "--output-video-mbps",
            "-1",
            "--output-video-mbps: must be a number in [0.01, 1000] Mbit/s (or left out for quality-based), not -1",
        ),
        (
            "--output-video-mbps",
            "nan",
            "--output-video-mbps: must be a number in [0.01, 1000] Mbit/s (or left out for quality-based), not nan",
        ),
        (
            "--output-video-mbps",
            "inf",
            "--output-video-mbps: must be a number in [0.01, 1000] Mbit/s (or left out for quality-based), not inf",
        ),
        (
            "--output-video-mbps",
            "1e12",
            "--output-video-mbps: must be a number in [0.01, 1000] Mbit/s (or left out for quality-based), not 1e+12",
        ),
        (
            "--output-video-mbps",
            "0",
            "--output-video-mbps: must be a number in [0.01, 1000] Mbit/s (or left out for quality-based), not 0",
        ),
        ("--frame-rate", "-1", "--frame-rate: must be a number in [0.01, 1000] frames/s, not -1"),
        ("--frame-rate", "nan", "--frame-rate: must be a number in [0.01, 1000] frames/s, not nan"),
        ("--frame-rate", "inf", "--frame-rate: must be a number in [0.01, 1000] frames/s, not inf"),
        ("--frame-rate", "0", "--frame-rate: must be a number in [0.01, 1000] frames/s, not 0"),
        ("--seq-chunk", "0", "--seq-chunk: must be an integer in [1, 1024], not 0"),
        ("--background", "blur:inf", "blur:inf: must be a blur strength in (0, 1000] pixels, not inf"),
        ("--background", "blur:nan", "blur:nan: must be a blur strength in (0, 1000] pixels, not nan"),
        ("--background", "blur:-1", "blur:-1: must be a blur strength in (0, 1000] pixels, not -1"),
        ("--background", "blur:1e9", "blur:1e9: must be a blur strength in (0, 1000] pixels, not 1e+09"),
        ("--background", "blur:1e6", "blur:1e6: must be a blur strength in (0, 1000] pixels, not 1e+06"),
    ],
)
def test_cli_numbers_one_line_exit_2(option, value, line, clip, tmp_path, capsys):
    code, lines = cli(["video", clip, "-c", tmp_path / "o.mp4", f"{option}={value}"], capsys)
    assert (code, lines) == (2, [f"mattekit: error: {line}"])
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("value", ["-1", "nan", "inf", "0"])
def test_every_verb_with_a_frame_rate_checks_it_alike(value, tmp_path, capsys):
    """The class, not only `video`: `key` and the shared frame-folder reader refuse the same values."""
    from mattekit.io.video_reader import ImageSequenceReader

    frames = tmp_path / "frames"
    frames.mkdir()
    Image.fromarray(np.full((16, 16, 3), 90, np.uint8)).save(frames / "0.png")
    code, lines = cli(["key", frames, "-o", tmp_path / "k.webm", "--frame-rate", value], capsys)
    assert (
        code == 2
        and len(lines) == 1
        and lines[0].startswith("mattekit: error: --frame-rate: must be a number in [0.01, 1000] frames/s")
    ), lines
    with pytest.raises(ParameterError, match=r"^frame_rate: must be a number in \[0.01, 1000\] frames/s"):
        ImageSequenceReader(frames, float(value))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["frames"]


def test_cli_bad_number_in_a_real_process_has_no_traceback(clip, tmp_path):
    proc = run(["video", clip, "-c", tmp_path / "o.mp4", "--output-video-mbps", "nan"])
    assert_one_line(
        proc,
        2,
        "mattekit: error: --output-video-mbps: must be a number in [0.01, 1000] Mbit/s "
        "(or left out for quality-based), not nan",
    )


def test_documented_extremes_are_accepted(rvm_session, tmp_path):
    """The ends of the documented ranges work: 1000 Mbit/s, 0.01 and 1000 fps, blur:1000."""
    frames = tmp_path / "seq"
    frames.mkdir()
    for i in range(3):
        Image.fromarray(np.full((32, 48, 3), 60 * i, np.uint8)).save(frames / f"{i}.png")
    for rate in (0.01, 1000):
        out = tmp_path / f"r{rate}.mp4"
        mattekit.convert_video(
            frames,
            output_composition=out,
            frame_rate=rate,
            output_video_mbps=1000,
            background="blur:1000",
            model=rvm_session,
            progress=False,
        )
        with av.open(str(out)) as container:
            assert container.streams.video[0].average_rate == Fraction(rate).limit_denominator(1001)
            assert len(list(container.decode(video=0))) == 3


def test_blur_sigma_is_capped_at_the_frame_size():
    """A sigma beyond the frame's longer side gives what that side gives (a near-flat average),
    so the time per frame depends on the frame, not on the number typed."""
    from mattekit.compose.background import BlurBackground

    rng = np.random.default_rng(0)
    for h, w in ((180, 320), (16, 400)):
        src = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
        alpha = np.zeros((h, w), np.float32)
        alpha[h // 4 : h // 2, w // 4 : w // 2] = 1
        capped = BlurBackground(float(max(h, w))).frame(0, h, w, src, alpha)
        assert np.array_equal(BlurBackground(1000).frame(0, h, w, src, alpha), capped)
    with pytest.raises(ParameterError):
        BlurBackground(float("inf"))


# ---------------------------------------------------------------- item 10: zero-frame videos


@pytest.fixture(scope="module")
def zero_frame_videos(tmp_path_factory) -> list[Path]:
    """A video stream with no frame (and a second of audio), in three containers."""
    folder = tmp_path_factory.mktemp("zero")
    paths = []
    for suffix in (".mkv", ".avi", ".webm"):
        path = folder / f"zero{suffix}"
        write_clip(
            path, 0, (64, 48), 24, codec="libvpx-vp9" if suffix == ".webm" else "libx264", audio_tracks=1, seconds=0.02
        )
        with av.open(str(path)) as check:
            assert check.streams.video and check.streams.video[0].codec_context.width == 64
        paths.append(path)
    return paths


def test_zero_frame_video_as_input_and_as_background(zero_frame_videos, clip, tmp_path, capsys):
    for zero in zero_frame_videos:
        code, lines = cli(["video", zero, "-c", tmp_path / "o.mp4"], capsys)
        assert (code, lines) == (2, [f"mattekit: error: {zero}: video stream holds no frame (0 frames)"])
        code, lines = cli(["video", clip, "-c", tmp_path / "o.mp4", "-b", zero], capsys)
        assert (code, lines) == (2, [f"mattekit: error: {zero}: video stream holds no frame (0 frames)"])
        with pytest.raises(InputError, match="holds no frame"):
            mattekit.convert_video(zero, output_alpha=tmp_path / "a.mp4", progress=False)
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------- item 15: files lying about their type

LIARS = {
    # name: (bytes, problem for `mattekit image`, problem for `mattekit video`)
    "drawing.svg": (
        SVG,
        "not an image file: it holds an SVG drawing (vector graphics)",
        "is an SVG drawing (vector graphics), which has no video decoder; give a video or a picture",
    ),
    "drawing.png": (
        SVG,
        "not an image file: it holds an SVG drawing (vector graphics) despite its .png name",
        "is an SVG drawing (vector graphics), which has no video decoder; give a video or a picture",
    ),
    "paper.png": (
        b"%PDF-1.4\n" + b"x" * 64,
        "not an image file: it holds a PDF document despite its .png name",
        "not a readable video (it holds a PDF document)",
    ),
    "notes.mp4": (b"just some notes\n" * 4, "not an image file: it holds text", "not a readable video (it holds text)"),
    "empty.png": (b"", "file is empty (0 bytes)", "file is empty (0 bytes)"),
    "cut.png": (
        png_bytes(64, 48)[:30],
        "cannot decode image: it starts like a PNG image but is damaged or cut short",
        None,
    ),
    "huge.png": (
        png_bytes(100_000, 100_000),
        "image too large: its header declares 10,000 megapixels, over the 179-megapixel limit (a decompression bomb?)",
        "video stream has no frame size (damaged file?)",
    ),
}


@pytest.mark.parametrize("name", sorted(LIARS))
def test_lying_files_get_one_true_line(name, clip, tmp_path, capsys):
    data, image_problem, video_problem = LIARS[name]
    liar = tmp_path / "in" / name
    liar.parent.mkdir()
    liar.write_bytes(data)
    before = folder_state(tmp_path)
    code, lines = cli(["image", liar, "-o", tmp_path / "out", "-q"], capsys)
    assert code == 2 and len(lines) == 1 and lines[0].startswith(f"mattekit: error: {liar}: {image_problem}"), lines
    if video_problem:
        code, lines = cli(["video", liar, "-c", tmp_path / "o.mp4"], capsys)
        assert (code, lines) == (2, [f"mattekit: error: {liar}: {video_problem}"])
    assert folder_state(tmp_path) == before


def test_header_over_half_the_bomb_limit_prints_no_warning(tmp_path):
    """Pillow warns on stderr for 89-179 megapixels; the one line stays one line."""
    lie = tmp_path / "big.png"
    lie.write_bytes(png_bytes(12_000, 12_000))
    proc = run(["image", lie, "-o", tmp_path / "out", "-q"])
    assert_one_line(
        proc, 2, f"mattekit: error: {lie}: cannot decode image (image file is truncated (0 bytes not processed))"
    )


def test_video_bytes_named_png_and_png_bytes_named_mp4(clip, rvm_session, tmp_path, capsys):
    movie = tmp_path / "photo.png"
    shutil.copy(clip, movie)
    with pytest.raises(FormatError) as caught:
        mattekit.matte_image(movie)
    assert caught.value.problem == "not an image file: it holds MP4/QuickTime video despite its .png name"
    # as a background, where pictures and videos are both welcome, the content decides
    result = mattekit.convert_video(
        clip, output_composition=tmp_path / "o.mp4", background=movie, model=rvm_session, progress=False
    )
    assert result.frames == 6
    picture = tmp_path / "clip.mp4"
    picture.write_bytes(png_bytes(100_000, 100_000))
    code, lines = cli(["video", picture, "-c", tmp_path / "o2.mp4"], capsys)
    assert (code, lines) == (2, [f"mattekit: error: {picture}: video stream has no frame size (damaged file?)"])


def test_format_errors_are_typed_for_the_server(tmp_path):
    from mattekit.io.image import read_image
    from mattekit.io.video_reader import open_source

    svg = tmp_path / "a.svg"
    svg.write_bytes(SVG)
    for reader in (read_image, open_source):
        with pytest.raises(FormatError):
            reader(svg)
    cut = tmp_path / "cut.png"
    cut.write_bytes(png_bytes(64, 48)[:30])
    with pytest.raises(InputError) as caught:
        read_image(cut)
    assert not isinstance(caught.value, FormatError)  # damaged, not a foreign type: 422, not 415


# ---------------------------------------------------------------- item 20: outputs never collide with inputs


@pytest.fixture
def imgdir(tmp_path) -> Path:
    folder = tmp_path / "imgdir"
    folder.mkdir()
    for name in ("a.png", "b.jpg"):
        Image.fromarray(np.full((24, 32, 3), 120, np.uint8)).save(folder / name)
    return folder


def test_output_folder_equal_to_input_folder_is_refused(imgdir, tmp_path, capsys):
    before = folder_state(tmp_path)
    for args in (
        ["image", imgdir, "-o", imgdir],
        ["image", imgdir, "-o", imgdir / ".." / "imgdir"],
        ["video", imgdir, "-o", imgdir],
    ):
        code, lines = cli(args, capsys)
        assert code == 3 and lines == [
            f"mattekit: error: {args[-1]}: the output folder is the input folder; the "
            f"results would mix with the files they come from (choose another output "
            f"folder)"
        ], lines
    assert folder_state(tmp_path) == before


def test_an_output_that_would_replace_an_input_is_refused(imgdir, rvm_session, tmp_path, capsys):
    """Checked before "complete output exists": the input is never reported as a finished output."""
    Image.fromarray(np.full((24, 32), 200, np.uint8)).save(imgdir / "b_alpha.png")
    before = folder_state(imgdir)
    for extra in ([], ["--overwrite"]):
        code, lines = cli(["image", imgdir / "a.png", "-o", imgdir, "-q", *extra], capsys)
        assert code == 3 and lines == [
            f"mattekit: error: {imgdir / 'a.png'}: is the same as the input "
            f"{imgdir / 'a.png'}; choose another output folder"
        ]
    result = mattekit.matte_folder([imgdir / "b.jpg", imgdir / "b_alpha.png"], imgdir, alpha=True, model=rvm_session)
    assert [(o.source.name, o.status, o.reason) for o in result.outcomes] == [
        ("b.jpg", "failed", f"is the same as the input {imgdir / 'b_alpha.png'}; choose another output folder"),
        ("b_alpha.png", "failed", f"is the same as the input {imgdir / 'b_alpha.png'}; choose another output folder"),
    ]
    assert folder_state(imgdir) == before


# ---------------------------------------------------------------- item 11: disk full


@contextlib.contextmanager
def small_tmpfs(folder: Path, size: str):
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a small tmpfs needs root")
    folder.mkdir()
    if (
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)], capture_output=True
        ).returncode
        != 0
    ):
        pytest.skip("cannot mount a tmpfs here (container without CAP_SYS_ADMIN?)")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


@pytest.fixture(scope="module")
def noisy_clip(tmp_path_factory) -> Path:
    """Random pixels encode to ~7 KB a frame: 24 frames need more than the 64 KB disk below."""
    return make_clip(tmp_path_factory.mktemp("noisy") / "noisy.mp4", frames=24, size=(96, 64), noise=True)


@pytest.mark.parametrize(("output_type", "name"), [("video", "fg.mp4"), ("png_sequence", "fg"), ("webm", "fg.webm")])
@pytest.mark.slow
def test_disk_full_tmpfs(output_type, name, noisy_clip, tmp_path):
    with small_tmpfs(tmp_path / "disk", "64k") as disk:
        proc = run(["video", noisy_clip, "-f", disk / name, "--output-type", output_type, "-q"])
        assert_one_line(
            proc,
            3,
            f"mattekit: error: {disk / name}: disk full while writing (No space left on "
            f"device); the partial output was removed",
        )
        assert list(disk.iterdir()) == []


def test_disk_full_image_output(tmp_path):
    with small_tmpfs(tmp_path / "disk", "16k") as disk:
        from mattekit.io.image import write_image

        with pytest.raises(OutputError) as caught:
            write_image(disk / "big.png", np.random.default_rng(0).integers(0, 255, (200, 200, 3), dtype=np.uint8))
        assert str(caught.value) == (
            f"{disk / 'big.png'}: disk full while writing (No space left on device); the partial output was removed"
        )
        assert list(disk.iterdir()) == []


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RLIMIT_FSIZE semantics are Linux's")
@pytest.mark.parametrize(("output_type", "name"), [("video", "fg.mp4"), ("prores", "fg.mov")])
@pytest.mark.slow
def test_file_size_limit_efbig(output_type, name, noisy_clip, tmp_path):
    """Works without root: the kernel refuses to grow a file past RLIMIT_FSIZE (EFBIG); Python
    ignores SIGXFSZ, so the write fails instead of killing the process."""
    import resource

    def limit():
        resource.setrlimit(resource.RLIMIT_FSIZE, (40_000, 40_000))

    out = tmp_path / "out"
    proc = run(["video", noisy_clip, "-f", out / name, "--output-type", output_type, "-q"], preexec_fn=limit)
    assert_one_line(
        proc,
        3,
        f"mattekit: error: {out / name}: file too large for this file system or size limit "
        f"(File too large); the partial output was removed",
    )
    assert list(out.iterdir()) == []


# ---------------------------------------------------------------- item 16: unwritable model cache


@pytest.mark.slow
def test_model_home_that_cannot_be_created(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    for home, reason in ((blocker, "Not a directory"), (Path("/proc/mattekit-home"), "No such file or directory")):
        proc = run(["models", "fetch"], env={**os.environ, "MATTEKIT_HOME": str(home)})
        assert_one_line(
            proc,
            4,
            f"mattekit: error: {home / 'models'}: cannot create the model cache folder "
            f"({reason}); set MATTEKIT_HOME to a writable folder",
        )


@pytest.mark.slow
def test_read_only_model_home(tmp_path):
    from mattekit.models.fetch import cached_path

    model = cached_path("rvm-mobilenetv3")
    with small_tmpfs(tmp_path / "home", "32m") as home:
        (home / "models").mkdir()
        subprocess.run(["mount", "-o", "remount,ro", str(home)], check=True)
        env = {**os.environ, "MATTEKIT_HOME": str(home)}
        proc = run(["models", "fetch"], env=env)
        assert proc.returncode == 4 and "Traceback" not in proc.stderr
        assert (
            proc.stderr.startswith(
                f"mattekit: error: {home / 'models'}: cannot write the model cache (Read-only "
                f"file system); set MATTEKIT_HOME to a writable folder, or place the file by "
                f"hand:"
            )
            and len(proc.stderr.strip().splitlines()) == 1
        )
        subprocess.run(["mount", "-o", "remount,rw", str(home)], check=True)
        shutil.copy(model, home / "models" / model.name)
        subprocess.run(["mount", "-o", "remount,ro", str(home)], check=True)
        proc = run(["models", "fetch"], env=env)  # a verified model in a read-only cache is used as it is
        assert proc.returncode == 0 and "already cached" in proc.stdout, proc.stderr


# ---------------------------------------------------------------- item 23: damaged packets


def damage(src: Path, dst: Path, packets: list[int], count: int = 200, by_time: bool = False) -> None:
    """Flip ``count`` bytes from the start of each video packet numbered in ``packets`` (decode
    order, or presentation order with ``by_time``): its NAL length prefix and slice header, so
    the decoder rejects it."""
    with av.open(str(src)) as container:
        found = [p for p in container.demux(video=0) if p.size]
    if by_time:
        found.sort(key=lambda p: p.pts)
    data = bytearray(src.read_bytes())
    for k in packets:
        for i in range(found[k].pos, found[k].pos + count):
            data[i] ^= 0xFF
    dst.write_bytes(data)


def audio_end(path: Path) -> float:
    """End of the last audio packet, seconds."""
    with av.open(str(path)) as container:
        audio = container.streams.audio[0]
        return max(float((p.pts + p.duration) * audio.time_base) for p in container.demux(audio) if p.size)


def stream_ends(path: Path, rate: int = 24) -> tuple[int, float, float]:
    """(video frames, end of the last video frame, end of the last audio packet) in seconds."""
    with av.open(str(path)) as container:
        video = container.streams.video[0]
        frames = list(container.decode(video))
        video_end = float(frames[-1].pts * video.time_base) + 1 / rate
    return len(frames), video_end, audio_end(path)


@pytest.mark.slow
def test_damaged_packets_are_skipped_and_reported(rvm_session, tmp_path, capsys):
    src = make_clip(tmp_path / "clean.mp4", frames=24, size=(96, 64), noise=True)
    bad = tmp_path / "damaged.mp4"
    damage(src, bad, [12])  # 200 bytes in the middle third of the file
    assert len(src.read_bytes()) / 3 < first_difference(src, bad) < 2 * len(src.read_bytes()) / 3
    with av.open(str(bad)) as container:  # what decoding did before: stop at the first bad packet
        decoded = 0
        with pytest.raises(av.error.InvalidDataError):  # noqa: PT012 - the loop is the one action: count the frames before the error
            for _ in container.decode(video=0):
                decoded += 1
    assert decoded < 12
    result = mattekit.convert_video(
        bad, output_alpha=tmp_path / "a.mp4", output_composition=tmp_path / "c.mp4", model=rvm_session, progress=False
    )
    assert result.frames == 23
    assert result.warning == (
        f"{bad}: 1 of 24 frames could not be decoded (damaged data: Invalid data found when "
        f"processing input) and were left out; the outputs hold the 23 decoded frames"
    )
    frames, video_end, audio_stop = stream_ends(tmp_path / "c.mp4")
    assert frames == 23 and video_end == pytest.approx(stream_ends(src)[1], abs=1e-6)  # the gap keeps its time
    assert abs(audio_stop - video_end) <= 1024 / 48000 + 1e-6  # one AAC packet
    code, lines = cli(["video", bad, "-a", tmp_path / "cli.mp4", "-q"], capsys)
    assert code == 0 and lines == [f"mattekit: warning: {result.warning}"]
    code, lines = cli(["video", bad, "-o", tmp_path / "batch", "--outputs", "alpha", "-q"], capsys)  # batch mode
    assert code == 0 and lines == [f"mattekit: warning: {result.warning}"]


def first_difference(a: Path, b: Path) -> int:
    x, y = np.frombuffer(a.read_bytes(), np.uint8), np.frombuffer(b.read_bytes(), np.uint8)
    return int(np.argmax(x != y))


def test_frames_lost_at_the_end_cut_the_audio_there(rvm_session, tmp_path):
    src = make_clip(tmp_path / "clean.mp4", frames=24, size=(96, 64), noise=True)
    bad = tmp_path / "tail.mp4"
    damage(src, bad, [21, 22, 23], count=8, by_time=True)
    result = mattekit.convert_video(bad, output_composition=tmp_path / "c.mp4", model=rvm_session, progress=False)
    frames, video_end, audio_stop = stream_ends(tmp_path / "c.mp4")
    assert frames == result.frames <= 21 and video_end <= 21 / 24 + 1e-6
    assert f"{24 - frames} of 24 frames could not be decoded" in result.warning
    assert abs(audio_stop - video_end) <= 1024 / 48000 + 1e-6  # the source's audio runs on to 1.0 s
    assert audio_end(bad) >= 1.0


def test_video_cut_short_keeps_audio_as_long_as_video(rvm_session, tmp_path):
    src = make_clip(tmp_path / "fast.mp4", frames=24, size=(96, 64), container_options={"movflags": "faststart"})
    data = src.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) * 6 // 10])
    result = mattekit.convert_video(cut, output_composition=tmp_path / "c.mp4", model=rvm_session, progress=False)
    assert 0 < result.frames < 24 and str(result.frames) in result.warning
    frames, video_end, audio_stop = stream_ends(tmp_path / "c.mp4")
    assert frames == result.frames and video_end < 1.0
    assert audio_stop <= video_end + 1024 / 48000 + 1e-6  # never past the video (it may end sooner: cut too)


@pytest.mark.parametrize(
    ("name", "codec"),
    [("v.mkv", "libx264"), ("v.webm", "libvpx-vp9"), ("v.avi", "mpeg4"), ("v.mov", "libx264"), ("v.ts", "libx264")],
)
def test_damage_in_any_container_is_reported(name, codec, tmp_path):
    """Whether the decoder rejects the packet (skipped, counted) or the demuxer stops at the damage
    (Matroska: the rest of the cluster is lost), the loss is never silent."""
    from mattekit.io.video_reader import VideoFileReader

    src = make_clip(tmp_path / name, frames=24, audio=False, noise=True, codec=codec)
    bad = tmp_path / f"bad-{name}"
    damage(src, bad, [12])
    with VideoFileReader(bad) as reader:
        frames = sum(1 for _ in reader)
    assert 12 <= frames < 24
    assert reader.warning.endswith(f"the outputs hold the {frames} decoded frames")
    damage(src, bad, [0])  # the first frame, on which the later ones depend
    try:
        with VideoFileReader(bad) as reader:
            frames = sum(1 for _ in reader)
    except InputError as exc:  # either refused with one of these reasons...
        problem = exc.problem
    else:  # ...or decoded in part (mpeg4 in avi restarts at the next frame, and says so)
        problem = None
        assert frames < 24 and reader.warning
    if problem is not None:
        assert problem.startswith(
            (
                "cannot decode any frame",
                "no frame could be read although the file declares about 24",
                "video stream has no frame size",
            )
        ), problem


def test_damaged_background_video_holds_the_frame_before_the_damage(rvm_session, tmp_path):
    src = make_clip(tmp_path / "bg.mp4", frames=24, size=(96, 64), noise=True)
    bad = tmp_path / "bg-damaged.mp4"
    damage(src, bad, [12])
    out = tmp_path / "c.mp4"
    result = mattekit.convert_video(
        make_clip(tmp_path / "in.mp4", frames=24, audio=False),
        output_composition=out,
        background=bad,
        model=rvm_session,
        progress=False,
    )
    assert result.frames == 24 and result.warning is None
    with av.open(str(out)) as container:
        assert len(list(container.decode(video=0))) == 24


def test_math_of_the_hint_is_exact():
    """The ratio a message suggests always works (4 significant digits, rounded up)."""
    for side in (1, 3, 7, 10, 33, 48, 100, 180, 333, 1000, 4321):
        low = params.min_downsample_ratio(side, side)
        assert params.network_side(low, side) >= 1 and low <= 1
        assert low - 1 / side < 10 ** (math.floor(math.log10(1 / side)) - 2)
