"""RVM's graph cut before the guided filter's full-resolution step, and the banded step itself,
checked against the published graph on real frames."""

from __future__ import annotations

import av
import numpy as np
import pytest
from PIL import Image

from mattekit.compose.composite import FrameCompositor
from mattekit.errors import ModelError
from mattekit.models.base import ArrayMatte, to_src
from mattekit.models.rvm_cut import cut_model
from mattekit.models.rvm_onnx import RVMSession

pytestmark = pytest.mark.slow  # builds and runs the cut graph at 720p and 1080p


def clip_frames(path, limit):
    frames = []
    with av.open(str(path)) as c:
        for frame in c.decode(video=0):
            frames.append(frame.to_ndarray(format="rgb24"))
            if len(frames) == limit:
                break
    return frames


@pytest.fixture(scope="module")
def whole(rvm_session):
    return RVMSession(rvm_session.path, cut=False)


@pytest.fixture(scope="module")
def cut_session(rvm_session):
    return RVMSession(rvm_session.path, cut=True)


@pytest.mark.parametrize("source", ["720p", "1080p"])
def test_cut_graph_equals_published_graph(shared_data, cut_session, whole, source):
    """Worst-frame mean |Δα| and |Δfgr| < 1e-5 against the published graph, state fed back; the
    whole-array step, the deferred step over uint8 frames, and any band/column split agree."""
    assert cut_session.cut_path is not None
    if source == "720p":
        frames = clip_frames(shared_data / "people" / "test-sample1.mp4", 12)
    else:
        frames = [
            np.asarray(Image.open(shared_data / "people" / "sample0" / f"{i:04d}.jpg").convert("RGB")) for i in range(6)
        ]
    h, w = frames[0].shape[:2]
    ratio = cut_session.auto_downsample_ratio(h, w)
    s_ref = s_cut = s_def = whole.initial_state()
    worst_a = worst_f = 0.0
    for rgb in frames:
        src = to_src(rgb)
        ref = whole.step(src, s_ref, ratio)
        cut = cut_session.step(src, s_cut, ratio)
        matte, s_def = cut_session.step_deferred(src, s_def, ratio, guide=rgb)
        src[:] = 0  # the deferred result reads the uint8 guide, not the caller's buffer
        s_ref, s_cut = ref.state, cut.state
        worst_a = max(worst_a, float(np.abs(cut.pha - ref.pha).mean()))
        worst_f = max(worst_f, float(np.abs(cut.fgr - ref.fgr).mean()))
        rows, cols = slice(h // 3, h // 3 + 37), slice(w // 5, w // 5 + 301)
        assert np.abs(matte.alpha(rows) - cut.pha[0, 0, rows]).max() < 1e-6
        assert np.abs(matte.fgr(rows, cols) - cut.fgr[0, :, rows, cols]).max() < 1e-6
        assert cut.pha.min() >= 0 and cut.pha.max() <= 1 and cut.fgr.min() >= 0 and cut.fgr.max() <= 1
    # the fused composition (GuidedFinish.over, foreground never stored) gives the bytes of
    # compositing its own whole-array foreground and alpha, over a colour and over a picture
    everything = slice(0, h)
    fgr, alpha = matte.fgr(everything), matte.alpha(everything)
    for bg in (np.array([120, 255, 155], np.uint8), np.ascontiguousarray(rgb[::-1])):
        assert np.array_equal(
            FrameCompositor(h, w).render("composite", matte, bg), FrameCompositor(h, w).composite(fgr, alpha, bg)
        )
    assert worst_a < 1e-5 and worst_f < 1e-5
    assert ref.pha.mean() > 0.05  # a person is there: the comparison is not between empty mattes


def test_cut_is_cached_by_source_hash_never_beside_the_source(rvm_session, tmp_path, monkeypatch):
    monkeypatch.setenv("MATTEKIT_HOME", str(tmp_path / "home"))
    user = tmp_path / "user" / "my_rvm.onnx"
    user.parent.mkdir()
    user.write_bytes(rvm_session.path.read_bytes())
    first = cut_model(user)
    assert first.parent == tmp_path / "home" / "models" / "derived"
    assert sorted(p.name for p in user.parent.iterdir()) == ["my_rvm.onnx"]
    stamp = first.stat().st_mtime_ns
    assert cut_model(user) == first and first.stat().st_mtime_ns == stamp  # built once
    assert not [p for p in first.parent.iterdir() if p.name.endswith(".partial")]
    session = RVMSession(user, cut=True)
    assert session.cut_path == first


def test_graph_without_the_guided_filter_is_refused_and_runs_whole(tmp_path):
    import onnx
    from onnx import TensorProto, helper

    inputs = [
        helper.make_tensor_value_info(n, TensorProto.FLOAT, None)
        for n in ("src", "r1i", "r2i", "r3i", "r4i", "downsample_ratio")
    ]
    names = ("fgr", "pha", "r1o", "r2o", "r3o", "r4o")
    outputs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in names]
    nodes = [
        helper.make_node("Identity", ["src"], ["fgr"]),
        helper.make_node("ReduceMean", ["src"], ["pha"], axes=[1], keepdims=1),
    ]
    nodes += [helper.make_node("Identity", [f"r{i}i"], [f"r{i}o"]) for i in range(1, 5)]
    graph = helper.make_graph(nodes, "not-rvm", inputs, outputs)
    path = tmp_path / "plain.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 12)]), str(path))
    with pytest.raises(ModelError, match="guided filter"):
        cut_model(path, tmp_path / "cache")
    session = RVMSession(path, cut=True)
    assert session.cut_path is None
    src = np.random.default_rng(0).random((1, 3, 8, 10), dtype=np.float32)
    matte, _ = session.step_deferred(src, session.initial_state(), 1.0)
    assert np.array_equal(matte.fgr(slice(0, 8)), src[0])


def test_render_of_a_matte_equals_the_array_compositor(shared_data):
    """FrameCompositor.render (band by band, foreground only where alpha > 0) gives the same 8-bit
    images as the whole-array methods, on exact real alpha with large empty regions."""
    rgba = np.asarray(Image.open(shared_data / "hairball" / "in0001.png"))
    fgr = np.ascontiguousarray(rgba[:, :, :3].transpose(2, 0, 1), dtype=np.float32) / 255
    alpha = rgba[:, :, 3].astype(np.float32) / 255
    h, w = alpha.shape
    assert (alpha == 0).mean() > 0.2
    matte = ArrayMatte(alpha[None, None], fgr[None])
    asked = []

    class Spy(ArrayMatte):
        def fgr(self, rows, cols=slice(None), out=None):
            asked.append((rows, cols))
            return super().fgr(rows, cols, out)

    spy = Spy(alpha[None, None], fgr[None])
    compositor, reference = FrameCompositor(h, w), FrameCompositor(h, w)
    photo = np.asarray(
        Image.open(shared_data / "people" / "stills" / "background_0001.png").convert("RGB").resize((w, h))
    )
    for bg in (np.array([120, 255, 155], np.uint8), photo):
        assert np.array_equal(compositor.render("composite", spy, bg), reference.composite(fgr, alpha, bg))
        assert np.array_equal(
            compositor.render("composite", matte, bg, alpha=alpha), reference.composite(fgr, alpha, bg)
        )
    asked_pixels = sum((r.stop - r.start) * (c.stop - c.start) for r, c in asked) / 2
    assert asked_pixels < 0.9 * h * w  # the foreground was not computed where alpha is 0
    assert np.array_equal(compositor.render("rgba", matte), reference.rgba(fgr, alpha))
    assert np.array_equal(compositor.render("rgb", matte), reference.rgb(fgr))
    asked.clear()
    assert np.array_equal(compositor.render("gray", spy), reference.gray(alpha))
    assert asked == []  # alpha alone never asks for the foreground
    assert np.array_equal(compositor.alpha_plane(matte), alpha)
