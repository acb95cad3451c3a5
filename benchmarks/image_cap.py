"""How close the capped (working-size) matting of a still is to matting it at full size.

``matte_image`` mattes an image above ``WORKING_PIXELS`` at a reduced working size and brings the
result up to full size (``mattekit.pipeline.upsample``); the multilevel foreground is solved in
overlapping tiles. This measures both against the full-size computation:

1. alpha and the network's foreground: each image is area-downscaled by a factor f, matted
   (3 passes, auto downsample ratio: the encoder still sees 512 px when the working image's
   longer side is >= 512), and upsampled (a) bilinearly, (b) with the guided upsampling; both
   are compared with the network run on the full image. Real 1920×1080 stills
   (people/stills) at f = 1.5, 2, 3 and the alphamatting.com inputs (~800×550) at f = 1.5.
   Errors: mean |Δα| over all pixels, % of pixels with |Δα| > 0.05, mean |Δα| where the
   full-size alpha is in (0.01, 0.99); foreground: mean |ΔF|·α over pixels with α > 0.01
   (the composite's colour error), 0..255 units.
2. the multilevel foreground (pymatting ``estimate_foreground_ml``) in tiles of 512×512 with an
   overlap of 16, 32, 64, 128 px against the whole solve, with the network's full-size alpha,
   on the stills: mean and largest |ΔF|·α (0..255 units) over pixels with α > 0.01.

Usage: python benchmarks/image_cap.py [--part all|upsampling|tiles]
"""

from __future__ import annotations

import argparse
from importlib import import_module
from pathlib import Path

import cv2
import numpy as np

from mattekit.io.image import read_image
from mattekit.models import new_session
from mattekit.models.base import to_src
from mattekit.params import auto_downsample_ratio
from mattekit.pipeline.image import STILL_PASSES, _upsample

fe = import_module("mattekit.classical.estimate_foreground")  # the package exports a function of that name
DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
STILLS = [DATA / "people" / "stills" / f"{n}_img.png" for n in ("0001", "1000")]
ALPHAMATTING = sorted((DATA / "alphamatting" / "input").glob("GT*.png"))


def network(session, rgb):
    ratio = auto_downsample_ratio(*rgb.shape[:2])  # the encoder sees 512 px, as matte_image's auto
    state = session.initial_state()
    src = to_src(rgb)
    for _ in range(STILL_PASSES):
        result = session.step(src, state, ratio)
        state = result.state
    return result.pha[0, 0], result.fgr[0]


def alpha_errors(up, full):
    d = np.abs(up - full)
    edge = (full > 0.01) & (full < 0.99)
    return d.mean(), (d > 0.05).mean() * 100, d[edge].mean() if edge.any() else np.nan


def colour_error(fgr, ref, alpha):
    visible = alpha > 0.01  # may be empty (the network finds nothing in some alphamatting images)
    return (np.abs(fgr - ref).max(axis=2) * alpha)[visible] * 255


def upsampling_table(session, files, factors, label):
    refs = {}
    for f in factors:
        rows = {"bilinear": [], "guided": []}
        for path in files:
            rgb = read_image(path)
            H, W = rgb.shape[:2]
            if path not in refs:
                pha, fgr = network(session, rgb)
                refs[path] = (pha, np.ascontiguousarray(fgr.transpose(1, 2, 0)))
            full_pha, full_fgr = refs[path]
            small = cv2.resize(rgb, (round(W / f), round(H / f)), interpolation=cv2.INTER_AREA)
            pha, fgr = network(session, small)
            bil_a = np.clip(cv2.resize(pha, (W, H), interpolation=cv2.INTER_LINEAR), 0, 1)
            bil_f = np.clip(
                cv2.resize(np.ascontiguousarray(fgr.transpose(1, 2, 0)), (W, H), interpolation=cv2.INTER_LINEAR), 0, 1
            )
            gui_a, gui_f = _upsample(rgb, small, pha, fgr)
            for name, a, fg in (("bilinear", bil_a, bil_f), ("guided", gui_a, gui_f)):
                colour = colour_error(fg, full_fgr, full_pha)
                rows[name].append((*alpha_errors(a, full_pha), colour.mean() if colour.size else np.nan))
        for name, values in rows.items():
            v = np.array(values)
            print(
                f"| {label} | {f:g} | {name} | {v[:, 0].mean():.5f} | {v[:, 0].max():.5f} | {v[:, 1].mean():.2f} % "
                f"| {np.nanmean(v[:, 2]):.4f} | {np.nanmean(v[:, 3]):.2f} |",
                flush=True,
            )


def tile_table(session):
    print("\n512×512 tiles against the whole solve, |ΔF|·α in 0..255 over α > 0.01, 2 stills")
    print("| overlap (px) | mean |ΔF|·α | largest |ΔF|·α |")
    print("|---|---|---|")
    cases = []
    for path in STILLS:
        rgb = read_image(path)
        pha, _ = network(session, rgb)
        cases.append((rgb, pha, fe.estimate_foreground_ml(rgb, pha)))
    default = fe.TILE_OVERLAP
    try:
        for overlap in (16, 32, 64, 128):
            fe.TILE_OVERLAP = overlap
            errs = np.concatenate(
                [colour_error(fe.estimate_foreground_ml(rgb, pha, 512 * 512), whole, pha) for rgb, pha, whole in cases]
            )
            print(f"| {overlap} | {errs.mean():.3f} | {errs.max():.1f} |", flush=True)
    finally:
        fe.TILE_OVERLAP = default


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--part", choices=("all", "upsampling", "tiles"), default="all")
    args = ap.parse_args()
    session = new_session()
    if args.part == "tiles":
        return tile_table(session)
    print(
        "| images | scale factor | upsampling | mean |Δα| | worst image | |Δα| > 0.05 | mean |Δα| in edges "
        "| network fgr: mean |ΔF|·α (0..255) |"
    )
    print("|---|---|---|---|---|---|---|---|")
    upsampling_table(session, STILLS, (1.5, 2, 3), "stills 1920×1080")
    upsampling_table(session, ALPHAMATTING, (1.5,), "alphamatting (14)")
    if args.part == "all":
        tile_table(session)


if __name__ == "__main__":
    main()
