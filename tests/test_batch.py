"""Folders of videos and images: structure kept, finished files skipped, failures isolated,
a summary with reasons, non-zero exit on failure, clean stop on Ctrl-C / cancel."""

from __future__ import annotations

import threading

import av
import numpy as np
import pytest
from PIL import Image

from mattekit.batch import convert_folder, matte_folder
from mattekit.cli.main import main
from media import write_clip


@pytest.fixture
def video_tree(tmp_path):
    root = tmp_path / "in"
    write_clip(root / "a.mp4")
    write_clip(root / "sub" / "b.mov")
    (root / "broken.mp4").write_bytes(b"this is not a video")
    (root / "notes.txt").write_text("ignored")
    return root


def test_video_folder_recursive_skip_and_failure(video_tree, fake_session, tmp_path):
    out = tmp_path / "out"
    result = convert_folder(video_tree, out, recursive=True, outputs=("composition", "alpha"), model=fake_session)
    status = {o.source.name: o.status for o in result.outcomes}
    assert status == {"a.mp4": "done", "b.mov": "done", "broken.mp4": "failed"}
    assert result.failed[0].label == "broken.mp4" and "not a readable video" in result.failed[0].reason
    for rel in ("a_composition.mp4", "a_alpha.mp4", "sub/b_composition.mp4", "sub/b_alpha.mp4"):
        with av.open(str(out / rel)) as c:
            assert len(list(c.decode(video=0))) == 4
    assert not result.ok
    # second run: finished files are skipped, the broken one fails again
    again = convert_folder(video_tree, out, recursive=True, outputs=("composition", "alpha"), model=fake_session)
    assert [(o.source.name, o.status) for o in again.outcomes] == [
        ("a.mp4", "skipped"),
        ("broken.mp4", "failed"),
        ("b.mov", "skipped"),
    ]
    # without --recursive the sub-folder is left out
    flat = convert_folder(video_tree, tmp_path / "flat", model=fake_session)
    assert sorted(o.source.name for o in flat.outcomes) == ["a.mp4", "broken.mp4"]


def test_cancel_mid_file_leaves_nothing_and_resumes(video_tree, fake_session, tmp_path):
    out = tmp_path / "out"
    cancel = threading.Event()
    seen = []

    def progress(done, total):
        seen.append(done)
        if len(seen) == 2:  # second frame of the first file
            cancel.set()

    result = convert_folder(video_tree, out, model=fake_session, cancel=cancel, progress=progress)
    assert result.cancelled and [o.status for o in result.outcomes] == ["cancelled"]
    assert not out.exists() or [p for p in out.rglob("*") if p.is_file()] == []
    resumed = convert_folder(video_tree, out, model=fake_session)
    assert [o.status for o in resumed.outcomes] == ["done", "failed"]


def test_ctrl_c_stops_the_batch_cleanly(video_tree, fake_session, tmp_path):
    out = tmp_path / "out"
    calls = []

    def progress(done, total):
        calls.append(done)
        if len(calls) == 6:  # second file, second frame
            raise KeyboardInterrupt

    result = convert_folder(video_tree, out, recursive=True, model=fake_session, progress=progress)
    assert [o.status for o in result.outcomes] == ["done", "failed", "cancelled"]
    files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert files == ["a_composition.mp4"]  # nothing half-written, not even a hidden partial


def test_cli_video_batch_summary_and_exit_code(video_tree, tmp_path, capsys):
    out = tmp_path / "out"
    code = main(["video", str(video_tree), "-o", str(out), "--recursive", "--output-type", "webm", "-q"])
    captured = capsys.readouterr()
    assert code == 1
    assert "broken.mp4" in captured.out and "failed" in captured.out and "not a readable video" in captured.out
    assert "2 done, 0 skipped, 1 failed" in captured.out
    assert (out / "a_composition.webm").is_file() and (out / "sub" / "b_composition.webm").is_file()
    (video_tree / "broken.mp4").unlink()
    assert main(["video", str(video_tree), "-o", str(out), "-r", "--output-type", "webm"]) == 0
    assert "0 done, 2 skipped, 0 failed" in capsys.readouterr().out


def test_stale_partial_of_a_killed_run_is_removed(video_tree, fake_session, tmp_path):
    import subprocess
    import sys

    out = tmp_path / "out"
    out.mkdir()
    killed = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = out / f".a_composition.partial-{int(killed.stdout)}-0123abcd.mp4"
    stale.write_bytes(b"half a file")
    convert_folder(video_tree / "a.mp4", out, model=fake_session)
    assert not stale.exists() and (out / "a_composition.mp4").is_file()


@pytest.fixture
def image_tree(tmp_path):
    root = tmp_path / "photos"
    (root / "trip").mkdir(parents=True)
    for name in ("one.png", "trip/two.jpg"):
        img = np.full((48, 64, 3), 50, np.uint8)
        img[10:44, 20:44] = 200
        Image.fromarray(img).save(root / name)
    (root / "trip" / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    return root


def test_image_folder_recursive_resume(image_tree, fake_session, tmp_path):
    out = tmp_path / "cut"
    result = matte_folder(image_tree, out, recursive=True, alpha=True, model=fake_session)
    status = {o.source.name: o.status for o in result.outcomes}
    assert status == {"one.png": "done", "two.jpg": "done", "bad.png": "failed"}
    rgba = np.asarray(Image.open(out / "trip" / "two.png"))
    assert rgba.shape == (48, 64, 4)
    assert (out / "one_alpha.png").is_file() and (out / "trip" / "two_alpha.png").is_file()
    again = matte_folder(image_tree, out, recursive=True, alpha=True, model=fake_session)
    assert sorted(o.status for o in again.outcomes) == ["failed", "skipped", "skipped"]
    # asking for one more output makes the files incomplete: they are redone
    more = matte_folder(image_tree, out, recursive=True, alpha=True, background="blur:4", model=fake_session)
    assert sorted(o.status for o in more.outcomes) == ["done", "done", "failed"]
    assert (out / "trip" / "two_composition.jpg").is_file()


def test_cli_image_folder(image_tree, tmp_path, capsys):
    out = tmp_path / "cut"
    code = main(["image", str(image_tree), "-o", str(out), "-r", "-q"])
    captured = capsys.readouterr()
    assert code == 1 and "bad.png" in captured.out and "2 done, 0 skipped, 1 failed" in captured.out
    assert main(["image", str(image_tree / "one.png"), "-o", str(out)]) == 0
    assert "0 done, 1 skipped" in capsys.readouterr().out


def test_same_stem_inputs_get_distinct_outputs(tmp_path, fake_session):
    root = tmp_path / "in"
    write_clip(root / "clip.mp4", frames=2)
    write_clip(root / "clip.mov", frames=2)
    result = convert_folder(root, tmp_path / "out", outputs=("alpha",), model=fake_session)
    assert [o.status for o in result.outcomes] == ["done", "done"]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["clip_mov_alpha.mp4", "clip_mp4_alpha.mp4"]
