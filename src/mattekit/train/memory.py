"""Refuse a training step that cannot fit in this machine's memory, before building it.

Batch size and sequence length have no natural upper bound, and the data of a step is built in
host memory clip by clip (:meth:`mattekit.train.dataset.CompositingDataset.batch`), so a typo such
as ``--batch-size 100000000`` would otherwise fill the memory until the system kills something.
The estimate covers the low-resolution pass (``batch_size × seq_length_lr × resolution_lr²``
pixel-frames), the largest one on a CPU:

- on the CPU, the network's activations kept for the backward pass: ``benchmarks/train_speed.py``
  measured 3774–4039 MiB peak for one MobileNetV3 step at 512×288, T = 8 (1.18 M pixel-frames),
  about 3.3 KiB per pixel-frame with the interpreter and the model; 2.5 KiB is used here, so
  only steps that surely cannot fit are refused;
- on an accelerator, only the batch built on the host: foreground, alpha, background and the
  composite, 10 float32 channels per pixel-frame, twice over while they are stacked.
"""

from __future__ import annotations

import os

from mattekit.train.config import StageConfig

CPU_BYTES_PER_PIXEL_FRAME = 2500
HOST_BYTES_PER_PIXEL_FRAME = 2 * 10 * 4


def physical_memory() -> int | None:
    """This machine's RAM in bytes, or ``None`` where the OS does not say (then nothing is refused)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, OSError, ValueError):
        return None


def step_bytes(config: StageConfig, device_type: str) -> int:
    """Estimated peak bytes of one low-resolution step (see the module docstring)."""
    pixel_frames = config.batch_size * config.seq_length_lr * config.resolution_lr**2
    per = CPU_BYTES_PER_PIXEL_FRAME if device_type == "cpu" else HOST_BYTES_PER_PIXEL_FRAME
    return pixel_frames * per


def check_step_memory(config: StageConfig, device_type: str, available: int | None = None) -> None:
    """Raise ValueError when one step needs more than the machine's RAM (``available`` bytes,
    default :func:`physical_memory`), naming the settings to lower."""
    total = physical_memory() if available is None else available
    need = step_bytes(config, device_type)
    if total is not None and need > total:
        raise ValueError(
            f"batch_size {config.batch_size} × seq_length {config.seq_length_lr} × "
            f"{config.resolution_lr}² px needs about {need / 2**30:.3g} GiB per step on {device_type}, "
            f"more than this machine's {total / 2**30:.0f} GiB; lower the batch size, sequence length "
            "or resolution"
        )
