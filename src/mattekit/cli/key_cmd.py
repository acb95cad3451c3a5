"""``mattekit key``: green/blue-screen footage to foreground + alpha with FFmpeg's keying filters."""

from __future__ import annotations

import click

from mattekit.cli.options import Checked, overwrite_option, quiet_option
from mattekit.io.video_writer import VIDEO_FORMATS
from mattekit.params import validate_frame_rate
from mattekit.plan import TRANSPARENT_TYPES


class KeyColor(click.ParamType):
    """``auto`` or a colour name / ``#rrggbb``."""

    name = "auto|COLOR"

    def convert(self, value, param, ctx):
        if value is None or isinstance(value, tuple):
            return value
        if str(value).lower() == "auto":
            return None
        from mattekit.compose.background import parse_color

        rgb = parse_color(str(value))
        if rgb is None:
            self.fail(f"{value!r} is not a colour (a name such as green, or #rrggbb)", param, ctx)
        return rgb


class UnitFloat(click.ParamType):
    """A finite number in 0..1 (NaN and infinities refused)."""

    name = "FLOAT"

    def convert(self, value, param, ctx):
        try:
            number = float(value)
        except (TypeError, ValueError):
            self.fail(f"{value!r} is not a number", param, ctx)
        if not 0.0 <= number <= 1.0:  # also false for NaN
            self.fail(f"{value} is not between 0 and 1", param, ctx)
        return number


@click.command()
@click.argument("input_source", metavar="INPUT", type=click.Path(path_type=str))
@click.option("--output", "-o", metavar="FILE|DIR", help="Keyed foreground with alpha (RGBA, despilled).")
@click.option("--output-alpha", "-a", metavar="FILE|DIR", help="The alpha matte alone.")
@click.option(
    "--output-type",
    type=click.Choice(("png_sequence", *VIDEO_FORMATS)),
    default="webm",
    show_default=True,
    help=f"Format of the outputs; the RGBA output needs one with transparency ({', '.join(TRANSPARENT_TYPES)}).",
)
@click.option(
    "--method",
    type=click.Choice(("chromakey", "hsvkey", "backgroundkey")),
    default="chromakey",
    show_default=True,
    help="FFmpeg filter: chromakey (U/V distance), hsvkey (hue/saturation) or "
    "backgroundkey (difference to --clean-plate).",
)
@click.option(
    "--color",
    type=KeyColor(),
    default="auto",
    show_default=True,
    help="Screen colour; auto = the median colour of the first frame's border.",
)
@click.option("--similarity", type=UnitFloat(), help="Distance keyed fully transparent, 0..1 (default: measured).")
@click.option("--blend", type=UnitFloat(), help="Width of the soft edge above --similarity, 0..1 (default: measured).")
@click.option("--clean-plate", type=click.Path(path_type=str), help="Picture of the empty scene (backgroundkey).")
@click.option("--no-despill", is_flag=True, help="Keep the screen's colour cast on the foreground.")
@click.option(
    "--frame-rate",
    type=Checked(validate_frame_rate),
    help="Frame rate of a folder of frames, 0.01 to 1000 (default 30).",
)
@overwrite_option
@quiet_option
def key(
    input_source,
    output,
    output_alpha,
    output_type,
    method,
    color,
    similarity,
    blend,
    clean_plate,
    no_despill,
    frame_rate,
    overwrite,
    quiet,
) -> None:
    """Key INPUT, green/blue-screen footage (a video or a folder of frames), into foreground + alpha."""
    from mattekit.keying import key_video

    if output is None and output_alpha is None:
        raise click.UsageError("give --output and/or --output-alpha")
    if method == "backgroundkey" and clean_plate is None:
        raise click.UsageError("--method backgroundkey needs --clean-plate")
    result = key_video(
        input_source,
        output,
        output_type,
        output_alpha,
        color=color,
        similarity=similarity,
        blend=blend,
        method=method,
        clean_plate=clean_plate,
        despill=not no_despill,
        overwrite=overwrite,
        progress=not quiet,
        frame_rate=frame_rate,
    )
    if not quiet:
        s = result.settings
        if s is not None:  # None only when the clip had no frame
            against = "clean plate" if method == "backgroundkey" else f"key colour #{s.hex[2:]}"
            click.echo(f"{against}, {method} similarity {s.similarity:.4f}, blend {s.blend:.4f}")
        for kind, path in result.outputs.items():
            click.echo(f"{kind}: {path}")
        click.echo(f"{result.frames} frames in {result.seconds:.1f} s")
