"""Trial records: immutable snapshots of what the store holds."""
from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


class TrialState(str, enum.Enum):
    """Life cycle of a trial: RUNNING until it is told COMPLETE, FAIL or PRUNED."""

    RUNNING = "RUNNING"
    COMPLETE = "COMPLETE"
    FAIL = "FAIL"
    PRUNED = "PRUNED"

    @property
    def finished(self) -> bool:
        """True for every state but RUNNING."""
        return self is not TrialState.RUNNING


@dataclass(frozen=True)
class Trial:
    """One evaluation of one candidate.

    ``slot`` is the position of the proposal in the agent's stream of proposals; a trial
    re-evaluated after a crash keeps the slot of the orphan it replaces, so the order of
    completed trials does not depend on crashes. ``repeat_of`` is set on a trial answered
    from an earlier trial of the same candidate (a study with ``reuse_repeats``): it cost
    nothing and does not count towards the study's trials.
    """

    number: int
    slot: int
    state: TrialState
    key: str
    candidate: dict[str, Any]
    info: dict[str, Any] = field(default_factory=dict)
    reward: float | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    cost_seconds: float = 0.0
    error: str | None = None
    eval_info: dict[str, Any] = field(default_factory=dict)
    orphaned: bool = False
    started_at: datetime | None = None
    finished_at: datetime | None = None
    repeat_of: int | None = None

    def __repr__(self) -> str:  # the fields in full are a screen long (candidate, key, eval info, times)
        key = self.key if len(self.key) <= 60 else self.key[:57] + "..."
        extra = (f", error={self.error.splitlines()[0][:60]!r}" if self.error else "") + (
            f", repeat_of={self.repeat_of}" if self.repeat_of is not None else "") + (
            ", orphaned=True" if self.orphaned else "")
        return (f"Trial(number={self.number}, slot={self.slot}, state={self.state.value}, key={key!r}, "
                f"reward={self.reward!r}{extra})")
