"""The ``mattekit`` command: a group of verbs sharing one error handling.

Each verb lives in its own module and is listed in ``COMMANDS``; a verb's module is imported only
when that verb runs, so ``mattekit models list`` does not pay for ONNX Runtime or FastAPI.
"""

from __future__ import annotations

import importlib
import sys

import click

from mattekit.errors import MattekitError

# verb -> (module, attribute, one-line help)
COMMANDS: dict[str, tuple[str, str, str]] = {
    "models": ("mattekit.cli.models_cmd", "models", "List and fetch the matting models."),
    "video": ("mattekit.cli.video_cmd", "video", "Matte a video file or a folder of frames."),
    "image": ("mattekit.cli.image_cmd", "image", "Matte images or folders of images."),
    "demo": ("mattekit.cli.demo_cmd", "demo", "Matte a built-in example clip into demo-output/."),
    "serve": ("mattekit.cli.serve_cmd", "serve", "Serve the web page and HTTP API on this computer."),
    "trimap": ("mattekit.cli.trimap_cmd", "trimap", "Matte an image from a trimap with a classical method (pymatting)."),
    "eval": ("mattekit.cli.eval_cmd", "eval", "Compare predicted alpha mattes with ground truth (SAD, MSE, Grad, Conn, dtSSD)."),
}


class LazyGroup(click.Group):
    """A click group whose sub-commands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS:
            return None
        module, attr, _ = COMMANDS[name]
        return getattr(importlib.import_module(module), attr)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, COMMANDS[name][2]) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="mattekit")
def cli() -> None:
    """mattekit: automatic human matting of images and videos."""


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; a :class:`MattekitError` becomes one line on stderr and its exit code, a bad
    option or argument one line and exit 2."""
    try:
        code = cli.main(args=argv, prog_name="mattekit", standalone_mode=False)
    except MattekitError as exc:
        click.echo(f"mattekit: error: {exc}", err=True)
        return exc.exit_code
    except click.exceptions.Abort:
        click.echo("mattekit: cancelled", err=True)
        return 130
    except click.BadParameter as exc:  # one line naming the option, as for a bad file
        name = _param_name(exc)
        if isinstance(exc, click.MissingParameter) or name is None:
            click.echo(f"mattekit: error: {exc.format_message()}{_help_hint(exc)}", err=True)
        else:
            click.echo(f"mattekit: error: {name}: {exc.message}", err=True)
        return 2
    except click.UsageError as exc:
        click.echo(f"mattekit: error: {exc.format_message()}{_help_hint(exc)}", err=True)
        return 2
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except KeyboardInterrupt:
        click.echo("mattekit: cancelled", err=True)
        return 130
    return code if isinstance(code, int) else 0


def _param_name(exc: click.BadParameter) -> str | None:
    if isinstance(exc.param_hint, str):
        return exc.param_hint
    if isinstance(exc.param, click.Option):
        return exc.param.opts[0]
    return exc.param.human_readable_name if exc.param is not None else None


def _help_hint(exc: click.UsageError) -> str:
    return f" (see '{exc.ctx.command_path} -h')" if exc.ctx is not None else ""


if __name__ == "__main__":
    sys.exit(main())
