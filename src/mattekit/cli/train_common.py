"""What ``mattekit train`` and ``mattekit finetune`` share: run a stage, report, export, check."""

from __future__ import annotations

from pathlib import Path

import click

# --threads above this is refused (torch.set_num_threads takes a C int: 99999999999 raised
# "ValueError: Overflow when unpacking long" as a traceback)
MAX_THREADS = 1024
# the exported file must reproduce PyTorch's alpha and foreground this closely (max |Δ|)
EXPORT_TOLERANCE = 1e-4


def require_torch() -> None:
    """Raise a one-line error when PyTorch (the ``train`` extra) is missing."""
    import importlib.util

    from mattekit.errors import MattekitError

    if importlib.util.find_spec("torch") is None or importlib.util.find_spec("torchvision") is None:
        raise MattekitError("training needs PyTorch and torchvision: pip install 'mattekit[train]'")


def run_and_export(config, output: Path | None, threads: int | None, restart: bool, quiet: bool, label: str) -> None:
    """Train ``config``; print the validation table; export to ``output`` and check it against PyTorch.

    Raises:
        click.BadParameter: a bad setting. mattekit errors pass through (input, model, cancelled).
    """
    require_torch()
    import numpy as np
    import torch

    from mattekit.cli.train_progress import TrainingProgress, validation_table
    from mattekit.errors import ModelError
    from mattekit.train.train import run_stage

    if threads:
        torch.set_num_threads(threads)
    try:
        config.check()
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    with TrainingProgress(quiet, label) as progress:
        try:
            result = run_stage(config, on_step=progress, resume=not restart)
        except ValueError as exc:
            raise click.BadParameter(str(exc)) from None
    if not quiet:
        table = validation_table(result.validation)
        if table:
            click.echo("validation on held-back frames (MAD, MSE x1e3; Grad x1e-3; dtSSD x1e2):")
            click.echo(table)
        click.echo(f"{result.steps} steps; checkpoint {result.checkpoint}")
    if output is None:
        return
    from mattekit.train.onnx_export import export_onnx, max_export_error

    template = config.init if config.init.lower().endswith(".onnx") else None
    path = export_onnx(result.model.cpu(), output, template)
    clip = result.validation_clip
    if clip is not None:
        composite = clip.fgr * clip.pha + clip.bgr * (1 - clip.pha)
        frames = (composite[:4].permute(0, 2, 3, 1).numpy() * 255 + 0.5).astype(np.uint8)
    else:
        frames = np.random.default_rng(0).integers(0, 256, (2, 144, 256, 3), dtype=np.uint8)
    error = max_export_error(result.model, path, frames, 1.0)
    if error > EXPORT_TOLERANCE:
        path.unlink()
        raise ModelError(
            f"{output}: exported model differs from PyTorch by {error:.2e} (> {EXPORT_TOLERANCE}); removed"
        )
    if not quiet:
        click.echo(f"model: {path} (ONNX vs PyTorch max |Δ| {error:.1e})")
