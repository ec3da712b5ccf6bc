"""Run each evaluation in this process, one at a time (the default executor)."""
from __future__ import annotations

import signal
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from rlnas.executors.base import TIMEOUT, Executor, Outcome, Task, TrialTimeout, evaluate_task


class InlineExecutor(Executor):
    """Evaluates in the calling process; ``trial_timeout`` interrupts an evaluation with SIGALRM
    (on the main thread of a POSIX process; elsewhere the timeout cannot be enforced inline)."""

    def __init__(self, *, trial_timeout: float | None = None, threads: int | None = None):
        self.trial_timeout = trial_timeout
        self.threads = threads
        self._evaluator: Any = None
        self._queue: list[Task] = []

    @property
    def capacity(self) -> int:
        return 1

    def start(self, evaluator: Any) -> None:
        self._evaluator = evaluator

    def submit(self, task: Task) -> None:
        self._queue.append(task)

    def running(self) -> int:
        return len(self._queue)

    def wait(self) -> list[Outcome]:
        if not self._queue:
            return []
        task = self._queue.pop(0)
        if self.trial_timeout is not None:
            _settle_lazy_imports()  # before the clock starts: the import is not the trial's time
        start = time.perf_counter()
        try:
            with _threads(self.threads), _alarm(self.trial_timeout):
                return [evaluate_task(self._evaluator, task)]
        except TrialTimeout:
            return [Outcome(task, TIMEOUT, error=f"timeout: still running after {self.trial_timeout:g} s",
                            seconds=time.perf_counter() - start)]

    def close(self) -> None:
        self._queue.clear()


@contextmanager
def _alarm(seconds: float | None) -> Iterator[None]:
    on_main_thread = threading.current_thread() is threading.main_thread()
    usable = seconds is not None and hasattr(signal, "setitimer") and on_main_thread
    if not usable:
        yield
        return

    def expire(_signum: int, _frame: Any) -> None:
        raise TrialTimeout()

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _settle_lazy_imports() -> None:
    """Import now, whole, what torch imports on an optimizer's first step (``torch._dynamo``, with sympy
    and parts of inductor): a timeout raised in the middle of that import would leave those modules
    half-initialised in ``sys.modules``, and every later evaluation in this process would fail."""
    if "torch" in sys.modules and "torch._dynamo" not in sys.modules:
        import torch._dynamo  # noqa: F401


@contextmanager
def _threads(threads: int | None) -> Iterator[None]:
    if threads is None:
        yield
        return
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)
