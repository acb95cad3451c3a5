"""Benchmark the six classical trimap methods on the alphamatting.com training set.

Runs every method (cf, knn, lkm, rw, lbdm, sm) on GT01..GT14 with trimap1 and trimap2 and prints
SAD, MSE, Grad and Conn (PaddleSeg convention: over the trimap's unknown region, SAD/Grad/Conn ÷1000)
and seconds per image, as mean tables per method and trimap, plus per-image SAD.

    python benchmarks/bench_classical.py [--scale 0.5] [--methods cf,knn] [--jsonl results.jsonl]

``--scale`` downsizes images, trimaps (nearest) and ground truth (area) first; the images are
about 800×500 at scale 1. Each result is appended to the JSONL file as it comes, and a rerun with
the same file skips what is already there.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import cv2
import numpy as np
from rich.console import Console
from rich.table import Table

from mattekit.classical.estimate_alpha import METHODS, estimate_alpha
from mattekit.metrics import image_metrics

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "alphamatting"
NAMES = [f"GT{i:02d}" for i in range(1, 15)]


def load(name: str, trimap: str, scale: float):
    img = cv2.cvtColor(cv2.imread(str(DATA / "input" / f"{name}.png")), cv2.COLOR_BGR2RGB)
    gt = cv2.imread(str(DATA / "gt" / f"{name}.png"), cv2.IMREAD_GRAYSCALE).astype(np.float32) / 255.0
    tri = cv2.imread(str(DATA / trimap / f"{name}.png"), cv2.IMREAD_GRAYSCALE)
    if scale != 1.0:
        size = (round(img.shape[1] * scale), round(img.shape[0] * scale))
        img = cv2.resize(img, size, interpolation=cv2.INTER_AREA)
        gt = cv2.resize(gt, size, interpolation=cv2.INTER_AREA)
        tri = cv2.resize(tri, size, interpolation=cv2.INTER_NEAREST)
    return img, gt, tri


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--methods", default=",".join(METHODS))
    ap.add_argument("--images", default=",".join(NAMES))
    ap.add_argument("--trimaps", default="trimap1,trimap2")
    ap.add_argument("--jsonl", type=Path, default=Path("bench_classical.jsonl"))
    args = ap.parse_args()
    methods, names, trimaps = args.methods.split(","), args.images.split(","), args.trimaps.split(",")
    console = Console()
    done = {}
    if args.jsonl.exists():
        for line in args.jsonl.read_text().splitlines():
            r = json.loads(line)
            if r["scale"] == args.scale:
                done[(r["method"], r["trimap"], r["name"])] = r
    # warm-up: numba compiles pymatting's kernels on first use; keep that out of the timings
    img, gt, tri = load(names[0], trimaps[0], 0.1)
    for m in methods:
        estimate_alpha(img, tri, m)
    with args.jsonl.open("a") as log:
        for name in names:
            for trimap in trimaps:
                img, gt, tri = load(name, trimap, args.scale)
                for m in methods:
                    if (m, trimap, name) in done:
                        continue
                    t0 = time.perf_counter()
                    alpha = estimate_alpha(img, tri, m)
                    seconds = time.perf_counter() - t0
                    vals = image_metrics(alpha, gt, tri, "paddleseg", ("SAD", "MSE", "Grad", "Conn"))
                    r = {
                        "method": m,
                        "trimap": trimap,
                        "name": name,
                        "scale": args.scale,
                        "size": f"{img.shape[1]}x{img.shape[0]}",
                        "seconds": seconds,
                        **vals,
                    }
                    done[(m, trimap, name)] = r
                    log.write(json.dumps(r) + "\n")
                    log.flush()
                    console.print(
                        f"{name} {trimap} {m:5s} {img.shape[1]}x{img.shape[0]} "
                        f"SAD {vals['SAD']:.3f} MSE {vals['MSE']:.4f} Grad {vals['Grad']:.3f} "
                        f"Conn {vals['Conn']:.3f} {seconds:.1f}s"
                    )

    table = Table(
        title=f"Classical methods on alphamatting GT01-GT14, scale {args.scale} "
        "(PaddleSeg convention: unknown region, SAD/Grad/Conn ÷1000), mean over images"
    )
    for col in ("method", "trimap", "SAD", "MSE", "Grad", "Conn", "s/image"):
        table.add_column(col, justify="left" if col in ("method", "trimap") else "right")
    for m in methods:
        for trimap in trimaps:
            rs = [done[(m, trimap, n)] for n in names if (m, trimap, n) in done]
            if not rs:
                continue
            mean = {k: float(np.mean([r[k] for r in rs])) for k in ("SAD", "MSE", "Grad", "Conn", "seconds")}
            table.add_row(
                m,
                trimap,
                f"{mean['SAD']:.2f}",
                f"{mean['MSE']:.4f}",
                f"{mean['Grad']:.2f}",
                f"{mean['Conn']:.2f}",
                f"{mean['seconds']:.1f}",
            )
    console.print(table)
    per = Table(title="SAD (÷1000) per image, trimap1 / trimap2")
    per.add_column("image")
    for m in methods:
        per.add_column(m, justify="right")
    for n in names:
        cells = []
        for m in methods:
            parts = [f"{done[(m, t, n)]['SAD']:.2f}" if (m, t, n) in done else "-" for t in trimaps]
            cells.append(" / ".join(parts))
        per.add_row(n, *cells)
    console.print(per)


if __name__ == "__main__":
    main()
