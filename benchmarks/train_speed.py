"""Training speed of docs/training.md: steps/s and peak memory of one fine-tuning step (low-resolution
pass, forward + backward + Adam) of the MobileNetV3 MattingNetwork at 512x288, sequence length 8,
batch 1, on this machine's CPU (or CUDA/MPS when present), data made in memory beforehand.

Usage: python benchmarks/train_speed.py [THREADS] [STEPS]   (defaults 1, 3; one warm-up step first)
"""

from __future__ import annotations

import resource
import sys
import time

import torch

from mattekit.train.config import StageConfig
from mattekit.train.device import select_device
from mattekit.train.loss import matting_loss
from mattekit.train.onnx_import import pretrained
from mattekit.train.train import make_optimizer, set_train_mode


def main() -> None:
    threads = int(sys.argv[1]) if len(sys.argv) > 1 else 1
    steps = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    torch.set_num_threads(threads)
    device = select_device("auto")
    model = pretrained().to(device)
    set_train_mode(model, freeze_batchnorm=True)
    optimizer = make_optimizer(model, StageConfig(lr_backbone=1e-5, lr_aspp=1e-5, lr_decoder=5e-5))
    gen = torch.Generator().manual_seed(0)
    fgr = torch.rand(1, 8, 3, 288, 512, generator=gen).to(device)
    pha = torch.rand(1, 8, 1, 288, 512, generator=gen).to(device)
    bgr = torch.rand(1, 8, 3, 288, 512, generator=gen).to(device)
    times = []
    for k in range(steps + 1):
        started = time.perf_counter()
        src = fgr * pha + bgr * (1 - pha)
        pred_fgr, pred_pha = model(src)[:2]
        matting_loss(pred_fgr, pred_pha, fgr, pha)["total"].backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if k:
            times.append(time.perf_counter() - started)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    mean = sum(times) / len(times)
    print("| device | threads | size | T | s/step | steps/s | frames/s | peak RSS |\n|---|---|---|---|---|---|---|---|")
    print(f"| {device} | {threads} | 512x288 | 8 | {mean:.2f} | {1 / mean:.3f} | {8 / mean:.2f} | {peak:.0f} MiB |")


if __name__ == "__main__":
    main()
