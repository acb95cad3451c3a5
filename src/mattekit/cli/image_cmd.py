"""``mattekit image``: matte image files and folders into RGBA cut-outs."""

from __future__ import annotations

from pathlib import Path

import click

from mattekit.cli.options import downsample_ratio_option, model_option, overwrite_option, quiet_option
from mattekit.errors import InputError, MattekitError
from mattekit.io.atomic import check_output
from mattekit.io.image import IMAGE_SUFFIXES, read_image, write_image


def collect_images(inputs: tuple[str, ...]) -> list[Path]:
    """Expand files and folders (their image files, sorted) into a list of image paths."""
    files: list[Path] = []
    for item in map(Path, inputs):
        if item.is_dir():
            files.extend(sorted(p for p in item.iterdir()
                                if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".")))
        else:
            files.append(item)
    return files


@click.command()
@click.argument("inputs", nargs=-1, required=True, metavar="INPUT...")
@click.option("--output-dir", "-o", default="mattekit-output", show_default=True,
              type=click.Path(file_okay=False, path_type=Path), help="Folder for the results.")
@click.option("--alpha", "write_alpha", is_flag=True, help="Also write <stem>_alpha.png.")
@click.option("--composite", "composite_bg", metavar="COLOR|IMAGE",
              help="Also write <stem>_composite.jpg over this background.")
@downsample_ratio_option
@model_option
@overwrite_option
@quiet_option
def image(inputs, output_dir, write_alpha, composite_bg, downsample_ratio, model, overwrite, quiet) -> None:
    """Matte INPUT images or folders: <stem>.png is an RGBA cut-out (straight alpha)."""
    from mattekit.compose.background import parse_background
    from mattekit.models.rvm_onnx import RVMSession
    from mattekit.pipeline.image import matte_image

    files = collect_images(inputs)
    if not files:
        raise InputError(", ".join(inputs), "no image files found")
    background = parse_background(composite_bg) if composite_bg else None
    session = RVMSession(model)
    failed = 0
    for file in files:
        try:
            targets = {"rgba": output_dir / f"{file.stem}.png"}
            if write_alpha:
                targets["alpha"] = output_dir / f"{file.stem}_alpha.png"
            if background is not None:
                targets["composite"] = output_dir / f"{file.stem}_composite.jpg"
            for path in targets.values():
                check_output(path, [file], overwrite)
            matte = matte_image(read_image(file), session, downsample_ratio)
            write_image(targets["rgba"], matte.rgba())
            if "alpha" in targets:
                write_image(targets["alpha"], (matte.alpha * 255.0 + 0.5).astype("uint8"))
            if "composite" in targets:
                write_image(targets["composite"], matte.composite(background))
            if not quiet:
                click.echo(f"{file} -> {', '.join(str(p) for p in targets.values())}")
        except MattekitError as exc:
            failed += 1
            click.echo(f"mattekit: error: {exc}", err=True)
    if failed:
        raise click.exceptions.Exit(2 if failed == len(files) else 1)
