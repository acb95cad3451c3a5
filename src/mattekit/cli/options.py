"""Options and parameter types shared by several verbs."""

from __future__ import annotations

import click


class DownsampleRatio(click.ParamType):
    """``auto`` or a float in (0, 1]."""

    name = "auto|FLOAT"

    def convert(self, value, param, ctx):
        if value is None or isinstance(value, float):
            return value
        if str(value).lower() == "auto":
            return None
        try:
            ratio = float(value)
        except ValueError:
            self.fail(f"{value!r} is neither 'auto' nor a number", param, ctx)
        if not 0 < ratio <= 1:
            self.fail(f"{ratio} is not in (0, 1]", param, ctx)
        return ratio


downsample_ratio_option = click.option(
    "--downsample-ratio", type=DownsampleRatio(), default="auto", show_default=True,
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
