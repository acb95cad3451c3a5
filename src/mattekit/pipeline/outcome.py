"""What happened to each file of a folder run: :class:`FileOutcome`, :class:`BatchResult`.

Shared by the one-machine batch (:mod:`mattekit.batch`) and the Ray executor
(:mod:`mattekit.cluster.executor`), which both report in these terms; it sits below both so
that neither imports the other to speak of a result.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from mattekit.errors import MattekitError

DONE, SKIPPED, FAILED, CANCELLED = "done", "skipped", "failed", "cancelled"


@dataclass
class FileOutcome:
    """What happened to one input file.

    Attributes:
        source: the input file.
        status: ``"done"``, ``"skipped"`` (complete outputs existed), ``"failed"`` or
            ``"cancelled"``.
        outputs: the output paths (written, or found complete when skipped).
        reason: why it failed or was skipped (one line), what was lost when it was done from a
            damaged input (:attr:`~mattekit.pipeline.video.VideoResult.warning`), else ``""``.
        seconds: wall-clock time spent on it.
        frames: frames matted (videos; 1 for an image; 0 when not processed).
        label: the file's path relative to the folder it was found in (for display).
        exit_code: the CLI exit code of its error when failed (2 input, 3 output, 4 model, 1 other).
    """

    source: Path
    status: str
    outputs: list[Path] = field(default_factory=list)
    reason: str = ""
    seconds: float = 0.0
    frames: int = 0
    label: str = ""
    exit_code: int = 0


@dataclass
class BatchResult:
    """The outcome of a folder run, one :class:`FileOutcome` per input in processing order.

    Files not reached because the run was cancelled are not listed.
    """

    outcomes: list[FileOutcome] = field(default_factory=list)
    cancelled: bool = False

    def by_status(self, status: str) -> list[FileOutcome]:
        return [o for o in self.outcomes if o.status == status]

    @property
    def done(self) -> list[FileOutcome]:
        return self.by_status(DONE)

    @property
    def skipped(self) -> list[FileOutcome]:
        return self.by_status(SKIPPED)

    @property
    def failed(self) -> list[FileOutcome]:
        return self.by_status(FAILED)

    @property
    def ok(self) -> bool:
        """True when nothing failed and the run was not cancelled."""
        return not self.failed and not self.cancelled


def failure_reason(exc: BaseException, source: Path) -> str:
    """One line: the problem of a user error (with its path when that is not the row's file, e.g.
    an output on a full disk), else the exception's type and message."""
    if isinstance(exc, MattekitError):
        path, problem = getattr(exc, "path", None), getattr(exc, "problem", None)
        return problem if problem and path and Path(path) == source else str(exc)
    return f"{type(exc).__name__}: {exc}"
