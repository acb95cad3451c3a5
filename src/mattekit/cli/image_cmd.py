"""``mattekit image``: matte image files and folders into RGBA cut-outs, resumably."""

from __future__ import annotations

from pathlib import Path

import click

from mattekit.cli.options import (
    cli_plan,
    downsample_ratio_option,
    executor_options,
    model_option,
    model_with_precision,
    overwrite_option,
    precision_option,
    quiet_option,
    stderr_line,
    warn_renamed,
)
from mattekit.cli.video_cmd import exit_for, print_summary
from mattekit.pipeline.image import DEFAULT_FG_ESTIMATE, FG_ESTIMATES


@click.command()
@click.argument("inputs", nargs=-1, required=True, metavar="INPUT...")
@click.option(
    "--output-dir",
    "-o",
    default="mattekit-output",
    show_default=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder for the results.",
)
@click.option("--recursive", "-r", is_flag=True, help="Include sub-folders of folder inputs, keeping their structure.")
@click.option("--alpha", "write_alpha", is_flag=True, help="Also write the alpha matte, <stem>_alpha.png.")
@click.option(
    "--background",
    "-b",
    metavar="COLOR|IMAGE|VIDEO|blur[:N]",
    help="Also write the composition over this background, <stem>_composition.jpg: a colour name or "
    "#rrggbb, a picture (scaled to cover, centred), a video (its first frame) or blur[:N].",
)
@click.option("--composite", "composite_bg", metavar="BACKGROUND", hidden=True, help="Deprecated name of --background.")
@click.option(
    "--fg-estimate",
    type=click.Choice(FG_ESTIMATES),
    default=DEFAULT_FG_ESTIMATE,
    show_default=True,
    help="Colour of the cut-out: 'ml' = pymatting's multilevel foreground estimation from the image "
    "and alpha (Germer et al. 2020; measured better, docs/outputs.md), 'network' = the model's "
    "own foreground prediction.",
)
@click.option(
    "--refine",
    is_flag=True,
    help="Re-solve the alpha near its edges with closed-form matting (slower; docs/refine.md).",
)
@downsample_ratio_option
@model_option
@precision_option
@overwrite_option
@quiet_option
@executor_options
def image(
    inputs,
    output_dir,
    recursive,
    write_alpha,
    background,
    composite_bg,
    fg_estimate,
    refine,
    downsample_ratio,
    model,
    precision,
    overwrite,
    quiet,
    executor,
    ray_address,
) -> None:
    """Matte INPUT images or folders: <stem>.png is the foreground as an RGBA cut-out (straight alpha).

    Images whose outputs already exist are skipped (use --overwrite to redo them), so a stopped run
    resumes; a file that fails does not stop the others.
    """
    from mattekit.batch import image_plan, matte_folder

    if composite_bg is not None:
        warn_renamed("--composite", "--background")
        if background is not None:
            raise click.UsageError("--composite is the old name of --background; give only --background")
        background = composite_bg
    plan = cli_plan(image_plan, write_alpha, background, overwrite)
    model = model_with_precision(model, precision)

    def on_file(outcome, index, total):
        if outcome.status == "failed":
            stderr_line("error", f"{outcome.source}: {outcome.reason}")
        elif outcome.status == "done" and not quiet:
            click.echo(
                f"[{index + 1}/{total}] {outcome.source} -> {', '.join(str(p) for p in outcome.outputs)}", err=True
            )

    result = matte_folder(
        list(inputs),
        output_dir,
        recursive=recursive,
        plan=plan,
        fg_estimate=fg_estimate,
        refine=refine,
        downsample_ratio=downsample_ratio,
        model=model,
        on_file=on_file,
        executor=executor,
        ray_address=ray_address,
        progress=not quiet,
    )
    print_summary(result, quiet)
    exit_for(result)
