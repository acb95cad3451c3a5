"""Import equivalence of docs/training.md: the PyTorch MattingNetwork with weights imported from
rvm_mobilenetv3_fp32.onnx against ONNX Runtime on the same file, on all 79 frames of
people/test-sample1.mp4 (1280x720, downsample ratio 0.4, guided filter on), recurrent state
carried in both. Prints the worst frame's mean |Δα| and the largest |Δα| and |Δfgr| of any pixel.

The reference is the published graph run whole by ONNX Runtime (``RVMSession(cut=False)``); with
``cut`` as second argument it is instead the CPU default of mattekit (the graph cut before the
guided filter's full-resolution step, which mattekit finishes in numpy: mattekit.models.rvm_cut).

Usage: python benchmarks/train_import_equivalence.py [THREADS] [whole|cut]   (default 1 whole;
~5 min on 2 busy cores)
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import av
import numpy as np
import torch

from mattekit.models import new_session
from mattekit.models.base import to_src
from mattekit.params import auto_downsample_ratio
from mattekit.train.onnx_import import pretrained

VIDEO = Path(__file__).resolve().parents[2] / "shared" / "data" / "people" / "test-sample1.mp4"


def main() -> None:
    threads = int(sys.argv[1]) if len(sys.argv) > 1 else 1
    reference = sys.argv[2] if len(sys.argv) > 2 else "whole"
    if reference not in ("whole", "cut"):
        sys.exit(f"reference must be 'whole' or 'cut', not {reference!r}")
    torch.set_num_threads(threads)
    model = pretrained().eval()
    session = new_session(intra_op_threads=threads, cut=reference == "cut")
    state, rec = session.initial_state(), [None] * 4
    mean_pha, max_pha, max_fgr, frames = [], 0.0, 0.0, 0
    started = time.perf_counter()
    with av.open(str(VIDEO)) as container, torch.no_grad():
        for frame in container.decode(video=0):
            rgb = frame.to_ndarray(format="rgb24")
            src = to_src(rgb)
            ratio = auto_downsample_ratio(*rgb.shape[:2])
            ref = session.step(src, state, ratio)
            state = ref.state
            fgr, pha, *rec = model(torch.from_numpy(src), *rec, downsample_ratio=ratio, refine=True)
            diff = np.abs(pha.numpy() - ref.pha)
            mean_pha.append(float(diff.mean()))
            max_pha = max(max_pha, float(diff.max()))
            max_fgr = max(max_fgr, float(np.abs(fgr.numpy() - ref.fgr).max()))
            frames += 1
    worst = int(np.argmax(mean_pha))
    print(f"{frames} frames in {time.perf_counter() - started:.0f} s, reference: ONNX Runtime, {reference} graph")
    print("| frames | worst-frame mean abs(Δα) | mean over frames | max abs(Δα) | max abs(Δfgr) |")
    print("|---|---|---|---|---|")
    print(
        f"| {frames} | {mean_pha[worst]:.2e} (frame {worst}) | {np.mean(mean_pha):.2e} "
        f"| {max_pha:.2e} | {max_fgr:.2e} |"
    )


if __name__ == "__main__":
    main()
