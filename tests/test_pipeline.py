"""The streaming pipeline's guarantees: frames in order through the recurrent state, bounded
buffering, clean stops on errors, cancel and Ctrl-C (no thread left, no output left), and the
8-bit conversions it relies on.

The mechanics (errors, cancel, Ctrl-C, buffering, ordering) run on the fake model
(:mod:`mattekit.models.fake`); one test checks the real RVM model against a plain sequential loop.

Inputs are the first frames of ../shared/data/people/test-sample1.mp4 scaled down to 256x144 so the
whole file runs in seconds.
"""

from __future__ import annotations

import _thread
import threading
import time

import av
import numpy as np
import pytest
from PIL import Image

import mattekit.pipeline.video as video
from mattekit import convert_video
from mattekit.compose.composite import FrameCompositor, composite, to_rgba
from mattekit.errors import Cancelled, InputError
from mattekit.io.video_writer import VideoWriter
from mattekit.models.rvm_iobinding import BoundStepper, device_for

W, H, FRAMES = 256, 144, 24
RATIO = 0.5


@pytest.fixture(scope="module")
def frames_dir(shared_data, tmp_path_factory):
    """A folder of 24 real frames (PNG, 256x144), read by the image-sequence reader."""
    folder = tmp_path_factory.mktemp("frames") / "clip"
    folder.mkdir()
    with av.open(str(shared_data / "people" / "test-sample1.mp4")) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if i == FRAMES:
                break
            rgb = frame.reformat(W, H, format="rgb24", interpolation="AREA").to_ndarray()
            Image.fromarray(rgb).save(folder / f"{i:04d}.png")
    return folder


def mattekit_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("mattekit-") and t.is_alive()]


def leftovers(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def rvm_recipe_src(rgb: np.ndarray) -> np.ndarray:
    """RVM's documented conversion (documentation/inference.md), written out independently."""
    return rgb.astype(np.float32).transpose(2, 0, 1)[None] / 255.0


@pytest.mark.slow
def test_alpha_equals_a_plain_sequential_loop(frames_dir, rvm_session, tmp_path, monkeypatch):
    """Frames reach the network in order with the previous frame's state: the threaded run's
    alpha is bit-identical to a one-thread loop on the same frames."""
    seen = []
    step = rvm_session.step_deferred

    def recording_step(src, state, ratio, guide=None):
        matte, new_state = step(src, state, ratio, guide)
        seen.append(FrameCompositor(matte.height, matte.width).alpha_plane(matte).copy())
        return matte, new_state

    monkeypatch.setattr(rvm_session, "step_deferred", recording_step)
    out = tmp_path / "alpha"
    result = convert_video(
        frames_dir,
        output_type="png_sequence",
        output_alpha=out,
        progress=False,
        model=rvm_session,
        downsample_ratio=RATIO,
    )
    monkeypatch.undo()
    assert result.frames == FRAMES

    expected = []
    state = rvm_session.initial_state()
    for png in sorted(frames_dir.glob("*.png")):
        r = rvm_session.step(rvm_recipe_src(np.asarray(Image.open(png))), state, RATIO)
        state = r.state
        expected.append(r.pha[0, 0])
    assert len(seen) == len(expected) == FRAMES
    for i, (got, ref) in enumerate(zip(seen, expected, strict=True)):
        assert np.array_equal(got, ref), f"frame {i}: max |diff| {np.abs(got - ref).max()}"
    written = sorted(out.glob("*.png"))
    assert len(written) == FRAMES
    for png, ref in zip(written, expected, strict=True):
        assert np.array_equal(np.asarray(Image.open(png)), np.floor(np.clip(ref * 255 + 0.5, 0, 255)).astype(np.uint8))

    # the check can fail: the last frame stepped from a fresh state (order lost) differs
    last = np.asarray(Image.open(sorted(frames_dir.glob("*.png"))[-1]))
    fresh = rvm_session.step(rvm_recipe_src(last), rvm_session.initial_state(), RATIO).pha[0, 0]
    assert np.abs(fresh - expected[-1]).mean() > 1e-3
    # and there is a person to matte
    assert 0.05 < expected[-1].mean() < 0.9


@pytest.mark.slow
def test_recurrent_state_as_device_values(frames_dir, rvm_session, tmp_path):
    """The pipeline passes the state on without looking at it: with the I/O-binding stepper
    (state as OrtValue, here on the CPU device) the alpha is the same as with plain run."""
    plain = tmp_path / "plain"
    convert_video(
        frames_dir,
        output_type="png_sequence",
        output_alpha=plain,
        progress=False,
        model=rvm_session,
        downsample_ratio=RATIO,
    )
    assert rvm_session._bound is None  # CPU: plain run
    rvm_session._bound = BoundStepper(rvm_session._session, "cpu")
    try:
        bound = tmp_path / "bound"
        convert_video(
            frames_dir,
            output_type="png_sequence",
            output_alpha=bound,
            progress=False,
            model=rvm_session,
            downsample_ratio=RATIO,
        )
    finally:
        rvm_session._bound = None
    for a, b in zip(sorted(plain.glob("*.png")), sorted(bound.glob("*.png")), strict=True):
        assert np.array_equal(np.asarray(Image.open(a)), np.asarray(Image.open(b))), a.name


def test_io_binding_selected_only_for_an_accelerator(rvm_session):
    assert device_for(["CUDAExecutionProvider", "CPUExecutionProvider"]) == "cuda"
    assert device_for(["CPUExecutionProvider"]) is None
    assert device_for(["CPUExecutionProvider", "CUDAExecutionProvider"]) is None  # CUDA not preferred
    assert device_for([]) is None
    # the loaded session binds state to a device exactly when its first provider is an accelerator
    # (CPU here; CUDA on a GPU machine), and CPU is always there as the fallback
    assert rvm_session.providers[-1] == "CPUExecutionProvider"
    assert (rvm_session._bound is None) == (device_for(rvm_session.providers) is None)


def test_default_providers_prefer_cuda_only_when_available(monkeypatch):
    import onnxruntime as ort

    from mattekit.models.base import default_providers

    monkeypatch.setattr(ort, "get_available_providers", lambda: ["AzureExecutionProvider", "CPUExecutionProvider"])
    assert default_providers() == ["CPUExecutionProvider"]
    monkeypatch.setattr(
        ort,
        "get_available_providers",
        lambda: ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"],
    )
    assert default_providers() == ["CUDAExecutionProvider", "CPUExecutionProvider"]


def test_writer_error_stops_everything(frames_dir, fake_session, tmp_path, monkeypatch):
    original = VideoWriter.write

    def failing_write(self, image, pts, index):
        if index == 3:
            raise OSError(28, "No space left on device")
        original(self, image, pts, index)

    monkeypatch.setattr(VideoWriter, "write", failing_write)
    steps = []
    step = fake_session.step
    monkeypatch.setattr(fake_session, "step", lambda *a: steps.append(1) or step(*a))
    out_dir = tmp_path / "out"
    with pytest.raises(OSError, match="No space left"):
        convert_video(
            frames_dir,
            output_composition=out_dir / "com.mp4",
            output_alpha=out_dir / "pha.mp4",
            progress=False,
            model=fake_session,
            downsample_ratio=RATIO,
        )
    assert mattekit_threads() == []
    assert leftovers(out_dir) == []  # no final file, no temporary file
    assert len(steps) < FRAMES  # the network stopped early too


def test_reader_error_stops_everything(frames_dir, fake_session, tmp_path):
    broken = tmp_path / "broken"
    broken.mkdir()
    for i, png in enumerate(sorted(frames_dir.glob("*.png"))):
        image = Image.open(png)
        if i == 8:  # a frame of another size half-way: the reader refuses it
            image = image.resize((W // 2, H // 2))
        image.save(broken / png.name)
    out_dir = tmp_path / "out"
    with pytest.raises(InputError, match="differs"):
        convert_video(
            broken,
            output_composition=out_dir / "com.mp4",
            output_alpha=out_dir / "pha.mp4",
            progress=False,
            model=fake_session,
            downsample_ratio=RATIO,
        )
    assert mattekit_threads() == []
    assert leftovers(out_dir) == []


def test_cancel_stops_within_a_few_frames(frames_dir, fake_session, tmp_path, monkeypatch):
    cancel = threading.Event()
    steps = []
    step = fake_session.step
    monkeypatch.setattr(fake_session, "step", lambda *a: steps.append(1) or step(*a))

    def progress(done, total):
        if done == 3:
            cancel.set()

    out = tmp_path / "com.mp4"
    with pytest.raises(Cancelled):
        convert_video(
            frames_dir,
            output_composition=out,
            progress=progress,
            model=fake_session,
            downsample_ratio=RATIO,
            cancel=cancel,
        )
    assert mattekit_threads() == []
    assert leftovers(tmp_path) == []
    # frames already in flight when the event was set: one queue, one being written, one in
    # the network; far below the ~30 frames of one second of video
    assert len(steps) <= 3 + video.MAX_QUEUE + 3


def test_ctrl_c_cancels_cleanly(frames_dir, fake_session, tmp_path):
    def progress(done, total):
        if done == 3:
            _thread.interrupt_main()  # what Ctrl-C does: KeyboardInterrupt in the main thread
        elif done > 3:  # keep the job running until the main thread has seen it (it once finished first)
            time.sleep(0.2)

    with pytest.raises(Cancelled, match="interrupted"):
        convert_video(
            frames_dir,
            output_composition=tmp_path / "com.mp4",
            output_alpha=tmp_path / "pha",
            output_type="png_sequence",
            progress=progress,
            model=fake_session,
            downsample_ratio=RATIO,
        )
    assert mattekit_threads() == []
    assert leftovers(tmp_path) == []


def test_buffering_is_bounded_with_a_slow_writer(frames_dir, fake_session, tmp_path, monkeypatch):
    """The decoder may run ahead of the writer only by the queues' depth, however slow writing is."""
    sources = []
    open_source = video.open_source
    monkeypatch.setattr(video, "open_source", lambda *a: sources.append(open_source(*a)) or sources[-1])
    original = VideoWriter.write

    def slow_write(self, image, pts, index):
        time.sleep(0.05)
        original(self, image, pts, index)

    monkeypatch.setattr(VideoWriter, "write", slow_write)
    ahead = []

    def progress(done, total):
        ahead.append(sources[0].frames_read - done)

    convert_video(
        frames_dir,
        output_composition=tmp_path / "com.mp4",
        progress=progress,
        model=fake_session,
        downsample_ratio=RATIO,
    )
    assert len(ahead) == FRAMES
    # decoded but not yet written: input queue + its 2 spare buffers + output queue + 1 in the writer
    bound = 2 * video.MAX_QUEUE + 4
    assert max(ahead) <= bound < FRAMES


def test_frames_keep_their_order_and_state_with_the_fake_model(frames_dir, fake_session, tmp_path, monkeypatch):
    """Every written alpha is the fake model's alpha of the same input frame (none dropped,
    repeated or swapped), and the state reaching step k is the count of frames before it."""
    from mattekit.models.fake import fake_alpha

    states = []
    step = fake_session.step
    monkeypatch.setattr(fake_session, "step", lambda src, state, ratio: states.append(state) or step(src, state, ratio))
    out = tmp_path / "pha"
    result = convert_video(frames_dir, output_type="png_sequence", output_alpha=out, progress=False, model=fake_session)
    assert result.frames == FRAMES and states == list(range(FRAMES))
    written = sorted(out.glob("*.png"))
    assert len(written) == FRAMES
    for png, got in zip(sorted(frames_dir.glob("*.png")), written, strict=True):
        rgb = np.asarray(Image.open(png).convert("RGB"))
        expected = fake_alpha(rgb.transpose(2, 0, 1)[None].astype(np.float32) / 255)[0, 0]
        assert np.array_equal(np.asarray(Image.open(got)), np.floor(expected * 255 + 0.5).astype(np.uint8))


def test_compositor_matches_the_formula_on_real_alpha(shared_data):
    """8-bit results of the in-place float32 code equal the textbook formula computed in float64
    (C = F·α + B·(1 − α), rounded half up) up to one level, on a frame with exact alpha."""
    rgba = np.asarray(Image.open(shared_data / "hairball" / "in0001.png"))
    fgr = rgba[:, :, :3].astype(np.float32) / 255
    alpha = rgba[:, :, 3].astype(np.float32) / 255
    h, w = alpha.shape
    backgrounds = [
        np.array([120, 255, 155], np.uint8),
        np.asarray(Image.open(shared_data / "people" / "stills" / "background_0001.png").convert("RGB").resize((w, h))),
    ]
    compositor = FrameCompositor(h, w)
    planar = np.ascontiguousarray(fgr.transpose(2, 0, 1))
    for bg in backgrounds:
        b = (np.broadcast_to(bg, (h, w, 3)) / 255.0).astype(np.float64)
        ref = np.floor(np.clip((fgr * alpha[..., None] + b * (1 - alpha[..., None])) * 255 + 0.5, 0, 255))
        for got in (composite(fgr, alpha, bg), compositor.composite(planar, alpha, bg)):
            assert got.dtype == np.uint8 and got.shape == (h, w, 3)
            diff = np.abs(got.astype(np.int16) - ref.astype(np.int16))
            assert diff.max() <= 1 and (diff > 0).mean() < 0.01
    exact = np.asarray(to_rgba(fgr, alpha))
    assert np.array_equal(exact, rgba)  # k/255 -> k round trip is exact
    assert np.array_equal(compositor.rgba(planar, alpha), rgba)
    assert np.array_equal(compositor.gray(alpha), rgba[:, :, 3])
    assert np.array_equal(compositor.rgb(planar), rgba[:, :, :3])
    # out-of-range values saturate instead of wrapping around
    assert compositor.gray(alpha * 3 - 1).max() == 255 and compositor.gray(alpha * 3 - 1).min() == 0


def test_stage_threads_lowered_only_when_onnx_runtime_does_not_spin(rvm_session):
    import onnxruntime as ort

    def holder(spinning: str | None):
        options = ort.SessionOptions()
        if spinning is not None:
            options.add_session_config_entry("session.intra_op.allow_spinning", spinning)

        class Holder:
            _session = ort.InferenceSession(str(rvm_session.path), options, providers=["CPUExecutionProvider"])

        return Holder()

    assert video._stage_nice(holder(None)) == 0  # ONNX Runtime's default: worker threads spin
    assert video._stage_nice(holder("1")) == 0
    assert video._stage_nice(holder("0")) == video.STAGE_NICE > 0
