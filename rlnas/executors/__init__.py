"""Executors: the only place that knows about parallelism (``inline``, ``processes``, ``ray``)."""
from __future__ import annotations

from typing import TYPE_CHECKING

from rlnas.executors.base import Executor, Outcome, Task
from rlnas.registry import Registry

if TYPE_CHECKING:
    from rlnas.study.spec import RunOptions

EXECUTORS: Registry[type[Executor]] = Registry("executor", {
    "inline": "rlnas.executors.inline:InlineExecutor",
    "processes": "rlnas.executors.processes:ProcessExecutor",
    "ray": "rlnas.executors.ray_executor:RayExecutor",
})
"""Executor classes by name."""


def create_executor(options: RunOptions) -> Executor:
    """The executor ``options`` asks for, configured with its workers, timeout, retries and threads."""
    cls = EXECUTORS.get(options.executor)
    common = {"trial_timeout": options.trial_timeout, "threads": options.threads}
    if options.executor == "inline":
        return cls(**common)
    if options.executor == "processes":
        return cls(options.workers, max_retries=options.max_retries, **common)
    return cls(options.workers, address=options.ray_address, cpus_per_trial=options.cpus_per_trial,
               gpus_per_trial=options.gpus_per_trial, max_retries=options.max_retries, **common)


__all__ = ["EXECUTORS", "Executor", "Outcome", "Task", "create_executor"]
