"""Convolutional GRU (Ballas et al., "Delving Deeper into Convolutional Networks for Learning
Video Representations", ICLR 2016), the recurrent unit of RVM's decoder.

    r, z = sigmoid(conv([x, h]));  c = tanh(conv([x, r * h]));  h' = (1 - z) * h + z * c
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class ConvGRU(nn.Module):
    """Recurrent over time: x is B×T×C×H×W, h is B×C×H×W (or broadcastable to it, or None = zeros).

    Returns the outputs B×T×C×H×W and the last hidden state B×C×H×W.
    """

    def __init__(self, channels: int, kernel_size: int = 3):
        super().__init__()
        self.channels = channels
        self.gates = nn.Sequential(
            nn.Conv2d(2 * channels, 2 * channels, kernel_size, padding=kernel_size // 2), nn.Sigmoid()
        )
        self.candidate = nn.Sequential(
            nn.Conv2d(2 * channels, channels, kernel_size, padding=kernel_size // 2), nn.Tanh()
        )

    def step(self, x: Tensor, h: Tensor) -> Tensor:
        """One time step: x and h N×C×H×W -> new h."""
        r, z = self.gates(torch.cat([x, h], dim=1)).split(self.channels, dim=1)
        c = self.candidate(torch.cat([x, r * h], dim=1))
        return (1 - z) * h + z * c

    def forward(self, x: Tensor, h: Tensor | None) -> tuple[Tensor, Tensor]:
        first = x[:, 0]
        h = torch.zeros_like(first) if h is None else h.expand_as(first)
        outputs = []
        for t in range(x.shape[1]):
            h = self.step(x[:, t], h)
            outputs.append(h)
        return torch.stack(outputs, dim=1), h
