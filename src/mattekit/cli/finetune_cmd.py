"""``mattekit finetune``: adapt a matting model to one subject's footage and export it to ONNX."""

from __future__ import annotations

from pathlib import Path

import click

from mattekit.cli.options import FiniteFloatRange, overwrite_option, quiet_option
from mattekit.cli.train_common import MAX_THREADS


@click.command()
@click.option(
    "--foreground",
    "foreground",
    multiple=True,
    required=True,
    metavar="CLIP|DIR",
    help="Foreground + alpha: a transparent clip (webm/prores/gif, e.g. from mattekit key), a folder of "
    "RGBA frames, or a folder with fgr/ and pha/. Repeatable.",
)
@click.option(
    "--backgrounds",
    multiple=True,
    required=True,
    metavar="DIR|FILE",
    help="Background pictures and videos (folders searched recursively). Repeatable.",
)
@click.option(
    "--from",
    "init",
    default="rvm-mobilenetv3",
    show_default=True,
    metavar="NAME|ONNX|CKPT",
    help="Starting weights: a registered model, an RVM .onnx file or a .pt checkpoint.",
)
@click.option("--steps", type=click.IntRange(min=1), default=2000, show_default=True, help="Training steps.")
@click.option(
    "--output",
    "-o",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The fine-tuned model (.onnx, RVM's signature).",
)
@click.option(
    "--resolution",
    type=click.IntRange(min=64),
    default=256,
    show_default=True,
    help="Side of the square training crops, pixels.",
)
@click.option("--seq-length", type=click.IntRange(min=1), default=4, show_default=True, help="Frames per clip.")
@click.option("--batch-size", type=click.IntRange(min=1), default=1, show_default=True, help="Clips per step.")
@click.option(
    "--lr",
    type=FiniteFloatRange(min=0, min_open=True, max=1),
    default=5e-5,
    show_default=True,
    help="Learning rate of the decoder; backbone and LR-ASPP use a fifth of it (RVM stage 4's ratio).",
)
@click.option(
    "--validation-fraction",
    type=FiniteFloatRange(0, 1, max_open=True),
    default=0.2,
    show_default=True,
    help="Last part of every foreground held back for validation (with the last background).",
)
@click.option(
    "--checkpoint-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Checkpoints (default: OUTPUT.checkpoints beside the output).",
)
@click.option(
    "--checkpoint-every", type=click.IntRange(min=1), default=50, show_default=True, help="Steps between checkpoints."
)
@click.option(
    "--validate-every",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Steps between validations (0: at the start and the end).",
)
@click.option("--device", type=click.Choice(("auto", "cpu", "cuda", "mps")), default="auto", show_default=True)
@click.option("--threads", type=click.IntRange(1, MAX_THREADS), help="CPU threads for torch (default: torch's choice).")
@click.option(
    "--seed",
    type=click.IntRange(0, 2**32 - 1),
    default=0,
    show_default=True,
    help="Seed of every random draw of the data.",
)
@click.option("--restart", is_flag=True, help="Start over instead of resuming from the checkpoint folder.")
@overwrite_option
@quiet_option
def finetune(
    foreground,
    backgrounds,
    init,
    steps,
    output,
    resolution,
    seq_length,
    batch_size,
    lr,
    validation_fraction,
    checkpoint_dir,
    checkpoint_every,
    validate_every,
    device,
    threads,
    seed,
    restart,
    overwrite,
    quiet,
) -> None:
    """Fine-tune RVM on your own foreground footage, composited over your backgrounds; export to ONNX.

    Stopped runs (Ctrl-C, SIGTERM, a kill) resume from the last checkpoint when run again.
    """
    from mattekit.cli.train_common import run_and_export
    from mattekit.io.atomic import check_output, existing_paths
    from mattekit.train.config import StageConfig

    if output.suffix.lower() != ".onnx":
        raise click.BadParameter(f"{output}: the model is written as .onnx", param_hint="--output")
    output = check_output(output, existing_paths(*foreground, *backgrounds, init), overwrite)
    config = StageConfig(
        variant="mobilenetv3",
        init=str(init),
        freeze_batchnorm=True,
        foreground=list(foreground),
        backgrounds=list(backgrounds),
        validation_fraction=validation_fraction,
        validation_backgrounds=1 if validation_fraction > 0 else 0,
        resolution_lr=resolution,
        seq_length_lr=seq_length,
        batch_size=batch_size,
        steps=steps,
        lr_backbone=lr / 5,
        lr_aspp=lr / 5,
        lr_decoder=lr,
        lr_refiner=0.0,
        seed=seed,
        device=device,
        checkpoint_dir=str(checkpoint_dir or output.with_name(output.name + ".checkpoints")),
        checkpoint_every=checkpoint_every,
        validate_every=validate_every,
    )
    run_and_export(config, output, threads, restart, quiet, "fine-tuning")
