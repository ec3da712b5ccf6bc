"""Suite: a hanging evaluator stopped by --trial-timeout, and a worker that dies mid-trial; the
search goes on, and no finished trial is lost."""
from __future__ import annotations

import pytest

from rlnas.testing.kill import run_cli, stored_run
from rlnas.testing.toy import ToyEvaluator


def _search(url: str, name: str, *extra: str) -> list[str]:
    return ["search", "--space", "toy", "--agent", "random", "--seed", "3", "--name", name, "--no-progress",
            "--storage", url, *extra]


def _states(url: str, name: str) -> dict[str, list]:
    from rlnas.store import open_store

    store = open_store(url, create=False)
    try:
        trials = store.trials(store.get_study(name).id)
    finally:
        store.close()
    return {"trials": trials, "keys": [t.key for t in trials]}


@pytest.mark.parametrize("executor", ["inline", "processes"])
def test_a_hanging_evaluation_is_stopped_by_the_trial_timeout_and_the_search_goes_on(tmp_path, executor):
    url = f"sqlite:///{tmp_path / 'runs.db'}"
    workers = ["--workers", "2"] if executor == "processes" else []
    result = run_cli(_search(url, "h", "--evaluator", "hanging_toy", "--trials", "12", "--trial-timeout", "1",
                             "--executor", executor, *workers), timeout=300)
    assert result.returncode == 0, result.stderr[-1500:]
    trials = _states(url, "h")["trials"]
    hung = [t for t in trials if t.candidate["d0"] == 0]  # HangingToyEvaluator hangs on first choice 0
    assert len(trials) == 12 and hung, [t.key for t in trials]
    assert all(t.state.value == "FAIL" and t.error.startswith("timeout") for t in hung)
    toy = ToyEvaluator()
    assert all(t.state.value == "COMPLETE" and t.reward == toy.reward_of(toy.space.candidate(t.candidate))
               for t in trials if t.candidate["d0"] != 0)


def test_a_worker_that_dies_mid_trial_is_replaced_and_the_trial_run_again(tmp_path):
    url = f"sqlite:///{tmp_path / 'runs.db'}"
    died = tmp_path / "died"
    died.mkdir()
    result = run_cli(_search(url, "d", "--evaluator", "dying_toy", "--eval-option", f"once_dir={died}",
                             "--trials", "15", "--executor", "processes", "--workers", "2"), timeout=300)
    assert result.returncode == 0, result.stderr[-1500:]
    assert list(died.iterdir()), "no worker died: the test did not test anything"
    unbroken = run_cli(_search(url, "u", "--evaluator", "toy", "--trials", "15", "--executor", "processes",
                               "--workers", "2"), timeout=300)
    assert unbroken.returncode == 0, unbroken.stderr[-1500:]
    assert stored_run("d", url)["complete"] == stored_run("u", url)["complete"]
    assert len(stored_run("d", url)["complete"]) == 15
