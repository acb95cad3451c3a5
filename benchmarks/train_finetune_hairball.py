"""Fine-tuning result of docs/training.md: adapt the published RVM to one subject (the rendered
hairball, exact alpha) and score it on frames and backgrounds it never saw.

Train: hairball frames 1-20 (``mattekit finetune`` holds back its last 20 % for its own validation)
over the 14 alphamatting.com pictures. Test: frames 21-30 composited over two room photographs
(people/stills/background_0001.png and 0001_back.png), matted at 960x540 by ONNX Runtime with the
recurrent state carried (downsample ratio auto = 0.533, guided filter on), scored with
mattekit.metrics in RVM's scaling (MAD ×1e3, Grad ×1e-3, dtSSD ×1e2) and averaged over the two
backgrounds. Prints a markdown table, the steps and the minutes.

Usage: python benchmarks/train_finetune_hairball.py [STEPS] [THREADS]   (defaults 200, 1)
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from mattekit.metrics import video_metrics
from mattekit.models import new_session
from mattekit.models.base import to_src
from mattekit.params import auto_downsample_ratio

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
TEST_FRAMES = range(21, 31)
TEST_BACKGROUNDS = ("people/stills/background_0001.png", "people/stills/0001_back.png")


def score(model) -> dict[str, float]:
    session = new_session(model, intra_op_threads=1)
    rows = []
    for name in TEST_BACKGROUNDS:
        bg = np.asarray(Image.open(DATA / name).convert("RGB").resize((960, 540), Image.Resampling.BILINEAR))
        bg = bg.astype(np.float32) / 255
        state, preds, truths = session.initial_state(), [], []
        for i in TEST_FRAMES:
            rgba = np.asarray(Image.open(DATA / f"hairball/in{i:04d}.png").convert("RGBA")).astype(np.float32) / 255
            alpha = rgba[..., 3:]
            image = np.clip((rgba[..., :3] * alpha + bg * (1 - alpha)) * 255 + 0.5, 0, 255).astype(np.uint8)
            result = session.step(to_src(image), state, auto_downsample_ratio(540, 960))
            state = result.state
            preds.append(result.pha[0, 0])
            truths.append(alpha[..., 0])
        rows.append(video_metrics(np.stack(preds), np.stack(truths), metrics=("MAD", "Grad", "dtSSD")))
    return {k: float(np.mean([r[k] for r in rows])) for k in rows[0]}


def main() -> None:
    steps = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    threads = sys.argv[2] if len(sys.argv) > 2 else "1"
    before = score(None)
    with tempfile.TemporaryDirectory() as tmp:
        fg = Path(tmp) / "fg"
        fg.mkdir()
        for i in range(1, 21):
            (fg / f"in{i:04d}.png").symlink_to(DATA / f"hairball/in{i:04d}.png")
        model = Path(tmp) / "hairball.onnx"
        started = time.perf_counter()
        subprocess.run(
            [
                sys.executable,
                "-m",
                "mattekit",
                "finetune",
                "--foreground",
                str(fg),
                "--backgrounds",
                str(DATA / "alphamatting/input"),
                "--steps",
                str(steps),
                "-o",
                str(model),
                "--resolution",
                "256",
                "--seq-length",
                "4",
                "--lr",
                "1e-4",
                "--threads",
                threads,
            ],
            check=True,
        )
        minutes = (time.perf_counter() - started) / 60
        after = score(model)
    print(f"\n{steps} steps (256 px crops, 4 frames, batch 1, {threads} thread(s)) in {minutes:.1f} min\n")
    print("| model | MAD ×1e3 | Grad ×1e-3 | dtSSD ×1e2 |\n|---|---|---|---|")
    for name, m in (("published rvm-mobilenetv3", before), (f"fine-tuned, {steps} steps", after)):
        print(f"| {name} | {m['MAD']:.2f} | {m['Grad']:.3f} | {m['dtSSD']:.2f} |")


if __name__ == "__main__":
    main()
