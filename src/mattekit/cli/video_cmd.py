"""``mattekit video``: matte a video file or a folder of frames."""

from __future__ import annotations

import click

from mattekit.cli.options import downsample_ratio_option, model_option, overwrite_option, quiet_option
from mattekit.pipeline.video import OUTPUT_TYPES, convert_video


@click.command()
@click.argument("input_source", metavar="INPUT", type=click.Path(path_type=str))
@click.option("--output-composition", "-c", metavar="FILE|DIR", help="Person over the background.")
@click.option("--output-alpha", "-a", metavar="FILE|DIR", help="Alpha matte.")
@click.option("--output-foreground", "-f", metavar="FILE|DIR", help="Predicted foreground colour.")
@click.option("--output-type", type=click.Choice(OUTPUT_TYPES), default="video", show_default=True,
              help="Container of every output: video (H.264 MP4) or png_sequence (a folder).")
@click.option("--background", "-b", metavar="COLOR|IMAGE",
              help="Composite background: a colour name, #rrggbb, or an image (default RVM's green).")
@click.option("--output-video-mbps", type=float, help="Bit rate of written videos (default: CRF 18).")
@downsample_ratio_option
@click.option("--seq-chunk", type=click.IntRange(min=1), default=1, show_default=True,
              help="Accepted for RVM compatibility; the ONNX model steps one frame at a time.")
@click.option("--frame-rate", type=float, help="Frame rate of a folder of frames (default 30).")
@model_option
@overwrite_option
@quiet_option
def video(input_source, output_composition, output_alpha, output_foreground, output_type, background,
          output_video_mbps, downsample_ratio, seq_chunk, frame_rate, model, overwrite, quiet) -> None:
    """Matte INPUT, a video file or a folder of frames, keeping size, frame rate and audio."""
    result = convert_video(input_source, output_type=output_type,
                           output_composition=output_composition, output_alpha=output_alpha,
                           output_foreground=output_foreground, output_video_mbps=output_video_mbps,
                           downsample_ratio=downsample_ratio, seq_chunk=seq_chunk, background=background,
                           progress=not quiet, model=model, overwrite=overwrite, frame_rate=frame_rate)
    if result.warning:
        click.echo(f"mattekit: warning: {result.warning}", err=True)
    if not quiet:
        for kind, path in result.outputs.items():
            click.echo(f"{kind}: {path}")
        click.echo(f"{result.frames} frames in {result.seconds:.1f} s ({result.fps:.2f} fps, "
                   f"downsample_ratio {result.downsample_ratio:.3g})")
