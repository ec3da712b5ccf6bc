"""Killing ``rlnas`` processes on purpose: at random points, or as a given SQL statement starts.

* :func:`run_cli` runs ``rlnas`` (with the test helpers registered) in a child process.
* ``python -m rlnas.testing.kill --kill-on REGEX --after N -- ARGS`` runs it with a hook that
  SIGKILLs the process when it starts executing the ``N``-th SQL statement matching ``REGEX``
  (e.g. the checkpoint insert), on SQLite and PostgreSQL (:func:`install_kill_hook`).
* :func:`kill_at_random_points` SIGKILLs a command after random delays, again and again, then
  lets it finish; :func:`stored_run` reads what a study holds afterwards.
"""
from __future__ import annotations

import argparse
import os
import random
import re
import signal
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from rlnas.trial import TrialState


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


def wait_for_complete(url: str, n: int, name: str = "s", timeout: float = 120.0) -> None:
    """Wait until study ``name`` in ``url`` has ``n`` COMPLETE trials (a search another process drives);
    ``AssertionError`` after ``timeout`` seconds."""
    import time

    from rlnas.store import open_store

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            store = open_store(url, create=False)
            try:
                if len(store.trials(store.get_study(name).id, [TrialState.COMPLETE])) >= n:
                    return
            finally:
                store.close()
        except Exception:  # noqa: BLE001 - the database or the study may not exist yet
            pass
        time.sleep(0.1)
    raise AssertionError(f"fewer than {n} complete trials of {name!r} after {timeout} s")


# ------------------------------------------------------------------------ killing processes
CLI = ("import sys, rlnas.testing; from rlnas.spaces import register_space; from rlnas.testing.toy import toy_space; "
       "register_space('toy', toy_space); from rlnas.cli import main; sys.exit(main(sys.argv[1:]))")
"""``rlnas`` with the test helpers registered (space and evaluators ``toy``, ``slow_toy``, ...)."""


def cli_command(args: Sequence[str], *, kill_on: str | None = None, after: int = 1) -> list[str]:
    """The argv that runs ``rlnas ARGS`` with this interpreter (optionally with the kill hook)."""
    if kill_on is None:
        return [sys.executable, "-c", CLI, *args]
    return [sys.executable, "-m", "rlnas.testing.kill", "--kill-on", kill_on, "--after", str(after), "--", *args]


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
    """``python -m rlnas.testing.kill --kill-on REGEX [--after N] -- RLNAS ARGS``."""
    parser = argparse.ArgumentParser(prog="python -m rlnas.testing.kill")
    parser.add_argument("--kill-on", required=True, help="regular expression of the SQL statement to die at")
    parser.add_argument("--after", type=int, default=1, help="die at the N-th matching statement")
    parser.add_argument("args", nargs=argparse.REMAINDER, help="-- then the rlnas arguments")
    options = parser.parse_args(argv)
    args = options.args[1:] if options.args[:1] == ["--"] else options.args
    install_kill_hook(options.kill_on, options.after)
    import rlnas.testing  # noqa: F401  (registers the test evaluators)
    from rlnas.cli import main as rlnas_main
    from rlnas.spaces import register_space
    from rlnas.testing.toy import toy_space

    register_space("toy", toy_space)

    return rlnas_main(args)


if __name__ == "__main__":
    raise SystemExit(main())
