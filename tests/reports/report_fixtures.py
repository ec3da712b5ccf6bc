"""Hand-made trials and snapshots for the report tests."""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from rlnas.reports.snapshot import StudySnapshot
from rlnas.store import StudyRecord
from rlnas.trial import Trial, TrialState

T0 = datetime(2024, 1, 1, 12, 0, 0)


def trial(number: int, reward: float | None, *, slot: int | None = None, key: str | None = None,
          metrics: dict[str, float] | None = None, cost: float = 1.0, state: TrialState | None = None,
          orphaned: bool = False, start: float | None = None, end: float | None = None) -> Trial:
    """A finished trial; FAIL when ``reward`` is None (unless ``state`` says otherwise)."""
    state = state or (TrialState.COMPLETE if reward is not None else TrialState.FAIL)
    start = float(number) if start is None else start
    end = start + 1.0 if end is None else end
    return Trial(number=number, slot=number if slot is None else slot, state=state, key=key or f"k{number}",
                 candidate={}, reward=reward, metrics=dict(metrics or {}), cost_seconds=cost,
                 error=None if reward is not None else "boom", orphaned=orphaned,
                 started_at=T0 + timedelta(seconds=start), finished_at=T0 + timedelta(seconds=end))


def record(name: str = "s", **overrides: Any) -> StudyRecord:
    """A study record of the toy kind."""
    values: dict[str, Any] = {"id": 1, "name": name, "space_name": "toy", "space_json": {}, "fingerprint": "f",
                              "agent": "random", "agent_config": {}, "evaluator": {"name": "toy"},
                              "reward": "valid_acc", "seed": 0, "settings": {}, "version": "0", "created_at": T0}
    return StudyRecord(**(values | overrides))


def snapshot(name: str, trials: list[Trial], diagnostics: list[tuple[int, dict[str, float]]] | None = None,
             **overrides: Any) -> StudySnapshot:
    """A snapshot of the given trials."""
    return StudySnapshot(record(name, **overrides), tuple(trials), tuple(diagnostics or ()))
