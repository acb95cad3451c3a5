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
    help="Ratio at which the network sees frames; auto = the model's own (RVM: min(512 / longer side, 1)); "
         "fixed-size models (isnet) ignore it.")
model_option = click.option(
    "--model", default=None, metavar="NAME|PATH",
    help="A model from 'mattekit models list' (default rvm-mobilenetv3, recurrent; isnet: per frame), "
         "or an ONNX file: with a model card <file>.toml beside it, or an RVM export.")
overwrite_option = click.option("--overwrite", is_flag=True, help="Replace existing outputs.")
quiet_option = click.option("--quiet", "-q", is_flag=True, help="No progress bar or summary.")
precision_option = click.option(
    "--precision", type=click.Choice(["fp32", "fp16", "int8"]), default=None,
    help="Run a registered model at another precision (default: as published; rvm-mobilenetv3 is fp32, "
         "isnet fp16). int8: RVM's quantized copy, built on first use (about 1.1x faster on this CPU, "
         "docs/int8.md), or ISNet's 8-bit file.")


def model_with_precision(model: str | None, precision: str | None):
    """The ``model`` argument for the pipeline: as given, or a session at ``precision``."""
    if precision is None:
        return model
    from mattekit.models import new_session

    return new_session(model, precision=precision)
