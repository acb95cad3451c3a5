"""Break down protocol D of benchmarks/fg_estimate.py on the hairball: where does the network's
``fgr`` or pymatting's ``ml`` foreground (both with the network's own alpha α_n) give the better
composite?

Each of 5 rendered hairball frames (exact straight colour F and alpha α, 960x540) is composited
over people/stills/background_0001.png and matted; the composite F̂·α_n + B'·(1−α_n) over three
new backgrounds B' (black, white, alphamatting GT01) is compared with the true F·α + B'·(1−α) in
three regions: the fur (0 < α < 1), the opaque core (α = 1) and false positives (α = 0 < α_n). The
last line is the pure colour error α·|F̂ − F| in fur pixels whose α_n is within 0.1 of α.
Mean absolute error, 0..255 units.

Usage: python benchmarks/fg_estimate_hairball.py
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from mattekit import matte_image
from mattekit.classical.estimate_foreground import estimate_foreground_ml
from mattekit.compose.background import cover_resize
from mattekit.models import new_session

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def main() -> None:
    session = new_session()
    room = np.asarray(Image.open(DATA / "people/stills/background_0001.png").convert("RGB").resize((960, 540)))
    room = room.astype(np.float32) / 255
    picture = cover_resize(np.asarray(Image.open(DATA / "alphamatting/input/GT01.png").convert("RGB")), 540, 960)
    backgrounds = {
        "black": np.zeros(3, np.float32),
        "white": np.ones(3, np.float32),
        "GT01 picture": picture.astype(np.float32) / 255,
    }
    acc: dict[tuple[str, str, str], list[float]] = {}
    for i in (1, 6, 11, 16, 21):
        rgba = np.asarray(Image.open(DATA / f"hairball/in{i:04d}.png").convert("RGBA")).astype(np.float32) / 255
        f_true, a_true = rgba[..., :3], rgba[..., 3]
        image = np.clip((f_true * a_true[..., None] + room * (1 - a_true[..., None])) * 255 + 0.5, 0, 255)
        image = image.astype(np.uint8)
        net = matte_image(image, session, fg_estimate="network")
        a_n = net.alpha
        estimates = {"network": net.fgr, "ml": estimate_foreground_ml(image, a_n)}
        regions = {
            "fur (0<a<1)": (a_true > 0) & (a_true < 1),
            "opaque (a=1)": a_true >= 1,
            "false positive (a=0<a_n)": (a_true == 0) & (a_n > 1 / 255),
        }
        for bname, bg in backgrounds.items():
            truth = f_true * a_true[..., None] + bg * (1 - a_true[..., None])
            for m, f_hat in estimates.items():
                err = np.abs(f_hat * a_n[..., None] + bg * (1 - a_n[..., None]) - truth).mean(axis=2) * 255
                for rname, mask in regions.items():
                    acc.setdefault((f"composite over {bname}", rname, m), []).append(float(err[mask].mean()))
        good = (a_true > 0) & (a_true < 1) & (np.abs(a_n - a_true) < 0.1)
        for m, f_hat in estimates.items():
            err = (np.abs(f_hat - f_true).mean(axis=2) * a_true)[good].mean() * 255
            acc.setdefault(("colour error a*abs(F̂-F)", "fur where |a_n-a|<0.1", m), []).append(float(err))
    print("| measure | region | network fgr | ml |\n|---|---|---|---|")
    for what, region in dict.fromkeys((a, b) for a, b, _ in acc):
        print(
            f"| {what} | {region} | {np.mean(acc[(what, region, 'network')]):.2f} | "
            f"{np.mean(acc[(what, region, 'ml')]):.2f} |"
        )


if __name__ == "__main__":
    main()
