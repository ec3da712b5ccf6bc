"""The ``rlnas`` command: a thin shell over the library, one module per command.

Each command module registers its parser (``add_parser``) and a ``run(args, console)``; they
parse arguments into a study's definition and run options, call the library and print. Every
user mistake ends with one line ``rlnas: error: ...`` and exit code 2; a command that ran but
failed (e.g. no trial completed) exits 1; nothing stored is changed by a command that fails its
checks. SIGTERM and SIGHUP stop a command as Ctrl-C does (the RUNNING trials of a search are marked,
its workers stopped, a file being written is removed; ``show --watch`` stops watching): one line
``rlnas: interrupted...`` and exit code 128 + the signal's number (130, 143, 129). A signal ignored
where the command started (SIGHUP under ``nohup``) stays ignored.

This module imports nothing else, so that a Ctrl-C while the rest loads (:mod:`rlnas.cli._main`)
is one line too.

The command uses one BLAS thread unless ``OPENBLAS_NUM_THREADS`` says otherwise: its NumPy work is
small matrices (the agents' networks), on which a threaded OpenBLAS spins its threads and costs
more CPU time than it saves (and starting its threads is a third of NumPy's import). Torch keeps
its own threads (``--threads``).
"""
from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Sequence
from typing import Any

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # before anything imports NumPy

STOP_SIGNALS = ("SIGTERM", "SIGHUP")
"""Signals that stop a command as Ctrl-C (SIGINT) does: what ``kill``, ``timeout``, systemd, docker and
batch schedulers send, and a closed terminal."""


class Terminated(KeyboardInterrupt):
    """A stop signal other than SIGINT (``signum``), raised where Ctrl-C would be, so the same clean-up runs."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``rlnas`` console script; returns the exit code."""
    received: list[int] = []

    def stop(signum: int, frame: Any) -> None:
        received.append(signum)
        raise Terminated(signum)

    previous = _install(stop)
    hook = sys.unraisablehook
    sys.unraisablehook = _quiet_about_interrupts
    try:
        from rlnas.cli._main import run_command

        code = run_command(argv)
    except KeyboardInterrupt:  # while the command loads or starts, or in a command that has no handler of its own
        sys.stderr.write("rlnas: interrupted\n")
        code = 130
    finally:
        _install(previous)
        sys.unraisablehook = hook
    if received and code == 130:  # the command stopped as on Ctrl-C: the exit code names the signal it got
        code = 128 + received[0]
    return code


def _install(handlers: Any) -> dict[str, Any]:
    """Set the handler of each of :data:`STOP_SIGNALS` (one function, or a mapping of name to the
    handler to put back); returns the handlers they had. A signal ignored from the start (``nohup``) keeps
    being ignored. Only the main thread can set handlers (elsewhere nothing is set)."""
    if threading.current_thread() is not threading.main_thread():
        return {}
    replaced = {}
    for name in STOP_SIGNALS:
        number = getattr(signal, name, None)
        if number is None:  # not on this platform
            continue
        restoring = isinstance(handlers, dict)
        new = handlers.get(name) if restoring else handlers
        if not restoring and signal.getsignal(number) is signal.SIG_IGN:
            continue  # ignored where the command was started (`nohup`): it stays ignored, as Python leaves SIGINT
        if new is not None:
            replaced[name] = signal.signal(number, new)
    return replaced


def _quiet_about_interrupts(unraisable: Any) -> None:
    """An interrupt that lands in a finalizer (a database connection collected while the command exits)
    cannot stop anything any more: not reported (Python would print its traceback); anything else is."""
    if isinstance(unraisable.exc_value, KeyboardInterrupt):
        return
    sys.__unraisablehook__(unraisable)


if __name__ == "__main__":
    raise SystemExit(main())
