"""Bad input: one clear line on stderr naming the file, a non-zero exit, nothing half-written."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import av
import pytest

from mattekit.cli.main import main


def run_cli(args, capsys):
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.err.strip().splitlines()


def assert_one_line_error(code, lines, name, problem):
    assert code != 0
    assert len(lines) == 1, lines
    assert lines[0].startswith("mattekit: error: ")
    assert name in lines[0] and problem in lines[0], lines[0]


def no_partial_outputs(folder: Path):
    return [p.name for p in folder.iterdir() if ".partial-" in p.name]


def test_missing_file(tmp_path, capsys):
    code, lines = run_cli(["video", tmp_path / "nope.mp4", "-c", tmp_path / "out.mp4"], capsys)
    assert_one_line_error(code, lines, "nope.mp4", "file not found")


def test_not_a_video(tmp_path, capsys):
    fake = tmp_path / "notes.mp4"
    fake.write_text("this is a text file, not a video\n")
    code, lines = run_cli(["video", fake, "-c", tmp_path / "out.mp4"], capsys)
    assert_one_line_error(code, lines, "notes.mp4", "not a readable video")
    assert not (tmp_path / "out.mp4").exists() and no_partial_outputs(tmp_path) == []


def test_zero_byte_file(tmp_path, capsys):
    empty = tmp_path / "empty.mp4"
    empty.touch()
    code, lines = run_cli(["video", empty, "-c", tmp_path / "out.mp4"], capsys)
    assert_one_line_error(code, lines, "empty.mp4", "empty")


def test_not_an_image(tmp_path, capsys):
    fake = tmp_path / "photo.png"
    fake.write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 10)
    code, lines = run_cli(["image", fake, "-o", tmp_path / "out"], capsys)
    assert code != 0
    assert any("photo.png" in line and "image" in line for line in lines), lines


def test_truncated_video_moov_at_end(shared_data, tmp_path, capsys):
    """A file cut at half: its index (moov) was at the end, so nothing can be decoded: an error."""
    src = shared_data / "people" / "test-sample1.mp4"
    cut = tmp_path / "cut.mp4"
    data = src.read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    out = tmp_path / "out.mp4"
    code, lines = run_cli(["video", cut, "-c", out], capsys)
    assert_one_line_error(code, lines, "cut.mp4", "not a readable video")
    assert not out.exists() and no_partial_outputs(tmp_path) == []


@pytest.mark.slow
def test_truncated_video_faststart_mattes_what_decodes(shared_data, fake_session, tmp_path):
    """With the index at the start, the first half decodes: it is matted and the shortfall reported."""
    from mattekit import convert_video

    src = shared_data / "people" / "test-sample1.mp4"
    faststart = tmp_path / "fast.mp4"
    with av.open(str(src)) as inp, av.open(str(faststart), "w", options={"movflags": "faststart"}) as out:
        streams = {s.index: out.add_stream_from_template(s) for s in inp.streams}
        for packet in inp.demux():
            if packet.dts is None:
                continue
            packet.stream = streams[packet.stream.index]
            out.mux(packet)
    cut = tmp_path / "cut.mp4"
    data = faststart.read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    result = convert_video(
        cut, output_alpha=tmp_path / "a.mp4", progress=False, model=fake_session, downsample_ratio=0.25
    )
    assert 0 < result.frames < 79
    assert result.warning and "cut.mp4" in result.warning and str(result.frames) in result.warning
    with av.open(str(tmp_path / "a.mp4")) as container:
        assert len(list(container.decode(video=0))) == result.frames


def test_output_equal_to_input(shared_data, tmp_path, capsys):
    src = tmp_path / "in.mp4"
    shutil.copy(shared_data / "people" / "test-sample1.mp4", src)
    before = src.read_bytes()
    code, lines = run_cli(["video", src, "-c", src, "--overwrite"], capsys)
    assert_one_line_error(code, lines, "in.mp4", "same as the input")
    assert src.read_bytes() == before


def test_existing_output_is_refused_without_overwrite(shared_data, tmp_path, capsys):
    out = tmp_path / "out.mp4"
    out.write_bytes(b"earlier result")
    code, lines = run_cli(["video", shared_data / "people" / "test-sample1.mp4", "-c", out], capsys)
    assert_one_line_error(code, lines, "out.mp4", "already exists")
    assert out.read_bytes() == b"earlier result"


def test_unwritable_output_folder(shared_data, tmp_path, capsys):
    if os.geteuid() == 0:
        folder = Path("/proc")  # root may write anywhere else; /proc takes no new files
    else:
        folder = tmp_path / "ro"
        folder.mkdir()
        folder.chmod(0o555)
    code, lines = run_cli(["video", shared_data / "people" / "test-sample1.mp4", "-c", folder / "out.mp4"], capsys)
    assert_one_line_error(code, lines, str(folder), "not writable")


def test_output_inside_a_file(shared_data, tmp_path, capsys):
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    code, lines = run_cli(["video", shared_data / "people" / "test-sample1.mp4", "-c", blocker / "out.mp4"], capsys)
    assert_one_line_error(code, lines, "file.txt", "not a folder")


def test_no_output_requested(shared_data, capsys):
    code, lines = run_cli(["video", shared_data / "people" / "test-sample1.mp4"], capsys)
    assert_one_line_error(code, lines, "test-sample1.mp4", "no output requested")


def test_error_in_a_real_process_has_no_traceback(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "mattekit", "video", str(tmp_path / "missing.mov"), "-c", str(tmp_path / "o.mp4")],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [f"mattekit: error: {tmp_path / 'missing.mov'}: file not found"]
