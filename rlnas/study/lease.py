"""One driver per study: a lease in the store, renewed by a heartbeat thread.

A driver takes the study's lease before it asks or tells anything. A second driver finds the
lease fresh and is refused with :class:`StudyBusy`, which names the holder. A lease is stale,
and may be taken over, when its holder stopped renewing it for ``lease_seconds`` or when its
holder ran on this host and its process is gone (a driver killed with SIGKILL is taken over at
once by ``resume`` on the same machine).
"""
from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import timedelta

from rlnas.errors import RlnasError, StudyNotFound
from rlnas.store import Lease, Store
from rlnas.store.base import utcnow


class StudyBusy(RlnasError):
    """Another process drives the study right now."""

    def __init__(self, study: str, lease: Lease):
        self.lease = lease
        if lease.holder in _TAKEN_HERE:  # two Study objects in one program (not a restarted container's pid 1)
            super().__init__(f"study {study!r} is driven by another Study object of this process (since "
                             f"{lease.acquired_at:%Y-%m-%d %H:%M:%S} UTC): close() that one first (or use it in a "
                             "with block), or drive the study through that one")
            return
        super().__init__(f"study {study!r} is being driven by {lease.describe()}; one process drives a study: "
                         "stop that one first, or run its trials in parallel from that one, with --workers N "
                         "(--executor processes or ray; a TuNAS or ENAS search is one training job, which a "
                         "faster device speeds up instead)")


class LeaseLost(RlnasError):
    """This driver's lease was taken over (it stopped renewing it for too long)."""


def this_host() -> str:
    """The name this machine goes by in leases."""
    return socket.gethostname()


def process_alive(pid: int) -> bool:
    """True when a process ``pid`` exists on this host (a process of another user counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def is_stale(lease: Lease, lease_seconds: float) -> bool:
    """Whether ``lease``'s holder is gone: silent for ``lease_seconds``, or dead on this host."""
    if utcnow() - lease.renewed_at > timedelta(seconds=lease_seconds):
        return True
    return lease.host == this_host() and not process_alive(lease.pid)


@dataclass
class Acquired:
    """The result of taking a lease: ours, and the stale one it replaced (if any)."""

    lease: Lease
    replaced: Lease | None


_TAKEN_HERE: set[str] = set()
"""The holders of the leases this process has taken."""


def acquire(store: Store, study_id: int, study_name: str, lease_seconds: float) -> Acquired:
    """Take the study's lease or raise :class:`StudyBusy`; retried when another driver races us."""
    now = utcnow()
    mine = Lease(holder=uuid.uuid4().hex, host=this_host(), pid=os.getpid(), acquired_at=now, renewed_at=now)
    for _attempt in range(10):
        current = store.get_lease(study_id)
        if current is None:
            if store.insert_lease(study_id, mine):
                _TAKEN_HERE.add(mine.holder)
                return Acquired(mine, None)
            continue
        if not is_stale(current, lease_seconds):
            raise StudyBusy(study_name, current)
        if store.replace_lease(study_id, current, mine):
            _TAKEN_HERE.add(mine.holder)
            return Acquired(mine, current)
    if not any(record.id == study_id for record in store.list_studies()):  # the lease's study row is gone
        raise StudyNotFound(f"study {study_name!r} no longer exists (deleted, or renamed, by another command)")
    raise RlnasError(f"study {study_name!r}: could not take its lease (other drivers keep racing for it)")


class Heartbeat:
    """Renews a lease every ``interval`` seconds in a daemon thread until :meth:`stop`.

    If a renewal finds the lease taken over, ``lost`` is set; the driver checks it and stops.
    A failing renewal (e.g. a database hiccup) is retried at the next beat. Before it writes, the
    driver calls :meth:`confirm`, which renews at once when the last renewal is overdue: a process
    that was paused (SIGSTOP, a suspended laptop) must not write after another driver took over.
    """

    def __init__(self, store: Store, study_id: int, holder: str, interval: float):
        self.store, self.study_id, self.holder, self.interval = store, study_id, holder, interval
        self.lost = threading.Event()
        self._renewed = time.monotonic()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"rlnas-lease-{study_id}", daemon=True)

    def start(self) -> Heartbeat:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def confirm(self, study_name: str) -> None:
        """Raise :class:`LeaseLost` when the lease is no longer this driver's; renews it here and now
        when the last renewal is more than two beats old (the heartbeat thread could not run)."""
        if not self.lost.is_set() and time.monotonic() - self._renewed > 2 * self.interval:
            try:
                if self.store.renew_lease(self.study_id, self.holder):
                    self._renewed = time.monotonic()
                else:
                    self.lost.set()
            except Exception:  # noqa: BLE001 - a store hiccup: the write that follows reports it itself
                pass
        if self.lost.is_set():
            raise LeaseLost(f"study {study_name!r}: another driver took the study over while this one was not "
                            "renewing its lease; stopping")

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                if not self.store.renew_lease(self.study_id, self.holder):
                    self.lost.set()
                    return
                self._renewed = time.monotonic()
            except Exception:  # noqa: BLE001 - a transient store error must not kill the heartbeat
                continue


__all__ = ["StudyBusy", "LeaseLost", "Acquired", "Heartbeat", "acquire", "is_stale", "process_alive", "this_host"]
