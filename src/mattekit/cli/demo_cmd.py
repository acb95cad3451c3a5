"""``mattekit demo``: matte a built-in clip and write every output into a folder."""

from __future__ import annotations

from pathlib import Path

import click

from mattekit.cli.options import model_option, model_with_precision, precision_option


@click.command()
@click.option("--output-dir", "-o", default="demo-output", show_default=True,
              type=click.Path(file_okay=False, path_type=Path))
@model_option
@precision_option
def demo(output_dir: Path, model: str | None, precision: str | None) -> None:
    """Build a 3 s 720p clip from scikit-image's astronaut photo, matte it, write the results."""
    import av

    from mattekit.demo import make_demo_clip, side_by_side
    from mattekit.io.image import write_image
    from mattekit.pipeline.video import convert_video

    output_dir.mkdir(parents=True, exist_ok=True)
    clip = make_demo_clip(output_dir / "input.mp4")
    outputs = {"composition": output_dir / "composition.mp4", "alpha": output_dir / "alpha.mp4",
               "foreground": output_dir / "foreground.mp4"}
    result = convert_video(clip, output_composition=outputs["composition"], output_alpha=outputs["alpha"],
                           output_foreground=outputs["foreground"], overwrite=True,
                           model=model_with_precision(model, precision))
    middle = result.frames // 2
    panels = []
    for path in (clip, outputs["alpha"], outputs["composition"]):
        with av.open(str(path)) as container:
            for i, frame in enumerate(container.decode(video=0)):
                if i == middle:
                    panels.append(frame.to_ndarray(format="rgb24"))
                    break
    preview = write_image(output_dir / "preview.png", side_by_side(panels))
    click.echo(f"input:       {clip}")
    for kind, path in result.outputs.items():
        click.echo(f"{kind + ':':<13}{path}")
    click.echo(f"preview:     {preview}  (input | alpha | composite, frame {middle})")
    click.echo(f"{result.frames} frames {result.fps:.2f} fps (decode + matte + encode, "
               f"downsample_ratio {result.downsample_ratio:.3g})")
