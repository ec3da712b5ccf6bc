"""The Ray executor on a real local Ray (started once for this module)."""
import pytest

from rlnas import create_study
from rlnas.study import RunOptions
from rlnas.testing.faults import CountingToyEvaluator, HangingToyEvaluator, SlowToyEvaluator
from rlnas.testing.toy import toy_space
from rlnas.trial import TrialState

ray = pytest.importorskip("ray")


@pytest.fixture(scope="module", autouse=True)
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield
    ray.shutdown()


def history(study):
    return [(t.slot, t.key, t.reward) for t in study.completed_trials]


def search(evaluator, run, agent="evolution", trials=16):
    return create_study(space=toy_space(), agent=agent, evaluator=evaluator, seed=0).optimize(trials, run=run)


def test_ray_runs_the_same_search_as_local_processes_and_ships_the_evaluator_once():
    jittery = SlowToyEvaluator(delay=0.05, jitter=True)
    on_ray = search(jittery, RunOptions(executor="ray", workers=2))
    on_processes = search(jittery, RunOptions(executor="processes", workers=2))
    assert history(on_ray) == history(on_processes) and len(history(on_ray)) == 16
    counted = search(CountingToyEvaluator(), RunOptions(executor="ray", workers=2), trials=20)
    infos = [t.eval_info for t in counted.completed_trials]
    assert {i["loads"] for i in infos} == {1}  # each worker process deserialized it once, for all its trials
    assert len({i["pid"] for i in infos}) <= 2


def test_ray_timeouts_fail_the_trial_and_the_search_goes_on():
    run = RunOptions(executor="ray", workers=2, trial_timeout=1.0)
    study = search(HangingToyEvaluator(hang_on=1), run, agent="random", trials=10)
    failed = [t for t in study.trials if t.state is TrialState.FAIL]
    assert failed and all(t.error.startswith("timeout") and t.candidate["d0"] == 1 for t in failed)
    assert study.n_finished == 10 and not [t for t in study.trials if t.state is TrialState.RUNNING]


def test_ctrl_c_inside_ray_init_still_shuts_down_what_it_started(monkeypatch):
    from rlnas.executors.ray_executor import RayExecutor
    from rlnas.testing.toy import ToyEvaluator

    calls = []

    def interrupted_init(**kwargs):
        calls.append("init")
        raise KeyboardInterrupt  # Ctrl-C while Ray starts its processes

    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", interrupted_init)
    monkeypatch.setattr(ray, "shutdown", lambda: calls.append("shutdown"))
    executor = RayExecutor(2)
    with pytest.raises(KeyboardInterrupt):
        executor.start(ToyEvaluator())
    executor.close()
    assert calls == ["init", "shutdown"]  # the dashboard and runtime-env agents were left running


def test_starting_ray_leaves_the_commands_sigterm_and_sighup_handlers_in_place(monkeypatch):
    import signal
    import sys

    from rlnas.executors.ray_executor import RayExecutor
    from rlnas.testing.toy import ToyEvaluator

    def ours(signum, frame):
        raise KeyboardInterrupt

    started = []

    def ray_like_init(**kwargs):  # what ray.init does to the driver's handlers
        started.append(True)
        signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(signum))
        signal.signal(signal.SIGHUP, signal.SIG_DFL)

    before = {n: signal.signal(n, ours) for n in (signal.SIGTERM, signal.SIGHUP)}
    try:
        monkeypatch.setattr(ray, "is_initialized", lambda: bool(started))  # (the module's Ray runs the tasks)
        monkeypatch.setattr(ray, "init", ray_like_init)
        monkeypatch.setattr(ray, "shutdown", lambda: None)
        executor = RayExecutor(2)
        executor.start(ToyEvaluator())
        executor.close()
        assert signal.getsignal(signal.SIGTERM) is ours and signal.getsignal(signal.SIGHUP) is ours
    finally:
        for number, handler in before.items():
            signal.signal(number, handler)


def test_sigterm_inside_ray_init_stops_as_the_command_does(monkeypatch):
    """Ray's own SIGTERM handler is in place while ray.init runs: it called sys.exit(15), so the search ended
    with exit code 15, no message and Ray's agents left running; the command's handler takes over now."""
    import signal
    import sys

    from rlnas.executors.ray_executor import RayExecutor
    from rlnas.testing.toy import ToyEvaluator

    class Stopped(KeyboardInterrupt):
        pass

    def ours(signum, frame):
        raise Stopped(signum)

    calls = []

    def sigterm_during_init(**kwargs):
        calls.append("init")
        sys.exit(signal.SIGTERM)  # what Ray's handler does with a SIGTERM that arrives now

    before = signal.signal(signal.SIGTERM, ours)
    try:
        monkeypatch.setattr(ray, "is_initialized", lambda: False)
        monkeypatch.setattr(ray, "init", sigterm_during_init)
        monkeypatch.setattr(ray, "shutdown", lambda: calls.append("shutdown"))
        executor = RayExecutor(2)
        with pytest.raises(Stopped):
            executor.start(ToyEvaluator())
        executor.close()
        assert calls == ["init", "shutdown"] and signal.getsignal(signal.SIGTERM) is ours
    finally:
        signal.signal(signal.SIGTERM, before)
