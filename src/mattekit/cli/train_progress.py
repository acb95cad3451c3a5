"""Progress of a training run: a rich bar (step, loss, learning rate, steps/s, ETA) on a
terminal, else one plain line every tenth of the run."""

from __future__ import annotations

import sys

import click


class TrainingProgress:
    """Context manager whose instance is the ``on_step`` callback of ``run_stage``."""

    def __init__(self, quiet: bool, description: str):
        self.quiet, self.description, self._bar = quiet, description, None

    def __enter__(self):
        if not self.quiet and sys.stderr.isatty():
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            self._bar = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("loss {task.fields[loss]:.4f}  lr {task.fields[lr]:.1e}  {task.fields[rate]:.2f} steps/s"),
                TimeElapsedColumn(),
                TextColumn("ETA"),
                TimeRemainingColumn(),
                console=Console(stderr=True),
            )
            self._task = self._bar.add_task(self.description, total=None, loss=float("nan"), lr=0.0, rate=0.0)
            self._bar.start()
        return self

    def __call__(self, report) -> None:
        if self._bar is not None:
            self._bar.update(
                self._task,
                completed=report.step,
                total=report.total,
                loss=report.loss,
                lr=report.lr,
                rate=report.steps_per_second,
            )
        elif not self.quiet and (report.step == report.total or report.step % max(1, report.total // 10) == 0):
            click.echo(
                f"{self.description}: step {report.step}/{report.total}  loss {report.loss:.4f}  "
                f"lr {report.lr:.1e}  {report.steps_per_second:.2f} steps/s",
                err=True,
            )

    def __exit__(self, *exc):
        if self._bar is not None:
            self._bar.stop()


def validation_table(history: dict[int, dict[str, float]]) -> str:
    """Rows ``step  MAD  MSE  Grad  dtSSD`` of the validation history (RVM's scaling)."""
    if not history:
        return ""
    names = list(next(iter(history.values())))
    lines = ["step".rjust(7) + "".join(n.rjust(10) for n in names)]
    lines.extend(str(step).rjust(7) + "".join(f"{history[step][n]:10.3f}" for n in names) for step in sorted(history))
    return "\n".join(lines)
