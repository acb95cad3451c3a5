"""User-facing errors.

Every problem a user can cause (a missing file, a file that is not a video, an output that
already exists) is raised as a :class:`MattekitError` subclass whose message is one line that
names the file and the problem. The CLI prints that line on stderr and exits non-zero, with no
traceback.
"""

from __future__ import annotations

import errno
import os


def one_line(text: str) -> str:
    """``text`` with its control characters escaped (a newline as ``\\n``, a carriage return as
    ``\\r``, others as ``\\xNN``), so a file name holding one keeps a message on one line."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() or c == " " else c.encode("unicode_escape").decode("ascii") for c in text)


class MattekitError(Exception):
    """Base class of the errors whose message is meant for the user (one line)."""

    exit_code = 1


class PathError(MattekitError):
    """A problem with one file or folder; the message is ``"<path>: <problem>"``."""

    def __init__(self, path: str | os.PathLike, problem: str):
        self.path = os.fspath(path)
        self.problem = problem
        super().__init__(one_line(f"{self.path}: {problem}"))

    def __reduce__(self):  # picklable (a Ray task's error reaches the driver as itself)
        return type(self), (self.path, self.problem)


class InputError(PathError):
    """An input file is missing, unreadable, empty, truncated or of an unsupported kind."""

    exit_code = 2


class FormatError(InputError):
    """An input's content is of a kind mattekit does not read (an SVG drawing, a PDF, a video given
    as a picture...) or does not match what its name says. The server answers it with 415."""


class OutputError(PathError):
    """An output cannot be written: exists already, equals an input, folder not writable, disk full."""

    exit_code = 3

    @classmethod
    def writing(cls, path: str | os.PathLike, exc: OSError, started: bool = True) -> OutputError:
        """The error for ``exc``, raised while writing ``path`` (``started``: the caller removes
        the partial file) or while creating it."""
        reason = exc.strerror or str(exc)
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            problem = f"disk full{' while writing' if started else ''} ({reason})"
        elif exc.errno == errno.EFBIG:
            problem = f"file too large for this file system or size limit ({reason})"
        else:
            problem = f"{'writing failed' if started else 'cannot be created'} ({reason})"
        return cls(path, problem + ("; the partial output was removed" if started else ""))


class ParameterError(MattekitError, ValueError):
    """A parameter value is outside its documented range (see :mod:`mattekit.params`).

    The message is ``"<name>: <problem>"``, where ``name`` is the parameter (``downsample_ratio``;
    the CLI shows its option, ``--downsample-ratio``) or, when the value does not fit one input
    (a ratio too small for that frame size), the input file; ``path`` is then that file, else
    ``None``. Also a :class:`ValueError`, so callers of the Python API may catch either.
    """

    exit_code = 2

    def __init__(self, name: str | os.PathLike, problem: str, path: str | os.PathLike | None = None):
        self.name = str(name)
        self.problem = problem
        self.path = os.fsdecode(path) if path is not None else None
        super().__init__(one_line(f"{self.name}: {problem}"))


class ParameterTypeError(ParameterError, TypeError):
    """A parameter has the wrong type (a string for a number, ``True`` for an Event)."""


class ModelError(MattekitError):
    """A model is unknown, cannot be fetched, fails its hash check or has the wrong signature."""

    exit_code = 4


class Cancelled(MattekitError):
    """A run was cancelled (Ctrl-C or a cancel request); nothing was left half-written."""

    exit_code = 130

    def __init__(self, message: str = "cancelled"):
        super().__init__(message)
