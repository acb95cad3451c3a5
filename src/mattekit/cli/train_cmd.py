"""``mattekit train``: run one training stage from a TOML config (RVM's four stages ship with mattekit)."""

from __future__ import annotations

from pathlib import Path

import click

from mattekit.cli.options import overwrite_option, quiet_option
from mattekit.cli.train_common import MAX_THREADS


@click.command()
@click.option(
    "--config",
    "config_path",
    required=True,
    metavar="FILE|stage1..stage4",
    help="A stage config (TOML), or the name of a shipped one: stage1, stage2, stage3, stage4.",
)
@click.option(
    "--set",
    "assignments",
    multiple=True,
    metavar="KEY=VALUE",
    help="Override a setting, e.g. --set foreground=data/fg --set steps=1000. Repeatable.",
)
@click.option(
    "--export",
    "output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write the trained model as ONNX with RVM's signature (any variant).",
)
@click.option("--threads", type=click.IntRange(1, MAX_THREADS), help="CPU threads for torch (default: torch's choice).")
@click.option("--restart", is_flag=True, help="Start over instead of resuming from the checkpoint folder.")
@overwrite_option
@quiet_option
def train(config_path, assignments, output, threads, restart, overwrite, quiet) -> None:
    """Train one stage of Robust Video Matting; checkpoints go to the config's checkpoint_dir.

    Stopped runs (Ctrl-C, SIGTERM, a kill) resume from the last checkpoint when run again.
    """
    from mattekit.cli.train_common import run_and_export
    from mattekit.io.atomic import check_output, existing_paths
    from mattekit.train.config import load_config

    try:
        config = load_config(config_path).override(list(assignments))
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--set") from None
    if output is not None:
        if output.suffix.lower() != ".onnx":
            raise click.BadParameter(f"{output}: the model is written as .onnx", param_hint="--export")
        output = check_output(
            output,
            existing_paths(*config.foreground, *config.backgrounds, *config.segmentation, config.init),
            overwrite,
        )
    run_and_export(config, output, threads, restart, quiet, Path(config_path).stem)
