"""Options and parameter types shared by several verbs."""

from __future__ import annotations

import math

import click

from mattekit.errors import ParameterError, one_line
from mattekit.params import parse, validate_downsample_ratio
from mattekit.plan import deprecation

#: the option of each output-plan parameter (named in the plan's errors)
PLAN_OPTIONS = {
    "outputs": "--outputs",
    "output_type": "--output-type",
    "background": "--background",
    "output_video_mbps": "--output-video-mbps",
    "preset": "--preset",
    "overwrite": "--overwrite",
}


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


class FiniteFloatRange(click.FloatRange):
    """click's FloatRange, which lets NaN through (every comparison with NaN is false): NaN is refused
    here with the option's range, as infinities already are by a finite bound."""

    def convert(self, value, param, ctx):
        number = super().convert(value, param, ctx)
        if math.isnan(number):
            self.fail(f"nan is not in the range {self._describe_range()}.", param, ctx)
        return number


downsample_ratio_type = Checked(validate_downsample_ratio, "auto|FLOAT", {"auto": None})
downsample_ratio_option = click.option(
    "--downsample-ratio",
    type=downsample_ratio_type,
    default="auto",
    show_default=True,
    help="Ratio at which the network sees frames; auto = the model's own (RVM: min(512 / longer side, 1)); "
    "fixed-size models (isnet) ignore it.",
)
model_option = click.option(
    "--model",
    default=None,
    metavar="NAME|PATH",
    help="A model from 'mattekit models list' (default rvm-mobilenetv3, recurrent; isnet: per frame), "
    "or an ONNX file: with a model card <file>.toml beside it, or an RVM export.",
)
overwrite_option = click.option("--overwrite", is_flag=True, help="Replace existing outputs.")
quiet_option = click.option("--quiet", "-q", is_flag=True, help="No progress bar or summary.")
precision_option = click.option(
    "--precision",
    type=click.Choice(["fp32", "fp16", "int8"]),
    default=None,
    help="Run a registered model at another precision (default: as published; rvm-mobilenetv3 is fp32, "
    "isnet fp16). int8: RVM's quantized copy, built on first use (about 1.1x faster on this CPU, "
    "docs/int8.md), or ISNet's 8-bit file.",
)


executor_option = click.option(
    "--executor",
    type=click.Choice(["local", "ray"]),
    default="local",
    show_default=True,
    help="Batch mode: local = this process, file by file; ray = a Ray cluster (pip install "
    "'mattekit[ray]'): files in parallel, long videos cut into chunks at keyframes (docs/cluster.md). "
    "Inputs and outputs must be on storage every node sees.",
)
ray_address_option = click.option(
    "--ray-address",
    metavar="ADDRESS",
    default=None,
    help="With --executor ray: the cluster to join (e.g. 10.0.0.5:6379 or ray://head:10001); default "
    "$RAY_ADDRESS if set, else a new local cluster on this machine.",
)


def executor_options(command):
    """Add --executor and --ray-address to a batch command."""
    return executor_option(ray_address_option(command))


def model_with_precision(model: str | None, precision: str | None):
    """The ``model`` argument for the pipeline: as given, or a session at ``precision``."""
    if precision is None:
        return model
    from mattekit.models import new_session

    return new_session(model, precision=precision)


def cli_plan(build, *args, **kwargs):
    """``build(*args, **kwargs)`` (an :class:`~mattekit.plan.OutputPlan` or a function making
    one), its :class:`~mattekit.errors.ParameterError` about a parameter shown as the error of
    that option (``mattekit: error: --preset: ...``); one about a file passes unchanged."""
    try:
        return build(*args, **kwargs)
    except ParameterError as exc:
        if exc.path is None and exc.name in PLAN_OPTIONS:
            raise click.BadParameter(exc.problem, param_hint=PLAN_OPTIONS[exc.name]) from None
        raise


def stderr_line(level: str, text: str) -> None:
    """``mattekit: <level>: <text>`` on stderr as one line, whatever the text holds (a file name
    with a newline is escaped: :func:`mattekit.errors.one_line`)."""
    click.echo(one_line(f"mattekit: {level}: {text}"), err=True)


def warn_renamed(old: str, new: str) -> None:
    """One line on stderr: ``mattekit: warning: <old> is deprecated; use <new>``."""
    stderr_line("warning", deprecation(old, new))
