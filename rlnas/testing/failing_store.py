"""A store whose writes start failing (a full disk simulated in-process), and a read-only file."""
from __future__ import annotations

import errno
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
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


@contextmanager
def read_only_file(path: str | Path) -> Iterator[None]:
    """Make ``path`` read-only for the duration: ``chmod 444``, or, for root (whom permissions do
    not stop), the immutable attribute (``chattr +i``). Raises ``unittest.SkipTest`` where neither works."""
    import unittest

    path = Path(path)
    mode = path.stat().st_mode
    if os.geteuid() != 0:
        path.chmod(0o444)
        try:
            yield
        finally:
            path.chmod(mode)
        return
    chattr = shutil.which("chattr")
    if chattr is None or subprocess.run([chattr, "+i", str(path)], check=False, capture_output=True).returncode:
        raise unittest.SkipTest("cannot make a file read-only for root here (no chattr +i)")
    try:
        yield
    finally:
        subprocess.run([chattr, "-i", str(path)], check=False, capture_output=True)
