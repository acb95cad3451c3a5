"""Progress reporting: a rich bar on a terminal, a callback for programs, or nothing."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable

ProgressCallback = Callable[[int, "int | None"], None]


class Progress:
    """Counts frames and reports them.

    Args:
        progress: ``True`` for a bar on stderr (only when stderr is a terminal), ``False`` for
            silence, or a callable ``progress(done, total)`` called after every frame.
        total: frames expected, or ``None`` when unknown.
        description: the bar's label.
    """

    def __init__(self, progress: bool | ProgressCallback, total: int | None, description: str = "matting"):
        self.done = 0
        self.total = total
        self.started = time.perf_counter()
        self._callback = progress if callable(progress) else None
        self._bar = None
        if progress is True and sys.stderr.isatty():
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )
            from rich.progress import Progress as RichProgress

            self._bar = RichProgress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[fps]:.1f} fps"),
                TimeElapsedColumn(),
                TextColumn("ETA"),
                TimeRemainingColumn(),
                console=Console(stderr=True),
                transient=False,
            )
            self._task = self._bar.add_task(description, total=total, fps=0.0)
            self._bar.start()

    @property
    def fps(self) -> float:
        """Frames per second since the start."""
        elapsed = time.perf_counter() - self.started
        return self.done / elapsed if elapsed > 0 else 0.0

    def advance(self, n: int = 1) -> None:
        self.done += n
        if self._bar is not None:
            self._bar.update(self._task, advance=n, fps=self.fps)
        if self._callback is not None:
            self._callback(self.done, self.total)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None
