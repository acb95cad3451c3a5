"""Export a MattingNetwork to ONNX with RVM's exact signature.

Inputs ``src`` (N×3×H×W float32 0..1), ``r1i..r4i`` (recurrent states, 1×1×1×1 zeros at the
start), ``downsample_ratio`` (float32 [1]); outputs ``fgr, pha, r1o..r4o``: what
:class:`mattekit.models.rvm_onnx.RVMSession` (and so every verb, the API and the web page) runs.

Method: the published RVM graph is the template. Each batch norm of the network is folded into
the convolution before it (``W' = W·γ/√(σ²+ε)``, ``b' = (b − μ)·γ/√(σ²+ε) + β``) and the
template's convolution initializers are replaced, in execution order (:mod:`mattekit.train.conv_order`),
by the network's. Everything else (the dynamic ``downsample_ratio`` resize, the state
broadcast, opset 12) stays exactly as RVM exported it, so the file runs wherever RVM's does.
The template must be the same architecture: the published MobileNetV3 file for the
``mobilenetv3`` variant.
"""

from __future__ import annotations

import os
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
                scale = bn.weight.float().cpu() / torch.sqrt(bn.running_var.float().cpu() + bn.eps)
                w = w * scale.view(-1, 1, 1, 1)
                b0 = b if b is not None else torch.zeros_like(scale)
                b = (b0 - bn.running_mean.float().cpu()) * scale + bn.bias.float().cpu()
            out.append((w.numpy().astype(np.float32), None if b is None else b.numpy().astype(np.float32)))
    return out


def export_onnx(model: MattingNetwork, output: str | os.PathLike, template: str | os.PathLike | None = None) -> Path:
    """Write ``model`` as an RVM ONNX file at ``output`` (atomically: temporary name, then rename).

    Args:
        model: a ``mobilenetv3`` MattingNetwork (batch norms are folded with their running statistics).
        output: the .onnx path to write (replaced if it exists; callers check overwrite rules).
        template: an RVM ONNX file of the same architecture; default the registered ``rvm-mobilenetv3``.

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
    for node, (w, b) in zip(nodes, weights):
        old = inits[node.input[1]]
        if tuple(old.dims) != w.shape:
            raise ModelError(f"{template}: {node.name} has shape {tuple(old.dims)}, the network {w.shape}")
        old.CopyFrom(numpy_helper.from_array(w, old.name))
        has_bias = len(node.input) > 2 and node.input[2]
        if b is not None and not has_bias:
            if np.any(b):
                raise ModelError(f"{template}: {node.name} has no bias input, the network has one")
        elif has_bias:
            inits[node.input[2]].CopyFrom(numpy_helper.from_array(
                b if b is not None else np.zeros(w.shape[0], np.float32), node.input[2]))
    graph_model.doc_string = "Robust Video Matting (Lin et al., WACV 2022), fine-tuned with mattekit"
    final = Path(output).expanduser()
    temp = temp_sibling(final)
    try:
        onnx.save(graph_model, os.fspath(temp))
        commit(temp, final)
    except BaseException:
        discard(temp)
        raise
    return final


def max_export_error(model: MattingNetwork, onnx_path: str | os.PathLike, frames: np.ndarray,
                     downsample_ratio: float) -> float:
    """Largest |Δ| of fgr and alpha between ``model`` and the exported file on a clip.

    ``frames``: T×H×W×3 uint8 RGB; the recurrent state is carried through both.
    """
    from mattekit.models.base import to_src
    from mattekit.models.rvm_onnx import RVMSession

    session = RVMSession(onnx_path, intra_op_threads=torch.get_num_threads())
    state = session.initial_state()
    rec = [None] * 4
    worst = 0.0
    was_training = model.training
    model.eval()
    with torch.no_grad():
        for rgb in frames:
            src = to_src(rgb)
            result = session.step(src, state, downsample_ratio)
            state = result.state
            fgr, pha, *rec = model(torch.from_numpy(src), *rec, downsample_ratio=downsample_ratio, refine=True)
            worst = max(worst, float(np.abs(fgr.numpy() - result.fgr).max()), float(np.abs(pha.numpy() - result.pha).max()))
    model.train(was_training)
    return worst
