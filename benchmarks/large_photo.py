"""Peak memory and time of matting very large photos (default 12, 48 and 100 megapixels).

Builds each photo from the real still people/stills/0001_img.png (scaled to the photo's width,
16:9, centred on a 4:3 canvas, JPEG quality 92), then in a fresh process per photo and mode
reads it with ``read_image``, runs ``matte_image`` with ``--fg-estimate network`` and ``ml``,
and writes the RGBA cut-out PNG, as ``mattekit image`` does. Prints the seconds and the peak
resident memory (VmHWM) of each, after ``read_image`` and in total.

Usage: python benchmarks/large_photo.py [--sizes 4000x3000,8000x6000,11548x8660]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

from PIL import Image

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"

CHILD = """
import sys, time
from mattekit.io.image import read_image, write_image
from mattekit.pipeline.image import matte_image
path, mode, out = sys.argv[1:4]
def hwm():
    return int([l for l in open('/proc/self/status') if l.startswith('VmHWM')][0].split()[1]) * 1024
t = time.perf_counter()
rgb = read_image(path)
read_peak = hwm()
matte = matte_image(rgb, fg_estimate=mode)
write_image(out, matte.rgba())
print(f"| {rgb.shape[1]}×{rgb.shape[0]} | {rgb.size / 3e6:.0f} | {mode} | {time.perf_counter() - t:.0f} "
      f"| {read_peak / 2**20:.0f} MiB | {hwm() / 2**30:.2f} GiB | {hwm() / (rgb.size / 3):.1f} |", flush=True)
"""


def make_photo(path: Path, width: int, height: int) -> None:
    person = Image.open(DATA / "people" / "stills" / "0001_img.png").convert("RGB")
    person = person.resize((width, width * 9 // 16), Image.Resampling.BICUBIC)
    canvas = Image.new("RGB", (width, height), (90, 100, 110))
    canvas.paste(person, (0, (height - person.height) // 2))
    canvas.save(path, quality=92)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="4000x3000,8000x6000,11548x8660", help="comma-separated WIDTHxHEIGHT list")
    ap.add_argument("--modes", default="network,ml")
    args = ap.parse_args()
    print(
        "| photo | MP | fg-estimate | seconds (read + matte + write) | peak after read_image | peak | bytes per pixel |"
    )
    print("|---|---|---|---|---|---|---|", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.sizes.split(","):
            width, height = (int(v) for v in size.lower().split("x"))
            photo = Path(tmp) / f"{width}x{height}.jpg"
            make_photo(photo, width, height)
            for mode in args.modes.split(","):
                subprocess.run(
                    [sys.executable, "-c", CHILD, str(photo), mode, str(Path(tmp) / f"{mode}.png")], check=True
                )
            photo.unlink()


if __name__ == "__main__":
    main()
