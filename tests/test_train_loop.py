"""mattekit.train: losses, the compositing dataset, the four stages, resume, finetune and train verbs."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

torch = pytest.importorskip("torch")

from mattekit.cli.main import main  # noqa: E402
from mattekit.errors import Cancelled, InputError  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("torch_one_thread")]  # PyTorch training and export


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    """6 RGBA frames of a moving soft disc (96x96), fgr/pha pairs, 3 backgrounds, 2 segmentation pairs."""
    root = tmp_path_factory.mktemp("data")
    yy, xx = np.mgrid[:96, :96]
    rgba_dir, pairs = root / "rgba", root / "pairs"
    rgba_dir.mkdir()
    (pairs / "fgr").mkdir(parents=True)
    (pairs / "pha").mkdir()
    for i in range(6):
        r = np.hypot(yy - 48, xx - 30 - 6 * i)
        alpha = (np.clip(25 - r, 0, 1) * 255).astype(np.uint8)
        color = np.dstack([np.full_like(alpha, 200), (xx * 2).astype(np.uint8), np.full_like(alpha, 60)])
        Image.fromarray(np.dstack([color, alpha])).save(rgba_dir / f"{i:03d}.png")
        Image.fromarray(color).save(pairs / "fgr" / f"{i:03d}.jpg")
        Image.fromarray(alpha).save(pairs / "pha" / f"{i:03d}.png")
    bg = root / "bg"
    bg.mkdir()
    rng = np.random.default_rng(0)
    for i in range(3):
        Image.fromarray(rng.integers(0, 256, (80, 120, 3), dtype=np.uint8)).save(bg / f"{i}.png")
    seg = root / "seg"
    (seg / "image").mkdir(parents=True)
    (seg / "mask").mkdir()
    for i in range(2):
        Image.fromarray(rng.integers(0, 256, (90, 90, 3), dtype=np.uint8)).save(seg / "image" / f"{i}.jpg")
        Image.fromarray(((yy[:90, :90] > 40) * 255).astype(np.uint8)).save(seg / "mask" / f"{i}.png")
    return root


def alpha_frames_of(model: Path, tiny_data: Path, tmp_path: Path) -> int:
    """``mattekit video`` with the exported ``model`` on the tiny data's foreground frames (exit 0
    asserted); the number of alpha frames it wrote."""
    alpha = tmp_path / "alpha"
    args = ["video", str(tiny_data / "pairs" / "fgr"), "-a", str(alpha), "--output-type", "png_sequence"]
    assert main([*args, "--model", str(model), "-q"]) == 0
    return len(list(alpha.glob("*.png")))


def test_losses_vanish_on_truth_and_respond_to_errors():
    from mattekit.train.loss import laplacian_loss, matting_loss, segmentation_loss

    torch.manual_seed(0)
    pha = torch.rand(1, 3, 1, 64, 64)
    fgr = torch.rand(1, 3, 3, 64, 64)
    assert float(matting_loss(fgr, pha, fgr, pha)["total"]) == 0
    flat = laplacian_loss(torch.full((1, 1, 64, 64), 0.3), torch.full((1, 1, 64, 64), 0.7))
    assert float(flat) < 1e-6  # a constant offset has no band-pass content
    edge = torch.zeros(1, 1, 64, 64)
    edge[..., 32:] = 1
    assert float(laplacian_loss(edge, torch.zeros_like(edge))) > 0.01
    shifted = matting_loss(fgr, (pha + 0.1).clamp(0, 1), fgr, pha)
    assert float(shifted["pha_l1"]) > 0.05 and float(shifted["fgr_l1"]) == 0
    zero = torch.zeros_like(pha)
    assert float(matting_loss(torch.rand_like(fgr), zero, fgr, zero)["fgr_l1"]) == 0  # colour ignored where α = 0
    flicker = pha.clone()
    flicker[:, 1] = 1 - flicker[:, 1]
    assert float(matting_loss(fgr, flicker, fgr, pha)["pha_coherence"]) > 0.1
    assert float(segmentation_loss(torch.full((1, 1, 1, 8, 8), 20.0), torch.ones(1, 1, 1, 8, 8))) < 1e-6


def test_dataset_sources_and_reproducibility(tiny_data, tmp_path):
    from mattekit.train.dataset import (
        CompositingDataset,
        SegmentationDataset,
        SegmentationSource,
        open_backgrounds,
        open_foreground,
    )

    rgba = open_foreground(tiny_data / "rgba")
    pairs = open_foreground(tiny_data / "pairs")
    assert rgba.length == pairs.length == 6
    assert np.array_equal(rgba.read(2)[:, :, 3], pairs.read(2)[:, :, 3])
    # a transparent clip (what mattekit key writes)
    from fractions import Fraction

    from mattekit.io.video_writer import open_writer

    writer = open_writer(tmp_path / "fg.webm", "webm", 96, 96, Fraction(24), Fraction(1, 24))
    for i in range(6):
        writer.write(rgba.read(i), i, i)
    writer.close()
    clip = open_foreground(tmp_path / "fg.webm")
    assert clip.length == 6 and abs(int(clip.read(0)[48, 30, 3]) - int(rgba.read(0)[48, 30, 3])) < 8
    backgrounds = open_backgrounds([tiny_data / "bg"])
    data = CompositingDataset([rgba, pairs, clip], backgrounds, (64, 80), 3, seed=5)
    fgr, pha, bgr = data[7]
    assert fgr.shape == (3, 3, 64, 80) and pha.shape == (3, 1, 64, 80) and bgr.shape == (3, 3, 64, 80)
    again = CompositingDataset([rgba, pairs, clip], backgrounds, (64, 80), 3, seed=5)[7]
    assert all(torch.equal(a, b) for a, b in zip((fgr, pha, bgr), again, strict=True))
    other = CompositingDataset([rgba, pairs, clip], backgrounds, (64, 80), 3, seed=6)[7]
    assert not torch.equal(bgr, other[2])
    assert 0 < float(pha.mean()) < 1 and float(pha.max()) > 0.9
    image, mask = SegmentationDataset([SegmentationSource.open(tiny_data / "seg")], (64, 64), 2)[0]
    assert image.shape == (2, 3, 64, 64) and set(torch.unique(mask).tolist()) <= {0.0, 1.0}


def test_sources_refuse_frames_without_alpha(tmp_path):
    from mattekit.train.dataset import open_foreground

    (tmp_path / "rgb").mkdir()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "rgb" / "0.jpg")
    with pytest.raises(InputError, match="no alpha"):
        open_foreground(tmp_path / "rgb")
    with pytest.raises(InputError, match="not found"):
        open_foreground(tmp_path / "missing")


def tiny_stage(name, tiny_data, checkpoint_dir, **changes):
    from mattekit.train.config import load_config

    settings = [
        f"foreground={tiny_data / 'rgba'},{tiny_data / 'pairs'}",
        f"backgrounds={tiny_data / 'bg'}",
        f"segmentation={tiny_data / 'seg'}",
        "resolution_lr=64",
        "seq_length_lr=2",
        "batch_size=1",
        "steps=1",
        f"checkpoint_dir={checkpoint_dir}",
        "validation_fraction=0.3",
        "device=cpu",
    ]
    config = load_config(name).override(settings)
    if config.resolution_hr:
        config = config.override(["resolution_hr=128", "seq_length_hr=2"])
    return config.override([f"{k}={v}" for k, v in changes.items()])


def test_four_shipped_stages_chain_on_tiny_data(tiny_data, tmp_path):
    from mattekit.train.config import load_config
    from mattekit.train.train import run_stage

    paper = {n: load_config(n) for n in ("stage1", "stage2", "stage3", "stage4")}
    assert (paper["stage1"].seq_length_lr, paper["stage2"].seq_length_lr, paper["stage3"].seq_length_lr) == (15, 50, 40)
    assert paper["stage2"].lr_backbone == paper["stage1"].lr_backbone / 2
    assert paper["stage1"].resolution_hr == paper["stage2"].resolution_hr == 0 and paper["stage3"].resolution_hr == 2048
    assert paper["stage3"].lr_refiner == 2e-4 and paper["stage4"].lr_decoder == 5e-5
    previous = "scratch"
    for stage in paper:
        config = tiny_stage(stage, tiny_data, tmp_path / stage, init=previous)
        result = run_stage(config)
        assert len(result.losses) == 1 and np.isfinite(result.losses[0])
        assert set(result.validation[1]) == {"MAD", "MSE", "Grad", "dtSSD"}
        previous = str(tmp_path / stage / "last.pt")
    # stage 3 trained the guided filter (its learning rate is the only non-zero one for it)
    from mattekit.train.checkpoint import load_checkpoint

    s2, s3 = load_checkpoint(tmp_path / "stage2" / "last.pt"), load_checkpoint(tmp_path / "stage3" / "last.pt")
    key = "refiner.conv.6.weight"
    assert torch.equal(s2["model"][key], load_checkpoint(tmp_path / "stage1" / "last.pt")["model"][key])
    assert not torch.equal(s2["model"][key], s3["model"][key])


def test_resume_after_sigterm_and_after_a_kill_gives_the_same_loss_curve(tiny_data, tmp_path):
    from mattekit.train.train import run_stage

    base = {"init": "rvm-mobilenetv3", "freeze_batchnorm": "true", "steps": 4, "segmentation": ""}
    whole = run_stage(tiny_stage("stage1", tiny_data, tmp_path / "whole", **base)).losses

    config = tiny_stage("stage1", tiny_data, tmp_path / "stopped", **base)

    def sigterm_at_2(report):
        if report.step == 2:
            os.kill(os.getpid(), signal.SIGTERM)

    with pytest.raises(Cancelled, match="stopped at step 2 of 4") as stopped:
        run_stage(config, on_step=sigterm_at_2)
    assert stopped.value.exit_code == 143  # 128 + SIGTERM, as a shell reports it
    assert run_stage(config).losses == pytest.approx(whole, abs=1e-6)

    killed = tiny_stage("stage1", tiny_data, tmp_path / "killed", checkpoint_every=2, **base)

    def die_at_3(report):
        if report.step == 3:
            raise SystemExit("killed")  # no checkpoint at step 3: resume must replay it from step 2

    with pytest.raises(SystemExit):
        run_stage(killed, on_step=die_at_3)
    assert run_stage(killed).losses == pytest.approx(whole, abs=1e-6)


def test_finetune_verb_exports_a_model_mattekit_video_runs(tiny_data, tmp_path, capsys):
    out = tmp_path / "my-model.onnx"
    args = [
        "finetune",
        "--foreground",
        str(tiny_data / "rgba"),
        "--backgrounds",
        str(tiny_data / "bg"),
        "--steps",
        "2",
        "-o",
        str(out),
        "--resolution",
        "64",
        "--seq-length",
        "2",
        "--threads",
        "1",
        "-q",
    ]
    assert main(args) == 0
    assert out.is_file() and (tmp_path / "my-model.onnx.checkpoints" / "last.pt").is_file()
    assert main(args) == 3  # exists: refused before any training
    assert "already exists" in capsys.readouterr().err
    assert alpha_frames_of(out, tiny_data, tmp_path) == 6


def test_train_verb_errors_are_one_line(tiny_data, tmp_path, capsys):
    assert main(["train", "--config", str(tmp_path / "nope.toml")]) == 2
    assert "config not found (shipped: stage1, stage2, stage3, stage4)" in capsys.readouterr().err
    bad = tmp_path / "bad.toml"
    bad.write_text("[schedule]\nlearning_rate = 1\n")
    assert main(["train", "--config", str(bad)]) == 2
    assert "unknown setting 'learning_rate'" in capsys.readouterr().err
    assert main(["train", "--config", "stage1", "--set", "steps=many"]) == 2
    assert (
        main(
            [
                "train",
                "--config",
                "stage1",
                "--set",
                f"foreground={tmp_path / 'none'}",
                "--set",
                f"backgrounds={tiny_data / 'bg'}",
                "--set",
                "segmentation=",
                "-q",
            ]
        )
        == 2
    )
    assert "none: not found" in capsys.readouterr().err
    assert (
        main(
            [
                "finetune",
                "--foreground",
                str(tiny_data / "rgba"),
                "--backgrounds",
                str(tiny_data / "bg"),
                "-o",
                str(tmp_path / "m.onnx"),
                "--device",
                "cuda" if not torch.cuda.is_available() else "mps",
                "--steps",
                "1",
                "-q",
            ]
        )
        != 0
    )
    assert "not available" in capsys.readouterr().err
    # a step that cannot fit in memory is refused before its data is built (it was built clip by
    # clip until the machine ran out of memory)
    huge = ["finetune", "--foreground", str(tiny_data / "rgba"), "--backgrounds", str(tiny_data / "bg")]
    huge += ["-o", str(tmp_path / "m.onnx"), "--steps", "1", "-q", "--batch-size", "100000000"]
    assert main(huge) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "needs about 6.1e+07 GiB per step on cpu" in err
    assert not (tmp_path / "m.onnx").exists() and not (tmp_path / "m.onnx.checkpoints" / "last.pt").exists()


def test_memory_estimate_refuses_only_what_cannot_fit():
    from mattekit.train.config import StageConfig
    from mattekit.train.memory import check_step_memory, step_bytes

    measured = StageConfig(batch_size=1, seq_length_lr=8, resolution_lr=400)  # ~ 512x288 x 8 frames
    assert 2.5 * 2**30 < step_bytes(measured, "cpu") < 4 * 2**30  # train_speed.py peaked at 3.7-4.0 GiB
    check_step_memory(measured, "cpu", available=24 * 2**30)
    with pytest.raises(ValueError, match="batch_size 4 × seq_length 15 × 512² px"):
        check_step_memory(StageConfig(batch_size=4, seq_length_lr=15, resolution_lr=512), "cpu", 24 * 2**30)
    check_step_memory(StageConfig(batch_size=4, seq_length_lr=15, resolution_lr=512), "cuda", 24 * 2**30)


def test_finetune_ctrl_c_saves_a_checkpoint_and_the_same_command_resumes(tiny_data, tmp_path):
    import subprocess
    import sys
    import time

    from mattekit.train.checkpoint import load_checkpoint

    out = tmp_path / "m.onnx"
    checkpoint = tmp_path / "m.onnx.checkpoints" / "last.pt"

    def command(steps):
        return [
            sys.executable,
            "-m",
            "mattekit",
            "finetune",
            "--foreground",
            str(tiny_data / "rgba"),
            "--backgrounds",
            str(tiny_data / "bg"),
            "--steps",
            str(steps),
            "-o",
            str(out),
            "--resolution",
            "64",
            "--seq-length",
            "2",
            "--checkpoint-every",
            "1",
            "--threads",
            "1",
            "-q",
        ]

    proc = subprocess.Popen(command(500), stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 180
    while not checkpoint.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=180)
    assert proc.returncode == 130, err
    assert "stopped at step" in err and "run the same command again to resume" in err
    assert not out.exists()
    done = load_checkpoint(checkpoint)["step"]
    assert 1 <= done < 500
    # the same command (here with fewer steps left, a change resuming allows) continues from there
    assert subprocess.run(command(done + 1), capture_output=True, text=True, timeout=300).returncode == 0
    state = load_checkpoint(checkpoint)
    assert state["step"] == done + 1 and len(state["losses"]) == done + 1
    assert out.is_file()


def test_train_verb_exports_an_efficientnetv2_model_mattekit_video_runs(tiny_data, tmp_path, capsys):
    """`train --export` for a variant without a published graph (traced by torch.onnx.export)."""
    out = tmp_path / "effnet.onnx"
    settings = [
        f"foreground={tiny_data / 'rgba'}",
        f"backgrounds={tiny_data / 'bg'}",
        "segmentation=",
        "resolution_lr=64",
        "seq_length_lr=2",
        "steps=1",
        "variant=efficientnetv2",
        f"checkpoint_dir={tmp_path / 'ckpt'}",
        "validation_fraction=0.3",
        "device=cpu",
    ]
    args = ["train", "--config", "stage1", "--export", str(out), "--threads", "1"]
    for setting in settings:
        args += ["--set", setting]
    assert main(args) == 0
    assert "ONNX vs PyTorch max |Δ|" in capsys.readouterr().out
    assert alpha_frames_of(out, tiny_data, tmp_path) == 6
