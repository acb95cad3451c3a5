"""Load RVM weights from the published ONNX file into a :class:`MattingNetwork` (no hub download).

In ``rvm_mobilenetv3_fp32.onnx`` every batch norm is folded into the convolution before it and
most initializers have numeric names, so names cannot be matched. Instead the graph's ``Conv``
nodes, in graph order, are matched one-to-one with the network's convolution calls in execution
order (:func:`mattekit.train.conv_order.conv_calls`), each pair checked for equal weight shape,
groups, stride, dilation and padding.

What a folded batch norm becomes: the ONNX convolution ``y = W x + b`` is loaded as the
network's ``conv (W, no bias) -> BatchNorm2d`` with running mean 0, running variance
``1 - eps`` (so the normalisation divides by exactly 1), scale 1 and shift ``b``. The result is
the same function, the module tree stays the one used for training from scratch (state dicts,
export and the segmentation head are shared), and fine-tuning keeps these batch norms in eval
mode: their statistics stay frozen (small fine-tuning batches of one subject would otherwise
overwrite the statistics the folded weights were made with) while scale and shift remain
trainable, i.e. the layer trains as a convolution with bias plus a per-channel gain.
"""

from __future__ import annotations

import os

import numpy as np
import torch
from torch import nn

from mattekit.errors import ModelError
from mattekit.train.conv_order import conv_calls
from mattekit.train.model import MattingNetwork


def onnx_convs(path: str | os.PathLike) -> list[tuple[str, np.ndarray, np.ndarray | None, dict]]:
    """The Conv nodes of an ONNX file in graph order: (node name, weight, bias or None, attributes).

    Raises:
        mattekit.errors.ModelError: the file cannot be parsed or a weight is not an initializer.
    """
    import onnx
    from onnx import numpy_helper

    try:
        graph = onnx.load(os.fspath(path)).graph
    except Exception as exc:  # onnx raises DecodeError, OSError, ...
        raise ModelError(f"{path}: cannot read ONNX file ({type(exc).__name__})") from None
    inits = {i.name: i for i in graph.initializer}
    convs = []
    for node in graph.node:
        if node.op_type != "Conv":
            continue
        if node.input[1] not in inits:
            raise ModelError(f"{path}: convolution {node.name} has a computed weight; not an RVM export")
        weight = numpy_helper.to_array(inits[node.input[1]])
        bias = numpy_helper.to_array(inits[node.input[2]]) if len(node.input) > 2 and node.input[2] else None
        attrs = {
            a.name: list(onnx.helper.get_attribute_value(a)) if a.ints else onnx.helper.get_attribute_value(a)
            for a in node.attribute
        }
        convs.append((node.name, weight, bias, attrs))
    return convs


def _check_same_layer(path, node: str, conv: nn.Conv2d, weight: np.ndarray, attrs: dict, name: str) -> None:
    expected = {
        "shape": tuple(conv.weight.shape),
        "group": conv.groups,
        "strides": list(conv.stride),
        "dilations": list(conv.dilation),
        "pads": list(conv.padding) * 2,
    }
    found = {
        "shape": weight.shape,
        "group": attrs.get("group", 1),
        "strides": attrs.get("strides", [1, 1]),
        "dilations": attrs.get("dilations", [1, 1]),
        "pads": attrs.get("pads", [0, 0, 0, 0]),
    }
    if expected != found:
        raise ModelError(f"{path}: {node} does not match {name} ({found} vs {expected})")


@torch.no_grad()
def load_onnx_weights(model: MattingNetwork, path: str | os.PathLike) -> MattingNetwork:
    """Copy the weights of an RVM ONNX file into ``model`` (in place; returned for chaining).

    Raises:
        mattekit.errors.ModelError: the graph's convolutions do not match the network's
        (other variant, other architecture).
    """
    convs = onnx_convs(path)
    calls = conv_calls(model)
    if len(convs) != len(calls):
        raise ModelError(f"{path}: {len(convs)} convolutions, the {model.variant} network runs {len(calls)}")
    loaded: dict[int, np.ndarray] = {}
    for (node, weight, bias, attrs), call in zip(convs, calls, strict=True):
        _check_same_layer(path, node, call.conv, weight, attrs, call.name)
        if id(call.conv) in loaded:  # a module called twice (the guided filter's box filter)
            if not np.array_equal(loaded[id(call.conv)], weight):
                raise ModelError(f"{path}: {node} differs from an earlier call of {call.name}")
            continue
        loaded[id(call.conv)] = weight
        call.conv.weight.copy_(torch.from_numpy(np.array(weight)))
        if call.bn is not None:
            bn = call.bn
            bn.weight.fill_(1.0)
            bn.bias.copy_(torch.from_numpy(np.array(bias)) if bias is not None else torch.zeros_like(bn.bias))
            assert bn.running_mean is not None and bn.running_var is not None  # RVM tracks running stats
            bn.running_mean.zero_()
            bn.running_var.fill_(1.0 - bn.eps)
        elif call.conv.bias is not None:
            call.conv.bias.copy_(
                torch.from_numpy(np.array(bias)) if bias is not None else torch.zeros_like(call.conv.bias)
            )
        elif bias is not None and np.any(bias):
            raise ModelError(f"{path}: {node} has a bias but {call.name} has none")
    return model


def pretrained(source: str | os.PathLike | None = "rvm-mobilenetv3", variant: str = "mobilenetv3") -> MattingNetwork:
    """A MattingNetwork with weights from a registered model name or an RVM ONNX path.

    The registered model is fetched into mattekit's cache on first use
    (:func:`mattekit.models.factory.model_file`).
    """
    from mattekit.models.factory import model_file

    return load_onnx_weights(MattingNetwork(variant), model_file(source))
