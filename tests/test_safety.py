"""Nothing lost: an output never removes or replaces what mattekit did not write as that output,
every input of a job is protected, SIGTERM is handled like Ctrl-C, stale partials of dead runs
are cleaned and those of live runs kept (issue 9, "Data loss").

Each test hashes the folders involved before and after, so anything created, changed or removed
outside the declared outputs fails it."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from mattekit.cli.main import main
from mattekit.errors import OutputError
from mattekit.io import atomic
from mattekit.models import new_session
from media import write_clip


def tree(root: Path) -> dict[str, str]:
    """Every entry under ``root`` (hidden ones too): file -> sha256, folder -> "dir", link -> target."""
    found = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            key = p.relative_to(root).as_posix()
            if p.is_symlink():
                found[key] = "-> " + os.readlink(p)
            elif p.is_dir():
                found[key] = "dir"
            else:
                found[key] = hashlib.sha256(p.read_bytes()).hexdigest()
    return found


def cli(args, capsys) -> tuple[int, list[str]]:
    code = main([str(a) for a in args])
    return code, capsys.readouterr().err.strip().splitlines()


def refused(code: int, lines: list[str], *words: str) -> None:
    assert code == 3, (code, lines)
    assert len(lines) == 1 and lines[0].startswith("mattekit: error: "), lines
    assert all(w in lines[0] for w in words), lines[0]


@pytest.fixture
def proj(tmp_path):
    """A user's project folder: the input video, notes, a sub-folder."""
    root = tmp_path / "proj"
    write_clip(root / "input.mp4")
    (root / "notes.txt").write_text("my notes")
    (root / "shots").mkdir()
    (root / "shots" / "take1.txt").write_text("keep me")
    return root


# ---------------------------------------------------------------- 1. folder outputs never wipe a folder


def test_png_sequence_into_the_input_folder_or_cwd_is_refused(proj, tmp_path, capsys, monkeypatch):
    before = tree(tmp_path)
    png = ["--output-type", "png_sequence", "--overwrite", "-q"]
    refused(*cli(["video", proj / "input.mp4", "-c", proj, *png], capsys), "holds the input")
    monkeypatch.chdir(proj)
    for target in (proj, ".", "..", "/"):
        refused(*cli(["video", "input.mp4", "-c", target, *png], capsys), "holds the input")
    other = tmp_path / "elsewhere"
    write_clip(other / "in.mp4")
    before = tree(tmp_path)
    for target in (proj, ".", "shots/.."):  # the input lies elsewhere: still the current folder
        refused(*cli(["video", other / "in.mp4", "-c", target, *png], capsys), "current folder")
    assert tree(tmp_path) == before


def test_frame_folder_holding_anything_else_is_never_replaced(proj, tmp_path, capsys, rvm_session):
    from mattekit import convert_video

    src = proj / "input.mp4"
    frames = tmp_path / "frames"
    convert_video(src, output_type="png_sequence", output_alpha=frames, model=rvm_session, progress=False)
    names = sorted(p.name for p in frames.iterdir())
    assert names == [".mattekit-output", "00000.png", "00001.png", "00002.png", "00003.png"]
    # a re-run may replace a folder that holds only its own frames...
    first = tree(frames)
    convert_video(
        src, output_type="png_sequence", output_alpha=frames, model=rvm_session, progress=False, overwrite=True
    )
    assert tree(frames) == first
    # ...but not once the user put something of their own in it, even with --overwrite
    (frames / "mine.txt").write_text("mine")
    (frames / "sub").mkdir()
    theirs = tmp_path / "theirs"  # frames made by another tool (no manifest): foreign too
    theirs.mkdir()
    (theirs / "00000.png").write_bytes(b"their frame")
    (tmp_path / "afile").write_text("x")
    (tmp_path / "link").symlink_to(frames)
    before = tree(tmp_path)
    png = ["--output-type", "png_sequence", "--overwrite", "-q"]
    refused(*cli(["video", src, "-a", frames, *png], capsys), "2 item(s) mattekit did not write", "mine.txt")
    refused(*cli(["video", src, "-a", theirs, *png], capsys), "did not write", "00000.png")
    refused(*cli(["video", src, "-a", tmp_path / "afile", *png], capsys), "is a file")
    refused(*cli(["video", src, "-a", tmp_path / "link", *png], capsys), "symbolic link")
    assert tree(tmp_path) == before


def test_empty_folder_is_used_and_nested_outputs_are_refused(proj, tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    src = proj / "input.mp4"
    assert main(["video", str(src), "--output-type", "png_sequence", "-c", str(empty), "-q"]) == 0
    assert len(list(empty.glob("*.png"))) == 4
    before = tree(tmp_path)
    refused(
        *cli(
            ["video", src, "--output-type", "png_sequence", "-c", tmp_path / "o", "-a", tmp_path / "o" / "alpha"],
            capsys,
        ),
        "inside another",
    )
    assert tree(tmp_path) == before


def test_file_output_never_replaces_a_folder(proj, tmp_path, capsys):
    folder = tmp_path / "out.mp4"
    (folder / "inner").mkdir(parents=True)
    before = tree(tmp_path)
    refused(*cli(["video", proj / "input.mp4", "-c", folder, "--overwrite"], capsys), "is a folder")
    assert tree(tmp_path) == before


def test_commit_refuses_a_folder_filled_after_the_check(tmp_path):
    final = tmp_path / "frames"
    final.mkdir()
    temp = atomic.start_temp(final)
    temp.mkdir()
    (temp / "00000.png").write_bytes(b"new")
    atomic.seal_folder(temp)
    (final / "user.txt").write_text("arrived meanwhile")  # between check_output and commit
    with pytest.raises(OutputError, match="did not write"):
        atomic.commit(temp, final)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["frames"]
    assert [p.name for p in final.iterdir()] == ["user.txt"]


def test_temporaries_of_long_names_fit_and_stale_ones_are_still_found(tmp_path):
    limit = atomic.name_max(tmp_path)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    for final in (
        tmp_path / ("\u00e9" * ((limit - 4) // 2) + ".mp4"),  # 2-byte characters, 254 bytes
        tmp_path / ("x" * (limit - 4) + ".mov"),  # 255 bytes: the limit itself
        tmp_path / ("\u00e9" * ((limit - 1) // 2)),
    ):  # a frame folder, no suffix
        temp = atomic.temp_sibling(final)
        assert len(os.fsencode(temp.name)) <= limit and temp.name.endswith(final.suffix)
        assert temp.name.startswith(".") and ".partial-" in temp.name
        temp.write_bytes(b"this run")  # the file system accepts the name
        stale = temp.with_name(temp.name.replace(f".partial-{os.getpid()}-", f".partial-{dead.pid}-"))
        stale.write_bytes(b"a dead run's leftover")
        atomic.remove_partials(final)
        assert not stale.exists() and temp.read_bytes() == b"this run"
        atomic.commit(temp, final)
        assert final.read_bytes() == b"this run"
    frames = tmp_path / ("\u00e9" * ((limit - 1) // 2))
    frames.unlink()
    for run in range(2):  # the second run replaces the folder output through a hidden .replaced- name
        temp = atomic.start_temp(frames)
        temp.mkdir()
        (temp / "00000.png").write_bytes(b"run %d" % run)
        atomic.seal_folder(temp)
        atomic.commit(temp, frames)
    assert (frames / "00000.png").read_bytes() == b"run 1"
    names = [p.name for p in tmp_path.iterdir()]
    assert len(names) == 3 and not [n for n in names if n.startswith(".")], names  # no temporary left


def test_output_name_longer_than_the_file_system_allows_is_refused(proj, tmp_path, capsys):
    limit = atomic.name_max(tmp_path)
    before = tree(tmp_path)
    name = "x" * (limit - 3) + ".mp4"
    refused(
        *cli(["video", proj / "input.mp4", "-c", tmp_path / name, "-q"], capsys),
        f"{name}: file name too long ({limit + 1} bytes; this file system allows {limit})",
    )
    long_folder = "\u00e9" * limit  # a folder on the way: 2 bytes a character
    refused(
        *cli(["video", proj / "input.mp4", "-c", tmp_path / long_folder / "out.mp4", "-q"], capsys),
        f"{long_folder}: file name too long ({2 * limit} bytes",
    )
    assert tree(tmp_path) == before


# ---------------------------------------------------------------- 4. every input of a job is protected


def test_background_model_and_input_are_protected_through_any_spelling(proj, tmp_path, capsys, monkeypatch):
    bg = write_clip(tmp_path / "bg.mp4", frames=2)
    (tmp_path / "bg-link.mp4").symlink_to(bg)
    os.link(bg, tmp_path / "bg-hard.mp4")
    model = tmp_path / "mymodel.mp4"  # a model file under a video name (checked before it is loaded)
    model.write_bytes(b"weights")
    monkeypatch.chdir(tmp_path)
    before = tree(tmp_path)
    src = proj / "input.mp4"
    for out in (
        "bg.mp4",
        "./bg.mp4",
        tmp_path / "bg.mp4",
        "bg-link.mp4",
        "bg-hard.mp4",
        "../" + tmp_path.name + "/bg.mp4",
    ):
        refused(*cli(["video", src, "-b", "bg.mp4", "-c", out, "--overwrite"], capsys), "same as the input")
    refused(*cli(["video", src, "-b", "bg-hard.mp4", "-c", "bg.mp4", "--overwrite"], capsys), "same as the input")
    os.link(src, tmp_path / "input-hard.mp4")
    before["input-hard.mp4"] = tree(tmp_path)["input-hard.mp4"]
    refused(*cli(["video", src, "-c", "input-hard.mp4", "--overwrite"], capsys), "same as the input")
    refused(*cli(["video", src, "--model", model, "-a", model, "--overwrite"], capsys), "same as the input")
    assert tree(tmp_path) == before


def test_image_batch_protects_inputs_and_background(tmp_path, capsys, rvm_session):
    from PIL import Image

    from mattekit.batch import matte_folder

    photos = tmp_path / "photos"
    photos.mkdir()
    img = np.full((48, 64, 3), 50, np.uint8)
    img[10:44, 20:44] = 200
    Image.fromarray(img).save(photos / "a.png")
    Image.fromarray(img).save(photos / "b_composition.jpg")  # a background that is also b's composition name
    Image.fromarray(img).save(photos / "b.jpg")
    before = tree(tmp_path)
    result = matte_folder(
        [photos / "a.png", photos / "b.jpg"],
        photos,
        background=photos / "b_composition.jpg",
        model=rvm_session,
        overwrite=True,
    )
    reasons = {o.source.name: (o.status, o.reason) for o in result.outcomes}
    assert reasons["a.png"][0] == "failed" and "same as the input" in reasons["a.png"][1]
    assert reasons["b.jpg"][0] == "failed" and "same as the input" in reasons["b.jpg"][1]
    assert tree(tmp_path) == before


def test_one_batch_input_is_never_another_ones_output(tmp_path, rvm_session):
    from PIL import Image

    from mattekit.batch import matte_folder

    img = np.full((48, 64, 3), 50, np.uint8)
    img[10:44, 20:44] = 200
    out = tmp_path / "out"
    out.mkdir()
    Image.fromarray(img).save(tmp_path / "x.jpg")
    Image.fromarray(img).save(out / "x_alpha.png")  # an input that is also x.jpg's alpha output
    before = tree(tmp_path)
    result = matte_folder(
        [tmp_path / "x.jpg", out / "x_alpha.png"],
        out,
        alpha=True,
        model=rvm_session,
        overwrite=True,
        fg_estimate="network",
    )
    x, other = result.outcomes
    assert x.status == "failed" and x.reason.startswith("is the same as the input") and "x_alpha.png" in x.reason
    assert other.status == "failed" and "same as the input" in other.reason  # its own cut-out name
    assert tree(tmp_path) == before  # x.png not written either: every output is checked first


def test_symbolic_link_loops_give_one_line(tmp_path, capsys, monkeypatch):
    src = write_clip(tmp_path / "in.mp4")
    monkeypatch.chdir(tmp_path)
    os.symlink("loop", "loop")
    before = tree(tmp_path)
    refused(*cli(["video", src, "-c", "loop/x.mp4", "--overwrite"], capsys), "loop")
    refused(*cli(["video", src, "--output-type", "png_sequence", "-c", "loop", "--overwrite"], capsys), "symbolic link")
    assert tree(tmp_path) == before


def test_batch_without_overwrite_never_replaces_an_existing_output(tmp_path, rvm_session):
    from mattekit.batch import convert_folder

    write_clip(tmp_path / "in" / "a.mp4")
    out = tmp_path / "out"
    out.mkdir()
    (out / "a_alpha.mp4").write_bytes(b"the user's own file of that name")
    result = convert_folder(tmp_path / "in", out, outputs=("composition", "alpha"), model=rvm_session)
    assert result.done and (out / "a_composition.mp4").stat().st_size > 1000
    assert (out / "a_alpha.mp4").read_bytes() == b"the user's own file of that name"
    assert sorted(p.name for p in out.iterdir()) == ["a_alpha.mp4", "a_composition.mp4"]


def test_trimap_and_eval_outputs_are_checked(tmp_path, capsys):
    from PIL import Image

    img = np.full((16, 16, 3), 90, np.uint8)
    Image.fromarray(img).save(tmp_path / "i.png")
    Image.fromarray(np.full((16, 16), 128, np.uint8)).save(tmp_path / "t.png")
    os.link(tmp_path / "t.png", tmp_path / "t2.png")
    gt = tmp_path / "gt"
    gt.mkdir()
    Image.fromarray(np.full((16, 16), 255, np.uint8)).save(gt / "x.png")
    (tmp_path / "r.csv").write_text("earlier report")
    before = tree(tmp_path)
    refused(
        *cli(["trimap", tmp_path / "i.png", tmp_path / "t.png", "-o", tmp_path / "t2.png", "--overwrite"], capsys),
        "same as the input",
    )
    refused(*cli(["eval", "--pred", gt, "--gt", gt, "--csv", tmp_path / "r.csv"], capsys), "already exists")
    assert tree(tmp_path) == before
    assert main(["eval", "--pred", str(gt), "--gt", str(gt), "--csv", str(tmp_path / "r.csv"), "--overwrite"]) == 0
    assert (tmp_path / "r.csv").read_text().startswith("name,")


# ---------------------------------------------------------------- 2. INT8 copies live in the cache


def test_int8_of_a_users_model_is_cached_by_hash_never_beside_it(tmp_path, rvm_session):
    from mattekit.models.fetch import cache_dir, sha256_of
    from mattekit.models.quantize import int8_path_for

    mine = tmp_path / "mymodels"
    mine.mkdir()
    foo = mine / "foo.onnx"
    foo.write_bytes(rvm_session.source_path.read_bytes())
    (mine / "foo_int8.onnx").write_bytes(b"the user's own int8 model")
    before = tree(mine)
    session = new_session(foo, precision="int8", intra_op_threads=1)
    assert session.path == int8_path_for(sha256_of(foo)) == cache_dir() / "int8" / f"{sha256_of(foo)}.onnx"
    assert session.source_path == foo
    assert tree(mine) == before  # no copy, no .lock, nothing replaced


# ---------------------------------------------------------------- 3. demo refuses existing outputs


def test_demo_refuses_existing_outputs_before_any_work(tmp_path, capsys):
    out = tmp_path / "demo"
    out.mkdir()
    (out / "preview.png").write_bytes(b"my picture")
    (out / "other.txt").write_text("unrelated")
    before = tree(tmp_path)
    refused(*cli(["demo", "-o", out], capsys), "preview.png", "already exists")
    assert tree(tmp_path) == before


# ---------------------------------------------------------------- 5. SIGTERM and stale partials


def spawn(args, cwd: Path) -> subprocess.Popen:
    """Start ``mattekit`` as a user's terminal does: with SIGHUP at its default, even when this test
    run ignores it (under ``nohup`` an ignored SIGHUP is inherited, and mattekit rightly keeps a
    signal ignored that its parent chose to ignore)."""
    ignored = hasattr(signal, "SIGHUP") and signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
    if ignored:
        signal.signal(signal.SIGHUP, signal.SIG_DFL)
    try:
        return subprocess.Popen(
            [sys.executable, "-m", "mattekit", *map(str, args)],
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
    finally:
        if ignored:
            signal.signal(signal.SIGHUP, signal.SIG_IGN)


def wait_for_frames(folder: Path, pattern: str, proc: subprocess.Popen, timeout: float = 120) -> None:
    """Wait until a partial output under ``folder`` holds a written frame."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(folder.glob(pattern)):
            return
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    raise AssertionError("no frame written in time")


@pytest.fixture(scope="module")
def long_clip(tmp_path_factory):
    """Long enough (300 frames at 320×180) that a signal arrives mid-run."""
    return write_clip(tmp_path_factory.mktemp("long") / "long.mp4", frames=300, size=(320, 180))


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
@pytest.mark.slow
def test_sigterm_removes_temporaries_and_keeps_the_earlier_result(sig, long_clip, tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    (work / "frames").mkdir()
    (work / "notes.txt").write_text("mine")
    assert (
        main(
            [
                "video",
                str(write_clip(tmp_path / "short.mp4")),
                "--output-type",
                "png_sequence",
                "-c",
                str(work / "frames"),
                "-q",
            ]
        )
        == 0
    )
    before = tree(work)
    proc = spawn(
        ["video", long_clip, "--output-type", "png_sequence", "-c", "frames", "-a", "alpha.mp4", "--overwrite", "-q"],
        work,
    )
    wait_for_frames(work, ".frames.partial-*/*.png", proc)
    proc.send_signal(sig)
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + sig, err  # 143 for SIGTERM, 129 for SIGHUP
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"mattekit: terminated ({sig.name}); error: "), lines
    assert "Traceback" not in err
    assert tree(work) == before  # earlier frames intact, no partial, alpha.mp4 never appeared


@pytest.mark.parametrize("verb", ["image", "batch"])
@pytest.mark.slow
def test_sigterm_in_other_verbs(verb, long_clip, tmp_path):
    from PIL import Image

    work = tmp_path / "work"
    work.mkdir()
    if verb == "image":
        photo = np.random.default_rng(0).integers(0, 255, (360, 640, 3), dtype=np.uint8)
        for i in range(8):
            Image.fromarray(photo).save(work / f"p{i}.png")
        args, partial = ["image", ".", "-o", "out", "--fg-estimate", "network"], "out/p*.png"
    else:
        os.link(long_clip, work / "a.mp4")
        args, partial = ["video", ".", "-o", "out", "--output-type", "png_sequence"], "out/.a_composition.partial-*/*"
    before = tree(work)
    proc = spawn([*args, "-q"], work)
    wait_for_frames(work, partial, proc)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, (out, err)
    assert "Traceback" not in err
    after = tree(work)
    leftovers = [k for k in after if ".partial-" in k]
    assert not leftovers
    assert {k: v for k, v in after.items() if not k.startswith("out")} == before


def test_next_run_removes_stale_partials_of_dead_runs_only(tmp_path, rvm_session):
    from mattekit import convert_video

    src = write_clip(tmp_path / "in.mp4")
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        stale_file = tmp_path / f".out.partial-{dead.pid}-0123abcd.mp4"
        stale_file.write_bytes(b"half a file")
        stale_dir = tmp_path / f".frames.partial-{dead.pid}-0123abcd"
        stale_dir.mkdir()
        (stale_dir / "00000.png").write_bytes(b"half a frame")
        running = tmp_path / f".out.partial-{live.pid}-89abcdef.mp4"
        running.write_bytes(b"another run still writing")
        other = tmp_path / f".other.partial-{dead.pid}-0123abcd.mp4"  # not this output's
        other.write_bytes(b"x")
        legacy = tmp_path / ".out.partial-0123abcd.mp4"  # no pid: never guessed at
        legacy.write_bytes(b"x")
        convert_video(src, output_composition=tmp_path / "out.mp4", model=rvm_session, progress=False)
        convert_video(
            src, output_type="png_sequence", output_alpha=tmp_path / "frames", model=rvm_session, progress=False
        )
        assert not stale_file.exists() and not stale_dir.exists()
        assert running.read_bytes() == b"another run still writing"
        assert other.exists() and legacy.exists()
    finally:
        live.kill()
        live.wait()
