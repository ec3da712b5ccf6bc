"""A store whose writes start failing: a full disk, a database turned read-only, simulated."""
from __future__ import annotations

import errno
import os
from collections.abc import Callable
from typing import Any

from rlnas.store.base import Store

WRITES = frozenset({"create_study", "update_settings", "add_trial", "finish_trial", "fail_orphans",
                    "save_checkpoint", "log_diagnostics", "delete_study"})
"""The :class:`Store` methods counted as writes. Lease writes pass through: the heartbeat thread
renews the lease on a timer, which would make the count depend on timing."""


def disk_full() -> OSError:
    """The error a write meets on a full disk."""
    return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


class FailingStore(Store):
    """``store`` whose writes succeed ``writes`` times, then each raises ``error()``; reads always work.

    ``failed`` counts the refused writes, ``log`` names every write attempted, in order. Every
    other method of :class:`Store` is passed to the wrapped store.
    """

    def __init__(self, store: Store, writes: int, error: Callable[[], BaseException] = disk_full):
        self.inner, self.writes_left, self.error = store, writes, error
        self.failed = 0
        self.log: list[str] = []

    def _call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        if method in WRITES:
            self.log.append(method)
            if self.writes_left <= 0:
                self.failed += 1
                raise self.error()
            self.writes_left -= 1
        return getattr(self.inner, method)(*args, **kwargs)

    def close(self) -> None:
        self.inner.close()

    def __getattr__(self, name: str) -> Any:  # what the wrapped store offers beyond the interface
        if name == "inner":  # not set yet (e.g. while unpickling)
            raise AttributeError(name)
        return getattr(self.inner, name)


def _passed_on(name: str) -> Callable[..., Any]:
    def method(self: FailingStore, *args: Any, **kwargs: Any) -> Any:
        return self._call(name, *args, **kwargs)
    method.__name__ = method.__qualname__ = name
    method.__doc__ = getattr(Store, name).__doc__
    return method


for _name in sorted(Store.__abstractmethods__):
    setattr(FailingStore, _name, _passed_on(_name))
FailingStore.__abstractmethods__ = frozenset()
