"""Executors: parallel runs are deterministic, timeouts and dead workers end trials, not searches."""
import os
import time

import pytest

from rlnas import create_study
from rlnas.errors import ConfigError
from rlnas.study import RunOptions
from rlnas.study._optimize import untold_window
from rlnas.testing.faults import DyingToyEvaluator, HangingToyEvaluator, SlowToyEvaluator
from rlnas.testing.toy import ToyEvaluator, toy_space
from rlnas.trial import TrialState


def history(study):
    return [(t.slot, t.key, t.reward) for t in study.completed_trials]


def search(evaluator, agent="evolution", trials=16, run=None, seed=0, storage=None, **kw):
    study = create_study(space=toy_space(), agent=agent, evaluator=evaluator, seed=seed, storage=storage, **kw)
    return study.optimize(trials, run=run)


PROCESSES = RunOptions(executor="processes", workers=2)


def test_two_workers_give_the_same_run_whatever_order_results_arrive_in():
    jittery = SlowToyEvaluator(delay=0.05, jitter=True)  # results come back out of order
    first = search(jittery, run=PROCESSES)
    second = search(jittery, run=PROCESSES)
    assert history(first) == history(second) and len(history(first)) == 16
    assert [t.slot for t in first.completed_trials] == list(range(16))


def test_a_batch_agent_with_no_more_workers_than_its_batch_runs_as_inline():
    config = {"batch_size": 4}
    inline = search(ToyEvaluator(), agent="ppo", agent_config=config)
    parallel = search(SlowToyEvaluator(delay=0.02, jitter=True), agent="ppo", agent_config=config, run=PROCESSES)
    assert history(parallel) == history(inline)


def test_untold_window_sizes():
    assert [untold_window(1, 1), untold_window(2, 1), untold_window(4, 1)] == [1, 4, 8]
    assert [untold_window(2, 4), untold_window(8, 4), untold_window(9, 4)] == [1, 2, 2]


def test_a_slow_trial_does_not_hold_the_other_worker_idle():
    slow = HangingToyEvaluator(hang_on=0, hang=2.0)  # every candidate whose first choice is 0 takes 2 s
    study = search(slow, agent="random", trials=12, run=PROCESSES)
    by_slot = sorted(study.completed_trials, key=lambda t: t.slot)
    first_slow = next(t for t in by_slot if t.candidate["d0"] == 0)
    later_done_first = [t for t in by_slot if t.slot > first_slow.slot and t.finished_at < first_slow.finished_at]
    # 2 workers may have 4 results outstanding: up to 3 newer trials finish while the slow one runs
    # (with only 2 outstanding the free worker would have stopped after one)
    assert len(later_done_first) >= 2, [(t.slot, t.candidate["d0"]) for t in by_slot]


@pytest.mark.parametrize("executor", ["inline", "processes"])
def test_a_trial_past_the_timeout_fails_and_the_search_goes_on(executor):
    run = RunOptions(executor=executor, workers=1 if executor == "inline" else 2, trial_timeout=0.5)
    study = search(HangingToyEvaluator(hang_on=1), agent="random", trials=12, run=run)
    failed = [t for t in study.trials if t.state is TrialState.FAIL]
    assert failed and all(t.error.startswith("timeout") and t.candidate["d0"] == 1 for t in failed)
    assert all(t.candidate["d0"] != 1 for t in study.completed_trials)
    assert study.n_finished == 12 and not [t for t in study.trials if t.state is TrialState.RUNNING]


def test_an_inline_timeout_stores_the_trial_time_not_the_imports_made_before_it(monkeypatch):
    from rlnas.executors import inline

    monkeypatch.setattr(inline, "_settle_lazy_imports", lambda: time.sleep(0.6))  # torch._dynamo's first import
    study = search(HangingToyEvaluator(hang_on=1), agent="random", trials=6,
                   run=RunOptions(executor="inline", trial_timeout=0.2))
    timed_out = [t for t in study.trials if t.state is TrialState.FAIL]
    assert timed_out and all(0.2 <= t.cost_seconds < 0.6 for t in timed_out), \
        [t.cost_seconds for t in timed_out]


def test_a_dead_worker_is_replaced_and_its_trial_retried(tmp_path):
    once = search(DyingToyEvaluator(die_on=2, once_dir=str(tmp_path)), agent="random", trials=12, run=PROCESSES)
    assert list(tmp_path.iterdir()), "some worker died"
    assert [t.state for t in once.trials] == [TrialState.COMPLETE] * 12  # each died once, then succeeded
    always = search(DyingToyEvaluator(die_on=2), agent="random", trials=12,
                    run=RunOptions(executor="processes", workers=2, max_retries=1))
    failed = [t for t in always.trials if t.state is TrialState.FAIL]
    assert failed and all("worker died" in t.error and "2 attempts" in t.error for t in failed)
    assert always.n_finished == 12
    never = search(DyingToyEvaluator(die_on=2), agent="random", trials=4,
                   run=RunOptions(executor="processes", workers=2, max_retries=0))
    failed = [t for t in never.trials if t.state is TrialState.FAIL]  # said "on each of 1 attempts"
    assert failed and all(t.error.endswith("(--max-retries 0: not tried again)") for t in failed)


def test_unpicklable_evaluators_are_refused_for_processes():
    class Local(ToyEvaluator):
        pass

    with pytest.raises(ConfigError, match="cannot be sent to worker processes"):
        search(Local(), run=PROCESSES)


def test_run_options_are_checked():
    with pytest.raises(ConfigError, match="inline executor runs one trial"):
        RunOptions(workers=2)
    with pytest.raises(ConfigError, match="inline executor runs one trial"):
        RunOptions(workers=1000)  # not "too many for this machine's cores"
    with pytest.raises(ConfigError, match="unknown executor"):
        RunOptions(executor="threads")
    with pytest.raises(ConfigError, match="trial timeout"):
        RunOptions(trial_timeout=0)
    with pytest.raises(ConfigError, match="workers"):
        RunOptions(executor="processes", workers=0)
    cores = os.cpu_count() or 1
    assert RunOptions(executor="processes", workers=4 * cores).workers == 4 * cores
    with pytest.raises(ConfigError, match=f"--workers {4 * cores + 1} is too many for this machine's {cores} core"):
        RunOptions(executor="processes", workers=4 * cores + 1)  # each worker would import torch: out of memory
    with pytest.raises(ConfigError, match="--workers 100000 is too many for a Ray cluster: at most 4096"):
        RunOptions(executor="ray", workers=100_000)


def test_ray_only_options_need_the_ray_executor():
    with pytest.raises(ConfigError, match="ray_address is an option of the ray executor, not of 'processes'"):
        RunOptions(executor="processes", workers=2, ray_address="head:6379")
    with pytest.raises(ConfigError, match="cpus_per_trial, gpus_per_trial are options of the ray executor"):
        RunOptions(cpus_per_trial=4, gpus_per_trial=1)
    assert RunOptions(executor="ray", workers=2, cpus_per_trial=4, ray_address="head:6379").cpus_per_trial == 4


def test_an_unreachable_ray_cluster_is_a_one_line_error_at_once():
    from rlnas.executors.ray_executor import check_reachable

    with pytest.raises(ConfigError, match="cannot reach the Ray cluster at '127.0.0.1:1'"):
        check_reachable("127.0.0.1:1", timeout=2.0)
    with pytest.raises(ConfigError, match="is not host:port"):
        check_reachable("nowhere")
    check_reachable("auto")
    check_reachable(None)


def test_ctrl_c_is_what_the_caller_hears_even_when_the_store_fails_too(monkeypatch):
    from rlnas.errors import StorageError
    from rlnas.testing.toy import ToyEvaluator

    class Interrupted(ToyEvaluator):
        def evaluate(self, candidate, *, budget=None, seed=None):
            raise KeyboardInterrupt

    study = create_study(space=ToyEvaluator().space, evaluator=Interrupted(), storage=None)

    fail_orphans = study.store.fail_orphans

    def cut(*args, **kwargs):  # works when the driver starts, fails once Ctrl-C cut a query short
        if study._running:
            raise StorageError("sending query failed: another command is already in progress")
        return fail_orphans(*args, **kwargs)

    monkeypatch.setattr(study.store, "fail_orphans", cut)
    with pytest.raises(KeyboardInterrupt):
        study.optimize(3)
    assert study.lease is None  # the lease was given up all the same


def test_a_budget_counts_the_time_of_failed_trials():
    import time as clock

    class Failing(ToyEvaluator):
        def evaluate(self, candidate, *, budget=None, seed=None):
            clock.sleep(0.02)
            raise ValueError("diverged")

    study = create_study(space=ToyEvaluator().space, evaluator=Failing(), storage=None)
    with pytest.warns(UserWarning, match="no trial has completed"):
        study.optimize(500, budget_seconds=0.2)  # before, failures cost 0 s: it ran all 500 (or for ever)
    failed = [t for t in study.trials if t.state is TrialState.FAIL]
    assert 5 <= len(failed) < 50 and all(t.cost_seconds >= 0.02 for t in failed)


def test_the_forkserver_ignores_ctrl_c_so_it_prints_no_traceback_while_it_imports():
    import multiprocessing.forkserver as forkserver
    import os

    from rlnas.executors.processes import worker_context

    if not os.path.exists("/proc/self/status"):
        pytest.skip("reads the signal mask from /proc")
    worker_context(ToyEvaluator())  # starts the server (if no earlier test did) with SIGINT ignored
    pid = forkserver._forkserver._forkserver_pid
    ignored = next(line for line in open(f"/proc/{pid}/status") if line.startswith("SigIgn:"))
    assert int(ignored.split()[1], 16) & (1 << (2 - 1))  # SIGINT (2) is ignored from its start


@pytest.mark.parametrize("agent", ["evolution", "l2nas"])
def test_a_two_worker_search_stopped_before_its_first_checkpoint_resumes_exactly(agent, tmp_path):
    import warnings

    from rlnas import load_study

    jittery = SlowToyEvaluator(delay=0.01, jitter=True)
    whole = search(jittery, agent=agent, trials=30, run=PROCESSES)
    url = f"sqlite:///{tmp_path / 'r.db'}"
    search(jittery, agent=agent, trials=10, run=PROCESSES, storage=url, name="r")  # no checkpoint: every 50
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "the restored agent proposes ...": the replay took another window
        resumed = load_study("r", url, evaluator=jittery).optimize(30, run=PROCESSES)
    assert history(resumed) == history(whole)


def test_the_ray_executor_without_ray_is_refused_before_anything_is_stored(tmp_path, monkeypatch, capsys):
    import json
    import sys

    from rlnas.cli import main

    url = f"sqlite:///{tmp_path / 'runs.db'}"
    assert main(["search", "--space", "nb201", "--agent", "random", "--trials", "10", "--name", "q", "--no-progress",
                 "--storage", url]) == 0
    monkeypatch.setitem(sys.modules, "ray", None)  # as where the ray extra is not installed
    capsys.readouterr()
    assert main(["resume", "q", "--trials", "30", "--executor", "ray", "--storage", url]) == 2
    assert main(["search", "--space", "nb201", "--agent", "random", "--trials", "5", "--executor", "ray",
                 "--storage", f"sqlite:///{tmp_path / 'new.db'}"]) == 2
    refusal = "rlnas: error: the ray executor needs Ray: pip install 'rlnas[ray]'"
    assert capsys.readouterr().err.splitlines() == [refusal] * 2
    assert not (tmp_path / "new.db").exists()
    main(["ls", "--json", "--storage", url])
    [row] = json.loads(capsys.readouterr().out)
    assert row["status"] == "finished" and row["target"]["n_trials"] == 10  # the stored target is as it was


def test_a_script_without_a_main_guard_hears_why_its_workers_end(tmp_path):
    import subprocess
    import sys

    script = tmp_path / "search.py"
    script.write_text("from rlnas import create_study\n"
                      "from rlnas.study import RunOptions\n"
                      "from rlnas.testing.toy import ToyEvaluator\n"
                      "toy = ToyEvaluator()\n"
                      "create_study(space=toy.space, evaluator=toy).optimize(4, run=RunOptions(executor='processes', "
                      "workers=2))\n")
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 1
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("rlnas.errors.ConfigError: a worker process ended as it started (exit code 1): ")
    assert "lacks `if __name__ == \"__main__\":` around it" in last  # was: "did not start within 300 s"
