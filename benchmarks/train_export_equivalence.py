"""Export equivalence of docs/training.md: every MattingNetwork variant exported by
mattekit.train.onnx_export.trace_onnx (torch.onnx.export) and run by ONNX Runtime (RVMSession)
against PyTorch on the first frames of people/test-sample1.mp4 (640x360), recurrent state carried,
at downsample ratios 1.0 and 0.4. Random-init networks (no ImageNet weights here) with batch norm
statistics perturbed as after training and the alpha head scaled so alpha is not clamped to one
value; plus the published MobileNetV3 weights through both export paths (traced, filled graph).
Prints max |Δfgr| and max |Δα| over all pixels and frames, export time and file size.

Usage: python benchmarks/train_export_equivalence.py [FRAMES]   (default 8; 1 thread)
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import av
import numpy as np
import torch

from mattekit.train.model import MattingNetwork
from mattekit.train.onnx_export import export_errors, fill_template, trace_onnx
from mattekit.train.onnx_import import pretrained

VIDEO = Path(__file__).resolve().parents[2] / "shared" / "data" / "people" / "test-sample1.mp4"


def random_model(variant: str) -> MattingNetwork:
    torch.manual_seed(0)
    model = MattingNetwork(variant).eval()
    with torch.no_grad():
        gen = torch.Generator().manual_seed(1)
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.add_(0.1 * torch.randn(module.running_mean.shape, generator=gen))
                module.running_var.mul_(1.5)
                module.weight.mul_(1.1)
        model.project_mat.conv.weight.mul_(0.1)
        model.project_mat.conv.bias.copy_(torch.tensor([0.0, 0.0, 0.0, 0.5]))
    return model


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 8
    torch.set_num_threads(1)
    frames = []
    with av.open(str(VIDEO)) as container:
        for frame in container.decode(video=0):
            frames.append(frame.to_ndarray(format="rgb24", width=640, height=360))
            if len(frames) == count:
                break
    clip = np.stack(frames)
    cases = [(v, "traced", random_model(v), trace_onnx) for v in ("mobilenetv3", "resnet50", "efficientnetv2")]
    published = pretrained().eval()
    cases += [
        ("mobilenetv3 (published)", "traced", published, trace_onnx),
        ("mobilenetv3 (published)", "filled graph", published, fill_template),
    ]
    print(f"{count} frames 640x360, state carried; max over pixels and frames")
    print("| variant | export | ratio | max abs(Δfgr) | max abs(Δα) | export s | MB |")
    print("|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as folder:
        for i, (name, method, model, export) in enumerate(cases):
            started = time.perf_counter()
            path = export(model, Path(folder) / f"{i}.onnx")
            seconds = time.perf_counter() - started
            for ratio in (1.0, 0.4):
                fgr, pha = export_errors(model, path, clip, ratio)
                megabytes = path.stat().st_size / 1e6
                print(f"| {name} | {method} | {ratio} | {fgr:.2e} | {pha:.2e} | {seconds:.1f} | {megabytes:.1f} |")


if __name__ == "__main__":
    main()
