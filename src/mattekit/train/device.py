"""Pick the torch device: ``auto`` takes CUDA, then Apple's MPS, then the CPU."""

from __future__ import annotations

import torch


def select_device(name: str = "auto") -> torch.device:
    """``auto``, ``cpu``, ``cuda`` or ``mps`` -> a ``torch.device``.

    Raises:
        ValueError: unknown name, or the asked-for accelerator is not available here.
    """
    cuda = torch.cuda.is_available()
    mps = getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
    if name == "auto":
        return torch.device("cuda" if cuda else "mps" if mps else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if (name == "cuda" and cuda) or (name == "mps" and mps):
        return torch.device(name)
    if name in ("cuda", "mps"):
        raise ValueError(f"device {name} is not available on this computer (use auto or cpu)")
    raise ValueError(f"unknown device {name!r} (auto, cpu, cuda, mps)")
