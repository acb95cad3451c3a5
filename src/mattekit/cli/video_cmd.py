"""``mattekit video``: matte a video file, a folder of frames, or a folder of videos."""

from __future__ import annotations

from pathlib import Path

import click

from mattekit.cli.options import (
    Checked,
    cli_plan,
    downsample_ratio_option,
    executor_options,
    model_option,
    model_with_precision,
    overwrite_option,
    precision_option,
    quiet_option,
    stderr_line,
)
from mattekit.io.video_writer import X264_PRESETS
from mattekit.params import (
    FRAME_RATE_RANGE,
    MBPS_RANGE,
    validate_frame_rate,
    validate_output_video_mbps,
    validate_seq_chunk,
)
from mattekit.plan import OUTPUT_TYPES, OUTPUTS, OutputPlan


def print_summary(result, quiet: bool) -> None:
    """A rich table of a batch run (done / skipped / failed with the reason), then the totals."""
    from rich.console import Console
    from rich.table import Table

    console = Console(stderr=False)
    if not console.is_terminal:
        console = Console(stderr=False, width=200)
    styles = {"done": "green", "skipped": "cyan", "failed": "bold red", "cancelled": "yellow"}
    if not quiet or not result.ok:
        table = Table(title="mattekit batch")
        for col in ("file", "status", "detail", "seconds"):
            table.add_column(col, overflow="fold")
        for o in result.outcomes:
            if quiet and o.status in ("done", "skipped"):
                continue
            detail = (
                o.reason
                if o.status != "done"
                else ", ".join(p.name for p in o.outputs) + (f" (warning: {o.reason})" if o.reason else "")
            )
            table.add_row(
                o.label or str(o.source),
                f"[{styles[o.status]}]{o.status}[/]",
                detail,
                f"{o.seconds:.1f}" if o.seconds else "",
            )
        console.print(table)
    counts = {s: len(result.by_status(s)) for s in ("done", "skipped", "failed", "cancelled")}
    console.print(", ".join(f"{n} {s}" for s, n in counts.items() if n or s != "cancelled"))
    if result.cancelled:
        console.print("stopped; run the same command again to resume (finished files are skipped)")


def exit_for(result) -> None:
    """Exit 130 when the run was cancelled, 1 when some files failed; when every file failed for
    the same kind of reason, that kind's code (2 input, 3 output, 4 model), as a single file would."""
    if result.cancelled:
        raise click.exceptions.Exit(130)
    if result.failed:
        codes = {o.exit_code for o in result.failed}
        alone = len(codes) == 1 and len(result.failed) == len(result.outcomes)
        raise click.exceptions.Exit(codes.pop() if alone else 1)


@click.command()
@click.argument("input_source", metavar="INPUT", type=click.Path(path_type=str))
@click.option("--output-composition", "-c", metavar="FILE|DIR", help="Person over the background.")
@click.option("--output-alpha", "-a", metavar="FILE|DIR", help="Alpha matte.")
@click.option("--output-foreground", "-f", metavar="FILE|DIR", help="Predicted foreground colour.")
@click.option(
    "--output-dir",
    "-o",
    type=click.Path(file_okay=False, path_type=Path),
    help="Batch mode: matte every video in INPUT (a folder, or one file) into this folder as "
    "<stem>_<output>.<ext>; finished files are skipped, so a stopped run resumes.",
)
@click.option(
    "--outputs",
    default="composition",
    show_default=True,
    metavar="LIST",
    help=f"Batch mode: comma-separated outputs per video ({', '.join(OUTPUTS)}).",
)
@click.option("--recursive", "-r", is_flag=True, help="Batch mode: include sub-folders, keeping their structure.")
@click.option(
    "--output-type",
    type=click.Choice(OUTPUT_TYPES),
    default="video",
    show_default=True,
    help="How every output is stored: video (H.264 .mp4), webm (VP9 with alpha), prores (ProRes 4444 "
    ".mov with alpha), gif (short clips, 1-bit alpha) or png_sequence (a folder of PNGs). With "
    "webm, prores, gif and png_sequence the composition is transparent (RGBA) unless "
    "--background is given.",
)
@click.option(
    "--background",
    "-b",
    metavar="COLOR|IMAGE|VIDEO|blur[:N]|transparent",
    help="What the composition is placed on: a colour name or #rrggbb, a picture (scaled to cover, "
    "centred), a video (looped or cut, at the input's frame rate), blur[:N] (the input's own "
    "background blurred, Gaussian sigma N px, 0 < N <= 1000, default 25) or transparent (needs "
    "webm, prores, gif or png_sequence). Default RVM's green (transparent for those types).",
)
@click.option(
    "--output-video-mbps",
    type=Checked(validate_output_video_mbps),
    help=f"Bit rate of written videos in Mbit/s, {MBPS_RANGE[0]:g} to {MBPS_RANGE[1]:g} (default: quality-based).",
)
@click.option(
    "--preset",
    type=click.Choice(X264_PRESETS),
    metavar="PRESET",
    help="libx264 speed preset of --output-type video: ultrafast (default), superfast, veryfast, "
    "faster, fast, medium, slow, slower, veryslow. veryfast gives files about 2.7x smaller at "
    "the same quality for 3x the encoding time.",
)
@downsample_ratio_option
@click.option(
    "--seq-chunk",
    type=Checked(validate_seq_chunk, "INTEGER", integer=True),
    default=1,
    show_default=True,
    help="Accepted for RVM compatibility; the ONNX model steps one frame at a time.",
)
@click.option(
    "--frame-rate",
    type=Checked(validate_frame_rate),
    help=f"Frame rate of a folder of frames, {FRAME_RATE_RANGE[0]:g} to {FRAME_RATE_RANGE[1]:g} (default 30).",
)
@model_option
@precision_option
@overwrite_option
@quiet_option
@executor_options
@click.option(
    "--chunk-frames",
    type=click.IntRange(min=0),
    default=None,
    metavar="N",
    help="With --executor ray: cut videos into chunks of at least N frames at keyframes (default 900; "
    "0 = never cut, each video in one task). Chunk starts differ slightly from one run over "
    "the whole video: docs/cluster.md.",
)
def video(
    input_source,
    output_composition,
    output_alpha,
    output_foreground,
    output_dir,
    outputs,
    recursive,
    output_type,
    background,
    output_video_mbps,
    preset,
    downsample_ratio,
    seq_chunk,
    frame_rate,
    model,
    precision,
    overwrite,
    quiet,
    executor,
    ray_address,
    chunk_frames,
) -> None:
    """Matte INPUT, a video file or a folder of frames, keeping size, frame rate and audio.

    With --output-dir, INPUT is a folder of videos (or one video) matted file by file.
    """
    from mattekit.pipeline.video import convert_with_plan

    if output_dir is not None:
        if output_composition or output_alpha or output_foreground:
            raise click.UsageError(
                "--output-dir (batch mode) cannot be combined with -c/-a/-f; choose the outputs with --outputs"
            )
        plan = cli_plan(OutputPlan, outputs, output_type, background, output_video_mbps, preset, overwrite)
        _batch(
            input_source,
            output_dir,
            plan,
            recursive,
            downsample_ratio,
            model_with_precision(model, precision),
            quiet,
            executor,
            ray_address,
            chunk_frames,
        )
        return
    if executor != "local" or chunk_frames is not None:
        raise click.UsageError("--executor ray and --chunk-frames work in batch mode: give --output-dir")
    plan = cli_plan(
        OutputPlan,
        {"composition": output_composition, "alpha": output_alpha, "foreground": output_foreground},
        output_type,
        background,
        output_video_mbps,
        preset,
        overwrite,
        source=input_source,
    )
    result = convert_with_plan(
        input_source,
        plan,
        model=model_with_precision(model, precision),
        downsample_ratio=downsample_ratio,
        progress=not quiet,
        frame_rate=frame_rate,
    )
    if result.warning:
        stderr_line("warning", result.warning)
    if not quiet:
        for kind, path in result.outputs.items():
            click.echo(f"{kind}: {path}")
        click.echo(
            f"{result.frames} frames in {result.seconds:.1f} s ({result.fps:.2f} fps, "
            f"downsample_ratio {result.downsample_ratio:.3g})"
        )


def _batch(
    input_source, output_dir, plan, recursive, downsample_ratio, model, quiet, executor, ray_address, chunk_frames
) -> None:
    from mattekit.batch import convert_folder

    def on_start(path, index, total):
        if not quiet:
            click.echo(f"[{index + 1}/{total}] {path}", err=True)

    def on_file(outcome, index, total):
        if outcome.status == "failed":
            stderr_line("error", f"{outcome.source}: {outcome.reason}")
        elif outcome.status == "done" and outcome.reason:
            stderr_line("warning", f"{outcome.source}: {outcome.reason}")

    result = convert_folder(
        input_source,
        output_dir,
        recursive=recursive,
        plan=plan,
        downsample_ratio=downsample_ratio,
        model=model,
        progress=not quiet,
        on_file=on_file,
        on_start=on_start,
        executor=executor,
        ray_address=ray_address,
        ray_options=None if chunk_frames is None else {"chunk_frames": chunk_frames},
    )
    print_summary(result, quiet)
    exit_for(result)
