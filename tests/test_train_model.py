"""mattekit.train: the PyTorch MattingNetwork, weight import from RVM's ONNX file, export back."""

from __future__ import annotations

import av
import numpy as np
import pytest
from PIL import Image

torch = pytest.importorskip("torch")

from mattekit.cli.main import main  # noqa: E402
from mattekit.errors import ModelError  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("torch_one_thread")]  # PyTorch training and export


@pytest.fixture(scope="module")
def pretrained():
    from mattekit.train.onnx_import import pretrained

    return pretrained().eval()


def clip_frames(path, count, size):
    frames = []
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            frames.append(frame.to_ndarray(format="rgb24", width=size[0], height=size[1]))
            if len(frames) == count:
                break
    return np.stack(frames)


@pytest.mark.parametrize(
    ("variant", "millions"), [("mobilenetv3", 3.749), ("resnet50", 26.890), ("efficientnetv2", None)]
)
def test_variants_shapes_and_parameter_counts(variant, millions):
    from mattekit.train.model import MattingNetwork

    model = MattingNetwork(variant).eval()
    count = sum(p.numel() for p in model.parameters()) - sum(p.numel() for p in model.project_seg.parameters())
    if millions is not None:  # the paper's Table 6 (parameters of the matting network)
        assert count / 1e6 == pytest.approx(millions, abs=0.001)
    clip = torch.rand(1, 2, 3, 70, 90)  # odd sizes: the decoder crops after each upsampling
    with torch.no_grad():
        fgr, pha, *rec = model(clip, downsample_ratio=0.5)
        seg, *_ = model(clip, segmentation_pass=True)
        _one_fgr, one_pha, *_ = model(clip[:, 0], *rec, downsample_ratio=0.5)
    assert fgr.shape == (1, 2, 3, 70, 90) and pha.shape == (1, 2, 1, 70, 90) and seg.shape == (1, 2, 1, 70, 90)
    assert one_pha.shape == (1, 1, 70, 90)
    assert float(pha.min()) >= 0 and float(pha.max()) <= 1
    assert [r.shape[1] for r in rec] == [
        16,
        model.decoder.decode2.conv[0].out_channels // 2,
        model.decoder.decode3.conv[0].out_channels // 2,
        model.aspp_channels // 2,
    ]


def test_clip_equals_frame_by_frame(pretrained):
    clip = torch.rand(1, 3, 3, 64, 96)
    with torch.no_grad():
        _, pha_clip, *_ = pretrained(clip, downsample_ratio=0.5)
        rec = [None] * 4
        steps = []
        for t in range(3):
            _, pha, *rec = pretrained(clip[:, t], *rec, downsample_ratio=0.5)
            steps.append(pha)
    assert torch.allclose(pha_clip, torch.stack(steps, 1), atol=1e-5)


def test_import_matches_onnx_runtime_with_state_carried(pretrained, rvm_session, shared_data):
    """10 frames of test-sample1 (480x270, ratio 0.5) through both, recurrent state carried; the full
    79-frame 1280x720 run is in docs/training.md (benchmarks/train_import_equivalence.py)."""
    from mattekit.models.base import to_src

    frames = clip_frames(shared_data / "people" / "test-sample1.mp4", 10, (480, 270))
    state, rec, errors = rvm_session.initial_state(), [None] * 4, []
    with torch.no_grad():
        for rgb in frames:
            src = to_src(rgb)
            ref = rvm_session.step(src, state, 0.5)
            state = ref.state
            fgr, pha, *rec = pretrained(torch.from_numpy(src), *rec, downsample_ratio=0.5, refine=True)
            errors.append(float(np.abs(pha.numpy() - ref.pha).mean()))
            assert np.abs(fgr.numpy() - ref.fgr).max() < 1e-3
    assert max(errors) < 1e-5, errors
    assert float(pha.mean()) > 0.05  # a person is there: not two empty mattes agreeing


def test_import_into_wrong_variant_is_refused(rvm_session):
    from mattekit.train.model import MattingNetwork
    from mattekit.train.onnx_import import load_onnx_weights

    with pytest.raises(ModelError, match="convolutions"):
        load_onnx_weights(MattingNetwork("resnet50"), rvm_session.path)


def test_export_matches_pytorch_and_runs_in_mattekit_video(pretrained, shared_data, tmp_path):
    import copy

    from mattekit.train.onnx_export import export_onnx, max_export_error

    model = copy.deepcopy(pretrained)
    with torch.no_grad():  # batch norms with real statistics, as after training from scratch
        gen = torch.Generator().manual_seed(0)
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.add_(0.01 * torch.randn(module.running_mean.shape, generator=gen))
                module.running_var.mul_(1.1)
                module.weight.mul_(1.05)
    path = export_onnx(model, tmp_path / "my.onnx")
    frames = clip_frames(shared_data / "people" / "test-sample1.mp4", 3, (320, 180))
    assert max_export_error(model, path, frames, 0.5) < 1e-4

    folder = tmp_path / "frames"
    folder.mkdir()
    for i, rgb in enumerate(frames):
        Image.fromarray(rgb).save(folder / f"{i:03d}.png")
    out = tmp_path / "alpha"
    assert (
        main(["video", str(folder), "-a", str(out), "--output-type", "png_sequence", "--model", str(path), "-q"]) == 0
    )
    written = sorted(out.glob("*.png"))
    assert len(written) == 3
    with torch.no_grad():
        _, pha, *_ = model(
            torch.from_numpy(frames[0]).permute(2, 0, 1)[None].float() / 255, downsample_ratio=1, refine=True
        )
    got = np.asarray(Image.open(written[0]), dtype=np.float32) / 255
    assert np.abs(got - pha[0, 0].numpy()).mean() < 2e-3
