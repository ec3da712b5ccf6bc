"""A rich progress bar for searches: trials done, best reward so far, evaluation time.

It is a callback on public :class:`~rlnas.study.Study` state (``n_finished``,
``spent_seconds``, ``best_trial``); evaluators that train report each epoch through their
``progress`` hook, which the bar fills while it runs (inline executor only).
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from rlnas.trial import Trial

if TYPE_CHECKING:
    from rlnas.study import Study


def format_seconds(seconds: float) -> str:
    """``3725`` -> ``'1h02m05s'``; short and unambiguous."""
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m{secs:02d}s" if hours else f"{minutes}m{secs:02d}s"


class SearchProgress:
    """One bar for a study: against ``n_trials`` or, without it, against ``budget_seconds``."""

    def __init__(self, study: Study, n_trials: int | None, budget_seconds: float | None, *,
                 epoch_hook: bool = True):
        self.study = study
        self.n_trials = n_trials
        self.budget = budget_seconds
        self.epoch_hook = epoch_hook and hasattr(study.evaluator, "progress")
        self._previous_hook: Any = None
        self.progress = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("best {task.fields[best]}"), TextColumn("time {task.fields[sim]}"),
            TextColumn("{task.fields[extra]}"), TimeElapsedColumn(), transient=False,
            console=Console(stderr=True),  # as the warnings: standard output keeps only the results (`> out.txt`)
        )
        total = n_trials if n_trials is not None else budget_seconds
        self.task = self.progress.add_task(study.name.replace("[", r"\["), total=total, best="-", sim="0m00s",
                                           extra="")

    def start(self) -> None:
        """Show the bar (and take the evaluator's per-epoch hook)."""
        if self.epoch_hook:
            self._previous_hook = self.study.evaluator.progress  # type: ignore[union-attr]
            self.study.evaluator.progress = self.on_epoch  # type: ignore[union-attr]
        self.progress.start()
        self._refresh()

    def stop(self) -> None:
        """Draw the final state and give the evaluator's hook back."""
        self._refresh()
        self.progress.stop()
        if self.epoch_hook:
            self.study.evaluator.progress = self._previous_hook  # type: ignore[union-attr]

    def __call__(self, study: Study, trial: Trial) -> None:
        """Callback after every finished trial."""
        self._refresh()

    def update(self, trial: Trial, extra: str = "") -> None:
        """Refresh after ``trial`` finished; ``extra`` is shown as is (e.g. the current epoch)."""
        self._refresh(extra)

    def on_epoch(self, epoch: int, n_epochs: int, metrics: Mapping[str, float]) -> None:
        """Evaluator hook: show the epoch of the candidate being trained."""
        valid = metrics.get("valid_acc") if isinstance(metrics, Mapping) else None
        shown = f"epoch {epoch}/{n_epochs}" + (f" valid {valid:.1f}" if isinstance(valid, (int, float)) else "")
        self._refresh(shown)

    def _refresh(self, extra: str = "") -> None:
        study = self.study
        best = study.best_trial
        spent = study.spent_seconds
        done = study.n_finished if self.n_trials is not None else min(spent, self.budget or 0)
        self.progress.update(self.task, completed=done, best="-" if best is None else f"{best.reward:.3f}",
                             sim=format_seconds(spent), extra=extra)


__all__ = ["SearchProgress", "format_seconds"]
