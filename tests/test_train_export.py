"""ONNX export of every MattingNetwork variant by torch.onnx.export (mattekit.train.onnx_export.trace_onnx)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

torch = pytest.importorskip("torch")

from mattekit.cli.main import main  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("torch_one_thread")]  # PyTorch training and export


def random_model(variant):
    """Random-init network with batch norm statistics as after training, and an alpha head scaled
    so alpha lies inside (0, 1) instead of clamping to one value (else the comparison is empty)."""
    from mattekit.train.model import MattingNetwork

    torch.manual_seed(0)
    model = MattingNetwork(variant).eval()
    with torch.no_grad():
        gen = torch.Generator().manual_seed(1)
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.add_(0.1 * torch.randn(module.running_mean.shape, generator=gen))
                module.running_var.mul_(1.5)
                module.weight.mul_(1.1)
        conv = model.project_mat.conv  # fgr residual (3) + alpha (1)
        conv.weight.mul_(0.1)
        conv.bias.copy_(torch.tensor([0.0, 0.0, 0.0, 0.5]))
    return model


def frames(count=3, height=90, width=130):
    """Odd sizes unlike the tracing size: the decoder's crops must follow the input."""
    rng = np.random.default_rng(0)
    base = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    return np.stack([np.roll(base, 7 * i, axis=1) for i in range(count)])


@pytest.mark.parametrize("variant", ["mobilenetv3", "resnet50", "efficientnetv2"])
def test_traced_export_matches_pytorch_with_state_carried(variant, tmp_path):
    import onnx

    from mattekit.models.base import to_src
    from mattekit.models.rvm_onnx import INPUT_NAMES, OUTPUT_NAMES, RVMSession
    from mattekit.train.onnx_export import export_errors, trace_onnx

    model = random_model(variant)
    path = trace_onnx(model, tmp_path / f"{variant}.onnx")
    graph = onnx.load(str(path))
    assert (
        [i.name for i in graph.graph.input]
        == list(INPUT_NAMES)
        == ["src", "r1i", "r2i", "r3i", "r4i", "downsample_ratio"]
    )
    assert [o.name for o in graph.graph.output] == list(OUTPUT_NAMES) == ["fgr", "pha", "r1o", "r2o", "r3o", "r4o"]
    assert graph.ir_version <= 10
    clip = frames()
    for ratio in (1.0, 0.4):
        fgr_error, pha_error = export_errors(model, path, clip, ratio)
        assert fgr_error < 1e-4 and pha_error < 1e-4, (ratio, fgr_error, pha_error)
    session = RVMSession(path)
    result = session.step(to_src(clip[0]), session.initial_state(), 0.4)
    assert result.pha.shape == (1, 1, 90, 130) and result.fgr.shape == (1, 3, 90, 130)
    assert float(result.pha.std()) > 1e-3 and 0 < float(result.pha.mean()) < 1  # alpha not one clamped value


def test_exported_resnet50_runs_in_mattekit_video(tmp_path):
    from mattekit.train.onnx_export import export_onnx

    model = random_model("resnet50")
    path = export_onnx(model, tmp_path / "resnet50.onnx")
    clip = frames(3, 72, 96)
    folder = tmp_path / "frames"
    folder.mkdir()
    for i, rgb in enumerate(clip):
        Image.fromarray(rgb).save(folder / f"{i:03d}.png")
    out = tmp_path / "alpha"
    assert (
        main(
            [
                "video",
                str(folder),
                "-a",
                str(out),
                "--output-type",
                "png_sequence",
                "--model",
                str(path),
                "--downsample-ratio",
                "0.5",
                "-q",
            ]
        )
        == 0
    )
    written = sorted(out.glob("*.png"))
    assert len(written) == 3
    with torch.no_grad():
        _, pha, *_ = model(
            torch.from_numpy(clip[0]).permute(2, 0, 1)[None].float() / 255, downsample_ratio=0.5, refine=True
        )
    got = np.asarray(Image.open(written[0]), dtype=np.float32) / 255
    assert np.abs(got - pha[0, 0].numpy()).max() < 1 / 255 + 1e-4
