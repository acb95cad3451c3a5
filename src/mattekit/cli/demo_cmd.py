"""``mattekit demo``: matte a built-in clip and write every output into a folder."""

from __future__ import annotations

from pathlib import Path

import click

from mattekit.cli.options import model_option, model_with_precision, overwrite_option, precision_option

#: what the demo writes into its folder (nothing else there is touched)
DEMO_FILES = ("input.mp4", "composition.mp4", "alpha.mp4", "foreground.mp4", "preview.png")


@click.command()
@click.option(
    "--output-dir", "-o", default="demo-output", show_default=True, type=click.Path(file_okay=False, path_type=Path)
)
@overwrite_option
@model_option
@precision_option
def demo(output_dir: Path, overwrite: bool, model: str | None, precision: str | None) -> None:
    """Build a 3 s 720p clip from scikit-image's astronaut photo, matte it, write the results
    (input.mp4, composition.mp4, alpha.mp4, foreground.mp4, preview.png) into the folder."""
    import av

    from mattekit.demo import make_demo_clip, side_by_side
    from mattekit.io.atomic import check_outputs
    from mattekit.io.image import write_image
    from mattekit.pipeline.video import convert_video

    paths = dict(zip(DEMO_FILES, check_outputs([output_dir / name for name in DEMO_FILES], [], overwrite), strict=True))
    clip = make_demo_clip(paths["input.mp4"])
    outputs = {kind: paths[f"{kind}.mp4"] for kind in ("composition", "alpha", "foreground")}
    result = convert_video(
        clip,
        output_composition=outputs["composition"],
        output_alpha=outputs["alpha"],
        output_foreground=outputs["foreground"],
        overwrite=overwrite,
        model=model_with_precision(model, precision),
    )
    middle = result.frames // 2
    panels = []
    for path in (clip, outputs["alpha"], outputs["composition"]):
        with av.open(str(path)) as container:
            for i, frame in enumerate(container.decode(video=0)):
                if i == middle:
                    panels.append(frame.to_ndarray(format="rgb24"))
                    break
    preview = write_image(paths["preview.png"], side_by_side(panels))
    click.echo(f"input:       {clip}")
    for kind, path in result.outputs.items():
        click.echo(f"{kind + ':':<13}{path}")
    click.echo(f"preview:     {preview}  (input | alpha | composition, frame {middle})")
    click.echo(
        f"{result.frames} frames {result.fps:.2f} fps (decode + matte + encode, "
        f"downsample_ratio {result.downsample_ratio:.3g})"
    )
