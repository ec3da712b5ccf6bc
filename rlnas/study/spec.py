"""What a study *is* (:class:`StudySpec`, stored and compared) and how one run goes
(:class:`RunOptions`, never stored as identity and free to change on every run).
"""
from __future__ import annotations

import math
import numbers
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from rlnas.checks import SEED_MAX as MAX_SEED
from rlnas.checks import check_seed, check_threads
from rlnas.errors import ConfigError

if TYPE_CHECKING:
    from rlnas.study._study import Study
    from rlnas.trial import Trial

Callback = Callable[["Study", "Trial"], None]
"""Called after every finished trial with the study and the stored trial."""

EXECUTORS = ("inline", "processes", "ray")
PROCESSES_PER_CORE = 4
"""Most worker processes per core of this machine for the ``processes`` executor."""
MAX_RAY_WORKERS = 4096
"""Most concurrent trials on a Ray cluster."""
RUN_OPTION_KEYS = ("threads", "device")
"""Evaluator constructor options that say how to run, not what to measure: never part of the spec."""


def evaluator_identity(spec: Mapping[str, Any]) -> dict[str, Any]:
    """An evaluator spec without its run options (``threads``, ``device``)."""
    return {k: v for k, v in spec.items() if k not in RUN_OPTION_KEYS}


@dataclass(frozen=True)
class StudySpec:
    """The stored identity of a study: reopening it with another spec is refused.

    ``space`` is the space name (its JSON and fingerprint are stored too), ``agent_config``
    the agent's options after defaults are filled in, ``evaluator`` the evaluator's
    ``spec()`` without run options, ``reward`` a reward spec (a metric name or a mapping,
    see :mod:`rlnas.rewards`), ``reuse_repeats`` whether a candidate the study has already
    evaluated (or one of the same :meth:`~rlnas.spaces.base.Space.identity`: the same network)
    is answered from the store instead of being evaluated again.
    """

    space: str
    fingerprint: str
    agent: str
    agent_config: Mapping[str, Any]
    evaluator: Mapping[str, Any]
    reward: str | Mapping[str, Any]
    seed: int
    reuse_repeats: bool = False

    def differences(self, other: StudySpec) -> list[str]:
        """One short phrase per field that differs from ``other`` (``self`` is the stored side)."""
        found = []
        if self.fingerprint != other.fingerprint:
            found.append(f"space {self.space!r}, not {other.space!r}")
        for name in ("agent", "seed", "reward", "reuse_repeats"):
            mine, theirs = getattr(self, name), getattr(other, name)
            if mine != theirs:
                found.append(f"{name.replace('_', ' ')} {mine!r}, not {theirs!r}")
        for name in ("agent_config", "evaluator"):
            mine, theirs = dict(getattr(self, name)), dict(getattr(other, name))
            changed = _changed_keys(mine, theirs)
            if changed:
                shown = ", ".join(f"{k}={mine.get(k, '(unset)')!r} not {theirs.get(k, '(unset)')!r}" for k in changed)
                found.append(f"{name.replace('_', ' ')} {shown}")
        return found


def _changed_keys(a: Mapping[str, Any], b: Mapping[str, Any]) -> list[str]:
    return sorted(k for k in set(a) | set(b) if a.get(k, _MISSING) != b.get(k, _MISSING))


_MISSING = object()


RAY_ONLY_DEFAULTS: dict[str, Any] = {"cpus_per_trial": 1.0, "gpus_per_trial": 0.0, "ray_address": None}
"""Options only the ray executor reads, with their defaults; another executor refuses other values."""


@dataclass(frozen=True)
class RunOptions:
    """How one ``optimize`` / ``search`` / ``resume`` runs; none of it is part of the study.

    ``workers`` evaluations run at once on ``executor`` (``inline`` runs one in this process);
    ``threads`` caps torch's threads per evaluation; ``cpus_per_trial`` / ``gpus_per_trial`` are
    Ray's ``num_cpus`` / ``num_gpus`` per task; a trial running longer than ``trial_timeout``
    seconds is stopped and stored FAIL with reason ``timeout``; a trial whose worker died is
    run again up to ``max_retries`` times, then stored FAIL. ``lease_seconds`` is how long a
    driver that stopped renewing its lease (every ``heartbeat_seconds``) keeps the study.
    """

    executor: str = "inline"
    workers: int = 1
    threads: int | None = None
    device: str = "cpu"
    cpus_per_trial: float = 1.0
    gpus_per_trial: float = 0.0
    trial_timeout: float | None = None
    max_retries: int = 1
    ray_address: str | None = None
    progress: bool = False
    callbacks: Sequence[Callback] = field(default_factory=tuple)
    heartbeat_seconds: float = 5.0
    lease_seconds: float = 30.0

    def __post_init__(self) -> None:
        if self.executor not in EXECUTORS:
            raise ConfigError(f"unknown executor {self.executor!r} (choices: {', '.join(EXECUTORS)})")
        _positive_int("workers", self.workers)
        if self.executor == "inline" and self.workers != 1:
            raise ConfigError(f"the inline executor runs one trial at a time; for --workers {self.workers} "
                              "choose --executor processes or ray")
        most = MAX_RAY_WORKERS if self.executor == "ray" else PROCESSES_PER_CORE * (os.cpu_count() or 1)
        if self.workers > most:
            where = "a Ray cluster" if self.executor == "ray" else (
                f"this machine's {os.cpu_count() or 1} core(s) (each worker process holds its own torch; "
                "use the ray executor to spread further)")
            raise ConfigError(f"--workers {self.workers} is too many for {where}: at most {most}")
        check_threads(self.threads)
        if not isinstance(self.device, str) or not self.device:
            raise ConfigError(f"device must be a name such as 'cpu' or 'cuda', got {self.device!r}")
        for name in ("cpus_per_trial", "gpus_per_trial"):
            value = getattr(self, name)
            if not _finite(value) or value < 0:
                raise ConfigError(f"{name} must be a number >= 0, got {value!r}")
        ray_only = [name for name, default in RAY_ONLY_DEFAULTS.items() if getattr(self, name) != default]
        if ray_only and self.executor != "ray":
            verb = "is an option" if len(ray_only) == 1 else "are options"
            raise ConfigError(f"{', '.join(ray_only)} {verb} of the ray executor, not of {self.executor!r} "
                              "(choose executor ray)")
        if self.trial_timeout is not None and (not _finite(self.trial_timeout) or not self.trial_timeout > 0):
            raise ConfigError(f"trial timeout must be a positive number of seconds, got {self.trial_timeout!r}")
        if isinstance(self.max_retries, bool) or not isinstance(self.max_retries, int) or self.max_retries < 0:
            raise ConfigError(f"max retries must be an integer >= 0, got {self.max_retries!r}")
        for name in ("heartbeat_seconds", "lease_seconds"):
            value = getattr(self, name)
            if not _finite(value) or not value > 0:
                raise ConfigError(f"{name} must be a positive number, got {value!r}")
        if self.lease_seconds <= self.heartbeat_seconds:
            raise ConfigError("lease_seconds must be longer than heartbeat_seconds")
        object.__setattr__(self, "callbacks", tuple(self.callbacks))


def _positive_int(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{name} must be a positive integer, got {value!r}")


def _finite(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


__all__ = ["StudySpec", "RunOptions", "Callback", "EXECUTORS", "MAX_SEED", "RUN_OPTION_KEYS", "check_seed",
           "evaluator_identity"]
