"""The convolutions of a MattingNetwork in the order a forward pass runs them, each with the batch
norm that directly follows it (if any).

ONNX exports list convolution nodes in the same execution order, so this order is how weights
are matched between the two (``onnx_import``, ``onnx_export``) without relying on names.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass
class ConvCall:
    """One convolution call: the module, its qualified name, and the batch norm applied to its output."""

    name: str
    conv: nn.Conv2d
    bn: nn.BatchNorm2d | None


def conv_calls(model: nn.Module, height: int = 64, width: int = 64) -> list[ConvCall]:
    """Run ``model`` once on a 1×3×H×W frame (ratio 0.5, Deep Guided Filter on, matting pass) and
    return its convolution calls in order (a module called k times appears k times)."""
    names = {m: n for n, m in model.named_modules()}
    calls: list[ConvCall] = []
    produced: dict[int, int] = {}  # id(conv output) -> index into calls
    hooks = []

    def on_conv(module, inputs, output):
        produced[id(output)] = len(calls)
        calls.append(ConvCall(names[module], module, None))

    def on_bn(module, inputs):
        index = produced.get(id(inputs[0]))
        if index is not None:
            calls[index].bn = module

    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            hooks.append(module.register_forward_hook(on_conv))
        elif isinstance(module, nn.BatchNorm2d):
            hooks.append(module.register_forward_pre_hook(on_bn))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(torch.rand(1, 3, height, width), downsample_ratio=0.5, refine=True)
    finally:
        model.train(was_training)
        for hook in hooks:
            hook.remove()
    return calls
