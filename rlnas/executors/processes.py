"""A pool of local worker processes, each evaluating one task at a time.

Workers fork from a ``forkserver`` (``spawn`` where there is none): a clean single-threaded server
process, safe next to torch's thread pools, that has imported the evaluator's module (and torch)
once, so a pool and every replacement worker start in milliseconds instead of a fresh
interpreter's seconds. Each worker receives the pickled evaluator once, when it starts. A task
that outlives the trial timeout has its worker killed and replaced; a worker that dies mid-task
is replaced and the task is run again up to ``max_retries`` times.
"""
from __future__ import annotations

import multiprocessing as mp
import pickle
import sys
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import Any

from rlnas.errors import ConfigError
from rlnas.executors.base import TIMEOUT, WORKER_DIED, Executor, Outcome, Task, evaluate_task, limit_threads

READY = "ready"
"""A worker's first message, once its evaluator is loaded: trial timeouts count from there."""
STARTUP_SECONDS = 300.0


def _worker_main(conn: Connection, evaluator_bytes: bytes, threads: int | None) -> None:
    """A worker's life: take tasks from ``conn`` until told to stop, answer each with an Outcome."""
    limit_threads(threads)
    evaluator = pickle.loads(evaluator_bytes)
    limit_threads(threads)  # unpickling may have imported torch
    try:
        conn.send(READY)
        while True:
            task = conn.recv()
            if task is None:
                return
            conn.send(evaluate_task(evaluator, task))
    except (EOFError, OSError, KeyboardInterrupt):  # the driver is gone (killed, interrupted): nothing to answer
        return


@dataclass
class _Worker:
    process: Any
    conn: Connection
    task: Task | None = None
    started: float = 0.0
    attempts: int = 0


class ProcessExecutor(Executor):
    """``workers`` local processes (see the module docstring)."""

    def __init__(self, workers: int, *, trial_timeout: float | None = None, max_retries: int = 1,
                 threads: int | None = None):
        self.workers = workers
        self.trial_timeout = trial_timeout
        self.max_retries = max_retries
        self.threads = threads
        self._context: Any = None
        self._evaluator_bytes = b""
        self._pool: list[_Worker] = []
        self._ready: list[Outcome] = []

    @property
    def capacity(self) -> int:
        return self.workers

    def start(self, evaluator: Any) -> None:
        try:
            self._evaluator_bytes = pickle.dumps(evaluator)
        except Exception as exc:  # noqa: BLE001 - any pickling failure means the same to the user
            raise ConfigError(f"the evaluator cannot be sent to worker processes ({type(exc).__name__}: {exc}); "
                              "use --executor inline") from None
        self._context = worker_context(evaluator)
        # Start every worker before waiting for any: their imports and evaluator loads overlap.
        launched = [self._launch() for _ in range(self.workers)]
        try:
            self._pool = [self._await_ready(process, conn) for process, conn in launched]
        except BaseException:
            for process, conn in launched:
                _stop(_Worker(process, conn))
            raise

    def _spawn(self) -> _Worker:
        return self._await_ready(*self._launch())

    def _launch(self) -> tuple[Any, Connection]:
        parent, child = self._context.Pipe()
        process = self._context.Process(target=_worker_main, args=(child, self._evaluator_bytes, self.threads),
                                        daemon=True, name="rlnas-worker")
        process.start()
        child.close()
        return process, parent

    def _await_ready(self, process: Any, parent: Connection) -> _Worker:
        answered = parent.poll(STARTUP_SECONDS)  # also when the worker ended: its end of the pipe closed
        if not answered or _receive(parent) != READY:
            if answered:
                process.join(timeout=5)
            process.kill()
            if not answered:
                raise ConfigError(f"a worker process did not start within {STARTUP_SECONDS:g} s: the evaluator "
                                  "may fail to load in a fresh process")
            raise ConfigError(f"a worker process ended as it started (exit code {process.exitcode}): the evaluator "
                              "may fail to load in a fresh process, or the script that runs the search lacks "
                              "`if __name__ == \"__main__\":` around it (each worker imports that script again)")
        return _Worker(process, parent)

    def submit(self, task: Task) -> None:
        worker = next((w for w in self._pool if w.task is None), None)
        if worker is None:
            raise RuntimeError("no free worker: submit only while running() < capacity")
        self._send(worker, task, attempts=1)

    def _send(self, worker: _Worker, task: Task, attempts: int) -> None:
        worker.task, worker.started, worker.attempts = task, time.monotonic(), attempts
        try:
            worker.conn.send(task)
        except (BrokenPipeError, OSError):
            pass  # the worker is dead: wait() sees its sentinel and deals with it

    def running(self) -> int:
        return sum(w.task is not None for w in self._pool) + len(self._ready)

    def wait(self) -> list[Outcome]:
        while not self._ready:
            busy = [w for w in self._pool if w.task is not None]
            if not busy:
                return []
            handles: list[Any] = [w.conn for w in busy] + [w.process.sentinel for w in busy]
            wait(handles, timeout=self._time_to_deadline(busy))
            for worker in busy:
                self._check(worker)
        ready, self._ready = self._ready, []
        return ready

    def _time_to_deadline(self, busy: list[_Worker]) -> float | None:
        if self.trial_timeout is None:
            return None
        now = time.monotonic()
        return max(0.0, min(w.started + self.trial_timeout - now for w in busy))

    def _check(self, worker: _Worker) -> None:
        task = worker.task
        assert task is not None
        if worker.conn.poll():
            try:
                outcome: Outcome = worker.conn.recv()
            except (EOFError, OSError):
                self._died(worker)
                return
            worker.task = None
            self._ready.append(Outcome(outcome.task, outcome.kind, outcome.measurement, outcome.error,
                                       outcome.seconds, worker.attempts))
        elif not worker.process.is_alive():
            self._died(worker)
        elif self.trial_timeout is not None and time.monotonic() - worker.started >= self.trial_timeout:
            seconds = time.monotonic() - worker.started
            self._replace(worker)
            self._ready.append(Outcome(task, TIMEOUT, error=f"timeout: still running after {self.trial_timeout:g} s",
                                       seconds=seconds, attempts=worker.attempts))

    def _died(self, worker: _Worker) -> None:
        task, attempts, code = worker.task, worker.attempts, worker.process.exitcode
        assert task is not None
        new = self._replace(worker)
        if attempts <= self.max_retries:
            self._send(new, task, attempts + 1)
        else:
            tries = f"on each of {attempts} attempts" if attempts > 1 else "(--max-retries 0: not tried again)"
            self._ready.append(Outcome(task, WORKER_DIED, attempts=attempts,
                                       error=f"worker died (exit code {code}) {tries}"))

    def _replace(self, worker: _Worker) -> _Worker:
        """Kill ``worker`` and put a fresh one in its place."""
        _stop(worker)
        new = self._spawn()
        self._pool[self._pool.index(worker)] = new
        return new

    def close(self) -> None:
        for worker in self._pool:
            if worker.task is None and worker.process.is_alive():
                try:
                    worker.conn.send(None)
                except (BrokenPipeError, OSError):
                    pass
        for worker in self._pool:
            if worker.task is None:
                worker.process.join(timeout=2)
            _stop(worker)
        self._pool = []


def worker_context(evaluator: Any) -> Any:
    """The multiprocessing context workers start from: a forkserver that preloads the evaluator's
    module (with torch, ``torch._dynamo`` too: ``torch.optim`` imports it when the first optimizer
    is built, about 1.5 s that every worker would pay), or ``spawn`` where forkserver is missing.

    The preload list takes effect when the server starts, i.e. for the first pool of a process;
    later pools fork from the same server, whatever it preloaded (unpickling imports the rest).
    """
    if "forkserver" not in mp.get_all_start_methods():
        return mp.get_context("spawn")
    context = mp.get_context("forkserver")
    preload = ["__main__", type(evaluator).__module__]
    if "torch" in sys.modules:
        preload += ["torch", "torch._dynamo"]
    context.set_forkserver_preload(preload)
    _start_forkserver_deaf_to_ctrl_c()
    return context


def _start_forkserver_deaf_to_ctrl_c() -> None:
    """Start the forkserver (if it is not running) ignoring SIGINT, as its workers then do: a Ctrl-C is the
    driver's to handle (it stops the workers). Else a Ctrl-C in the seconds the server spends importing its
    preload list printed that import's traceback under the driver's one-line message."""
    import signal
    import threading
    from multiprocessing import forkserver

    if threading.current_thread() is not threading.main_thread():
        return  # only the main thread may change a signal's handler; the server then starts as before
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)  # inherited by the server started now
    try:
        forkserver.ensure_running()
    finally:
        signal.signal(signal.SIGINT, previous)


def _receive(conn: Connection) -> object:
    try:
        return conn.recv()
    except (EOFError, OSError):
        return None


def _stop(worker: _Worker) -> None:
    if worker.process.is_alive():
        worker.process.kill()
    worker.process.join(timeout=5)
    worker.conn.close()


__all__ = ["ProcessExecutor"]
