"""Compare the registered models (RVM FP32 / INT8, ISNet FP16 / 8-bit): the figures of docs/models.md.

Parts (run all, or name some: ``python benchmarks/bench_models.py alphamatting hairball speed picture``):

``alphamatting``
    Whole-image SAD, MSE, Grad (RVM convention, no trimap) on the 14 alphamatting.com training
    images (objects, toys and plants, not people), each model through ``matte_image``.
``hairball``
    The 30 rendered hairball frames composited over a real picture (people/stills/background_0001.png),
    matted as a video (RVM with its recurrent state, ISNet frame by frame): MAD and dtSSD against the
    exact alpha. Also the error of cheap foreground estimates for a per-frame model (the frame's own
    colour; Forte & Pitié's blur fusion, "Approximate Fast Foreground Colour Estimation", ICIP 2021)
    and pymatting's multilevel estimate, each from the exact alpha, against the rendered colour.
``speed``
    Seconds and peak memory (max RSS of a fresh process, model load included) for one 1920x1080
    photo: the network step alone, and ``matte_image`` with its default foreground estimate.
``picture``
    benchmark-output/models_stills.png (not committed): the two people stills, input | RVM alpha |
    ISNet alpha.

Needs ../shared/data beside the checkout. Prints Markdown tables; the load average is printed
with each (the machine is shared).
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
MODELS = [("rvm-mobilenetv3", None), ("rvm-mobilenetv3", "int8"), ("isnet", None), ("isnet", "int8")]


def load() -> str:
    return "load average " + " ".join(f"{x:.1f}" for x in os.getloadavg())


def sessions():
    from mattekit.models import new_session

    return [new_session(name, precision=precision) for name, precision in MODELS]


def label(session) -> str:
    return f"{session.name} {session.precision}"


def alphamatting() -> None:
    from mattekit.compare_models import compare_models

    print(f"\n### alphamatting, whole image, RVM convention ({load()})\n")
    table = compare_models(sessions(), DATA / "alphamatting" / "input", DATA / "alphamatting" / "gt")
    print("| model | SAD ÷1000 | MSE ×1e3 | Grad ÷1000 | s/image |\n|---|---|---|---|---|")
    for name, row in table.rows:
        print(f"| {name} | {row['SAD']:.2f} | {row['MSE']:.2f} | {row['Grad']:.2f} | {row['seconds']:.2f} |")
    print(f"\n({load()} after)")


def hairball() -> None:
    from mattekit.classical import estimate_foreground_blur_fusion
    from mattekit.classical.estimate_foreground import estimate_foreground_ml
    from mattekit.metrics import video_metrics
    from mattekit.models.base import to_src

    frames = [np.asarray(Image.open(p)) for p in sorted((DATA / "hairball").glob("in*.png"))]
    h, w = frames[0].shape[:2]
    bg = (
        np.asarray(
            Image.open(DATA / "people" / "stills" / "background_0001.png").convert("RGB").resize((w, h), Image.BILINEAR)
        ).astype(np.float32)
        / 255
    )
    gt = np.stack([f[..., 3].astype(np.float32) / 255 for f in frames])
    fgr_gt = [f[..., :3].astype(np.float32) / 255 for f in frames]
    inputs = [
        np.floor((fg * a[..., None] + bg * (1 - a[..., None])) * 255 + 0.5).astype(np.uint8)
        for fg, a in zip(fgr_gt, gt, strict=True)
    ]
    print(f"\n### hairball over a real background, {len(frames)} frames {w}x{h}, RVM convention ({load()})\n")
    print("| model | MAD ×1e3 | dtSSD ×1e2 | s/frame |\n|---|---|---|---|")
    for session in sessions():
        state, alphas = session.initial_state(), []
        started = time.perf_counter()
        for rgb in inputs:
            result = session.step(to_src(rgb), state, None)
            state = result.state
            alphas.append(result.pha[0, 0])
        seconds = (time.perf_counter() - started) / len(inputs)
        m = video_metrics(np.stack(alphas), gt, metrics=("MAD", "dtSSD"))
        print(f"| {label(session)} | {m['MAD']:.2f} | {m['dtSSD']:.2f} | {seconds:.2f} |")
    print(
        f"\n({load()} after)\n\nForeground colour from the exact alpha, error against the rendered colour "
        "(mean |F - F_gt| over the pixels with alpha > 0.05, 0..255 levels), time per frame:\n"
    )
    print("| estimate | error | s/frame |\n|---|---|---|")
    estimates = {
        "frame colour": lambda img, a: img,
        "blur fusion (Forte & Pitié 2021; mattekit video default)": estimate_foreground_blur_fusion,
        "multilevel (pymatting, mattekit image default)": lambda img, a: estimate_foreground_ml(
            np.floor(img * 255 + 0.5).astype(np.uint8), a
        ),
    }
    for name, estimate in estimates.items():
        errors, seconds = [], 0.0
        for rgb, a, f_gt in zip(inputs, gt, fgr_gt, strict=True):
            img = rgb.astype(np.float32) / 255
            started = time.perf_counter()
            f = estimate(img, a)
            seconds += time.perf_counter() - started
            mask = a > 0.05
            errors.append(np.abs(f - f_gt)[mask].mean() * 255)
        print(f"| {name} | {np.mean(errors):.2f} | {seconds / len(inputs):.3f} |")


def speed_one(name: str, precision: str | None) -> dict:
    """In this (fresh) process: load, one warm-up, then time one step and one matte_image."""
    from mattekit import matte_image
    from mattekit.io.image import read_image
    from mattekit.models import new_session
    from mattekit.models.base import to_src

    rgb = read_image(DATA / "people" / "stills" / "0001_img.png")
    session = new_session(name, precision=precision)
    src = to_src(rgb)
    session.step(src, session.initial_state(), None)
    started = time.perf_counter()
    session.step(src, session.initial_state(), None)
    step = time.perf_counter() - started
    started = time.perf_counter()
    matte_image(rgb, session)
    whole = time.perf_counter() - started
    return {"step": step, "matte_image": whole, "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def speed() -> None:
    print(f"\n### one 1920x1080 photo ({load()})\n")
    print("| model | network step, s | matte_image, s | peak RSS, MB |\n|---|---|---|---|")
    for name, precision in MODELS:
        out = subprocess.run(
            [sys.executable, __file__, "speed-one", name, precision or ""], capture_output=True, text=True, check=True
        ).stdout
        r = json.loads(out.strip().splitlines()[-1])
        print(
            f"| {name} {precision or '(published)'} | {r['step']:.2f} | {r['matte_image']:.2f} | {r['peak_mb']:.0f} |"
        )
    print(f"\n({load()} after)")


def picture() -> None:
    from mattekit import matte_image
    from mattekit.models import new_session

    rvm, isnet = new_session("rvm-mobilenetv3"), new_session("isnet")
    rows = []
    for still in ("0001_img.png", "1000_img.png"):
        rgb = np.asarray(Image.open(DATA / "people" / "stills" / still).convert("RGB"))
        panels = [rgb] + [
            np.repeat(
                (np.clip(matte_image(rgb, s, fg_estimate="none").alpha, 0, 1) * 255 + 0.5).astype(np.uint8)[..., None],
                3,
                axis=2,
            )
            for s in (rvm, isnet)
        ]
        rows.append(
            np.concatenate([np.asarray(Image.fromarray(p).resize((320, 180), Image.LANCZOS)) for p in panels], axis=1)
        )
    # not committed: the stills are CC BY-NC-SA (../shared/data/README.md), so the project must not ship them
    out = Path(__file__).resolve().parents[1] / "benchmark-output" / "models_stills.png"
    out.parent.mkdir(exist_ok=True)
    Image.fromarray(np.concatenate(rows, axis=0)).save(out, optimize=True)
    print(f"\nwrote {out} ({out.stat().st_size / 1024:.0f} KB): input | rvm-mobilenetv3 | isnet")


if __name__ == "__main__":
    if sys.argv[1:2] == ["speed-one"]:
        print(json.dumps(speed_one(sys.argv[2], sys.argv[3] or None)))
        sys.exit(0)
    parts = {"alphamatting": alphamatting, "hairball": hairball, "speed": speed, "picture": picture}
    for part in sys.argv[1:] or list(parts):
        parts[part]()
