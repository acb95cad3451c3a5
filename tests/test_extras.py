"""A missing extra is one line naming the pip command, a non-zero exit, and no traceback
(issue 14 item 6). The extra's modules are hidden by setting ``sys.modules[name] = None``, which
makes ``import name`` fail as it does when the package is not installed."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from mattekit.cli.main import main
from mattekit.extras import EXTRAS, VERB_EXTRAS, MissingExtra, missing, require

SERVE_LINE = "mattekit: error: mattekit serve needs the server extra: pip install 'mattekit[server]'"


def hide(monkeypatch, *modules: str) -> None:
    for name in modules:
        monkeypatch.setitem(sys.modules, name, None)


def test_pyproject_declares_every_extra_and_the_test_extra_pulls_them_all():
    with open(Path(__file__).resolve().parent.parent / "pyproject.toml", "rb") as f:
        extras = tomllib.load(f)["project"]["optional-dependencies"]
    assert set(EXTRAS) <= set(extras)
    pulled = [r for r in extras["test"] if r.startswith("mattekit[")]
    assert len(pulled) == 1 and set(pulled[0][len("mattekit[") : -1].split(",")) == set(EXTRAS)


def test_a_hidden_module_is_missing(monkeypatch):
    assert missing("server") == []
    hide(monkeypatch, "uvicorn")
    assert missing("server") == ["uvicorn"]
    with pytest.raises(MissingExtra, match=r"^x needs the server extra: pip install 'mattekit\[server\]'$"):
        require("server", "x")


def test_serve_without_the_server_extra_says_which_extra_in_one_line(monkeypatch, capsys):
    hide(monkeypatch, "fastapi")
    assert main(["serve", "--port", "0"]) == 1
    out, err = capsys.readouterr()
    assert err.strip() == SERVE_LINE and out == ""


def test_serve_help_without_the_server_extra_names_it(monkeypatch, capsys):
    hide(monkeypatch, "python_multipart")
    assert main(["serve", "--help"]) == 0
    assert "Needs the server extra: pip install 'mattekit[server]'" in capsys.readouterr().out


@pytest.mark.parametrize(("verb", "hidden"), [("demo", "skimage"), ("train", "torch"), ("finetune", "torchvision")])
def test_other_verbs_without_their_extra(monkeypatch, capsys, tmp_path, verb, hidden):
    hide(monkeypatch, hidden)
    assert main([verb, str(tmp_path / "anything")]) == 1
    extra = VERB_EXTRAS[verb]
    assert capsys.readouterr().err.strip() == (
        f"mattekit: error: mattekit {verb} needs the {extra} extra: pip install 'mattekit[{extra}]'"
    )


def test_building_int8_without_the_int8_extra(monkeypatch, tmp_path):
    from mattekit.models import quantize

    hide(monkeypatch, "skimage")
    source = tmp_path / "model.onnx"
    source.write_bytes(b"not read before the check")
    with pytest.raises(MissingExtra, match=r"^building the INT8 model needs the int8 extra: "):
        quantize.build_int8(source, out_path=tmp_path / "int8.onnx")
    assert not (tmp_path / "int8.onnx").exists()


def test_serve_without_fastapi_in_a_real_process():
    """The installed entry point in a fresh interpreter: one line on stderr, exit 1, no traceback."""
    code = "import sys; sys.modules['fastapi'] = None; from mattekit.cli.main import main; sys.exit(main(['serve']))"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    assert proc.stderr.strip() == SERVE_LINE
