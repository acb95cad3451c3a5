"""Cut Robust Video Matting's ONNX graph before the Deep Guided Filter's full-resolution half.

RVM's Deep Guided Filter (Wu et al., "Fast End-to-End Trainable Guided Filter", CVPR 2018, as
used in Lin et al., "Robust High-Resolution Video Matting with Temporal Guidance", WACV 2022,
github.com/PeterL1n/RobustVideoMatting ``model/deep_guided_filter.py``) ends with

    A, b  = low-resolution coefficients, N×4×h×w       (the graph's tensors feeding Resize_332/346)
    A↑,b↑ = bilinear upsampling of A and b to H×W      (two ``Resize`` nodes, pytorch_half_pixel)
    out   = A↑ · [R, G, B, mean(R, G, B)] + b↑          (at full resolution)
    fgr   = clip(out[:3] + src, 0, 1), pha = clip(out[3], 0, 1)

The second half is memory-bound float work over every full-resolution pixel (22 % of the network's
time at 1080p in the two Resizes alone, docs/int8.md). :func:`cut_model` builds, from the published
file, a graph that stops at ``A`` and ``b`` (outputs ``coef_a``, ``coef_b`` and the recurrent
state ``r1o..r4o``); :mod:`mattekit.models.dgf_bands` does the rest in bands of rows, only for the
outputs a caller asks for.

The graph's first step, the bilinear ``Resize`` of the full-resolution ``src`` by
``downsample_ratio``, is cut off too: the cut graph takes ``src_small`` (N×3×h×w, the frame
already at the encoder's size, made by :func:`mattekit.models.dgf_bands.network_input` with the
same sampling rule). So ONNX Runtime never sees a full-resolution tensor (its NCHWc layout copy of a
48-megapixel ``src`` alone took about 3 GiB).

The cut file is derived once and cached in mattekit's model cache (``derived/`` under
:func:`mattekit.models.cache.cache_dir`), named by the source file's SHA-256 and the recipe
version, written under a temporary name and moved into place with :func:`os.replace` under a
:class:`filelock.FileLock`: never beside the user's file, and no second download.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from mattekit.errors import ModelError

#: Bumped whenever the cut changes, so files made by an older recipe are not reused.
RECIPE_VERSION = "2"
#: Output names of the cut graph (besides RVM's ``r1o..r4o``).
COEF_OUTPUTS = ("coef_a", "coef_b")
#: Input name of the cut graph's frame at the encoder's resolution.
SMALL_INPUT = "src_small"
STATE_OUTPUTS = ("r1o", "r2o", "r3o", "r4o")


def derived_dir() -> Path:
    """Folder of model files mattekit derives from other files (``<model cache>/derived``)."""
    from mattekit.models.cache import cache_dir

    return cache_dir() / "derived"


def find_coefficients(graph) -> tuple[str, str, str]:
    """The tensors ``(A, b, guide)`` of the Deep Guided Filter's full-resolution step.

    Recognised by structure, not by node names: the ``pha`` output is ``Clip(Split(Add(Mul(
    Resize(A), guide), Resize(b))))``.

    Raises:
        mattekit.errors.ModelError: the graph does not end in RVM's guided filter.
    """
    producer = {o: n for n in graph.node for o in n.output}

    def node(tensor: str, op: str):
        n = producer.get(tensor)
        if n is None or n.op_type != op:
            raise ModelError(f"not RVM's Deep Guided Filter ({tensor!r} is not made by {op})")
        return n

    split = node(node("pha", "Clip").input[0], "Split")
    add = node(split.input[0], "Add")
    mul = node(add.input[0], "Mul")
    resize_a = node(mul.input[0], "Resize")
    resize_b = node(add.input[1], "Resize")
    for r in (resize_a, resize_b):
        mode = {a.name: a.s for a in r.attribute}
        if mode.get("mode") != b"linear" or mode.get("coordinate_transformation_mode") != b"pytorch_half_pixel":
            raise ModelError(f"the guided filter's {r.name} is not a half-pixel bilinear resize")
    return resize_a.input[0], resize_b.input[0], mul.input[1]


def find_input_resize(graph):
    """The node that downsamples ``src`` by ``downsample_ratio`` (half-pixel bilinear ``Resize``).

    Raises:
        mattekit.errors.ModelError: there is not exactly one such node.
    """
    found = [n for n in graph.node if n.op_type == "Resize" and n.input and n.input[0] == "src"]
    if len(found) != 1:
        raise ModelError("not RVM's input downsampling (one Resize of src expected)")
    mode = {a.name: a.s for a in found[0].attribute}
    if mode.get("mode") != b"linear" or mode.get("coordinate_transformation_mode") != b"pytorch_half_pixel":
        raise ModelError(f"the input {found[0].name} is not a half-pixel bilinear resize")
    return found[0]


def cut_graph(model):
    """A copy of an RVM ``onnx.ModelProto`` from ``src_small, r1i..r4i`` to ``coef_a, coef_b, r1o..r4o``.

    ``src_small`` is N×3×h×w float32 RGB in 0..1 at the encoder's resolution
    (``h = floor(H · downsample_ratio)``); ``coef_a`` and ``coef_b`` are N×4×h×w float32. Nodes no
    longer needed are removed.

    Raises:
        mattekit.errors.ModelError: the graph is not RVM's (see :func:`find_coefficients`).
    """
    import onnx
    from onnx import helper

    a, b, _ = find_coefficients(model.graph)
    small = find_input_resize(model.graph).output[0]
    cut = onnx.ModelProto()
    cut.CopyFrom(model)
    g = cut.graph
    for n in g.node:
        for k, x in enumerate(n.input):
            if x == small:
                n.input[k] = SMALL_INPUT
    rename = {a: COEF_OUTPUTS[0], b: COEF_OUTPUTS[1]}
    g.node.extend([helper.make_node("Identity", [src], [dst], name=f"mattekit_{dst}") for src, dst in rename.items()])
    keep_outputs = list(COEF_OUTPUTS) + list(STATE_OUTPUTS)
    state_info = {o.name: o for o in g.output if o.name in STATE_OUTPUTS}
    del g.output[:]
    g.output.extend([helper.make_tensor_value_info(n, onnx.TensorProto.FLOAT, None) for n in COEF_OUTPUTS])
    g.output.extend([state_info[n] for n in STATE_OUTPUTS])
    # keep only the nodes the new outputs depend on
    producer = {o: i for i, n in enumerate(g.node) for o in n.output}
    needed, stack = set(), list(keep_outputs)
    while stack:
        t = stack.pop()
        i = producer.get(t)
        if i is None or i in needed:
            continue
        needed.add(i)
        stack.extend(x for x in g.node[i].input if x)
    nodes = [n for i, n in enumerate(g.node) if i in needed]
    del g.node[:]
    g.node.extend(nodes)
    used = {x for n in nodes for x in n.input}
    if "src" in used:
        raise ModelError("src is used beyond the input downsampling")
    inits = [t for t in g.initializer if t.name in used]
    del g.initializer[:]
    g.initializer.extend(inits)
    inputs = [helper.make_tensor_value_info(SMALL_INPUT, onnx.TensorProto.FLOAT, ["N", 3, "h", "w"])]
    inputs += [i for i in g.input if i.name in used and i.name != SMALL_INPUT]
    del g.input[:]
    g.input.extend(inputs)
    return cut


def cut_model(source: str | os.PathLike, out_dir: str | os.PathLike | None = None) -> Path:
    """The cut copy of an RVM ONNX file (see the module docstring), built and cached when needed.

    Args:
        source: RVM's published ONNX file (any encoder), FP32 or the INT8 copy.
        out_dir: where cut files are cached; default :func:`derived_dir`.

    Returns:
        Path of ``rvm_cut-<first 16 hex of the source's SHA-256>-r<recipe>.onnx``.

    Raises:
        mattekit.errors.ModelError: the file is not RVM's graph, or the cache is not writable.
    """
    import onnx

    from mattekit.models.cache import sha256_of

    source = Path(source)
    folder = Path(out_dir) if out_dir is not None else derived_dir()
    target = folder / f"rvm_cut-{sha256_of(source)[:16]}-r{RECIPE_VERSION}.onnx"
    if target.is_file():
        return target
    try:
        folder.mkdir(parents=True, exist_ok=True)
        from filelock import FileLock

        with FileLock(str(target) + ".lock"):
            if target.is_file():
                return target
            model = onnx.load(str(source))
            cut = cut_graph(model)
            fd, staged = tempfile.mkstemp(prefix=".rvm_cut-", suffix=".partial", dir=folder)
            os.close(fd)
            try:
                onnx.save(cut, staged)
                os.replace(staged, target)
            finally:
                if os.path.exists(staged):
                    os.unlink(staged)
    except ModelError as exc:
        raise ModelError(f"{source}: cannot cut the guided filter out ({exc})") from None
    except OSError as exc:
        raise ModelError(f"{folder}: cannot write the cut model ({exc.strerror or exc})") from None
    return target
