"""Fault injection for the reliability suite: failing stores, faulty evaluators, killed processes.

* :class:`FailingStore` wraps a store; after ``writes`` successful writes every write raises
  (a full disk, a database gone read-only).
* :class:`FaultyEvaluator` looks NB201 cells up like the ``nb201`` evaluator, but at its
  ``at``-th evaluation, counted across processes in a file, it hangs, raises, or SIGKILLs the
  process evaluating it (a worker killed mid-trial). Registered as ``faulty``.
* :class:`OddResultEvaluator` returns results a store cannot keep or a study must refuse.
* :func:`run_cli` runs ``rlnas`` in a child process; ``python -m rlnas.testing.faults
  --kill-on REGEX --after N -- ARGS`` runs it with a hook that SIGKILLs the process when it
  starts executing the ``N``-th SQL statement matching ``REGEX`` (e.g. the checkpoint insert), on
  SQLite and PostgreSQL; :func:`kill_at_random_points` SIGKILLs a command after random delays,
  again and again, then lets it finish.
"""
from __future__ import annotations

import argparse
import errno
import fcntl
import os
import random
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rlnas.errors import ConfigError
from rlnas.evaluators.base import Measurement
from rlnas.spaces.base import Candidate
from rlnas.store.base import Store, StudyRecord
from rlnas.testing.toy import ToyEvaluator
from rlnas.trial import Trial, TrialState

WRITES = ("create_study", "update_settings", "add_trial", "finish_trial", "fail_orphans", "save_checkpoint",
          "log_diagnostics", "delete_study")
"""The :class:`Store` methods that write."""


def disk_full() -> OSError:
    """The error a write meets on a full disk."""
    return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


class FailingStore(Store):
    """``store`` whose writes succeed ``writes`` times, then each raises ``error()``; reads always work.

    ``failed`` counts the refused writes, ``log`` names every write attempted, in order.
    """

    def __init__(self, store: Store, writes: int, error: Callable[[], BaseException] = disk_full):
        self.inner, self.writes_left, self.error = store, writes, error
        self.failed = 0
        self.log: list[str] = []

    def _write(self, method: str, *args: Any, **kwargs: Any) -> Any:
        self.log.append(method)
        if self.writes_left <= 0:
            self.failed += 1
            raise self.error()
        self.writes_left -= 1
        return getattr(self.inner, method)(*args, **kwargs)

    def create_study(self, record: StudyRecord) -> StudyRecord:
        return self._write("create_study", record)

    def update_settings(self, study_id: int, settings: Mapping[str, Any]) -> None:
        return self._write("update_settings", study_id, settings)

    def add_trial(self, study_id: int, slot: int, key: str, candidate: Mapping[str, Any],
                  info: Mapping[str, Any]) -> Trial:
        return self._write("add_trial", study_id, slot, key, candidate, info)

    def finish_trial(self, study_id: int, number: int, state: TrialState, **kwargs: Any) -> Trial:
        return self._write("finish_trial", study_id, number, state, **kwargs)

    def fail_orphans(self, study_id: int, reason: str) -> list[int]:
        return self._write("fail_orphans", study_id, reason)

    def save_checkpoint(self, study_id: int, slot: int, payload: bytes) -> None:
        return self._write("save_checkpoint", study_id, slot, payload)

    def log_diagnostics(self, study_id: int, slot: int, values: Mapping[str, float]) -> None:
        return self._write("log_diagnostics", study_id, slot, values)

    def delete_study(self, name: str) -> None:
        return self._write("delete_study", name)

    def get_study(self, name: str) -> StudyRecord:
        return self.inner.get_study(name)

    def list_studies(self) -> list[StudyRecord]:
        return self.inner.list_studies()

    def trials(self, study_id: int, states: Iterable[TrialState] | None = None) -> list[Trial]:
        return self.inner.trials(study_id, states)

    def latest_checkpoint(self, study_id: int) -> tuple[int, bytes] | None:
        return self.inner.latest_checkpoint(study_id)

    def diagnostics(self, study_id: int) -> list[tuple[int, dict[str, float]]]:
        return self.inner.diagnostics(study_id)

    def close(self) -> None:
        self.inner.close()

    def __getattr__(self, name: str) -> Any:  # anything else the wrapped store offers
        if name == "inner":  # not set yet (e.g. while unpickling)
            raise AttributeError(name)
        return getattr(self.inner, name)


def count_call(counter: str | Path) -> int:
    """Add one to the number in file ``counter`` (created at 0) under an exclusive lock; return it."""
    with open(counter, "a+", encoding="ascii") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        handle.seek(0)
        value = int(handle.read() or 0) + 1
        handle.seek(0)
        handle.truncate()
        handle.write(str(value))
        handle.flush()
        os.fsync(handle.fileno())
    return value


FAULTS = ("none", "hang", "raise", "kill")


class FaultyEvaluator:
    """The ``nb201`` table evaluator with one fault at its ``at``-th evaluation, counted across
    processes in the file ``counter`` (required unless ``fault="none"``).

    ``fault``: ``"hang"`` sleeps ``hang_seconds``; ``"raise"`` raises ``RuntimeError``;
    ``"kill"`` SIGKILLs the evaluating process. Every other evaluation is normal, so a retried or
    resumed trial succeeds. ``space`` must be ``"nb201"`` (the CLI passes it).
    """

    name = "faulty"

    def __init__(self, space: str = "nb201", dataset: str = "cifar10", fault: str = "none", at: int = 1,
                 counter: str | None = None, hang_seconds: float = 3600.0):
        from rlnas.evaluators.tabular import NB201Evaluator

        if space != "nb201":
            raise ConfigError(f"faulty evaluator: space must be 'nb201', got {space!r}")
        if fault not in FAULTS:
            raise ConfigError(f"faulty evaluator: fault must be one of {', '.join(FAULTS)}, got {fault!r}")
        if fault != "none" and counter is None:
            raise ConfigError("faulty evaluator: a fault needs a counter file")
        self.fault, self.at, self.counter, self.hang_seconds = fault, int(at), counter, float(hang_seconds)
        self.table = NB201Evaluator(dataset)
        self.space = self.table.space

    def evaluate(self, candidate: Candidate, *, budget: float | None = None, seed: int | None = None) -> Measurement:
        """The table's measurement of ``candidate`` (see the class docstring for the fault)."""
        if self.fault != "none" and count_call(self.counter) == self.at:  # type: ignore[arg-type]
            if self.fault == "hang":
                time.sleep(self.hang_seconds)
            elif self.fault == "raise":
                raise RuntimeError(f"injected failure at evaluation {self.at}")
            else:
                os.kill(os.getpid(), signal.SIGKILL)
        return self.table.evaluate(candidate, budget=budget, seed=seed)

    def spec(self) -> dict[str, Any]:
        """Options for ``create_evaluator("faulty", **options)``."""
        return {"name": self.name, "space": "nb201", "dataset": self.table.dataset, "fault": self.fault,
                "at": self.at, "counter": self.counter, "hang_seconds": self.hang_seconds}


ODD_RESULTS = ("numpy_int_info", "text_metric", "text_cost", "nan_cost", "nan_metric", "inf_metric",
               "none", "float", "object_info")


class OddResultEvaluator:
    """The toy evaluator returning, for every candidate, one kind of result a study must handle:
    a NumPy integer or an object in ``info``, a text metric, a text or NaN cost, a NaN or infinite
    non-reward metric, ``None`` or a bare float instead of a :class:`Measurement`."""

    name = "odd"

    def __init__(self, kind: str, decisions: int = 4, choices: int = 5):
        if kind not in ODD_RESULTS:
            raise ConfigError(f"odd evaluator: kind must be one of {', '.join(ODD_RESULTS)}, got {kind!r}")
        self.kind = kind
        self.toy = ToyEvaluator(decisions, choices)
        self.space = self.toy.space

    def evaluate(self, candidate: Candidate, *, budget: float | None = None, seed: int | None = None) -> Any:
        """A result of the chosen kind around the toy reward."""
        value = self.toy.reward_of(candidate)
        metrics: dict[str, Any] = {"valid_acc": value, "test_acc": value - 1}
        cost: Any = 1.0
        info: dict[str, Any] = {}
        odd = {"numpy_int_info": lambda: info.update(count=np.int64(3)),
               "object_info": lambda: info.update(when=object()),
               "text_metric": lambda: metrics.update(test_acc="high"),
               "nan_metric": lambda: metrics.update(test_acc=float("nan")),
               "inf_metric": lambda: metrics.update(test_acc=float("inf"))}
        if self.kind in odd:
            odd[self.kind]()
        elif self.kind == "text_cost":
            cost = "1 second"
        elif self.kind == "nan_cost":
            cost = float("nan")
        elif self.kind == "none":
            return None
        elif self.kind == "float":
            return value
        return Measurement(metrics, cost, info)

    def spec(self) -> dict[str, Any]:
        """Options for ``OddResultEvaluator(**options)``."""
        return {"name": self.name, "kind": self.kind, "decisions": self.toy.decisions, "choices": self.toy.choices}


def stored_run(name: str, url: str) -> dict[str, list[Any]]:
    """What the store holds of study ``name``: its COMPLETE trials as ``(slot, key, reward)`` in
    slot order, every trial's state by number, and the number of diagnostics rows."""
    from rlnas.store import open_store

    store = open_store(url, create=False)
    try:
        record = store.get_study(name)
        trials = store.trials(record.id)
        done = sorted((t for t in trials if t.state is TrialState.COMPLETE), key=lambda t: t.slot)
        return {"complete": [(t.slot, t.key, t.reward) for t in done], "states": [t.state.value for t in trials],
                "diagnostics": [slot for slot, _ in store.diagnostics(record.id)]}
    finally:
        store.close()


# ------------------------------------------------------------------------ killing processes
CLI = "import sys; from rlnas.cli import main; sys.exit(main(sys.argv[1:]))"


def cli_command(args: Sequence[str], *, kill_on: str | None = None, after: int = 1) -> list[str]:
    """The argv that runs ``rlnas ARGS`` with this interpreter (optionally with the kill hook)."""
    if kill_on is None:
        return [sys.executable, "-c", CLI, *args]
    return [sys.executable, "-m", "rlnas.testing.faults", "--kill-on", kill_on, "--after", str(after), "--", *args]


def run_cli(args: Sequence[str], *, timeout: float = 600, env: Mapping[str, str] | None = None,
            kill_on: str | None = None, after: int = 1) -> subprocess.CompletedProcess[str]:
    """Run ``rlnas ARGS`` to its end in a child process and return what it did."""
    return subprocess.run(cli_command(args, kill_on=kill_on, after=after), check=False, capture_output=True,
                          text=True, timeout=timeout, env=None if env is None else {**os.environ, **env})


@dataclass
class KillReport:
    """What :func:`kill_at_random_points` did."""

    kills: int = 0
    """Runs that died by SIGKILL: sent after a random delay, or from a kill hook in the run itself."""
    hook_kills: int = 0
    """Of these, the runs that killed themselves through :func:`install_kill_hook`."""
    delays: list[float] = field(default_factory=list)
    """Seconds after the start at which each timed kill was sent."""
    finished_early: int = 0
    """Runs that ended by themselves before their kill was due."""
    final: subprocess.CompletedProcess[str] | None = None
    """The last run, left to finish."""


def kill_at_random_points(argv: Sequence[str] | Callable[[int], Sequence[str]], *, kills: int, seed: int,
                          min_delay: float, max_delay: float, env: Mapping[str, str] | None = None,
                          timeout: float = 600, between: Callable[[int], None] | None = None) -> KillReport:
    """Start ``argv``, SIGKILL it after a random delay in ``[min_delay, max_delay]``, until it has died
    ``kills`` times (a run that ends by itself first ends the loop: the command is done), then run it
    once more to its end.

    ``argv`` may be a function of the run number (0, 1, ...; -1 for the final run) giving each run its
    command, e.g. one with a kill hook that dies at a checkpoint write; such a run's own SIGKILL
    counts as a kill.
    ``between(k)`` is called after the ``k``-th kill (e.g. to look at the database).
    """
    rng = random.Random(seed)
    report = KillReport()
    full_env = None if env is None else {**os.environ, **env}
    command = argv if callable(argv) else (lambda _run: argv)
    run = 0
    while report.kills < kills:
        delay = rng.uniform(min_delay, max_delay)
        process = subprocess.Popen(command(run), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=full_env)
        run += 1
        try:
            code = process.wait(timeout=delay)
        except subprocess.TimeoutExpired:
            process.send_signal(signal.SIGKILL)
            process.wait()
            report.delays.append(delay)
        else:
            if code != -signal.SIGKILL:
                report.finished_early += 1
                break
            report.hook_kills += 1
        report.kills += 1
        if between is not None:
            between(report.kills)
    report.final = subprocess.run(command(-1), check=False, capture_output=True, text=True, timeout=timeout,
                                  env=full_env)
    return report


def install_kill_hook(pattern: str, after: int) -> None:
    """SIGKILL this process when it starts the ``after``-th SQL statement matching ``pattern``
    (case-insensitive), on every SQLite and PostgreSQL connection opened from now on."""
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    regex = re.compile(pattern, re.IGNORECASE)
    seen = [0]

    def watch(statement: str) -> None:
        if regex.search(statement):
            seen[0] += 1
            if seen[0] >= after:
                os.kill(os.getpid(), signal.SIGKILL)

    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        if hasattr(dbapi_connection, "set_trace_callback"):  # sqlite3
            dbapi_connection.set_trace_callback(watch)
        elif hasattr(dbapi_connection, "cursor_factory"):  # psycopg 3
            base = dbapi_connection.cursor_factory

            class Watched(base):  # type: ignore[misc, valid-type]
                def execute(self, query: Any, *args: Any, **kwargs: Any) -> Any:
                    watch(str(query))
                    return super().execute(query, *args, **kwargs)

                def executemany(self, query: Any, *args: Any, **kwargs: Any) -> Any:
                    watch(str(query))
                    return super().executemany(query, *args, **kwargs)

            dbapi_connection.cursor_factory = Watched

    event.listen(Engine, "connect", on_connect)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m rlnas.testing.faults --kill-on REGEX [--after N] -- RLNAS ARGS``."""
    parser = argparse.ArgumentParser(prog="python -m rlnas.testing.faults")
    parser.add_argument("--kill-on", required=True, help="regular expression of the SQL statement to die at")
    parser.add_argument("--after", type=int, default=1, help="die at the N-th matching statement")
    parser.add_argument("args", nargs=argparse.REMAINDER, help="-- then the rlnas arguments")
    options = parser.parse_args(argv)
    args = options.args[1:] if options.args[:1] == ["--"] else options.args
    install_kill_hook(options.kill_on, options.after)
    from rlnas.cli import main as rlnas_main

    return rlnas_main(args)


if __name__ == "__main__":
    raise SystemExit(main())
