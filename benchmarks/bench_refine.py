"""Measure automatic refinement (mattekit.classical.refine.refine_alpha).

1. Simulated coarse network output on the alphamatting.com images: ground truth downscaled ×4
   (area), blurred (Gaussian, sigma 1 px at the low resolution), upscaled back (bilinear); then
   refined with the real input image. Prints SAD, MSE, Grad, Conn against the ground truth over the
   whole image before and after (SAD, Grad, Conn ÷1000, MSE ×1e3) and seconds per image.
2. ``--stills DIR``: the real network (mattekit.matte_image) on each *_img.png photo, refinement
   seconds at that size (1920×1080 for ../shared/data/people/stills), and side-by-side crops
   (image | network alpha | refined alpha | refined composite over grey) written to ``--crops``.

    python benchmarks/bench_refine.py [--images GT01,GT02] [--stills ../shared/data/people/stills --crops /tmp/crops]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import cv2
import numpy as np
from rich.console import Console
from rich.table import Table

from mattekit.classical.refine import refine_alpha, refinement_trimap
from mattekit.metrics import conn, grad, mse, sad

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def coarse_from_gt(gt: np.ndarray, factor: int = 4, sigma: float = 1.0) -> np.ndarray:
    h, w = gt.shape
    small = cv2.resize(gt, (w // factor, h // factor), interpolation=cv2.INTER_AREA)
    small = cv2.GaussianBlur(small, (0, 0), sigma)
    return np.clip(cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR), 0, 1)


def scores(a: np.ndarray, gt: np.ndarray) -> dict[str, float]:
    return {"SAD": sad(a, gt) / 1e3, "MSE": mse(a, gt) * 1e3, "Grad": grad(a, gt) / 1e3, "Conn": conn(a, gt) / 1e3}


def alphamatting(names: list[str], console: Console, method: str = "cf") -> None:
    table = Table(
        title=f"Refinement ({method}) of a simulated coarse alpha (GT ↓4, blur, ↑4), alphamatting.com, "
        "whole image: SAD/Grad/Conn ÷1000, MSE ×1e3"
    )
    for col in (
        "image",
        "size",
        "unknown %",
        "SAD before",
        "SAD after",
        "MSE before",
        "MSE after",
        "Grad before",
        "Grad after",
        "Conn before",
        "Conn after",
        "seconds",
    ):
        table.add_column(col, justify="left" if col in ("image", "size") else "right")
    better = {"SAD": 0, "Grad": 0}
    sums = {}
    for name in names:
        img = cv2.cvtColor(cv2.imread(str(DATA / "alphamatting" / "input" / f"{name}.png")), cv2.COLOR_BGR2RGB)
        gt = (
            cv2.imread(str(DATA / "alphamatting" / "gt" / f"{name}.png"), cv2.IMREAD_GRAYSCALE).astype(np.float32) / 255
        )
        coarse = coarse_from_gt(gt)
        t0 = time.perf_counter()
        refined = refine_alpha(img, coarse, method)
        seconds = time.perf_counter() - t0
        b, a = scores(coarse, gt), scores(refined, gt)
        for k in better:
            better[k] += a[k] < b[k]
        for k in b:
            sums[k + "b"] = sums.get(k + "b", 0) + b[k]
            sums[k + "a"] = sums.get(k + "a", 0) + a[k]
        sums["s"] = sums.get("s", 0) + seconds
        unknown = 100 * float(np.mean(refinement_trimap(coarse) == 128))
        table.add_row(
            name,
            f"{gt.shape[1]}x{gt.shape[0]}",
            f"{unknown:.1f}",
            *(f"{v:.2f}" for k in ("SAD", "MSE", "Grad", "Conn") for v in (b[k], a[k])),
            f"{seconds:.1f}",
        )
        console.print(
            f"{name}: SAD {b['SAD']:.2f} -> {a['SAD']:.2f}, Grad {b['Grad']:.2f} -> {a['Grad']:.2f}, {seconds:.1f} s"
        )
    n = len(names)
    table.add_section()
    table.add_row(
        "mean",
        "",
        "",
        *(f"{sums[k + s] / n:.2f}" for k in ("SAD", "MSE", "Grad", "Conn") for s in "ba"),
        f"{sums['s'] / n:.1f}",
        style="bold",
    )
    console.print(table)
    console.print(f"SAD lower on {better['SAD']}/{n} images, Grad lower on {better['Grad']}/{n} images")


def stills(folder: Path, crops: Path, console: Console) -> None:
    from mattekit import matte_image, new_session
    from mattekit.io.image import read_image, write_image

    crops.mkdir(parents=True, exist_ok=True)
    session = new_session()
    for path in sorted(folder.glob("*_img.png")):
        img = read_image(path)
        t0 = time.perf_counter()
        matte = matte_image(img, session)
        t_net = time.perf_counter() - t0
        t0 = time.perf_counter()
        refined = refine_alpha(img, matte.alpha)
        t_ref = time.perf_counter() - t0
        unknown = 100 * float(np.mean(refinement_trimap(matte.alpha) == 128))
        console.print(
            f"{path.name} {img.shape[1]}x{img.shape[0]}: network {t_net:.1f} s, refinement {t_ref:.1f} s, "
            f"unknown band {unknown:.1f}% of pixels, mean |change| {np.abs(refined - matte.alpha).mean():.4f}"
        )
        # crop around the top of the person (hair): the top rows of the alpha's bounding box
        ys, xs = np.nonzero(matte.alpha > 0.5)
        top, cx = int(ys.min()), int(np.median(xs[ys < ys.min() + 40]))
        size = 360
        y0 = max(0, top - 60)
        x0 = int(np.clip(cx - size // 2, 0, img.shape[1] - size))
        sl = (slice(y0, y0 + size), slice(x0, x0 + size))
        grey = np.full(img.shape, 128, np.float32)

        def comp(a, img=img, grey=grey):
            return np.clip(img * a[..., None] + grey * (1 - a[..., None]), 0, 255).astype(np.uint8)

        to3 = lambda a: np.repeat((a * 255 + 0.5).astype(np.uint8)[..., None], 3, axis=2)  # noqa: E731
        panel = np.hstack([img[sl], to3(matte.alpha)[sl], to3(refined)[sl], comp(matte.alpha)[sl], comp(refined)[sl]])
        out = crops / f"{path.stem}_hair_before_after.png"
        write_image(out, panel)
        console.print(
            f"  crop y {y0}:{y0 + size}, x {x0}:{x0 + size} -> {out} "
            "(image | network alpha | refined alpha | network over grey | refined over grey)"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", default=",".join(f"GT{i:02d}" for i in range(1, 15)))
    ap.add_argument("--stills", type=Path, default=None)
    ap.add_argument("--crops", type=Path, default=Path("refine-crops"))
    ap.add_argument("--skip-alphamatting", action="store_true")
    ap.add_argument("--method", default="cf", help="refine_alpha method: cf (default), sm+cf, ...")
    args = ap.parse_args()
    console = Console(width=200)
    if not args.skip_alphamatting:
        alphamatting(args.images.split(","), console, args.method)
    if args.stills:
        stills(args.stills, args.crops, console)


if __name__ == "__main__":
    main()
