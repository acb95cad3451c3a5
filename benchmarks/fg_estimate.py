"""Foreground colour for cut-outs: the network's ``fgr`` against pymatting's multilevel estimate.

Question: is ``mattekit image --fg-estimate ml`` (pymatting's ``estimate_foreground_ml``, Germer
et al., ICPR 2020, computed from the image and the alpha) better than the foreground the network
predicts (``fgr`` of Robust Video Matting)? Both use the ground-truth alpha, so only the colour
is compared. A composite over a new background B' is ``C = F·α + B'·(1−α)``; an estimate F̂ gives
the error ``Ĉ − C = α·(F̂ − F)`` whatever B' is, so the composite's colour error is the
alpha-weighted foreground error. The true F is needed; three protocols supply it:

A. alphamatting.com, real photos, pixels with GT alpha = 1: there the image *is* the foreground
   (F = I). Error |F̂ − I| (the composite's error there).
B. alphamatting.com, semi-synthetic: take image k as a known foreground texture F, its GT alpha
   α_k, and a different alphamatting image (k+1) as background B; I' = F·α + B·(1−α). Both
   methods see I' (and α); error α·|F̂ − F| over the partly transparent pixels 0 < α < 1 (where
   the two methods differ) and over all pixels with α > 0.
C. hairball (rendered fur, RGBA with exact straight colour and alpha) composited over
   people/stills/background_0001.png; same error as B.
D. as used by ``mattekit image``: the alpha is the network's own (α_n), for both methods
   (``ml`` = estimate_foreground_ml(I', α_n)); on the B and C images, the composite
   F̂·α_n + B'·(1−α_n) over a new background B' (people/stills/background_0001.png) against the
   true composite F·α + B'·(1−α), over the pixels where either alpha is > 0. Alpha errors add
   the same amount to both methods; only the colour term differs.

Errors are mean absolute differences in 0..255 units over RGB. Usage:
    python benchmarks/fg_estimate.py [--data ../shared/data] [--hairball-frames 5]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pymatting
from PIL import Image

from mattekit.compose.background import cover_resize
from mattekit.models import new_session
from mattekit.pipeline.image import matte_image

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def load(path, mode="RGB"):
    return np.asarray(Image.open(path).convert(mode))


def estimates(session, image_u8, alpha):
    t0 = time.perf_counter()
    matte = matte_image(image_u8, session, passes=3, fg_estimate="network")
    net = matte.fgr.astype(np.float64)
    t1 = time.perf_counter()
    ml = pymatting.estimate_foreground_ml(image_u8.astype(np.float64) / 255.0, alpha)
    t2 = time.perf_counter()
    return (
        {"network": np.clip(net, 0, 1), "ml": np.clip(ml, 0, 1), "net_alpha": matte.alpha},
        {"network": t1 - t0, "ml": t2 - t1},
    )


def product_error(est, matte_alpha, true_f, alpha, new_bg):
    """Composite error with the network's alpha against the true composite (0..255)."""
    ours = est * matte_alpha[..., None] + new_bg * (1 - matte_alpha[..., None])
    truth = true_f * alpha[..., None] + new_bg * (1 - alpha[..., None])
    mask = (alpha > 0) | (matte_alpha > 1 / 255)
    return float((np.abs(ours - truth).mean(axis=2) * 255)[mask].mean())


def protocol_d(est, synth_u8, true_f, alpha, new_bg):
    a_n = est["net_alpha"].astype(np.float64)
    ml_n = np.clip(pymatting.estimate_foreground_ml(synth_u8.astype(np.float64) / 255.0, a_n), 0, 1)
    return [
        product_error(est["network"], a_n, true_f, alpha, new_bg),
        product_error(ml_n, a_n, true_f, alpha, new_bg),
        float(np.abs(a_n - alpha).mean() * 255),
    ]


def weighted_error(est, true_f, alpha, mask):
    err = np.abs(est - true_f).mean(axis=2) * alpha * 255.0
    return float(err[mask].mean())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--hairball-frames", type=int, default=5)
    args = ap.parse_args()
    session = new_session()
    names = sorted(p.stem for p in (args.data / "alphamatting" / "input").glob("GT*.png"))
    rows_a, rows_b, rows_c, rows_d = [], [], [], []
    back = load(args.data / "people" / "stills" / "background_0001.png")
    for k, name in enumerate(names):
        image = load(args.data / "alphamatting" / "input" / f"{name}.png")
        alpha = load(args.data / "alphamatting" / "gt" / f"{name}.png", "L").astype(np.float64) / 255.0
        # A: real photo, F = I where alpha == 1
        est, _ = estimates(session, image, alpha)
        opaque = alpha >= 1.0
        f_true = image.astype(np.float64) / 255.0
        # the network was trained on people: also score only where it sees the object (its alpha >= 0.9)
        seen = opaque & (est["net_alpha"] >= 0.9)
        rows_a.append(
            [float((np.abs(est[m] - f_true).mean(axis=2)[opaque] * 255).mean()) for m in ("network", "ml")]
            + [
                float((np.abs(est[m] - f_true).mean(axis=2)[seen] * 255).mean()) if seen.any() else np.nan
                for m in ("network", "ml")
            ]
            + [float(seen.sum() / max(opaque.sum(), 1))]
        )
        # B: known foreground texture over another alphamatting image
        other = load(args.data / "alphamatting" / "input" / f"{names[(k + 1) % len(names)]}.png")
        bg = cover_resize(other, *image.shape[:2]).astype(np.float64) / 255.0
        synth = f_true * alpha[..., None] + bg * (1.0 - alpha[..., None])
        synth_u8 = np.clip(synth * 255.0 + 0.5, 0, 255).astype(np.uint8)
        est, secs = estimates(session, synth_u8, alpha)
        partial = (alpha > 0) & (alpha < 1)
        visible = alpha > 0
        rows_b.append(
            [weighted_error(est[m], f_true, alpha, partial) for m in ("network", "ml")]
            + [weighted_error(est[m], f_true, alpha, visible) for m in ("network", "ml")]
            + [secs["network"], secs["ml"]]
        )
        rows_d.append(
            [
                "alphamatting",
                *protocol_d(est, synth_u8, f_true, alpha, cover_resize(back, *alpha.shape).astype(np.float64) / 255.0),
            ]
        )
        print(
            f"{name}: A net {rows_a[-1][0]:.2f} ml {rows_a[-1][1]:.2f} seen net {rows_a[-1][2]:.2f} "
            f"ml {rows_a[-1][3]:.2f} | B partial net {rows_b[-1][0]:.2f} "
            f"ml {rows_b[-1][1]:.2f} | B visible net {rows_b[-1][2]:.2f} ml {rows_b[-1][3]:.2f}",
            flush=True,
        )
    new_bg = cover_resize(load(args.data / "alphamatting" / "input" / f"{names[0]}.png"), 540, 960) / 255.0
    for i in range(1, args.hairball_frames + 1):
        rgba = load(args.data / "hairball" / f"in{i * 5 - 4:04d}.png", "RGBA").astype(np.float64) / 255.0
        f_true, alpha = rgba[..., :3], rgba[..., 3]
        bg = cover_resize(back, *alpha.shape).astype(np.float64) / 255.0
        synth_u8 = np.clip((f_true * alpha[..., None] + bg * (1 - alpha[..., None])) * 255 + 0.5, 0, 255).astype(
            np.uint8
        )
        est, _ = estimates(session, synth_u8, alpha)
        partial = (alpha > 0) & (alpha < 1)
        rows_c.append(
            [weighted_error(est[m], f_true, alpha, partial) for m in ("network", "ml")]
            + [weighted_error(est[m], f_true, alpha, alpha > 0) for m in ("network", "ml")]
        )
        rows_d.append(["hairball", *protocol_d(est, synth_u8, f_true, alpha, new_bg)])
    a, b, c = np.array(rows_a), np.array(rows_b), np.array(rows_c)
    print("\n| protocol | pixels | network fgr | ml (pymatting) | images where ml is better |")
    print("|---|---|---|---|---|")
    print(
        f"| A alphamatting, real | alpha = 1 | {a[:, 0].mean():.2f} | {a[:, 1].mean():.2f} | "
        f"{(a[:, 1] < a[:, 0]).sum()}/{len(a)} |"
    )
    has = ~np.isnan(a[:, 2])
    print(
        f"| A alphamatting, real | alpha = 1 and network alpha >= 0.9 ({np.nanmean(a[:, 4]):.0%} of them) | "
        f"{np.nanmean(a[:, 2]):.2f} | {np.nanmean(a[:, 3]):.2f} | {(a[has, 3] < a[has, 2]).sum()}/{has.sum()} |"
    )
    print(
        f"| B alphamatting, known F | 0 < alpha < 1 | {b[:, 0].mean():.2f} | {b[:, 1].mean():.2f} | "
        f"{(b[:, 1] < b[:, 0]).sum()}/{len(b)} |"
    )
    print(
        f"| B alphamatting, known F | alpha > 0 | {b[:, 2].mean():.2f} | {b[:, 3].mean():.2f} | "
        f"{(b[:, 3] < b[:, 2]).sum()}/{len(b)} |"
    )
    if len(c):
        print(
            f"| C hairball, known F | 0 < alpha < 1 | {c[:, 0].mean():.2f} | {c[:, 1].mean():.2f} | "
            f"{(c[:, 1] < c[:, 0]).sum()}/{len(c)} |"
        )
        print(
            f"| C hairball, known F | alpha > 0 | {c[:, 2].mean():.2f} | {c[:, 3].mean():.2f} | "
            f"{(c[:, 3] < c[:, 2]).sum()}/{len(c)} |"
        )
    for name in ("alphamatting", "hairball"):
        d = np.array([r[1:] for r in rows_d if r[0] == name], dtype=np.float64)
        if len(d):
            print(
                f"| D {name}, network alpha for both (alpha MAE {d[:, 2].mean():.1f}) | composite, alpha > 0 "
                f"either | {d[:, 0].mean():.2f} | {d[:, 1].mean():.2f} | {(d[:, 1] < d[:, 0]).sum()}/{len(d)} |"
            )
    print(
        f"\nmean seconds per image (alphamatting, ~800x500, 2 cores): network (3 passes) "
        f"{b[:, 4].mean():.2f}, ml {b[:, 5].mean():.2f}"
    )


if __name__ == "__main__":
    main()
