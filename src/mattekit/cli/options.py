"""Options and parameter types shared by several verbs."""

from __future__ import annotations

import click

from mattekit.errors import ParameterError
from mattekit.params import parse, validate_downsample_ratio


class Checked(click.ParamType):
    """A number from the command line parsed and checked by :func:`mattekit.params.parse` with one
    of its validators, so the CLI accepts exactly what the Python API and the server accept."""

    def __init__(self, validator, metavar: str = "FLOAT", words: dict | None = None, integer: bool = False):
        self.validator = validator
        self.name = metavar
        self.words = words
        self.integer = integer

    def convert(self, value, param, ctx):
        if value is None or not isinstance(value, str):
            return value
        try:
            return parse(value, self.validator, self.words, integer=self.integer)
        except ParameterError as exc:
            self.fail(exc.problem, param, ctx)


downsample_ratio_type = Checked(validate_downsample_ratio, "auto|FLOAT", {"auto": None})
downsample_ratio_option = click.option(
    "--downsample-ratio", type=downsample_ratio_type, default="auto", show_default=True,
    help="Ratio at which the network sees frames; auto = min(512 / longer side, 1).")
model_option = click.option(
    "--model", default=None, metavar="NAME|PATH",
    help="Registered model name or a local ONNX file with RVM's signature (default rvm-mobilenetv3).")
overwrite_option = click.option("--overwrite", is_flag=True, help="Replace existing outputs.")
quiet_option = click.option("--quiet", "-q", is_flag=True, help="No progress bar or summary.")
precision_option = click.option(
    "--precision", type=click.Choice(["fp32", "int8"]), default="fp32", show_default=True,
    help="int8: a quantized copy of the model, built on first use; about 1.1x faster on this CPU, "
         "with visible alpha changes on some frames (docs/int8.md).")


def model_with_precision(model: str | None, precision: str):
    """The ``model`` argument for the pipeline: as given for fp32, else a session of that precision."""
    if precision == "fp32":
        return model
    from mattekit.models.rvm_onnx import RVMSession

    return RVMSession(model, precision=precision)
