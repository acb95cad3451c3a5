"""How the alpha of a still photo changes as the same frame is fed again through RVM.

RVM is recurrent: on a still image, its first pass has an empty (zero) state. This script feeds
each photo N times and prints, per pass k, the mean |α_k − α_{k−1}| and the mean |α_k − α_N|
(N = the last pass), which is how mattekit's STILL_PASSES was chosen.

Usage: python benchmarks/still_passes.py [IMAGE ...]   (default: ../shared/data/people/stills)
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from mattekit.io.image import read_image
from mattekit.models import new_session
from mattekit.models.base import to_src
from mattekit.models.rvm_onnx import auto_downsample_ratio

MAX_PASSES = 10


def main(paths: list[Path]) -> None:
    session = new_session()
    print(f"| image | pass | mean abs(a_k - a_k-1) | mean abs(a_k - a_{MAX_PASSES}) | pixels changed > 0.05 vs last |")
    print("|---|---|---|---|---|")
    for path in paths:
        rgb = read_image(path)
        src = to_src(rgb)
        ratio = auto_downsample_ratio(*rgb.shape[:2])
        state = session.initial_state()
        alphas = []
        for _ in range(MAX_PASSES):
            result = session.step(src, state, ratio)
            state = result.state
            alphas.append(result.pha[0, 0].copy())
        last = alphas[-1]
        for k, alpha in enumerate(alphas, start=1):
            step = np.abs(alpha - alphas[k - 2]).mean() if k > 1 else float("nan")
            to_last = np.abs(alpha - last)
            print(f"| {path.name} | {k} | {step:.5f} | {to_last.mean():.5f} | {(to_last > 0.05).mean() * 100:.2f} % |")


if __name__ == "__main__":
    default = Path(__file__).resolve().parents[2] / "shared" / "data" / "people" / "stills"
    args = [Path(a) for a in sys.argv[1:]] or [default / "0001_img.png", default / "1000_img.png"]
    main(args)
