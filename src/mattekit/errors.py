"""User-facing errors.

Every problem a user can cause (a missing file, a file that is not a video, an output that
already exists) is raised as a :class:`MattekitError` subclass whose message is one line that
names the file and the problem. The CLI prints that line on stderr and exits non-zero, with no
traceback.
"""

from __future__ import annotations

from pathlib import Path


class MattekitError(Exception):
    """Base class of the errors whose message is meant for the user (one line)."""

    exit_code = 1


class PathError(MattekitError):
    """A problem with one file or folder; the message is ``"<path>: <problem>"``."""

    def __init__(self, path: str | Path, problem: str):
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


class InputError(PathError):
    """An input file is missing, unreadable, empty, truncated or of an unsupported kind."""

    exit_code = 2


class OutputError(PathError):
    """An output cannot be written: exists already, equals an input, folder not writable."""

    exit_code = 3


class ModelError(MattekitError):
    """A model is unknown, cannot be fetched, fails its hash check or has the wrong signature."""

    exit_code = 4


class Cancelled(MattekitError):
    """A run was cancelled (Ctrl-C or a cancel request); nothing was left half-written."""

    exit_code = 130

    def __init__(self, message: str = "cancelled"):
        super().__init__(message)
