"""The store interface, the study record, and an in-memory store (used when nothing is persisted)."""
from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Any

from rlnas.errors import DamagedStudy, DuplicateStudy, StorageError, StudyNotFound
from rlnas.trial import Trial, TrialState


def utcnow() -> datetime:
    """Current UTC time (naive, as stored)."""
    return datetime.now(timezone.utc).replace(tzinfo=None)


@dataclass(frozen=True)
class StudyRecord:
    """Everything needed to rebuild a study: what is searched, by whom, judged how."""

    id: int
    name: str
    space_name: str
    space_json: dict[str, Any]
    fingerprint: str
    agent: str
    agent_config: dict[str, Any]
    evaluator: dict[str, Any]
    reward: str | dict[str, Any]
    seed: int
    settings: dict[str, Any] = field(default_factory=dict)
    version: str = ""
    created_at: datetime | None = None
    reuse_repeats: bool = False


@dataclass(frozen=True)
class Lease:
    """Who drives a study: the process holding it renews ``renewed_at`` with a heartbeat."""

    holder: str
    host: str
    pid: int
    acquired_at: datetime
    renewed_at: datetime

    def describe(self) -> str:
        """``'pid 123 on host-a since 2026-11-29 17:02:11 UTC'``."""
        return f"pid {self.pid} on {self.host} since {self.acquired_at:%Y-%m-%d %H:%M:%S} UTC"


class Store(ABC):
    """Where studies, trials, checkpoints and agent diagnostics live.

    Every method that writes is one transaction. Records returned are immutable snapshots.
    """

    @abstractmethod
    def create_study(self, record: StudyRecord) -> StudyRecord:
        """Insert a study (``record.id`` is ignored); :class:`DuplicateStudy` if the name is taken."""

    @abstractmethod
    def get_study(self, name: str) -> StudyRecord:
        """The study called ``name``; :class:`StudyNotFound` if there is none."""

    @abstractmethod
    def list_studies(self) -> list[StudyRecord]:
        """All studies, oldest first; :class:`DamagedStudy` if a stored definition cannot be read."""

    def study_names(self) -> list[str]:
        """The names of all studies, oldest first (a damaged definition does not hide any)."""
        return [record.name for record in self.list_studies()]

    @abstractmethod
    def update_settings(self, study_id: int, settings: Mapping[str, Any]) -> None:
        """Replace the study's settings (stop conditions, checkpoint period)."""

    @abstractmethod
    def add_trial(self, study_id: int, slot: int, key: str, candidate: Mapping[str, Any],
                  info: Mapping[str, Any], *, repeat_of: int | None = None) -> Trial:
        """Insert a RUNNING trial with the next free number (``repeat_of``: the trial it repeats)."""

    @abstractmethod
    def finish_trial(self, study_id: int, number: int, state: TrialState, *, reward: float | None = None,
                     metrics: Mapping[str, float] | None = None, cost_seconds: float = 0.0,
                     error: str | None = None, eval_info: Mapping[str, Any] | None = None) -> Trial:
        """Move a RUNNING trial to a finished state with its results; returns the stored record."""

    @abstractmethod
    def fail_orphans(self, study_id: int, reason: str, numbers: Iterable[int] | None = None) -> list[int]:
        """Mark every RUNNING trial (of ``numbers`` only, when given) FAIL and orphaned (the record stays);
        return their numbers."""

    @abstractmethod
    def trials(self, study_id: int, states: Iterable[TrialState] | None = None) -> list[Trial]:
        """The study's trials ordered by number, optionally only those in ``states``."""

    @abstractmethod
    def save_checkpoint(self, study_id: int, slot: int, payload: bytes) -> None:
        """Store an agent checkpoint taken when ``slot`` proposals had been told."""

    @abstractmethod
    def latest_checkpoint(self, study_id: int) -> tuple[int, bytes] | None:
        """``(slot, payload)`` of the newest checkpoint, or ``None``."""

    def checkpoints(self, study_id: int) -> list[tuple[int, bytes]]:
        """``(slot, payload)`` of every kept checkpoint, newest first (by default only the newest)."""
        latest = self.latest_checkpoint(study_id)
        return [] if latest is None else [latest]

    @abstractmethod
    def log_diagnostics(self, study_id: int, slot: int, values: Mapping[str, float]) -> None:
        """Record the diagnostics an agent returned from ``tell`` after ``slot`` told proposals.

        A store may queue them and write them with its next write or at :meth:`flush`: they are
        derived data, which a resumed study logs again for the tells it replays."""

    @abstractmethod
    def diagnostics(self, study_id: int) -> list[tuple[int, dict[str, float]]]:
        """All ``(slot, values)`` diagnostics of a study in order."""

    @abstractmethod
    def delete_study(self, name: str) -> None:
        """Remove a study and everything it owns."""

    @abstractmethod
    def rename_study(self, name: str, new_name: str) -> None:
        """Give study ``name`` the name ``new_name`` (:class:`DuplicateStudy` if that is taken)."""

    # Leases: the primitives :mod:`rlnas.study.lease` builds "one driver per study" on.
    @abstractmethod
    def get_lease(self, study_id: int) -> Lease | None:
        """The study's lease, or ``None`` when nobody holds it."""

    @abstractmethod
    def insert_lease(self, study_id: int, lease: Lease) -> bool:
        """Take a free lease; ``False`` when someone holds it already."""

    @abstractmethod
    def replace_lease(self, study_id: int, old: Lease, new: Lease) -> bool:
        """Take the lease over from ``old`` if it is still exactly ``old``; ``False`` otherwise."""

    @abstractmethod
    def renew_lease(self, study_id: int, holder: str) -> bool:
        """Refresh ``renewed_at`` of ``holder``'s lease; ``False`` when ``holder`` lost it."""

    @abstractmethod
    def release_lease(self, study_id: int, holder: str) -> None:
        """Give the lease up (nothing happens when ``holder`` does not hold it)."""

    def flush(self) -> None:
        """Write what :meth:`log_diagnostics` queued (no-op by default)."""

    def discard_queued(self, study_id: int) -> None:
        """Forget what :meth:`log_diagnostics` queued for ``study_id`` and has not written (no-op by default)."""

    def close(self) -> None:
        """Release connections (no-op by default)."""


def readable_studies(store: Store) -> tuple[list[StudyRecord], list[DamagedStudy]]:
    """The studies whose stored definitions can be read, oldest first, and the errors of those that cannot."""
    records: list[StudyRecord] = []
    damaged: list[DamagedStudy] = []
    for name in store.study_names():
        try:
            records.append(store.get_study(name))
        except DamagedStudy as exc:
            damaged.append(exc)
        except StudyNotFound:  # deleted since the names were read
            continue
    return records, damaged


def _json_default(value: Any) -> Any:
    """NumPy scalars and arrays as the plain values JSON holds (an agent's ``np.float32`` diagnostics)."""
    import numpy as np

    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} {value!r} is not JSON (numbers, strings, lists and dicts are)")


encode_json = json.JSONEncoder(separators=(",", ":"), allow_nan=True, default=_json_default).encode
"""What every store writes for a JSON value (the SQL columns; the in-memory store keeps its round trip)."""


def as_stored(value: Mapping[str, Any]) -> dict[str, Any]:
    """``value`` as a store gives it back: through JSON (tuples become lists, NumPy values plain ones), so
    a search behaves the same in memory and in a database; a value JSON cannot hold is a ``TypeError``."""
    return json.loads(encode_json(dict(value)))


class InMemoryStore(Store):
    """A store that keeps everything in Python objects; nothing survives the process."""

    def __init__(self) -> None:
        self._studies: dict[str, StudyRecord] = {}
        self._trials: dict[int, list[Trial]] = {}
        self._checkpoints: dict[int, tuple[int, bytes]] = {}
        self._diagnostics: dict[int, list[tuple[int, dict[str, float]]]] = {}
        self._leases: dict[int, Lease] = {}

    def create_study(self, record: StudyRecord) -> StudyRecord:
        if record.name in self._studies:
            raise DuplicateStudy(f"a study named {record.name!r} already exists")
        stored = replace(record, id=len(self._studies) + 1, created_at=record.created_at or utcnow())
        self._studies[record.name] = stored
        self._trials[stored.id] = []
        self._diagnostics[stored.id] = []
        return stored

    def get_study(self, name: str) -> StudyRecord:
        try:
            return self._studies[name]
        except KeyError:
            raise StudyNotFound(f"no study named {name!r}") from None

    def list_studies(self) -> list[StudyRecord]:
        return list(self._studies.values())

    def _by_id(self, study_id: int) -> StudyRecord:
        for record in self._studies.values():
            if record.id == study_id:
                return record
        raise StudyNotFound(f"no study with id {study_id}")

    def update_settings(self, study_id: int, settings: Mapping[str, Any]) -> None:
        record = self._by_id(study_id)
        self._studies[record.name] = replace(record, settings=dict(settings))

    def add_trial(self, study_id: int, slot: int, key: str, candidate: Mapping[str, Any],
                  info: Mapping[str, Any], *, repeat_of: int | None = None) -> Trial:
        trials = self._trials[study_id]
        trial = Trial(number=len(trials), slot=slot, state=TrialState.RUNNING, key=key,
                      candidate=dict(candidate), info=as_stored(info), started_at=utcnow(),
                      repeat_of=repeat_of)
        trials.append(trial)
        return trial

    def finish_trial(self, study_id: int, number: int, state: TrialState, *, reward: float | None = None,
                     metrics: Mapping[str, float] | None = None, cost_seconds: float = 0.0,
                     error: str | None = None, eval_info: Mapping[str, Any] | None = None) -> Trial:
        trials = self._trials[study_id]
        if not 0 <= number < len(trials):
            raise StorageError(f"study {study_id} has no trial {number}")
        old = trials[number]
        if old.state is not TrialState.RUNNING:
            raise StorageError(f"trial {number} is already {old.state.value}")
        trial = replace(old, state=state, reward=reward, metrics=dict(metrics or {}), cost_seconds=float(cost_seconds),
                        error=error, eval_info=as_stored(eval_info or {}), finished_at=utcnow())
        trials[number] = trial
        return trial

    def fail_orphans(self, study_id: int, reason: str, numbers: Iterable[int] | None = None) -> list[int]:
        trials = self._trials[study_id]
        chosen = None if numbers is None else set(numbers)
        running = [t.number for t in trials if t.state is TrialState.RUNNING and (chosen is None or t.number in chosen)]
        for n in running:
            trials[n] = replace(trials[n], state=TrialState.FAIL, error=reason, orphaned=True, finished_at=utcnow())
        return running

    def trials(self, study_id: int, states: Iterable[TrialState] | None = None) -> list[Trial]:
        wanted = set(states) if states is not None else None
        return [t for t in self._trials[study_id] if wanted is None or t.state in wanted]

    def save_checkpoint(self, study_id: int, slot: int, payload: bytes) -> None:
        self._checkpoints[study_id] = (slot, bytes(payload))

    def latest_checkpoint(self, study_id: int) -> tuple[int, bytes] | None:
        return self._checkpoints.get(study_id)

    def log_diagnostics(self, study_id: int, slot: int, values: Mapping[str, float]) -> None:
        self._diagnostics[study_id].append((slot, as_stored(values)))

    def diagnostics(self, study_id: int) -> list[tuple[int, dict[str, float]]]:
        return list(self._diagnostics[study_id])

    def delete_study(self, name: str) -> None:
        record = self.get_study(name)
        del self._studies[name]
        for table in (self._trials, self._checkpoints, self._diagnostics, self._leases):
            table.pop(record.id, None)

    def rename_study(self, name: str, new_name: str) -> None:
        record = self.get_study(name)
        if new_name in self._studies:
            raise DuplicateStudy(f"a study named {new_name!r} already exists")
        del self._studies[name]
        self._studies[new_name] = replace(record, name=new_name)

    def get_lease(self, study_id: int) -> Lease | None:
        return self._leases.get(study_id)

    def insert_lease(self, study_id: int, lease: Lease) -> bool:
        if study_id in self._leases:
            return False
        self._leases[study_id] = lease
        return True

    def replace_lease(self, study_id: int, old: Lease, new: Lease) -> bool:
        if self._leases.get(study_id) != old:
            return False
        self._leases[study_id] = new
        return True

    def renew_lease(self, study_id: int, holder: str) -> bool:
        lease = self._leases.get(study_id)
        if lease is None or lease.holder != holder:
            return False
        self._leases[study_id] = replace(lease, renewed_at=utcnow())
        return True

    def release_lease(self, study_id: int, holder: str) -> None:
        if study_id in self._leases and self._leases[study_id].holder == holder:
            del self._leases[study_id]
