"""Export a MattingNetwork to ONNX with RVM's exact signature.

Inputs ``src`` (N×3×H×W float32 0..1), ``r1i..r4i`` (recurrent states, 1×1×1×1 zeros at the
start), ``downsample_ratio`` (float32 [1]); outputs ``fgr, pha, r1o..r4o``: what
:class:`mattekit.models.rvm_onnx.RVMSession` (and so every verb, the API and the web page) runs.

Two methods, both checked against PyTorch (:func:`max_export_error`):

* :func:`trace_onnx` (any variant): ``torch.onnx.export`` (the TorchScript exporter) of one
  frame step; ``downsample_ratio`` stays a graph input because the network's resize exports as
  a ``Resize`` whose scales are computed from it (``model.matting_network.ResizeByRatio``).
* filling the published graph (``mobilenetv3``, the default there, described below).

Filling: the published RVM graph is the template. Each batch norm of the network is folded into
the convolution before it (``W' = W·γ/√(σ²+ε)``, ``b' = (b − μ)·γ/√(σ²+ε) + β``) and the
template's convolution initializers are replaced, in execution order (:mod:`mattekit.train.conv_order`),
by the network's. Everything else (the dynamic ``downsample_ratio`` resize, the state
broadcast, opset 12) stays exactly as RVM exported it, so the file runs wherever RVM's does.
The template must be the same architecture: the published MobileNetV3 file for the
``mobilenetv3`` variant.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import torch

from mattekit.errors import ModelError
from mattekit.io.atomic import commit, discard, temp_sibling
from mattekit.train.conv_order import conv_calls
from mattekit.train.model import MattingNetwork


def folded_weights(model: MattingNetwork) -> list[tuple[np.ndarray, np.ndarray | None]]:
    """Per convolution call, in execution order: (weight, bias) with any following batch norm
    (in eval mode: running statistics) folded in. float32 numpy arrays."""
    out = []
    with torch.no_grad():
        for call in conv_calls(model):
            w = call.conv.weight.detach().float().cpu()
            b = call.conv.bias.detach().float().cpu() if call.conv.bias is not None else None
            if call.bn is not None:
                bn = call.bn
                assert bn.running_mean is not None and bn.running_var is not None  # RVM tracks running stats
                scale = bn.weight.float().cpu() / torch.sqrt(bn.running_var.float().cpu() + bn.eps)
                w = w * scale.view(-1, 1, 1, 1)
                b0 = b if b is not None else torch.zeros_like(scale)
                b = (b0 - bn.running_mean.float().cpu()) * scale + bn.bias.float().cpu()
            out.append((w.numpy().astype(np.float32), None if b is None else b.numpy().astype(np.float32)))
    return out


#: ONNX opset of traced files: ONNX Runtime 1.31 runs it (IR version 8), as do runtimes from 1.10 on
TRACE_OPSET = 17


def export_onnx(model: MattingNetwork, output: str | os.PathLike, template: str | os.PathLike | None = None) -> Path:
    """Write ``model`` as an RVM ONNX file at ``output`` (atomically: temporary name, then rename).

    ``mobilenetv3`` networks fill the published graph (``template``); the other variants are
    traced (:func:`trace_onnx`).

    Args:
        model: a MattingNetwork (batch norms are folded with their running statistics).
        output: the .onnx path to write (replaced if it exists; callers check overwrite rules).
        template: for ``mobilenetv3``, an RVM ONNX file of the same architecture; default the
            registered ``rvm-mobilenetv3``. Ignored for other variants.

    Raises:
        mattekit.errors.ModelError: the template's convolutions do not match the network.
    """
    if model.variant != "mobilenetv3":
        return trace_onnx(model, output)
    return fill_template(model, output, template)


class _FrameStep(torch.nn.Module):
    """One frame of RVM's ONNX signature: (src, r1i..r4i, downsample_ratio) -> fgr, pha, r1o..r4o."""

    def __init__(self, model: MattingNetwork):
        super().__init__()
        self.model = model

    def forward(self, src, r1i, r2i, r3i, r4i, downsample_ratio):
        return tuple(self.model(src, r1i, r2i, r3i, r4i, downsample_ratio=downsample_ratio, refine=True))


def trace_onnx(model: MattingNetwork, output: str | os.PathLike, opset: int = TRACE_OPSET) -> Path:
    """Write any variant of ``model`` as an RVM ONNX file by ``torch.onnx.export`` (TorchScript exporter).

    Inputs ``src`` N×3×H×W float32 0..1, ``r1i..r4i`` (1×1×1×1 zeros at the start, broadcast),
    ``downsample_ratio`` float32 [1]; outputs ``fgr`` N×3×H×W, ``pha`` N×1×H×W, ``r1o..r4o``;
    N, H, W and the state sizes dynamic. The guided filter is always applied (as in RVM's file).
    Batch norms are folded by the exporter (eval mode, running statistics). Written atomically.

    Raises:
        mattekit.errors.ModelError: the exporter failed.
    """
    from mattekit.models.rvm_onnx import INPUT_NAMES, OUTPUT_NAMES

    final = Path(output).expanduser()
    temp = temp_sibling(final)
    was_training = model.training
    device = next(model.parameters()).device
    model.eval().cpu()
    zeros = torch.zeros(1, 1, 1, 1)
    args = (torch.rand(1, 3, 144, 256), zeros, zeros, zeros, zeros, torch.tensor([0.5]))
    state_axes = {0: "batch_size", 1: "channels", 2: "height", 3: "width"}
    frame_axes = {0: "batch_size", 2: "height", 3: "width"}
    axes = {"src": frame_axes, "fgr": frame_axes, "pha": frame_axes}
    for i in range(1, 5):
        axes[f"r{i}i"] = axes[f"r{i}o"] = {k: f"r{i}_{v}" for k, v in state_axes.items()}
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the tracer's note on ResizeByRatio's float: intended
            torch.onnx.export(
                _FrameStep(model),
                args,
                os.fspath(temp),
                input_names=list(INPUT_NAMES),
                output_names=list(OUTPUT_NAMES),
                dynamic_axes=axes,
                opset_version=opset,
                do_constant_folding=True,
                dynamo=False,
            )
        _set_doc_string(temp)
        commit(temp, final)
    except Exception as exc:
        discard(temp)
        raise ModelError(f"{final}: ONNX export of the {model.variant} network failed: {exc}") from exc
    except BaseException:
        discard(temp)
        raise
    finally:
        model.to(device).train(was_training)
    return final


def _set_doc_string(path: Path) -> None:
    import onnx

    graph_model = onnx.load(os.fspath(path))
    graph_model.doc_string = DOC_STRING
    onnx.save(graph_model, os.fspath(path))


DOC_STRING = "Robust Video Matting (Lin et al., WACV 2022), fine-tuned with mattekit"


def fill_template(model: MattingNetwork, output: str | os.PathLike, template: str | os.PathLike | None = None) -> Path:
    """Write a ``mobilenetv3`` ``model`` into a copy of the published graph (see the module notes).

    Raises:
        mattekit.errors.ModelError: the template's convolutions do not match the network.
    """
    import onnx
    from onnx import numpy_helper

    from mattekit.models.factory import model_file

    template = model_file(template or "rvm-mobilenetv3")
    graph_model = onnx.load(os.fspath(template))
    inits = {i.name: i for i in graph_model.graph.initializer}
    nodes = [n for n in graph_model.graph.node if n.op_type == "Conv"]
    weights = folded_weights(model)
    if len(nodes) != len(weights):
        raise ModelError(f"{template}: {len(nodes)} convolutions, the {model.variant} network runs {len(weights)}")
    for node, (w, b) in zip(nodes, weights, strict=True):
        old = inits[node.input[1]]
        if tuple(old.dims) != w.shape:
            raise ModelError(f"{template}: {node.name} has shape {tuple(old.dims)}, the network {w.shape}")
        old.CopyFrom(numpy_helper.from_array(w, old.name))
        has_bias = len(node.input) > 2 and node.input[2]
        if b is not None and not has_bias:
            if np.any(b):
                raise ModelError(f"{template}: {node.name} has no bias input, the network has one")
        elif has_bias:
            inits[node.input[2]].CopyFrom(
                numpy_helper.from_array(b if b is not None else np.zeros(w.shape[0], np.float32), node.input[2])
            )
    graph_model.doc_string = DOC_STRING
    final = Path(output).expanduser()
    temp = temp_sibling(final)
    try:
        onnx.save(graph_model, os.fspath(temp))
        commit(temp, final)
    except BaseException:
        discard(temp)
        raise
    return final


def max_export_error(
    model: MattingNetwork, onnx_path: str | os.PathLike, frames: np.ndarray, downsample_ratio: float
) -> float:
    """Largest |Δ| of fgr and alpha between ``model`` and the exported file on a clip
    (the larger of :func:`export_errors`)."""
    return max(export_errors(model, onnx_path, frames, downsample_ratio))


def export_errors(
    model: MattingNetwork, onnx_path: str | os.PathLike, frames: np.ndarray, downsample_ratio: float
) -> tuple[float, float]:
    """(max |Δfgr|, max |Δα|) over every pixel and frame between ``model`` in PyTorch and the
    exported file in ONNX Runtime (:class:`mattekit.models.rvm_onnx.RVMSession`).

    ``frames``: T×H×W×3 uint8 RGB; the recurrent state is carried through both, starting from
    RVM's 1×1×1×1 zeros in ONNX Runtime and from None in PyTorch.
    """
    from mattekit.models.base import to_src
    from mattekit.models.rvm_onnx import RVMSession

    session = RVMSession(onnx_path, intra_op_threads=torch.get_num_threads(), cut=False)
    state = session.initial_state()
    rec = [None] * 4
    worst_fgr = worst_pha = 0.0
    was_training = model.training
    model.eval()
    with torch.no_grad():
        for rgb in frames:
            src = to_src(rgb)
            result = session.step(src, state, downsample_ratio)
            state = result.state
            fgr, pha, *rec = model(torch.from_numpy(src), *rec, downsample_ratio=downsample_ratio, refine=True)
            worst_fgr = max(worst_fgr, float(np.abs(fgr.numpy() - result.fgr).max()))
            worst_pha = max(worst_pha, float(np.abs(pha.numpy() - result.pha).max()))
    model.train(was_training)
    return worst_fgr, worst_pha
