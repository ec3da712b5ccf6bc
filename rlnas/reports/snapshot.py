"""What a report reads: one study's record, trials and diagnostics, taken from a store at once.

Every plot and table of :mod:`rlnas.reports` is a pure function of :class:`StudySnapshot`
objects, so tests build snapshots by hand and a report never writes to the store.
"""
from __future__ import annotations

import fnmatch
from collections.abc import Sequence
from dataclasses import dataclass

from rlnas.errors import ConfigError, StudyNotFound
from rlnas.store import Store, StudyRecord
from rlnas.trial import Trial, TrialState


@dataclass(frozen=True)
class StudySnapshot:
    """A study as stored at one moment: its record, every trial (by number) and the agent's diagnostics."""

    record: StudyRecord
    trials: tuple[Trial, ...]
    diagnostics: tuple[tuple[int, dict[str, float]], ...] = ()

    @property
    def name(self) -> str:
        """The study's name."""
        return self.record.name

    @property
    def history(self) -> list[Trial]:
        """Finished trials that count (orphans left out) in slot order: the search as it happened."""
        return sorted((t for t in self.trials if t.state.finished and not t.orphaned), key=lambda t: t.slot)

    @property
    def evaluated(self) -> list[Trial]:
        """:attr:`history` without the repeats answered from the store (``reuse_repeats``): the queries,
        each of which cost an evaluation, as ``rlnas ls`` counts them."""
        return [t for t in self.history if t.repeat_of is None]

    @property
    def completed(self) -> list[Trial]:
        """COMPLETE trials with a reward, in slot order."""
        return [t for t in self.history if t.state is TrialState.COMPLETE and t.reward is not None]

    @property
    def shares_weights(self) -> bool:
        """Whether the study is a weight-sharing search (TuNAS, ENAS), whose answer is its last recorded trial."""
        from rlnas.agents import shares_weights

        return shares_weights(self.record.agent)

    @property
    def best(self) -> Trial | None:
        """What the study found: the COMPLETE trial with the highest reward (the earliest slot on ties), or a
        weight-sharing search's answer, its last recorded trial (an earlier record's higher reward came from
        shared weights that have changed since), as ``rlnas best``, ``export`` and ``retrain`` take it."""
        from rlnas.study import found_trial

        return found_trial(self.completed, self.record.agent)


def take_snapshot(store: Store, name: str) -> StudySnapshot:
    """Read study ``name`` from ``store`` (:class:`StudyNotFound` when there is none)."""
    record = store.get_study(name)
    return StudySnapshot(record, tuple(store.trials(record.id)), tuple(store.diagnostics(record.id)))


def match_studies(store: Store, pattern: str) -> list[str]:
    """Names of the studies matching ``pattern`` (a name or a shell glob such as ``'c10-ppo-*'``), in creation order.

    The study named exactly ``pattern`` wins over a glob reading of it (a study may be called
    ``run[1]``); otherwise a pattern without glob characters must name an existing study, and a glob
    must match at least one.
    """
    names = store.study_names()
    if pattern in names or not any(ch in pattern for ch in "*?["):
        if pattern not in names:
            raise StudyNotFound(f"no study named {pattern!r}")
        return [pattern]
    matched = [n for n in names if fnmatch.fnmatchcase(n, pattern)]
    if not matched:
        raise StudyNotFound(f"no study matches {pattern!r}")
    return matched


def take_groups(store: Store, patterns: Sequence[str]) -> dict[str, list[StudySnapshot]]:
    """One group of snapshots per pattern (see :func:`match_studies`); a repeated pattern is an error."""
    groups: dict[str, list[StudySnapshot]] = {}
    for pattern in patterns:
        if pattern in groups:
            raise ConfigError(f"study pattern {pattern!r} is given twice")
        groups[pattern] = [take_snapshot(store, n) for n in match_studies(store, pattern)]
    return groups


__all__ = ["StudySnapshot", "match_studies", "take_groups", "take_snapshot"]
