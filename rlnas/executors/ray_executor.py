"""Evaluate on Ray: one task per trial, on a local Ray started on demand or an existing cluster.

The evaluator is put in Ray's object store once; each worker process deserializes it on its
first task and keeps it for the next ones. ``num_cpus`` / ``num_gpus`` per task come from the run
options; Ray itself re-runs a task whose worker died (``max_retries``). The trial timeout is
enforced inside the task (SIGALRM in the worker: a worker's start-up does not count); a task
still running ``HARD_TIMEOUT_GRACE`` after that (stuck outside Python) is cancelled with
``force=True``, which kills its worker (Ray starts a new one).
"""
from __future__ import annotations

import signal
import socket
import threading
import time
from typing import Any

from rlnas.errors import ConfigError, first_line
from rlnas.executors.base import TIMEOUT, WORKER_DIED, Executor, Outcome, Task, limit_threads

HARD_TIMEOUT_GRACE = 30.0
"""Seconds past the trial timeout after which the driver kills a task that did not stop itself."""

_EVALUATORS: dict[str, Any] = {}
"""Per Ray worker process: evaluators already deserialized, by object-store id."""


def _evaluate(holder: list[Any], task: Task, threads: int | None, timeout: float | None) -> Outcome:
    """The Ray task body (``holder`` wraps the evaluator's ref so that Ray does not fetch it per call)."""
    import ray

    from rlnas.executors.inline import InlineExecutor

    ref = holder[0]
    key = ref.hex()
    if key not in _EVALUATORS:
        limit_threads(threads)
        _EVALUATORS[key] = ray.get(ref)
        limit_threads(threads)
    inline = InlineExecutor(trial_timeout=timeout)
    inline.start(_EVALUATORS[key])
    inline.submit(task)
    return inline.wait()[0]


RAY_MISSING = "the ray executor needs Ray: pip install 'rlnas[ray]'"


class RayExecutor(Executor):
    """Up to ``workers`` Ray tasks at once (see the module docstring)."""

    def __init__(self, workers: int, *, address: str | None = None, cpus_per_trial: float = 1.0,
                 gpus_per_trial: float = 0.0, trial_timeout: float | None = None, max_retries: int = 1,
                 threads: int | None = None):
        try:
            import ray
        except ImportError:
            raise ConfigError(RAY_MISSING) from None
        self._ray = ray
        self.workers = workers
        self.address = address
        self.cpus_per_trial, self.gpus_per_trial = cpus_per_trial, gpus_per_trial
        self.trial_timeout = trial_timeout
        self.max_retries = max_retries
        self.threads = threads
        self._started_ray = False
        self._remote: Any = None
        self._holder: list[Any] = []
        self._pending: dict[Any, tuple[Task, float]] = {}

    @property
    def capacity(self) -> int:
        return self.workers

    def start(self, evaluator: Any) -> None:
        ray = self._ray
        if not ray.is_initialized():
            check_reachable(self.address)
            self._started_ray = True  # before init: a Ctrl-C inside it must still shut down what it started
            own = _stop_handlers()
            try:
                ray.init(address=self.address, include_dashboard=False, log_to_driver=False,
                         configure_logging=False)
            except ConnectionError as exc:
                raise ConfigError(f"cannot reach the Ray cluster at {self.address!r}: {exc}") from None
            except SystemExit as exc:  # a stop signal inside ray.init met Ray's handler there: sys.exit(signum)
                handler = own.get(exc.code) if isinstance(exc.code, int) else None
                if callable(handler):
                    handler(exc.code, None)  # the command's own: it stops as on Ctrl-C, cleaning up
                raise
            finally:
                _put_back(own)
        available = ray.cluster_resources()
        if self.gpus_per_trial and available.get("GPU", 0) < self.gpus_per_trial:
            raise ConfigError(f"--gpus-per-trial {self.gpus_per_trial:g}: the Ray cluster has "
                              f"{available.get('GPU', 0):g} GPUs")
        if available.get("CPU", 0) < self.cpus_per_trial:
            raise ConfigError(f"--cpus-per-trial {self.cpus_per_trial:g}: the Ray cluster has "
                              f"{available.get('CPU', 0):g} CPUs")
        self._holder = [ray.put(evaluator)]
        self._remote = ray.remote(_evaluate).options(num_cpus=self.cpus_per_trial, num_gpus=self.gpus_per_trial,
                                                     max_retries=self.max_retries, retry_exceptions=False)

    def submit(self, task: Task) -> None:
        ref = self._remote.remote(self._holder, task, self.threads, self.trial_timeout)
        self._pending[ref] = (task, time.monotonic())

    def running(self) -> int:
        return len(self._pending)

    def wait(self) -> list[Outcome]:
        ray = self._ray
        while self._pending:
            timeout = None
            if self.trial_timeout is not None:
                now = time.monotonic()
                timeout = max(0.0, min(start + self._hard_limit - now for _, start in self._pending.values()))
            ready, rest = ray.wait(list(self._pending), num_returns=1, timeout=timeout)
            if ready and rest:  # take whatever else has finished too
                ready += ray.wait(rest, num_returns=len(rest), timeout=0)[0]
            outcomes = [self._collect(ref) for ref in ready]
            outcomes += self._expire()
            if outcomes:
                return outcomes
        return []

    def _collect(self, ref: Any) -> Outcome:
        task, start = self._pending.pop(ref)
        try:
            return self._ray.get(ref)
        except self._ray.exceptions.WorkerCrashedError as exc:
            tries = f"on each of {self.max_retries + 1} attempts" if self.max_retries else "(--max-retries 0)"
            return Outcome(task, WORKER_DIED, error=f"worker died {tries}: {exc}",
                           seconds=time.monotonic() - start, attempts=self.max_retries + 1)
        except self._ray.exceptions.RayError as exc:
            return Outcome(task, WORKER_DIED, error=f"{type(exc).__name__}: {first_line(exc)}",
                           seconds=time.monotonic() - start)

    @property
    def _hard_limit(self) -> float:
        assert self.trial_timeout is not None
        return self.trial_timeout + max(HARD_TIMEOUT_GRACE, self.trial_timeout)

    def _expire(self) -> list[Outcome]:
        if self.trial_timeout is None:
            return []
        now = time.monotonic()
        expired = [ref for ref, (_, start) in self._pending.items() if now - start >= self._hard_limit]
        outcomes = []
        for ref in expired:
            task, start = self._pending.pop(ref)
            self._ray.cancel(ref, force=True)
            outcomes.append(Outcome(task, TIMEOUT, seconds=now - start,
                                    error=f"timeout: stuck {now - start:.0f} s (limit {self.trial_timeout:g} s); "
                                          "its worker was killed"))
        return outcomes

    def close(self) -> None:
        for ref in list(self._pending):
            self._ray.cancel(ref, force=True)
        self._pending.clear()
        self._holder = []
        if self._started_ray:
            self._ray.shutdown()  # also after an interrupted init: it stops the processes init started
            self._started_ray = False


def _stop_handlers() -> dict[int, Any]:
    """This process's SIGTERM and SIGHUP handlers (``rlnas`` stops on them as on Ctrl-C); ``{}`` off the main thread."""
    if threading.current_thread() is not threading.main_thread():
        return {}
    numbers = [getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name)]
    return {number: signal.getsignal(number) for number in numbers}


def _put_back(handlers: dict[int, Any]) -> None:
    """Restore :func:`_stop_handlers`: ``ray.init`` replaces SIGTERM's with ``sys.exit`` (and a native one that
    prints a stack dump), which would skip the clean-up of an interrupted search."""
    for number, handler in handlers.items():
        if handler is not None:  # None: set from outside Python; nothing to put back
            signal.signal(number, handler)


__all__ = ["RayExecutor"]


def check_usable(address: str | None) -> None:
    """Ray must be installed and a cluster ``address`` reachable (:func:`check_reachable`); else a one-line
    :class:`ConfigError`, as :class:`RayExecutor` would give, but before anything is stored."""
    import importlib.util

    if importlib.util.find_spec("ray") is None:
        raise ConfigError(RAY_MISSING)
    check_reachable(address)


def check_reachable(address: str | None, timeout: float = 5.0) -> None:
    """A ``host:port`` (or ``ray://host:port``) address must accept a connection within ``timeout``
    seconds: ``ray.init`` would otherwise retry an unreachable cluster for ever, deaf to Ctrl-C."""
    if not address or address == "auto":
        return
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise ConfigError(f"Ray address {address!r} is not host:port (or ray://host:port, or auto)")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except OSError as exc:
        raise ConfigError(f"cannot reach the Ray cluster at {address!r}: {exc.strerror or exc}") from None
