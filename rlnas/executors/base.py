"""The executor interface: run evaluations, report their outcomes, know nothing of studies.

A study submits :class:`Task` s while the executor has a free worker and waits for
:class:`Outcome` s, which may come back in any order. Everything about parallelism (worker
processes, Ray tasks, timeouts, replacing a dead worker, retries) lives behind this interface.
"""
from __future__ import annotations

import os
import time
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from rlnas.errors import ConfigError
from rlnas.evaluators.base import Measurement
from rlnas.spaces.base import Candidate

OK, ERROR, CONFIG_ERROR, TIMEOUT, WORKER_DIED = "ok", "error", "config_error", "timeout", "worker_died"
"""Outcome kinds: evaluated; the evaluation raised; the evaluator cannot work at all (the search
stops); stopped after the trial timeout; the worker died more often than retries allow."""


@dataclass(frozen=True)
class Task:
    """One evaluation: the trial it belongs to, the candidate and the evaluation seed."""

    number: int
    candidate: Candidate
    seed: int
    budget: float | None = None


@dataclass(frozen=True)
class Outcome:
    """What became of a task. ``measurement`` is set when ``kind`` is ``"ok"``, else ``error``."""

    task: Task
    kind: str
    measurement: Measurement | None = None
    error: str | None = None
    seconds: float = 0.0
    attempts: int = 1
    info: Mapping[str, Any] = field(default_factory=dict)


def evaluate_task(evaluator: Any, task: Task) -> Outcome:
    """Run one task in this process and describe the result (exceptions become outcomes)."""
    start = time.perf_counter()
    try:
        measurement = evaluator.evaluate(task.candidate, budget=task.budget, seed=task.seed)
    except (KeyboardInterrupt, SystemExit):
        raise
    except TrialTimeout:
        raise
    except ConfigError as exc:
        return Outcome(task, CONFIG_ERROR, error=str(exc), seconds=time.perf_counter() - start)
    except Exception as exc:  # noqa: BLE001 - an evaluation error ends this trial, not the search
        return Outcome(task, ERROR, error=f"{type(exc).__name__}: {exc}", seconds=time.perf_counter() - start)
    return Outcome(task, OK, measurement=measurement, seconds=time.perf_counter() - start)


class TrialTimeout(BaseException):
    """Raised inside an inline evaluation when its time is up (a BaseException, so that an
    evaluator's ``except Exception`` cannot swallow it)."""


def limit_threads(threads: int | None) -> None:
    """Cap the math libraries' threads in this (worker) process before torch is imported."""
    if threads is None:
        return
    for variable in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[variable] = str(threads)
    import sys

    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(threads)


class Executor(ABC):
    """Runs tasks on up to :attr:`capacity` workers."""

    @property
    @abstractmethod
    def capacity(self) -> int:
        """How many tasks may run at once."""

    @abstractmethod
    def start(self, evaluator: Any) -> None:
        """Ship ``evaluator`` to the workers (once) and get ready to run tasks."""

    @abstractmethod
    def submit(self, task: Task) -> None:
        """Start ``task``; only call while :meth:`running` is below :attr:`capacity`."""

    @abstractmethod
    def running(self) -> int:
        """Tasks submitted whose outcome has not been returned yet."""

    @abstractmethod
    def wait(self) -> list[Outcome]:
        """Block until at least one task has an outcome and return every outcome ready."""

    @abstractmethod
    def close(self) -> None:
        """Stop every worker (running tasks are abandoned)."""

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


__all__ = ["Executor", "Task", "Outcome", "TrialTimeout", "evaluate_task", "limit_threads",
           "OK", "ERROR", "CONFIG_ERROR", "TIMEOUT", "WORKER_DIED"]
