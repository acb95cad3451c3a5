"""Alpha after the round trip: write each transparent output type, decode it back, compare.

Runs ``convert_video`` on people/test-sample1.mp4 (1280x720, 79 frames, with audio) once per
output type, decodes the written file with :func:`mattekit.io.rgba_reader.read_rgba_frames`
(libvpx for WebM's alpha layer) and compares its alpha plane with the model's alpha (float, from
stepping the same RVM session over the same frames). Prints a table: mean absolute error in
0..255 units (over all pixels and frames), the worst frame's mean, the largest single-pixel
error, the file size, the audio codec and the wall-clock time of the conversion.

Usage: python benchmarks/alpha_roundtrip.py [--video PATH] [--frames N]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import av
import numpy as np
from PIL import Image

from mattekit import convert_video
from mattekit.io.rgba_reader import read_rgba_frames
from mattekit.models import new_session
from mattekit.models.base import to_src
from mattekit.models.rvm_onnx import auto_downsample_ratio

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--video", type=Path, default=DATA / "people" / "test-sample1.mp4")
    ap.add_argument("--types", default="png_sequence,webm,prores,gif", help="comma-separated output types")
    args = ap.parse_args()
    session = new_session()
    alphas = []
    with av.open(str(args.video)) as container:
        stream = container.streams.video[0]
        ratio = auto_downsample_ratio(stream.codec_context.height, stream.codec_context.width)
        state = session.initial_state()
        for frame in container.decode(stream):
            result = session.step(to_src(frame.to_ndarray(format="rgb24")), state, ratio)
            state = result.state
            alphas.append(result.pha[0, 0] * 255.0)
    print(f"{args.video.name}: {len(alphas)} frames {alphas[0].shape[1]}x{alphas[0].shape[0]}\n")
    print("| output type | file | alpha MAE (0..255) | worst frame MAE | max pixel error | size | audio | seconds |")
    print("|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for output_type, name in (("png_sequence", "png"), ("webm", "c.webm"), ("prores", "c.mov"), ("gif", "c.gif")):
            if output_type not in args.types.split(","):
                continue
            out = Path(tmp) / name
            t0 = time.perf_counter()
            convert_video(args.video, output_type=output_type, output_composition=out, progress=False, model=session)
            seconds = time.perf_counter() - t0
            if output_type == "png_sequence":
                decoded = [np.asarray(Image.open(p))[:, :, 3] for p in sorted(out.glob("*.png"))]
                size = sum(p.stat().st_size for p in out.glob("*.png"))
                audio = "-"
            else:
                decoded = [d.rgba[:, :, 3] for d in read_rgba_frames(out)]
                size = out.stat().st_size
                with av.open(str(out)) as c:
                    audio = ",".join(s.codec_context.name for s in c.streams.audio) or "-"
            assert len(decoded) == len(alphas), (output_type, len(decoded))
            errs = [np.abs(d.astype(np.float32) - a) for d, a in zip(decoded, alphas, strict=True)]
            mae = float(np.mean([e.mean() for e in errs]))
            worst = float(max(e.mean() for e in errs))
            peak = float(max(e.max() for e in errs))
            print(
                f"| {output_type} | {name} | {mae:.3f} | {worst:.3f} | {peak:.1f} | {size / 1e6:.1f} MB | "
                f"{audio} | {seconds:.1f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
