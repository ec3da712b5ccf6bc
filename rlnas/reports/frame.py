"""Trials as a table: plain rows (no dependency) or a pandas ``DataFrame`` (``Study.trials_dataframe``).

Columns, in order: ``number``, ``slot``, ``state``, ``key``, ``reward``, one column per metric
(its own name, e.g. ``valid_acc``; ``metric_<name>`` for a metric named like another column),
``cost_seconds``, ``started_at``, ``finished_at``, ``duration_s``, ``error``, ``orphaned``, then one
``params_<decision>`` column per decision of the space (the choices, as Optuna names its parameters).
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rlnas.errors import ConfigError
from rlnas.trial import Trial


def number_text(value: float, digits: int = 3) -> str:
    """A float as a table shows it: ``digits`` decimals, or ``digits`` significant digits for a small one
    (a learning rate of 1e-4 is not 0.000)."""
    if value != 0 and abs(value) < 10 ** -digits:
        return f"{value:.{digits}g}"
    return f"{value:.{digits}f}"


def metric_columns(metrics: Sequence[str], taken: Sequence[str]) -> dict[str, str]:
    """The column of each metric: its name, or ``metric_<name>`` where the name is one of the ``taken``
    columns (a metric called ``number`` or ``error`` must not overwrite the trial's own)."""
    used = set(taken)
    columns = {}
    for name in metrics:
        column = name
        while column in used:
            column = f"metric_{column}"
        used.add(column)
        columns[name] = column
    return columns


def trial_table(trials: Sequence[Trial],
                decisions: Sequence[str] | None = None) -> tuple[list[str], list[dict[str, Any]]]:
    """``(columns, rows)`` of ``trials`` (see the module docstring); ``decisions`` default to the first trial's."""
    if decisions is None:
        decisions = list(trials[0].candidate) if trials else []
    fixed = ["number", "slot", "state", "key", "reward", "cost_seconds", "started_at", "finished_at", "duration_s",
             "error", "orphaned", *(f"params_{d}" for d in decisions)]
    metrics = metric_columns(sorted({m for t in trials for m in t.metrics}), fixed)
    columns = [*fixed[:5], *metrics.values(), *fixed[5:]]
    rows = []
    for t in trials:
        duration = (t.finished_at - t.started_at).total_seconds() if t.started_at and t.finished_at else None
        row: dict[str, Any] = {"number": t.number, "slot": t.slot, "state": t.state.value, "key": t.key,
                               "reward": t.reward}
        row |= {column: t.metrics.get(m) for m, column in metrics.items()}
        row |= {"cost_seconds": t.cost_seconds, "started_at": t.started_at, "finished_at": t.finished_at,
                "duration_s": duration, "error": t.error, "orphaned": t.orphaned}
        row |= {f"params_{d}": t.candidate.get(d) for d in decisions}
        rows.append(row)
    return columns, rows


def trials_dataframe(trials: Sequence[Trial], decisions: Sequence[str] | None = None) -> Any:
    """``trials`` as a ``pandas.DataFrame`` (one row per trial, columns of :func:`trial_table`).

    Missing values are ``NaN`` / ``NaT`` / ``None`` as pandas chooses. Needs pandas
    (``pip install 'rlnas[pandas]'``); without it, :func:`trial_table` gives the same rows as dicts.
    """
    try:
        import pandas as pd
    except ImportError:
        raise ConfigError("trials_dataframe needs pandas: pip install 'rlnas[pandas]' "
                          "(or use rlnas.reports.frame.trial_table)") from None
    columns, rows = trial_table(trials, decisions)
    frame = pd.DataFrame(rows, columns=columns)
    for column in ("started_at", "finished_at"):
        frame[column] = pd.to_datetime(frame[column])
    return frame


__all__ = ["trial_table", "trials_dataframe"]
