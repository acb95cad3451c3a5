"""The ``mattekit`` command: a group of verbs sharing one error handling.

Each verb lives in its own module and is listed in ``COMMANDS``; a verb's module is imported only
when that verb runs, so ``mattekit models list`` does not pay for ONNX Runtime or FastAPI.
"""

from __future__ import annotations

import importlib
import signal
import sys
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

import click

from mattekit.errors import MattekitError, one_line
from mattekit.extras import VERB_EXTRAS, MissingExtra, install_hint, missing

# verb -> (module, attribute, one-line help)
COMMANDS: dict[str, tuple[str, str, str]] = {
    "models": ("mattekit.cli.models_cmd", "models", "List and fetch the matting models."),
    "video": ("mattekit.cli.video_cmd", "video", "Matte a video file or a folder of frames."),
    "image": ("mattekit.cli.image_cmd", "image", "Matte images or folders of images."),
    "demo": ("mattekit.cli.demo_cmd", "demo", "Matte a built-in example clip into demo-output/."),
    "serve": ("mattekit.cli.serve_cmd", "serve", "Serve the web page and HTTP API on this computer."),
    "trimap": (
        "mattekit.cli.trimap_cmd",
        "trimap",
        "Matte an image from a trimap with a classical method (pymatting).",
    ),
    "eval": (
        "mattekit.cli.eval_cmd",
        "eval",
        "Compare predicted alpha mattes with ground truth (SAD, MSE, Grad, Conn, dtSSD).",
    ),
    "finetune": ("mattekit.cli.finetune_cmd", "finetune", "Fine-tune RVM on your own footage and export it to ONNX."),
    "train": ("mattekit.cli.train_cmd", "train", "Run one RVM training stage from a config (stage1..stage4 ship)."),
    "key": (
        "mattekit.cli.key_cmd",
        "key",
        "Key green/blue-screen footage into foreground + alpha (FFmpeg keying filters).",
    ),
}


class LazyGroup(click.Group):
    """A click group whose sub-commands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS:
            return None
        module, attr, help_text = COMMANDS[name]
        extra = VERB_EXTRAS.get(name)
        if extra is not None and missing(extra):
            return _needs_extra(name, extra, help_text)
        return getattr(importlib.import_module(module), attr)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, COMMANDS[name][2]) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


def _needs_extra(name: str, extra: str, help_text: str) -> click.Command:
    """A stand-in for a verb whose extra is not installed: its help says so, and any run of it
    fails with :class:`~mattekit.extras.MissingExtra` (one line, exit 1)."""

    def fail(args: tuple[str, ...]) -> None:
        raise MissingExtra(extra, f"mattekit {name}")

    return click.Command(
        name,
        callback=fail,
        help=f"{help_text}\n\nNeeds the {extra} extra: {install_hint(extra)}",
        params=[click.Argument(["args"], nargs=-1)],
        context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
    )


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="mattekit")
def cli() -> None:
    """mattekit: automatic human matting of images and videos."""


#: signals handled like Ctrl-C: what ``kill``, ``timeout``, systemd and ``docker stop`` send, and
#: what a closed terminal or SSH session sends
TERMINATION_SIGNALS = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name))


# what signal.signal takes and returns (typeshed's private signal._HANDLER)
_Handler = Callable[[int, FrameType | None], Any] | int | signal.Handlers | None


class _Termination:
    """While active, SIGTERM and SIGHUP act as Ctrl-C.

    The first such signal raises :class:`KeyboardInterrupt` in the main thread, so every verb stops
    the way Ctrl-C stops it: outputs' temporaries removed, earlier results intact. Further ones are
    ignored so they cannot interrupt that clean-up (SIGKILL still ends the process). A signal set
    to be ignored (``nohup``) stays ignored. Installed only from the main thread (Python delivers
    signals there).
    """

    def __init__(self) -> None:
        self.received: signal.Signals | None = None
        self._previous: dict[int, _Handler] = {}

    def _handle(self, signum, frame) -> None:
        if self.received is not None:
            return
        self.received = signal.Signals(signum)
        raise KeyboardInterrupt

    def __enter__(self) -> _Termination:
        if threading.current_thread() is threading.main_thread():
            for sig in TERMINATION_SIGNALS:
                if signal.getsignal(sig) is not signal.SIG_IGN:
                    self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for sig, previous in self._previous.items():
            signal.signal(sig, signal.SIG_DFL if previous is None else previous)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; a :class:`MattekitError` becomes one line on stderr and its exit code, a bad
    option or argument one line and exit 2.

    Ctrl-C exits with 130, SIGTERM with 143 and SIGHUP with 129 (128 + the signal's number, what a
    shell reports for a process the signal killed), all after removing the outputs' temporaries.
    """
    with _Termination() as termination:
        code, message = _run(argv)
    if termination.received is not None:
        code = 128 + termination.received
        message = f"terminated ({termination.received.name})" + (f"; {message}" if message else "")
    if message:
        click.echo(f"mattekit: {one_line(message)}", err=True)
    return code


def _run(argv: list[str] | None) -> tuple[int, str | None]:
    """Run the CLI; return the exit code and the line to print on stderr (without the prefix)."""
    try:
        code = cli.main(args=argv, prog_name="mattekit", standalone_mode=False)
    except MattekitError as exc:
        return exc.exit_code, f"error: {exc}"
    except (click.exceptions.Abort, KeyboardInterrupt):
        return 130, "cancelled"
    except click.BadParameter as exc:  # one line naming the option, as for a bad file
        name = _param_name(exc)
        if isinstance(exc, click.MissingParameter) or name is None:
            return 2, f"error: {exc.format_message()}{_help_hint(exc)}"
        return 2, f"error: {name}: {exc.message}"
    except click.UsageError as exc:
        return 2, f"error: {exc.format_message()}{_help_hint(exc)}"
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code, None
    return (code if isinstance(code, int) else 0), None


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
