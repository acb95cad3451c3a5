"""The Ray executor on a real local Ray cluster: a head and a second worker node on this machine.

Mechanics run on the fake model (alpha is a function of each frame alone, so a chunked run must
give exactly the one-machine alpha); the real model checks that chunks warmed up on
``DEFAULT_WARMUP`` frames match the one-machine run at their starts within ``WARMUP_TOLERANCE``.
Clips are made from the real frames of ``people/test-sample1.mp4`` (scaled down, re-encoded with a
10-frame GOP so a short clip has keyframes to cut at; for the mechanics played forward then
backward to be long enough for 3 chunks of 40), with variable frame timing and the clip's real
audio track.
"""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import threading
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

ray = pytest.importorskip("ray")

from mattekit.batch import convert_folder, matte_folder  # noqa: E402
from mattekit.cluster.chunks import plan_chunks, scan_frames  # noqa: E402
from mattekit.cluster.executor import DEFAULT_WARMUP, WARMUP_TOLERANCE  # noqa: E402
from mattekit.io.image import read_image, write_image  # noqa: E402
from mattekit.io.rgba_reader import read_rgba_frames  # noqa: E402

pytestmark = pytest.mark.slow  # starts a Ray cluster; about 75 s for the module here

CHUNK = 40  # frames per chunk in these tests: the long clip (158 frames) gives 3 chunks
TB = Fraction(1, 15360)


def make_clip(src: Path, dst: Path, frames: int, loops: int, width: int = 160, height: int = 90) -> list[int]:
    """Real frames of ``src`` scaled to width×height, ping-pong ``loops`` times, H.264 with a
    10-frame GOP and B-frames, every third frame shown twice as long (variable frame rate), with
    ``src``'s audio; returns the frame timestamps."""
    with av.open(str(src)) as inp:
        real = [f.to_ndarray(width=width, height=height, format="rgb24") for f in inp.decode(video=0)][:frames]
    seq = []
    for i in range(loops):
        seq += real if i % 2 == 0 else real[::-1]
    stamps, t = [], 0
    with av.open(str(src)) as inp, av.open(str(dst), "w") as out:
        vs = out.add_stream("libx264", rate=30)
        vs.width, vs.height, vs.pix_fmt = width, height, "yuv420p"
        vs.options = {"g": "10", "keyint_min": "10", "sc_threshold": "0", "bf": "2"}
        vs.time_base = vs.codec_context.time_base = TB
        audio = out.add_stream_from_template(inp.streams.audio[0])
        for i, rgb in enumerate(seq):
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            frame.pts, frame.time_base = t, TB
            stamps.append(t)
            t += 1024 if i % 3 == 2 else 512
            out.mux(vs.encode(frame))
        out.mux(vs.encode(None))
        for packet in inp.demux(inp.streams.audio[0]):
            if packet.dts is not None:
                packet.stream = audio
                out.mux(packet)
    return stamps


@pytest.fixture(scope="module")
def clips(shared_data, tmp_path_factory) -> Path:
    """A folder: long.mp4 (158 frames, 3 chunks of >= 40) and two short clips."""
    folder = tmp_path_factory.mktemp("ray-in")
    src = shared_data / "people" / "test-sample1.mp4"
    make_clip(src, folder / "long.mp4", 79, 2)
    make_clip(src, folder / "short_a.mp4", 20, 1)
    make_clip(src, folder / "short_b.mp4", 12, 1, 96, 54)
    return folder


@pytest.fixture(scope="module")
def cluster():
    """A head node and a second worker node, one CPU each, and this process connected."""
    from ray.cluster_utils import Cluster

    # small object stores; Ray's memory monitor off: on a shared machine other people's processes
    # fill the memory and the monitor would kill these workers for it
    c = Cluster(
        initialize_head=True,
        head_node_args={
            "num_cpus": 1,
            "include_dashboard": False,
            "object_store_memory": 100 * 2**20,
            "_system_config": {"memory_monitor_refresh_ms": 0},
        },
    )
    c.add_node(num_cpus=1, object_store_memory=100 * 2**20)
    ray.init(address=c.address, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    yield c
    ray.shutdown()
    c.shutdown()


def decoded(path: Path):
    """(pts list, H×W×4 frames, audio packets as bytes) of a written video."""
    frames = list(read_rgba_frames(path))
    with av.open(str(path)) as c:
        audio = [bytes(p) for p in c.demux(audio=0) if p.size] if c.streams.audio else []
    return [f.pts for f in frames], np.stack([f.rgba for f in frames]), audio


def png_alpha(folder: Path) -> np.ndarray:
    return np.stack(
        [
            read_image(p).astype(np.float32) / 255.0
            if read_image(p).ndim == 2
            else read_image(p)[..., 0].astype(np.float32) / 255.0
            for p in sorted(folder.glob("*.png"))
        ]
    )


def test_cut_at_keyframes_three_chunks(clips):
    index = scan_frames(clips / "long.mp4")
    chunks = plan_chunks(index, len(index.pts), CHUNK, 8)
    assert len(index.pts) == 158 and len(chunks) == 3
    assert all(c.start in index.keyframes and c.frames >= CHUNK for c in chunks)
    assert [c.warmup for c in chunks] == [0, 8, 8]
    assert chunks[-1].end == 158 and all(a.end == b.start for a, b in itertools.pairwise(chunks))


def test_folder_on_cluster_equals_one_machine(cluster, clips, tmp_path):
    """Videos (composition + alpha, with audio, VFR) and a PNG alpha sequence, split and joined."""
    seen = []
    options = {"outputs": ("composition", "alpha"), "background": "#3050a0", "model": "fake"}
    ray_result = convert_folder(
        clips,
        tmp_path / "ray",
        executor="ray",
        progress=lambda d, t: seen.append((d, t)),
        ray_options={"chunk_frames": CHUNK, "warmup": 8},
        **options,
    )
    local = convert_folder(clips, tmp_path / "local", **options)
    assert [o.status for o in ray_result.outcomes] == ["done"] * 3, [o.reason for o in ray_result.outcomes]
    assert [o.frames for o in ray_result.outcomes] == [o.frames for o in local.outcomes] == [158, 20, 12]
    assert seen[-1] == (190, 190)  # one bar over the whole job: every frame of every file
    for name in ("long_composition.mp4", "long_alpha.mp4", "short_a_composition.mp4", "short_b_alpha.mp4"):
        pts_r, frames_r, audio_r = decoded(tmp_path / "ray" / name)
        pts_l, frames_l, audio_l = decoded(tmp_path / "local" / name)
        assert pts_r == pts_l  # same frames, same (variable) timestamps
        assert audio_r == audio_l and (len(audio_r) > 0) == ("composition" in name)
        # both are H.264 (CRF 18) of the same pictures; each chunk starts its own GOP, so the coding
        # noise differs (measured here: at most 2.1 levels of 255 per frame; a frame out of order: > 10)
        diff = np.abs(frames_r.astype(np.int16) - frames_l.astype(np.int16)).reshape(len(pts_r), -1).mean(axis=1)
        assert diff.max() < 4.0, name
    assert not list((tmp_path / "ray").glob(".*"))  # work folders and partials gone

    # lossless PNG alpha: the fake model's chunked alpha equals the one-machine alpha exactly
    convert_folder(
        clips / "long.mp4",
        tmp_path / "ray_png",
        executor="ray",
        output_type="png_sequence",
        outputs=("alpha",),
        model="fake",
        ray_options={"chunk_frames": CHUNK, "warmup": 8},
    )
    convert_folder(
        clips / "long.mp4", tmp_path / "local_png", output_type="png_sequence", outputs=("alpha",), model="fake"
    )
    assert np.array_equal(
        png_alpha(tmp_path / "ray_png" / "long_alpha"), png_alpha(tmp_path / "local_png" / "long_alpha")
    )

    again = convert_folder(clips, tmp_path / "ray", executor="ray", ray_options={"chunk_frames": CHUNK}, **options)
    assert [o.status for o in again.outcomes] == ["skipped"] * 3 and again.ok


@pytest.fixture(scope="module")
def continuous(shared_data, tmp_path_factory) -> Path:
    """test-sample1.mp4's 79 frames in their own order (no reversal, no cut: continuous footage,
    as the warm-up was measured), 160x90, GOP 10: 3 chunks of >= 20 frames starting at 20 and 40."""
    clip = tmp_path_factory.mktemp("ray-continuous") / "walk.mp4"
    make_clip(shared_data / "people" / "test-sample1.mp4", clip, 79, 1)
    return clip


def test_real_model_chunk_starts_within_tolerance(cluster, continuous, tmp_path):
    """RVM: chunks warmed up on DEFAULT_WARMUP frames match the one-machine alpha within WARMUP_TOLERANCE."""
    kwargs = {"output_type": "png_sequence", "outputs": ("alpha",)}
    convert_folder(continuous, tmp_path / "ray", executor="ray", ray_options={"chunk_frames": 20}, **kwargs)
    convert_folder(continuous, tmp_path / "local", **kwargs)
    chunked, whole = png_alpha(tmp_path / "ray" / "walk_alpha"), png_alpha(tmp_path / "local" / "walk_alpha")
    assert chunked.shape == whole.shape == (79, 90, 160)
    per_frame = np.abs(chunked - whole).reshape(79, -1).mean(axis=1)
    chunks = plan_chunks(scan_frames(continuous), 79, 20, DEFAULT_WARMUP)
    assert [c.start for c in chunks] == [0, 20, 40]
    # chunks whose run-in reaches frame 0 are the one-machine run itself; the first that does not
    # starts from its own state
    exact = next(c.start for c in chunks if c.start - c.warmup > 0)
    assert per_frame[:exact].max() == 0 and per_frame[exact:].max() > 0
    assert per_frame.max() <= WARMUP_TOLERANCE, (per_frame.max(), per_frame.argmax())
    # this clip, W=32: measured 0.054 (frame 61); W=16 gave 0.127, W=0 0.204 (docs/cluster.md)
    assert per_frame.max() <= 0.07, (per_frame.max(), per_frame.argmax())
    assert whole.mean() > 0.05  # a person was matted (not an empty alpha)


def _open_partials(folder: Path) -> list[int]:
    """PIDs of processes holding a temporary (partial) output under ``folder`` open."""
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            for fd in (proc / "fd").iterdir():
                target = os.readlink(fd)
                if target.startswith(str(folder)) and ".partial-" in target:
                    pids.append(int(proc.name))
                    break
        except OSError:
            continue
    return pids


def test_worker_killed_mid_chunk_is_retried(cluster, clips, tmp_path):
    result = {}
    run = threading.Thread(
        target=lambda: result.update(
            r=convert_folder(
                clips / "long.mp4",
                tmp_path / "ray",
                executor="ray",
                outputs=("alpha",),
                model=_slow_fake(),
                ray_options={"chunk_frames": CHUNK, "warmup": 4},
            )
        )
    )
    run.start()
    killed = None
    deadline = time.monotonic() + 60
    while killed is None and time.monotonic() < deadline and run.is_alive():
        pids = [p for p in _open_partials(tmp_path / "ray") if p != os.getpid()]
        if pids:
            killed = pids[0]
            os.kill(killed, signal.SIGKILL)
        time.sleep(0.1)
    run.join(120)
    assert killed is not None, "no worker was seen writing a chunk"
    outcome = result["r"].outcomes[0]
    assert outcome.status == "done" and outcome.frames == 158, outcome.reason
    pts, frames, _ = decoded(tmp_path / "ray" / "long_alpha.mp4")
    convert_folder(clips / "long.mp4", tmp_path / "local", outputs=("alpha",), model="fake")
    pts_l, frames_l, _ = decoded(tmp_path / "local" / "long_alpha.mp4")
    assert pts == pts_l and np.abs(frames.astype(np.int16) - frames_l).reshape(158, -1).mean(axis=1).max() < 4.0


def _slow_fake():
    from mattekit.models import new_session

    return new_session("fake", seconds_per_frame=0.03)


def test_driver_killed_rerun_keeps_finished_chunks(cluster, clips, tmp_path):
    out = tmp_path / "out"
    code = (
        f"from mattekit.batch import convert_folder\n"
        f"from mattekit.models import new_session\n"
        f"convert_folder({str(clips / 'long.mp4')!r}, {str(out)!r}, executor='ray', output_type='png_sequence',\n"
        f"               outputs=('alpha',), model=new_session('fake', seconds_per_frame=0.03),\n"
        f"               ray_options=dict(chunk_frames={CHUNK}, warmup=4))\n"
    )
    env = dict(os.environ, RAY_ADDRESS=cluster.address)
    driver = subprocess.Popen([sys.executable, "-c", code], env=env)
    finished = []
    deadline = time.monotonic() + 90
    try:
        while not finished and time.monotonic() < deadline and driver.poll() is None:
            finished = [d for d in out.glob(".long_alpha.chunks-*/*_alpha") if not d.name.startswith(".")]
            time.sleep(0.05)
    finally:
        driver.kill()
        driver.wait()
    assert finished, "no chunk finished before the deadline"
    assert not (out / "long_alpha").exists()  # nothing under the final name
    inodes = {p.name: p.stat().st_ino for d in finished for p in d.glob("*.png")}
    assert inodes

    result = convert_folder(
        clips / "long.mp4",
        out,
        executor="ray",
        output_type="png_sequence",
        outputs=("alpha",),
        model=_slow_fake(),
        ray_options={"chunk_frames": CHUNK, "warmup": 4},
    )
    assert result.ok and result.outcomes[0].frames == 158
    # the finished chunk's frames are the very files the killed run wrote (hard-linked, not redone)
    assert {n: (out / "long_alpha" / n).stat().st_ino for n in inodes} == inodes
    convert_folder(clips / "long.mp4", tmp_path / "local", output_type="png_sequence", outputs=("alpha",), model="fake")
    assert np.array_equal(png_alpha(out / "long_alpha"), png_alpha(tmp_path / "local" / "long_alpha"))
    assert not list(out.glob(".*"))


def test_images_on_cluster_equal_one_machine(cluster, clips, tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    for i, f in enumerate(list(read_rgba_frames(clips / "short_a.mp4"))[:5]):
        write_image(folder / f"frame{i}.png", np.ascontiguousarray(f.rgba[..., :3]))
    (folder / "broken.png").write_bytes(b"not a picture")
    options = {"alpha": True, "background": "white", "model": "fake", "fg_estimate": "network"}
    ray_result = matte_folder(folder, tmp_path / "ray", executor="ray", ray_options={"images_per_task": 2}, **options)
    local = matte_folder(folder, tmp_path / "local", **options)
    assert [(o.label, o.status) for o in ray_result.outcomes] == [(o.label, o.status) for o in local.outcomes]
    assert [o.status for o in ray_result.outcomes].count("done") == 5
    failed = ray_result.failed[0]
    assert failed.label == "broken.png" and failed.reason == local.failed[0].reason
    assert failed.exit_code == local.failed[0].exit_code == 2
    for name in ("frame0.png", "frame4_alpha.png", "frame2_composition.jpg"):
        assert np.array_equal(read_image(tmp_path / "ray" / name), read_image(tmp_path / "local" / name))


def test_cli_image_ray_and_usage(cluster, clips, tmp_path):
    env = dict(os.environ, RAY_ADDRESS=cluster.address)
    exe = str(Path(sys.executable).with_name("mattekit"))
    frame = next(read_rgba_frames(clips / "short_b.mp4")).rgba[..., :3]
    (tmp_path / "in").mkdir()
    write_image(tmp_path / "in" / "a.png", np.ascontiguousarray(frame))
    done = subprocess.run(
        [exe, "image", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "--model", "fake", "--executor", "ray"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert "1 done" in done.stdout and (tmp_path / "out" / "a.png").is_file()
    usage = subprocess.run(
        [exe, "video", str(clips / "long.mp4"), "-a", str(tmp_path / "x.mp4"), "--executor", "ray"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert usage.returncode == 2 and "--output-dir" in usage.stderr


def corrupt_frame(src: Path, dst: Path, frame: int) -> None:
    """A copy of ``src`` whose video packet of frame ``frame`` (presentation order) has its first
    4 bytes (the H.264 NAL length) set to 0xFF: the decoder rejects that packet (the one-machine
    run skips it with a warning), the container and every other packet stay intact."""
    data = bytearray(src.read_bytes())
    with av.open(str(src)) as c:
        packets = [(p.pts, p.pos) for p in c.demux(video=0) if p.size]
    _, pos = sorted(packets)[frame]
    data[pos : pos + 4] = b"\xff\xff\xff\xff"
    dst.write_bytes(bytes(data))


def test_damaged_packet_in_a_chunk_gives_one_machine_output(cluster, clips, tmp_path):
    """A chunk that meets a damaged packet hands its file to one whole-file task: the same frames,
    the same warning as the one-machine run (before: the whole file failed)."""
    (tmp_path / "in").mkdir()
    bad = tmp_path / "in" / "long.mp4"
    corrupt_frame(clips / "long.mp4", bad, 65)
    chunks = plan_chunks(scan_frames(bad), 158, CHUNK, 8)
    assert len(chunks) == 3 and chunks[1].start <= 65 < chunks[1].end  # damage inside the middle chunk
    kwargs = {"output_type": "png_sequence", "outputs": ("alpha",), "model": "fake"}
    ray_result = convert_folder(
        bad, tmp_path / "ray", executor="ray", ray_options={"chunk_frames": CHUNK, "warmup": 8}, **kwargs
    )
    local = convert_folder(bad, tmp_path / "local", **kwargs)
    r, loc = ray_result.outcomes[0], local.outcomes[0]
    assert r.status == loc.status == "done", r.reason
    assert r.frames == loc.frames == 157
    assert r.reason == loc.reason and "1 of 158 frames could not be decoded" in r.reason
    assert np.array_equal(png_alpha(tmp_path / "ray" / "long_alpha"), png_alpha(tmp_path / "local" / "long_alpha"))
    assert not list((tmp_path / "ray").glob(".*"))  # the given-up chunks' work folder removed


SLOW_CLI = (
    "import sys\n"
    "import mattekit.models.fake as fake\n"
    "init = fake.FakeSession.__init__\n"
    "fake.FakeSession.__init__ = lambda self, *a, seconds_per_frame=0.03, **k: "
    "init(self, *a, seconds_per_frame=seconds_per_frame, **k)\n"
    "from mattekit.cli.main import main\n"
    "sys.exit(main(sys.argv[1:]))\n"
)


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_cli_signal_stops_cleanly_and_rerun_resumes(cluster, clips, tmp_path, sig, code):
    """Ctrl-C / SIGTERM on `mattekit video --executor ray`: the one-machine exit code, tasks
    cancelled (no worker still writing), nothing under a final name; the same command resumes."""
    out = tmp_path / "out"
    args = [
        str(clips / "long.mp4"),
        "-o",
        str(out),
        "--outputs",
        "alpha",
        "--output-type",
        "png_sequence",
        "--model",
        "fake",
        "--executor",
        "ray",
        "--chunk-frames",
        str(CHUNK),
        "-q",
    ]
    env = dict(os.environ, RAY_ADDRESS=cluster.address)
    driver = subprocess.Popen(
        [sys.executable, "-c", SLOW_CLI, "video", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    finished = []
    deadline = time.monotonic() + 90
    while not finished and time.monotonic() < deadline and driver.poll() is None:
        finished = [d for d in out.glob(".long_alpha.chunks-*/*_alpha") if not d.name.startswith(".")]
        time.sleep(0.05)
    assert finished, "no chunk finished before the deadline"
    driver.send_signal(sig)
    try:
        stdout, stderr = driver.communicate(timeout=60)
    finally:
        driver.kill()
    assert driver.returncode == code, stderr
    assert "Traceback" not in stderr and "run the same command again" in stdout
    assert ("terminated (SIGTERM)" in stderr) == (sig == signal.SIGTERM), stderr
    assert not (out / "long_alpha").exists()  # nothing under the final name
    assert [p.name for p in out.iterdir() if not p.name.startswith(".")] == []
    time.sleep(1)
    assert not _open_partials(out)  # the cancelled tasks stopped writing
    inodes = {p.name: p.stat().st_ino for d in finished for p in d.glob("*.png")}

    # the same job again (in this process, to save a CLI start-up; the same options as the CLI's)
    again = convert_folder(
        clips / "long.mp4",
        out,
        executor="ray",
        output_type="png_sequence",
        outputs=("alpha",),
        model=_slow_fake(),
        ray_options={"chunk_frames": CHUNK},
    )
    assert again.ok and again.outcomes[0].frames == 158
    assert {n: (out / "long_alpha" / n).stat().st_ino for n in inodes} == inodes  # kept, not redone
    convert_folder(clips / "long.mp4", tmp_path / "local", output_type="png_sequence", outputs=("alpha",), model="fake")
    assert np.array_equal(png_alpha(out / "long_alpha"), png_alpha(tmp_path / "local" / "long_alpha"))
    assert not list(out.glob(".*"))
