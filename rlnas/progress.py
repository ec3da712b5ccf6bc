"""A rich progress bar for searches: trials done, best reward so far, simulated time."""
from __future__ import annotations

from typing import TYPE_CHECKING

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from rlnas.trial import Trial, TrialState

if TYPE_CHECKING:
    from rlnas.study import Study


def format_seconds(seconds: float) -> str:
    """``3725`` -> ``'1h02m05s'``; short and unambiguous."""
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m{secs:02d}s" if hours else f"{minutes}m{secs:02d}s"


class SearchProgress:
    """Shows one bar for a study: against ``n_trials`` or, without it, against ``budget_seconds``."""

    def __init__(self, study: "Study", n_trials: int | None, budget_seconds: float | None):
        self.study = study
        self.n_trials = n_trials
        self.budget = budget_seconds
        self.progress = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("best {task.fields[best]}"), TextColumn("sim {task.fields[sim]}"),
            TextColumn("{task.fields[extra]}"), TimeElapsedColumn(), transient=False,
        )
        total = n_trials if n_trials is not None else budget_seconds
        self.task = self.progress.add_task(study.name, total=total, best="-", sim="0m00s", extra="")

    def start(self) -> None:
        self.progress.start()
        self._refresh()

    def stop(self) -> None:
        self._refresh()
        self.progress.stop()

    def update(self, trial: Trial, extra: str = "") -> None:
        """Refresh after ``trial`` finished; ``extra`` is shown as is (e.g. the current epoch)."""
        self._refresh(extra)

    def on_epoch(self, epoch: int, n_epochs: int, metrics: dict) -> None:
        """Evaluator hook: show the epoch of the candidate being trained."""
        valid = metrics.get("valid_acc") if isinstance(metrics, dict) else None
        shown = f"epoch {epoch}/{n_epochs}" + (f" valid {valid:.1f}" if isinstance(valid, (int, float)) else "")
        self._refresh(shown)

    def _refresh(self, extra: str = "") -> None:
        best = self.study._best
        done = self.study._finished if self.n_trials is not None else min(self.study._spent, self.budget or 0)
        self.progress.update(
            self.task, completed=done, best="-" if best is None else f"{best.reward:.3f}",
            sim=format_seconds(self.study._spent), extra=extra,
        )


__all__ = ["SearchProgress", "format_seconds", "TrialState"]
