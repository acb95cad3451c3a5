"""``mattekit trimap``: matte an image from a trimap with a classical method (pymatting)."""

from __future__ import annotations

import time
from pathlib import Path

import click

from mattekit.cli.options import overwrite_option, quiet_option

METHOD_NAMES = ["cf", "knn", "lkm", "rw", "lbdm", "sm"]


@click.command()
@click.argument("image_path", metavar="IMAGE", type=click.Path(path_type=Path))
@click.argument("trimap_path", metavar="TRIMAP", type=click.Path(path_type=Path))
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="RGBA cut-out to write (default mattekit-output/<IMAGE stem>.png).",
)
@click.option(
    "--method",
    type=click.Choice(METHOD_NAMES),
    default="cf",
    show_default=True,
    help="closed-form, KNN, large-kernel, random-walk, learning-based or shared matting.",
)
@click.option("--alpha", "write_alpha", is_flag=True, help="Also write <OUT stem>_alpha.png.")
@overwrite_option
@quiet_option
def trimap(image_path, trimap_path, output, method, write_alpha, overwrite, quiet) -> None:
    """Matte IMAGE using TRIMAP (0 background, 255 foreground, 128 unknown): writes an RGBA
    cut-out with the estimated foreground colour and straight alpha."""
    from mattekit.classical.matte_trimap import matte_trimap
    from mattekit.io.atomic import check_outputs
    from mattekit.io.image import write_image

    out = output if output is not None else Path("mattekit-output") / f"{image_path.stem}.png"
    if out.suffix.lower() not in (".png", ".webp", ".tif", ".tiff"):
        raise click.BadParameter(f"{out}: an RGBA cut-out needs .png, .webp or .tif", param_hint="-o")
    targets = [out] + ([out.with_name(f"{out.stem}_alpha.png")] if write_alpha else [])
    check_outputs(targets, [image_path, trimap_path], overwrite)
    t0 = time.perf_counter()
    matte = matte_trimap(image_path, trimap_path, method)
    write_image(out, matte.rgba())
    if write_alpha:
        write_image(targets[1], (matte.alpha * 255.0 + 0.5).astype("uint8"))
    if not quiet:
        click.echo(f"{image_path} -> {', '.join(map(str, targets))} ({method}, {time.perf_counter() - t0:.1f} s)")
