"""One driver per study: a second driver is refused, a killed driver's lease is taken over."""
import signal
import subprocess
import sys
import time
from dataclasses import replace

import pytest

from rlnas import create_study, load_study
from rlnas.store import open_store
from rlnas.store.base import utcnow
from rlnas.study import StudyBusy
from rlnas.study.lease import LeaseLost, acquire
from rlnas.study.spec import RunOptions
from rlnas.testing.kill import wait_for_complete
from rlnas.testing.toy import ToyEvaluator
from rlnas.trial import TrialState

TOY = ToyEvaluator()


def test_a_second_study_object_is_refused_and_takes_over_once_the_first_is_gone(sqlite_url):
    first = create_study(space=TOY.space, evaluator=TOY, name="s", storage=sqlite_url)
    running = first.ask()
    second = load_study("s", sqlite_url)
    with pytest.raises(StudyBusy, match=r"is driven by another Study object of this process \(since .* UTC\): "
                                        r"close\(\) that one first"):
        second.optimize(5)  # it named this process's own pid and advised --workers
    assert first.store.trials(first.record.id)[0].state is TrialState.RUNNING  # not orphaned by the refused one
    first.tell(running, 50.0)
    first.close()
    second.optimize(5)
    assert second.n_finished == 5 and second.lease is None


def test_a_silent_lease_goes_stale(sqlite_url):
    study = create_study(space=TOY.space, evaluator=TOY, name="s", storage=sqlite_url)
    store = open_store(sqlite_url)
    held = acquire(store, study.record.id, "s", lease_seconds=30).lease
    with pytest.raises(StudyBusy):
        acquire(store, study.record.id, "s", lease_seconds=30)
    old = replace(held, renewed_at=utcnow().replace(year=2000))
    assert store.replace_lease(study.record.id, held, old)
    taken = acquire(store, study.record.id, "s", lease_seconds=30)
    assert taken.replaced == old and taken.lease.holder != held.holder


def test_a_paused_driver_writes_nothing_once_another_took_over(sqlite_url):
    # the first driver's heartbeat cannot run (as under SIGSTOP); its lease goes stale and a second driver
    # takes the study over; when the first goes on, it stops before writing its next trial
    first = create_study(space=TOY.space, evaluator=TOY, name="s", storage=sqlite_url)
    first.claim(RunOptions(heartbeat_seconds=0.05, lease_seconds=0.2))
    running = first.ask()
    first._heartbeat.stop()
    time.sleep(0.3)
    second = load_study("s", sqlite_url)
    second.claim(RunOptions(heartbeat_seconds=0.05, lease_seconds=0.2))
    with pytest.raises(LeaseLost, match="another driver took the study over"):
        first.tell(running, 50.0)
    with pytest.raises(LeaseLost):
        first.ask()
    store = open_store(sqlite_url)
    # nothing told, nothing asked: the one trial is the one the second driver found orphaned
    assert [t.state for t in store.trials(first.record.id)] == [TrialState.FAIL]
    second.close()


def test_a_driver_that_lost_its_lease_does_not_write_its_queued_diagnostics_at_close(sqlite_url):
    # the new driver replays that tell and logs it: the old one's flush at close stored it a second time
    first = create_study(space=TOY.space, agent="evolution", evaluator=TOY, name="s", storage=sqlite_url)
    first.claim(RunOptions(heartbeat_seconds=0.05, lease_seconds=0.2))
    trial = first.ask()
    first.tell(trial, 50.0)  # its diagnostics are queued until the next write
    first._heartbeat.stop()
    time.sleep(0.3)
    second = load_study("s", sqlite_url)
    second.claim(RunOptions(heartbeat_seconds=0.05, lease_seconds=0.2))
    with pytest.raises(LeaseLost):
        first.ask()
    first.close()
    second.close()
    assert [slot for slot, _ in open_store(sqlite_url).diagnostics(first.record.id)] == [1]


def test_a_refused_driver_leaves_the_running_study_s_target_alone(sqlite_url):
    first = create_study(space=TOY.space, evaluator=TOY, name="s", storage=sqlite_url, n_trials=3000)
    first.claim()
    with pytest.raises(StudyBusy):
        load_study("s", sqlite_url).optimize(10)
    assert open_store(sqlite_url).get_study("s").settings["n_trials"] == 3000
    first.close()


def driver(url, *extra):
    # long enough (2,000 x 0.05 s) that it is still running when the second driver starts on a busy machine
    command = [sys.executable, "-m", "rlnas.testing.cli", "search", "--space", "toy", "--evaluator", "slow_toy",
               "--eval-option", "delay=0.05", "--agent", "evolution", "--trials", "2000", "--name", "s",
               "--storage", url, "--no-progress", *extra]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_two_drivers_one_refused_then_resume_takes_over_after_sigkill(backend, request, tmp_path):
    url = f"sqlite:///{tmp_path}/runs.db" if backend == "sqlite" else request.getfixturevalue("pg_url")
    first = driver(url)
    try:
        wait_for_complete(url, 3)
        second = driver(url)
        _, err = second.communicate(timeout=120)
        assert second.returncode == 2 and err.count("\n") == 1, err
        assert f"is being driven by pid {first.pid}" in err and "--workers" in err
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    store = open_store(url, create=False)
    target = len(store.trials(store.get_study("s").id, [TrialState.COMPLETE])) + 10
    resumed = subprocess.run([sys.executable, "-m", "rlnas.testing.cli", "resume", "s", "--trials", str(target),
                              "--storage", url, "--no-progress"], capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    trials = store.trials(store.get_study("s").id)
    complete = [t.slot for t in trials if t.state is TrialState.COMPLETE]
    assert sorted(complete) == list(range(target))  # every slot exactly once: nothing duplicated, nothing lost
    assert all(t.orphaned for t in trials if t.state is TrialState.FAIL) and len(trials) <= target + 1
    assert store.get_lease(store.get_study("s").id) is None


def test_taking_the_lease_of_a_deleted_study_says_so(sqlite_url):
    from rlnas.errors import StudyNotFound

    study = create_study(space=TOY.space, evaluator=TOY, name="gone", storage=sqlite_url)
    store = open_store(sqlite_url)
    store.delete_study("gone")
    with pytest.raises(StudyNotFound, match="study 'gone' no longer exists"):
        acquire(store, study.record.id, "gone", lease_seconds=30)


def test_every_store_method_reports_database_errors_in_one_line():
    from rlnas.store.base import Store
    from rlnas.store.sql import SQLStore

    for name in Store.__abstractmethods__:
        assert hasattr(getattr(SQLStore, name), "__wrapped__"), name  # rename_study was not


def test_a_study_dropped_without_close_or_left_by_with_gives_its_lease_up(sqlite_url):
    import gc
    import threading

    study = create_study(space=TOY.space, evaluator=TOY, name="s", storage=sqlite_url)
    study.tell(study.ask(), 1.0)
    assert any(t.name.startswith("rlnas-lease") for t in threading.enumerate())
    del study
    gc.collect()  # a notebook cell run again: the old object is gone, so is its claim
    assert not any(t.name.startswith("rlnas-lease") for t in threading.enumerate())
    with load_study("s", sqlite_url) as again:
        again.optimize(3)
        assert again.lease is None  # optimize gives the lease up when it ends
        again.tell(again.ask(), 2.0)
        assert again.lease is not None
    assert again.lease is None
    load_study("s", sqlite_url).optimize(5)


def test_optimize_refuses_while_trials_asked_by_hand_are_untold(sqlite_url):
    from rlnas.errors import RlnasError

    study = create_study(space=TOY.space, evaluator=TOY, name="s", storage=sqlite_url)
    asked = study.ask()
    with pytest.raises(RlnasError, match=r"trial\(s\) \[0\] were asked and not told yet"):
        study.optimize(5)
    study.tell(asked, 3.0)  # still this process's to tell
    study.optimize(5)
    assert study.n_finished == 5 and study.trials[0].reward == 3.0


def test_a_driver_that_lost_its_lease_mid_run_leaves_the_new_driver_s_trial_alone(sqlite_url):
    # the first driver is paused inside a trial (its heartbeat cannot run); a second driver takes the study over
    # and starts a trial; when the first goes on it stops, and its clean-up must not fail the second's trial
    taken = {}

    class PausedOnce(ToyEvaluator):
        def evaluate(self, candidate, budget=None, seed=None):
            if "second" not in taken:
                taken["first"]._heartbeat.stop()
                time.sleep(0.3)
                second = load_study("s", sqlite_url)
                second.claim(RunOptions(heartbeat_seconds=0.05, lease_seconds=0.2))
                taken["second"], taken["theirs"] = second, second.ask()
            return super().evaluate(candidate, budget=budget, seed=seed)

    evaluator = PausedOnce()
    first = create_study(space=evaluator.space, evaluator=evaluator, name="s", storage=sqlite_url)
    taken["first"] = first
    with pytest.raises(LeaseLost):
        first.optimize(5, run=RunOptions(heartbeat_seconds=0.05, lease_seconds=0.2))
    second, theirs = taken["second"], taken["theirs"]
    store = open_store(sqlite_url)
    states = {t.number: t.state for t in store.trials(first.record.id)}
    assert states == {0: TrialState.FAIL, theirs.number: TrialState.RUNNING}  # 0: the first's, orphaned by the second
    second.tell(theirs, 50.0)
    second.optimize(4)
    assert second.n_finished == 4
    second.close()


def test_a_lease_with_this_pid_that_this_process_never_took_is_another_drivers(sqlite_url):
    # a restarted container reuses host name and pid: its killed driver's lease is not a Study object of ours
    import os
    import uuid

    from rlnas.store.base import Lease
    from rlnas.study.lease import this_host

    study = create_study(space=TOY.space, evaluator=TOY, name="s", storage=sqlite_url)
    store = open_store(sqlite_url)
    now = utcnow()
    store.insert_lease(study.record.id, Lease(uuid.uuid4().hex, this_host(), os.getpid(), now, now))
    with pytest.raises(StudyBusy, match=f"is being driven by pid {os.getpid()} on"):
        study.optimize(2)
