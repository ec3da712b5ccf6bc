"""The fault injectors themselves, and the first faults they inject: a full store, odd evaluator
results, and a SIGKILL in the middle of a checkpoint write on SQLite and PostgreSQL."""
from __future__ import annotations

import errno
import sys

import pytest

from rlnas.store import InMemoryStore
from rlnas.study import create_study
from rlnas.testing.failing_store import FailingStore
from rlnas.testing.faults import OddResultEvaluator
from rlnas.testing.kill import kill_at_random_points, run_cli, stored_run
from rlnas.testing.toy import ToyEvaluator
from rlnas.trial import TrialState

TOY = ToyEvaluator()


def test_a_failing_store_applies_exactly_n_writes_then_raises_disk_full():
    inner = InMemoryStore()
    store = FailingStore(inner, writes=6)
    study = create_study(space=TOY.space, agent="random", evaluator=TOY, storage=store, name="s", seed=0)
    with pytest.raises(OSError) as err:
        study.optimize(10)
    assert err.value.errno == errno.ENOSPC and store.failed >= 1
    applied = store.log[:6]  # what was written before the disk filled up is all there, and nothing more
    kept = inner.trials(inner.get_study("s").id)
    # the driver takes the study (marking orphans) before it stores its target: a refused one changes nothing
    assert applied[:3] == ["create_study", "fail_orphans", "update_settings"]
    assert len(kept) == applied.count("add_trial")
    assert sum(t.state is TrialState.COMPLETE for t in kept) == applied.count("finish_trial")


@pytest.mark.parametrize("kind", ["numpy_int_info", "text_metric", "nan_cost", "none", "float"])
def test_odd_results_are_what_they_say(kind):
    evaluator = OddResultEvaluator(kind)
    result = evaluator.evaluate(evaluator.space.from_indices([1, 2, 3, 4]))
    expected = {"none": type(None), "float": float}.get(kind)
    assert isinstance(result, expected) if expected else result.__class__.__name__ == "Measurement"


def test_kill_at_random_points_kills_then_lets_the_command_finish(tmp_path):
    counter = tmp_path / "count"
    script = ("import sys, time\nfrom pathlib import Path\np = Path(sys.argv[1])\n"
              "n = int(p.read_text() or 0) + 1 if p.exists() else 1\np.write_text(str(n))\n"
              "time.sleep(0.0 if n > 3 else 30)\n")
    report = kill_at_random_points([sys.executable, "-c", script, str(counter)], kills=3, seed=0,
                                   min_delay=1.0, max_delay=1.5)
    assert report.kills == 3 and report.finished_early == 0 and report.final.returncode == 0
    assert counter.read_text() == "4" and all(1.0 <= d <= 1.5 for d in report.delays)


def test_a_sigkill_during_a_checkpoint_write_loses_nothing(any_url):
    """The process dies as it starts writing its 2nd checkpoint; resume finishes the run, which
    then equals an uninterrupted one, trial for trial."""
    common = ["--agent", "evolution", "--trials", "30", "--seed", "3", "--checkpoint-every", "5", "--no-progress"]
    killed = run_cli(["search", "--name", "k", "--storage", any_url, *common],
                     kill_on=r"insert\s+into\s+rlnas_checkpoints", after=2)
    assert killed.returncode == -9
    partial = stored_run("k", any_url)
    assert 10 <= len(partial["complete"]) < 30  # it died after 10 told trials, mid-run
    resumed = run_cli(["resume", "k", "--no-progress", "--storage", any_url])
    assert resumed.returncode == 0, resumed.stderr
    whole = run_cli(["search", "--name", "whole", "--storage", any_url, *common])
    assert whole.returncode == 0, whole.stderr
    assert stored_run("k", any_url)["complete"] == stored_run("whole", any_url)["complete"]
    assert partial["complete"] == stored_run("k", any_url)["complete"][:len(partial["complete"])]


def test_finished_trials_stay_after_the_kill(tmp_path):
    url = f"sqlite:///{tmp_path / 'runs.db'}"
    run_cli(["search", "--name", "k", "--agent", "random", "--trials", "20", "--checkpoint-every", "4",
             "--no-progress", "--storage", url], kill_on=r"insert\s+into\s+rlnas_checkpoints", after=3)
    states = stored_run("k", url)["states"]
    assert states == ["COMPLETE"] * 12  # killed as it began the 3rd checkpoint, after 12 told trials
