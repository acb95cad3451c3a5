"""convert_video as a drop-in for Robust Video Matting's: the model first, RVM's parameters, and
mattekit's own input-first calls still working."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pytest

from mattekit import convert_video
from mattekit.errors import ModelError, ParameterError, ParameterTypeError
from mattekit.io.rgba_reader import read_rgba_frames
from media import cut_clip

FRAMES, SIZE = 12, (320, 180)


@pytest.fixture(scope="module")
def short_clip(shared_data, tmp_path_factory) -> Path:
    """The first 12 frames of people/test-sample1.mp4 at 320x180, 30 fps (real footage, no audio)."""
    return cut_clip(
        shared_data / "people" / "test-sample1.mp4",
        tmp_path_factory.mktemp("rvm") / "input.mp4",
        FRAMES,
        SIZE,
        30,
        stream_options={"crf": "12"},
    )


def frames_of(path: Path) -> list[np.ndarray]:
    return [f.rgba for f in read_rgba_frames(path)]


RVM_README_SCRIPT = """
from mattekit import convert_video

model = "rvm-mobilenetv3"        # RVM: torch.hub.load("PeterL1n/RobustVideoMatting", "mobilenetv3")

convert_video(
    model,                           # The model, can be on any device (cpu or cuda).
    input_source='input.mp4',        # A video file or an image sequence directory.
    output_type='video',             # Choose "video" or "png_sequence"
    output_composition='com.mp4',    # File path if video; directory path if png sequence.
    output_alpha="pha.mp4",          # [Optional] Output the raw alpha prediction.
    output_foreground="fgr.mp4",     # [Optional] Output the raw foreground prediction.
    output_video_mbps=4,             # Output video mbps. Not needed for png sequence.
    downsample_ratio=None,           # A hyperparameter to adjust or use None for auto.
    seq_chunk=12,                    # Process n frames at once for better parallelism.
)
"""


@pytest.mark.slow
def test_rvm_readme_script_runs_unchanged_with_the_real_model(short_clip, rvm_session, tmp_path):
    """The call of RVM's README, line for line (only the model line differs: no PyTorch hub here),
    in a fresh process; its alpha equals mattekit's own keyword call with the same model."""
    (tmp_path / "input.mp4").symlink_to(short_clip)
    script = tmp_path / "rvm_readme.py"
    script.write_text(textwrap.dedent(RVM_README_SCRIPT))
    proc = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    outputs = {name: frames_of(tmp_path / name) for name in ("com.mp4", "pha.mp4", "fgr.mp4")}
    for name, frames in outputs.items():
        assert len(frames) == FRAMES, name
        assert frames[0].shape == (SIZE[1], SIZE[0], 4), name
    assert b"bitrate=4000" in (tmp_path / "com.mp4").read_bytes()  # output_video_mbps=4 reached libx264
    reference = tmp_path / "ref_pha.mp4"
    convert_video(input_source=short_clip, output_alpha=reference, model=rvm_session, progress=False)
    same_model = [
        np.abs(a[..., 0].astype(int) - b[..., 0]).mean()
        for a, b in zip(outputs["pha.mp4"], frames_of(reference), strict=True)
    ]
    # same model, same frames: only the encoders' bit-rate choice differs (4 Mbit/s against CRF 18)
    assert max(same_model) < 0.6, same_model  # measured 0.19..0.37 (of 255) per frame
    alpha = np.stack([f[..., 0] for f in outputs["pha.mp4"]])
    assert 0.05 < (alpha > 128).mean() < 0.9  # a person, not an empty or full matte


def test_model_first_positional_and_keyword_forms_agree(short_clip, fake_session, tmp_path):
    warnings.simplefilter("error", FutureWarning)  # none of these forms is deprecated
    forms = {
        "rvm_positional": lambda out: convert_video(
            fake_session, input_source=short_clip, output_alpha=out, progress=False
        ),
        "rvm_keyword": lambda out: convert_video(
            model=fake_session, input_source=short_clip, output_alpha=out, progress=False
        ),
        "mattekit_short": lambda out: convert_video(short_clip, output_alpha=out, model=fake_session, progress=False),
        "mattekit_keyword": lambda out: convert_video(
            input_source=short_clip, output_alpha=out, model=fake_session, progress=False
        ),
    }
    results = {}
    for name, call in forms.items():
        out = tmp_path / f"{name}.mp4"
        results[name] = call(out)
        assert results[name].frames == FRAMES and results[name].outputs == {"alpha": out}
    first = frames_of(tmp_path / "rvm_positional.mp4")
    for name in forms:
        assert all(np.array_equal(a, b) for a, b in zip(first, frames_of(tmp_path / f"{name}.mp4"), strict=True))


def test_rvm_positional_order(short_clip, fake_session, tmp_path):
    """All of RVM's parameters by position: model, input_source, input_resize, downsample_ratio,
    output_type, output_composition, output_alpha, output_foreground, output_video_mbps,
    seq_chunk, num_workers, progress, device, dtype."""
    out = tmp_path / "frames"
    result = convert_video(
        fake_session, short_clip, (64, 36), 0.5, "png_sequence", None, out, None, None, 12, 0, False, "cpu", "float32"
    )
    assert result.frames == FRAMES and result.downsample_ratio == 0.5
    assert len(list(out.glob("*.png"))) == FRAMES


def test_mattekit_earlier_positional_output_type_still_works_with_a_warning(short_clip, fake_session, tmp_path):
    with pytest.warns(
        FutureWarning,
        match=r"^convert_video\(input, output_type\) with output_type positional "
        r"is deprecated; use output_type=$",
    ):
        result = convert_video(
            short_clip, "png_sequence", output_alpha=tmp_path / "f", model=fake_session, progress=False
        )
    assert result.frames == FRAMES and len(list((tmp_path / "f").glob("*.png"))) == FRAMES


def test_input_resize_resizes_before_matting(short_clip, fake_session, tmp_path):
    out = tmp_path / "small.mp4"
    result = convert_video(
        fake_session, input_source=short_clip, input_resize=(161, 91), output_composition=out, progress=False
    )
    frames = frames_of(out)
    assert result.frames == len(frames) == FRAMES
    assert frames[0].shape == (91, 161, 4)  # (width, height) as RVM; odd sizes kept exactly


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"input_resize": (0, 10)}, ParameterError, r"^input_resize: sides must be in \[1, 16384\] pixels, not 0x10$"),
        ({"input_resize": (10.5, 10)}, ParameterTypeError, r"^input_resize: must be \(width, height\) in whole pixels"),
        ({"input_resize": "320x180"}, ParameterTypeError, r"^input_resize: must be \(width, height\)"),
        ({"num_workers": -1}, ParameterError, r"^num_workers: must be an integer in \[0, 1024\], not -1$"),
        ({"num_workers": True}, ParameterTypeError, r"^num_workers: must be an integer >= 0, not True$"),
        ({"device": "tpu"}, ParameterError, r"^device: must be 'cpu', 'cuda' or 'cuda:N', not 'tpu'$"),
        ({"dtype": "float64"}, ParameterError, r"^dtype: must be float32 or float16"),
        ({"seq_chunk": 0}, ParameterError, r"^seq_chunk: must be an integer in \[1, 1024\], not 0$"),
    ],
)
def test_rvm_parameters_are_checked_before_anything_is_written(
    short_clip, fake_session, tmp_path, kwargs, error, message
):
    with pytest.raises(error, match=message):
        convert_video(fake_session, input_source=short_clip, output_alpha=tmp_path / "a.mp4", progress=False, **kwargs)
    assert list(tmp_path.iterdir()) == []


def test_device_and_dtype_choose_provider_and_precision(short_clip, tmp_path):
    import onnxruntime as ort
    import torch

    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("this machine has CUDA; the refusal below is for machines without it")
    with pytest.raises(ModelError, match=r"device cuda: this ONNX Runtime has no CUDA provider"):
        convert_video("fake", input_source=short_clip, output_alpha=tmp_path / "a.mp4", device="cuda", progress=False)
    with pytest.raises(ModelError, match=r"device cuda:1: this ONNX Runtime has no CUDA provider"):
        convert_video(
            "fake",
            input_source=short_clip,
            output_alpha=tmp_path / "a.mp4",
            device=torch.device("cuda:1"),
            progress=False,
        )
    result = convert_video(
        "fake",
        input_source=short_clip,
        output_alpha=tmp_path / "b.mp4",
        device=torch.device("cpu"),
        dtype=torch.float32,
        progress=False,
    )
    assert result.frames == FRAMES
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b.mp4"]


def test_precision_of_dtypes():
    import torch

    from mattekit.pipeline.rvm_api import precision_of

    assert [precision_of(d) for d in (None, torch.float32, torch.float16, np.float16, "float32", "half")] == [
        None,
        "fp32",
        "fp16",
        "fp16",
        "fp32",
        "fp16",
    ]


def test_a_pytorch_module_or_two_models_are_refused_clearly(short_clip, fake_session, tmp_path):
    import torch

    with pytest.raises(ParameterTypeError, match=r"^model: is a PyTorch module; mattekit runs ONNX models"):
        convert_video(torch.nn.Conv2d(3, 3, 1), input_source=short_clip, output_alpha=tmp_path / "a.mp4")
    with pytest.raises(TypeError, match=r"got the model twice"):
        convert_video(fake_session, input_source=short_clip, output_alpha=tmp_path / "a.mp4", model="fake")
    with pytest.raises(TypeError, match=r"needs an input"):
        convert_video(output_alpha=tmp_path / "a.mp4", model="fake")
    assert list(tmp_path.iterdir()) == []


def test_rvm_defaults_are_those_of_rvm():
    import inspect

    params = inspect.signature(convert_video).parameters
    rvm_order = [
        "input_source",
        "input_resize",
        "downsample_ratio",
        "output_type",
        "output_composition",
        "output_alpha",
        "output_foreground",
        "output_video_mbps",
        "seq_chunk",
        "num_workers",
        "progress",
        "device",
        "dtype",
    ]
    names = list(params)
    assert names[1:14] == rvm_order
    assert params[names[0]].kind is inspect.Parameter.POSITIONAL_ONLY
    assert {n: params[n].default for n in ("output_type", "seq_chunk", "num_workers", "progress")} == {
        "output_type": "video",
        "seq_chunk": 1,
        "num_workers": 0,
        "progress": True,
    }
    assert params["model"].kind is inspect.Parameter.KEYWORD_ONLY
