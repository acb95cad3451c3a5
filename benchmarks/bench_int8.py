"""INT8 vs FP32 RVM: model-only speed and accuracy on the real clips in ../shared/data/people.

Prints one table: variant, model-only fps at 720p (test-sample1.mp4, auto ratio 0.4) and 1080p
(sample0/*.jpg, ratio 0.25), speed-up over FP32 (per resolution), mean |Δα| per frame against
FP32 and the worst frame's |Δα| (all 79 frames of test-sample1, all 30 of sample0; recurrent
state fed back frame by frame, each variant on its own state).

Speed is the median wall time of ``session.run`` on already-decoded frames, with the variants
interleaved round by round so that load from other processes hits them alike; the calling
thread's CPU time with one intra-op thread (``--threads 1``) is a load-independent check.

With ``--cut`` every variant is first cut before the Deep Guided Filter's full-resolution step
(``mattekit.models.rvm_cut``, as mattekit runs it): the timed part is the low-resolution network
only, and alpha is finished by ``mattekit.models.dgf_bands`` for the accuracy columns.

Run:  .venv/bin/python benchmarks/bench_int8.py [--threads N] [--rounds R] [--cut] [--extra FILE.onnx ...]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "people"
OUT = ["fgr", "pha", "r1o", "r2o", "r3o", "r4o"]


def read_720() -> np.ndarray:
    import av

    with av.open(str(DATA / "test-sample1.mp4")) as container:
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])


def read_1080() -> np.ndarray:
    from mattekit.io.image import read_image

    return np.stack([read_image(p) for p in sorted((DATA / "sample0").glob("*.jpg"))])


def to_src(frame: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(frame.transpose(2, 0, 1)[None], dtype=np.float32) / np.float32(255)


def session(path: Path, threads: int | None):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if threads:
        options.intra_op_num_threads = threads
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def feed(sess, src: np.ndarray, state, dr: np.ndarray) -> dict:
    """One step's inputs; a cut graph takes the frame at the encoder's size (``src_small``)."""
    names = [i.name for i in sess.get_inputs()]
    rec = {"r1i": state[0], "r2i": state[1], "r3i": state[2], "r4i": state[3]}
    if "src_small" in names:
        from mattekit.models.dgf_bands import network_input

        return {"src_small": network_input(src, float(dr[0])), **rec}
    return {"src": src, "downsample_ratio": dr, **rec}


def run_clip(sess, frames: np.ndarray, ratio: float) -> np.ndarray:
    from mattekit.models.dgf_bands import fill_arrays

    zero = np.zeros((1, 1, 1, 1), np.float32)
    state = [zero] * 4
    dr = np.asarray([ratio], np.float32)
    alphas = []
    for frame in frames:
        src = to_src(frame)
        first, second, *state = sess.run(None, feed(sess, src, state, dr))
        if first.shape[1] == 4:  # a cut graph: coefficients at low resolution
            second = fill_arrays(first, second, src)[1]
        alphas.append(second[0, 0])
    return np.stack(alphas)


def time_variants(sessions: dict, frames: np.ndarray, ratio: float, rounds: int, per: int = 6):
    srcs = [to_src(f) for f in frames[:per]]
    zero = np.zeros((1, 1, 1, 1), np.float32)
    dr = np.asarray([ratio], np.float32)
    state = {k: [zero] * 4 for k in sessions}
    wall = {k: [] for k in sessions}
    cpu = {k: [] for k in sessions}
    for k, s in sessions.items():  # warm-up: arena and memory pattern
        for src in srcs[:2]:
            _, _, *state[k] = s.run(None, feed(s, src, state[k], dr))
    for _ in range(rounds):
        for k, s in sessions.items():
            for src in srcs:
                inputs = feed(s, src, state[k], dr)
                t, c = time.perf_counter(), time.thread_time()
                _, _, *state[k] = s.run(None, inputs)
                wall[k].append(time.perf_counter() - t)
                cpu[k].append(time.thread_time() - c)
    return ({k: float(np.median(v)) for k, v in wall.items()}, {k: float(np.median(v)) for k, v in cpu.items()})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=None, help="intra-op threads (default: ONNX Runtime's)")
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--extra", nargs="*", default=[], help="more ONNX files to compare")
    ap.add_argument("--cut", action="store_true", help="time and check the cut low-resolution networks")
    args = ap.parse_args()

    from rich.console import Console
    from rich.table import Table

    from mattekit.models.fetch import fetch
    from mattekit.models.quantize import build_int8
    from mattekit.models.registry import DEFAULT_MODEL

    fp32 = fetch(DEFAULT_MODEL)
    variants = {"fp32": fp32, "int8 (mattekit)": build_int8(fp32)}
    variants.update({Path(p).name: Path(p) for p in args.extra})
    if args.cut:
        from mattekit.models.rvm_cut import cut_model

        variants = {f"{k}, cut": cut_model(p) for k, p in variants.items()}
    sessions = {k: session(p, args.threads) for k, p in variants.items()}
    clips = {"720p": (read_720(), 0.4), "1080p": (read_1080(), 0.25)}

    fps, cpu_ms, err = {}, {}, {}
    for res, (frames, ratio) in clips.items():
        wall, cpu = time_variants(sessions, frames, ratio, args.rounds)
        fps[res] = {k: 1.0 / v for k, v in wall.items()}
        cpu_ms[res] = {k: 1000.0 * v for k, v in cpu.items()}
        base = next(iter(sessions))
        ref = run_clip(sessions[base], frames, ratio)
        for k, s in sessions.items():
            alphas = ref if k == base else run_clip(s, frames, ratio)
            per_frame = np.abs(alphas - ref).mean(axis=(1, 2))
            err.setdefault(k, {})[res] = (float(per_frame.mean()), float(per_frame.max()), int(per_frame.argmax()))

    import os

    table = Table(
        title=f"RVM model-only, CPU ({os.cpu_count()} cores), intra-op threads: "
        f"{args.threads or 'default'}; |Δα| vs FP32 (alpha 0..1)"
    )
    for col in (
        "variant",
        "fps 720p",
        "fps 1080p",
        "speed-up 720p",
        "speed-up 1080p",
        "cpu ms 720p / 1080p",
        "mean |Δα| 720p",
        "worst 720p (frame)",
        "mean |Δα| 1080p",
        "worst 1080p (frame)",
    ):
        table.add_column(col, justify="right")
    for k in sessions:
        e7, e10 = err[k]["720p"], err[k]["1080p"]
        table.add_row(
            k,
            f"{fps['720p'][k]:.2f}",
            f"{fps['1080p'][k]:.2f}",
            f"{fps['720p'][k] / fps['720p'][base]:.2f}x",
            f"{fps['1080p'][k] / fps['1080p'][base]:.2f}x",
            f"{cpu_ms['720p'][k]:.0f} / {cpu_ms['1080p'][k]:.0f}",
            f"{e7[0]:.4f}",
            f"{e7[1]:.4f} ({e7[2]})",
            f"{e10[0]:.4f}",
            f"{e10[1]:.4f} ({e10[2]})",
        )
    Console(width=220).print(table)


if __name__ == "__main__":
    main()
