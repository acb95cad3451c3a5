"""Peak memory and time of matting a very large photo (default 8000x6000).

Builds the photo from people/stills/0001_img.png (scaled to 8000x4500, centred on a 8000x6000
canvas, JPEG), then in a fresh process per mode reads it with ``read_image`` and runs
``matte_image`` with ``--fg-estimate network`` and ``ml``, writing the RGBA cut-out. Prints the
seconds and the peak resident memory (VmHWM) of each.

Usage: python benchmarks/large_photo.py [--width 8000 --height 6000]
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
t = time.perf_counter()
rgb = read_image(path)
read_peak = [l for l in open('/proc/self/status') if l.startswith('VmHWM')][0].split()[1]
matte = matte_image(rgb, fg_estimate=mode)
write_image(out, matte.rgba())
peak = [l for l in open('/proc/self/status') if l.startswith('VmHWM')][0].split()[1]
print(f"| {mode} | {time.perf_counter() - t:.0f} | {int(read_peak) / 1024:.0f} MiB | {int(peak) / 2**20:.1f} GiB |")
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--width", type=int, default=8000)
    ap.add_argument("--height", type=int, default=6000)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        photo = Path(tmp) / "big.jpg"
        person = Image.open(DATA / "people" / "stills" / "0001_img.png").convert("RGB")
        person = person.resize((args.width, args.width * 9 // 16), Image.Resampling.BICUBIC)
        canvas = Image.new("RGB", (args.width, args.height), (90, 100, 110))
        canvas.paste(person, (0, (args.height - person.height) // 2))
        canvas.save(photo, quality=92)
        del canvas, person
        print(f"{args.width}x{args.height} JPEG\n")
        print("| fg-estimate | seconds (read + matte + write) | peak after read_image | peak |")
        print("|---|---|---|---|")
        for mode in ("network", "ml"):
            subprocess.run([sys.executable, "-c", CHILD, str(photo), mode, str(Path(tmp) / f"{mode}.png")],
                           check=True)


if __name__ == "__main__":
    main()
