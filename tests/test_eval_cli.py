"""``mattekit eval``: tables, CSV/JSON, and clear errors for missing or mismatched files."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from mattekit import metrics as M
from mattekit.cli.main import main
from media import SHARED_DATA

SHARED = SHARED_DATA
ALPHAMATTING = SHARED / "alphamatting"
HAIRBALL = SHARED / "hairball"


def _need(path: Path) -> None:
    if not path.exists():
        pytest.skip(f"test data missing: {path} (../shared/data beside the checkout)")


@pytest.fixture
def image_set(tmp_path):
    """Downscaled GT alphas and trimaps of GT02/GT05, and blurred predictions (saved as PNG)."""
    _need(ALPHAMATTING)
    dirs = {k: tmp_path / k for k in ("gt", "pred", "trimap")}
    for d in dirs.values():
        d.mkdir()
    for name in ("GT02", "GT05"):
        gt = cv2.imread(str(ALPHAMATTING / "gt" / f"{name}.png"), cv2.IMREAD_GRAYSCALE)
        tri = cv2.imread(str(ALPHAMATTING / "trimap1" / f"{name}.png"), cv2.IMREAD_GRAYSCALE)
        size = (gt.shape[1] // 3, gt.shape[0] // 3)
        gt = cv2.resize(gt, size, interpolation=cv2.INTER_AREA)
        cv2.imwrite(str(dirs["gt"] / f"{name}.png"), cv2.merge([gt, gt, gt]))  # 3-channel, like the set
        cv2.imwrite(str(dirs["trimap"] / f"{name}.png"), cv2.resize(tri, size, interpolation=cv2.INTER_NEAREST))
        cv2.imwrite(str(dirs["pred"] / f"{name}.png"), cv2.GaussianBlur(gt, (0, 0), 2.0))
    return dirs


def _read(dirs, name):
    gt = cv2.imread(str(dirs["gt"] / f"{name}.png"), cv2.IMREAD_GRAYSCALE) / 255.0
    pred = cv2.imread(str(dirs["pred"] / f"{name}.png"), cv2.IMREAD_GRAYSCALE) / 255.0
    tri = cv2.imread(str(dirs["trimap"] / f"{name}.png"), cv2.IMREAD_GRAYSCALE)
    return pred, gt, tri


def test_eval_images_table_csv_json_match_the_metrics(image_set, tmp_path, capsys):
    out_csv, out_json = tmp_path / "r.csv", tmp_path / "r.json"
    code = main(
        [
            "eval",
            "--pred",
            str(image_set["pred"]),
            "--gt",
            str(image_set["gt"]),
            "--trimap",
            str(image_set["trimap"]),
            "--convention",
            "paddleseg",
            "--csv",
            str(out_csv),
            "--json",
            str(out_json),
        ]
    )
    assert code == 0
    shown = capsys.readouterr().out
    assert "GT02" in shown and "GT05" in shown and "mean" in shown and "SAD ÷1000" in shown
    rows = list(csv.reader(out_csv.open(encoding="utf-8")))
    assert rows[0] == ["name", "SAD ÷1000", "MSE", "MAD", "Grad ÷1000", "Conn ÷1000"]
    assert [r[0] for r in rows[1:]] == ["GT02", "GT05", "mean"]
    report = json.loads(out_json.read_text())
    assert report["convention"] == "paddleseg"
    for item in report["items"]:
        expected = M.image_metrics(*_read(image_set, item["name"]), convention="paddleseg")
        for m in M.IMAGE_METRICS:
            assert item[m] == pytest.approx(expected[m], rel=1e-5), m
        assert item["SAD"] > 0
    assert report["mean"]["SAD"] == pytest.approx(np.mean([i["SAD"] for i in report["items"]]))


def test_eval_rvm_convention_scales_mse(image_set, tmp_path):
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    common = ["eval", "--pred", str(image_set["pred"]), "--gt", str(image_set["gt"])]
    assert main([*common, "--json", str(a)]) == 0  # rvm is the default
    assert main([*common, "--convention", "paddleseg", "--json", str(b)]) == 0
    ra, rb = json.loads(a.read_text()), json.loads(b.read_text())
    assert ra["columns"]["MSE"] == "MSE ×1e3"
    assert ra["mean"]["MSE"] == pytest.approx(rb["mean"]["MSE"] * 1e3, rel=1e-9)


def test_identical_prediction_gives_zero(image_set, tmp_path):
    out = tmp_path / "z.json"
    assert main(["eval", "--pred", str(image_set["gt"]), "--gt", str(image_set["gt"]), "--json", str(out)]) == 0
    assert all(v == 0 for v in json.loads(out.read_text())["mean"].values())


def test_missing_prediction_is_named(image_set, capsys):
    (image_set["pred"] / "GT05.png").unlink()
    code = main(["eval", "--pred", str(image_set["pred"]), "--gt", str(image_set["gt"])])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("mattekit: error: ") and "GT05" in err and "no prediction" in err
    assert "Traceback" not in err


def test_size_mismatch_is_named_with_sizes(image_set, capsys):
    p = image_set["pred"] / "GT02.png"
    a = cv2.imread(str(p), cv2.IMREAD_GRAYSCALE)
    cv2.imwrite(str(p), a[:-1])
    code = main(["eval", "--pred", str(image_set["pred"]), "--gt", str(image_set["gt"])])
    err = capsys.readouterr().err
    h, w = a.shape
    assert code == 2 and "GT02.png" in err and f"{w}x{h - 1}" in err and f"{w}x{h}" in err


def test_colour_image_is_not_a_matte(image_set, capsys):
    p = image_set["pred"] / "GT02.png"
    a = cv2.imread(str(p), cv2.IMREAD_GRAYSCALE)
    cv2.imwrite(str(p), cv2.merge([a, 255 - a, a]))
    assert main(["eval", "--pred", str(image_set["pred"]), "--gt", str(image_set["gt"])]) == 2
    assert "not an alpha matte" in capsys.readouterr().err


def test_missing_folder_and_report_inside_input(image_set, tmp_path, capsys):
    assert main(["eval", "--pred", str(tmp_path / "nope"), "--gt", str(image_set["gt"])]) == 2
    assert "nope" in capsys.readouterr().err
    code = main(
        [
            "eval",
            "--pred",
            str(image_set["pred"]),
            "--gt",
            str(image_set["gt"]),
            "--csv",
            str(image_set["gt"] / "r.csv"),
        ]
    )
    assert code == 3 and not (image_set["gt"] / "r.csv").exists()


@pytest.fixture
def hairball_clip(tmp_path):
    """Six hairball alpha frames at 1/4 size as a ground-truth clip folder."""
    _need(HAIRBALL)
    gt = tmp_path / "gt" / "hairball"
    gt.mkdir(parents=True)
    frames = []
    for i in range(1, 7):
        rgba = cv2.imread(str(HAIRBALL / f"in{i:04d}.png"), cv2.IMREAD_UNCHANGED)
        a = cv2.resize(rgba[..., 3], (240, 135), interpolation=cv2.INTER_AREA)
        cv2.imwrite(str(gt / f"{i:04d}.png"), a)
        frames.append(a)
    return gt, np.stack(frames)


def test_eval_video_detects_flicker(hairball_clip, tmp_path, capsys):
    _gt_dir, frames = hairball_clip
    pred = tmp_path / "pred" / "hairball"
    pred.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i, f in enumerate(frames):
        gain = 1 + 0.1 * rng.standard_normal()
        cv2.imwrite(str(pred / f"{i + 1:04d}.png"), np.clip(f * gain, 0, 255).astype(np.uint8))
    out = tmp_path / "v.json"
    assert (
        main(["eval", "--video", "--pred", str(tmp_path / "pred"), "--gt", str(tmp_path / "gt"), "--json", str(out)])
        == 0
    )
    report = json.loads(out.read_text())
    assert [i["name"] for i in report["items"]] == ["hairball"]
    assert report["columns"]["dtSSD"] == "dtSSD ×1e2"
    assert report["mean"]["dtSSD"] > 0 and report["mean"]["MESSDdt"] > 0
    same = tmp_path / "s.json"
    assert (
        main(["eval", "--video", "--pred", str(tmp_path / "gt"), "--gt", str(tmp_path / "gt"), "--json", str(same)])
        == 0
    )
    assert json.loads(same.read_text())["mean"]["dtSSD"] == 0


def test_eval_video_missing_frame(hairball_clip, tmp_path, capsys):
    gt_dir, _ = hairball_clip
    pred = tmp_path / "pred" / "hairball"
    pred.mkdir(parents=True)
    for f in sorted(gt_dir.iterdir())[:-1]:
        (pred / f.name).write_bytes(f.read_bytes())
    code = main(["eval", "--video", "--pred", str(tmp_path / "pred"), "--gt", str(tmp_path / "gt")])
    err = capsys.readouterr().err
    assert code == 2 and "missing 1 of 6 frames" in err and "0006" in err


def test_eval_runs_models_and_prints_one_row_each(tmp_path, capsys):
    """--model a,b --images DIR --gt DIR: each model mattes the images; its row is the mean of the
    metrics of its own alphas (checked against evaluating the fake model's alphas directly)."""
    _need(ALPHAMATTING)
    from PIL import Image

    from mattekit.evaluation import evaluate_images
    from mattekit.models.fake import fake_alpha

    dirs = {k: tmp_path / k for k in ("images", "gt", "pred")}
    for d in dirs.values():
        d.mkdir()
    for name in ("GT02", "GT05"):
        rgb = Image.open(ALPHAMATTING / "input" / f"{name}.png").convert("RGB")
        size = (rgb.width // 4, rgb.height // 4)
        rgb = np.asarray(rgb.resize(size, Image.BILINEAR))
        Image.fromarray(rgb).save(dirs["images"] / f"{name}.png")
        Image.open(ALPHAMATTING / "gt" / f"{name}.png").convert("L").resize(size, Image.BILINEAR).save(
            dirs["gt"] / f"{name}.png"
        )
        alpha = fake_alpha(rgb.transpose(2, 0, 1)[None].astype(np.float32) / 255)[0, 0]
        Image.fromarray(np.floor(alpha * 255 + 0.5).astype(np.uint8)).save(dirs["pred"] / f"{name}.png")
    expected = evaluate_images(dirs["pred"], dirs["gt"]).mean
    out_json = tmp_path / "cmp.json"
    assert (
        main(
            [
                "eval",
                "--model",
                "fake,rvm-mobilenetv3",
                "--images",
                str(dirs["images"]),
                "--gt",
                str(dirs["gt"]),
                "--json",
                str(out_json),
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out
    assert "fake" in printed and "rvm-mobilenetv3" in printed and "s/image" in printed
    rows = {item["name"]: item for item in json.loads(out_json.read_text())["items"]}
    assert list(rows) == ["fake", "rvm-mobilenetv3"]
    for metric, value in expected.items():
        assert rows["fake"][metric] == pytest.approx(value, rel=1e-4), metric  # float32 summation order
    assert rows["rvm-mobilenetv3"]["SAD"] != rows["fake"]["SAD"] and rows["fake"]["seconds"] > 0


def test_eval_model_needs_images(tmp_path, capsys):
    assert main(["eval", "--model", "fake", "--gt", str(tmp_path)]) == 2
    assert "--model runs models on still images" in capsys.readouterr().err
    assert main(["eval", "--gt", str(tmp_path)]) == 2
    assert "give either --pred" in capsys.readouterr().err
