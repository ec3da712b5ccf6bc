"""Items 3-7, 10 and 13 (library side): resume after kills at chosen points, damaged checkpoints,
results a store cannot keep, bad API input, and searches in which nothing completed."""
from __future__ import annotations

import math
import sqlite3

import pytest

from rlnas import create_study, load_study
from rlnas.errors import ConfigError, RlnasError
from rlnas.evaluators import Measurement
from rlnas.testing.faults import ODD_RESULTS, OddResultEvaluator
from rlnas.testing.kill import run_cli, stored_run
from rlnas.testing.toy import ToyEvaluator
from rlnas.trial import TrialState

TOY = ToyEvaluator()


def _search(url: str, name: str, *extra: str) -> list[str]:
    return ["search", "--name", name, "--storage", url, "--no-progress", *extra]


# ------------------------------------------------------------- item 3: diagnostics on replay
@pytest.mark.parametrize("agent", ["reinforce", "l2nas"])
def test_diagnostics_of_results_stored_before_a_kill_are_logged_on_resume(tmp_path, agent):
    """The process dies as it is about to store the 7th diagnostics row: the trial's result is
    stored, its tell is not. Replaying it on resume must log that row."""
    url = f"sqlite:///{tmp_path / 'runs.db'}"
    common = ["--agent", agent, "--trials", "24", "--seed", "2", "--checkpoint-every", "10"]
    killed = run_cli(_search(url, "k", *common), kill_on=r"insert\s+into\s+rlnas_diagnostics", after=7)
    assert killed.returncode == -9
    assert run_cli(["resume", "k", "--no-progress", "--storage", url]).returncode == 0
    assert run_cli(_search(url, "whole", *common)).returncode == 0
    k, whole = stored_run("k", url), stored_run("whole", url)
    assert k["complete"] == whole["complete"] and len(whole["diagnostics"]) >= 10
    assert k["diagnostics"] == whole["diagnostics"]


# ----------------------------------------------------------- item 4: resume right after creation
FIRST_WRITE_AFTER_CREATION = r"^\s*(update\s+rlnas_studies|(select|insert)\b.*\brlnas_leases)"


def test_a_run_killed_right_after_creating_its_study_resumes_to_its_stop_condition(any_url):
    """The process dies at its first write after the study row (before main: the stop condition
    was stored only then; now it is stored with the study, and the first write is the lease)."""
    common = ["--agent", "evolution", "--trials", "12", "--seed", "5"]
    killed = run_cli(_search(any_url, "k", *common), kill_on=FIRST_WRITE_AFTER_CREATION, after=1)
    assert killed.returncode == -9 and stored_run("k", any_url)["states"] == []
    resumed = run_cli(["resume", "k", "--no-progress", "--storage", any_url])
    assert resumed.returncode == 0, resumed.stderr
    assert run_cli(_search(any_url, "whole", *common)).returncode == 0
    assert stored_run("k", any_url)["complete"] == stored_run("whole", any_url)["complete"]
    assert len(stored_run("k", any_url)["complete"]) == 12


# ------------------------------------------------ item 5: fall back to the newest readable checkpoint
def _damage_checkpoints(path, how_many: int, how: str) -> None:
    """Replace the newest ``how_many`` checkpoints by bytes that are no archive, or by the same
    archive without the last part of the agent's state (its restore fails half-way through)."""
    from rlnas.study import checkpoint as codec

    with sqlite3.connect(path) as db:
        rows = db.execute("SELECT id, payload FROM rlnas_checkpoints ORDER BY id DESC").fetchall()
        assert len(rows) >= how_many
        for cid, blob in rows[:how_many]:
            if how == "bytes":
                damaged = b"PK\x03\x04 damaged"
            else:
                payload = codec.decode(blob)
                del payload["agent"]["seen"]  # restored last by L2NAS: weights and buffers are already in
                damaged = codec.encode(payload)
            db.execute("UPDATE rlnas_checkpoints SET payload = ? WHERE id = ?", (damaged, cid))


@pytest.mark.parametrize(("damaged", "how", "said"), [(1, "half a state", "resuming from the newest readable one"),
                                                      (3, "bytes", "replaying every stored trial from the seed")])
def test_a_damaged_newest_checkpoint_falls_back_and_says_so(tmp_path, damaged, said, how):
    path = tmp_path / "runs.db"
    url = f"sqlite:///{path}"
    common = ["--agent", "l2nas", "--seed", "4", "--checkpoint-every", "5"]
    assert run_cli(_search(url, "k", *common, "--trials", "30")).returncode == 0
    _damage_checkpoints(path, damaged, how)
    resumed = run_cli(["resume", "k", "--trials", "40", "--no-progress", "--storage", url])
    assert resumed.returncode == 0, resumed.stderr
    warnings = [line for line in resumed.stderr.splitlines() if line.startswith("rlnas: warning:")]
    assert len(warnings) == 1 and "unreadable checkpoint" in warnings[0] and said in warnings[0], resumed.stderr
    assert "Traceback" not in resumed.stderr
    assert run_cli(_search(url, "whole", *common, "--trials", "40")).returncode == 0
    assert stored_run("k", url)["complete"] == stored_run("whole", url)["complete"]


# --------------------------------------------------------- item 6: results a store cannot keep
STORABLE_PROBLEMS = {
    "object_info": "the evaluator's info cannot be stored",
    "text_metric": "the evaluator reported metric 'test_acc' as str 'high', not a number",
    "text_cost": "the evaluator reported cost_seconds '1 second', not a number",
    "nan_cost": "the evaluator reported cost_seconds nan, not a finite number >= 0",
    "huge_metric": f"the evaluator reported metric 'test_acc' as int {'1' + '0' * 59}..., "
                   "not a number that fits a float",
    "huge_cost": f"the evaluator reported cost_seconds {'1' + '0' * 59}..., not a number that fits a float",
    "unnamed_metric": "the evaluator reported a metric named None: metric names are non-empty strings",
}


@pytest.mark.parametrize("kind", sorted(STORABLE_PROBLEMS))
def test_an_unstorable_result_fails_its_trial_with_the_reason_and_the_search_goes_on(kind, tmp_path):
    url = f"sqlite:///{tmp_path / 'runs.db'}"
    evaluator = OddResultEvaluator(kind)
    study = create_study(space=evaluator.space, agent="random", evaluator=evaluator, storage=url, name="s")
    with pytest.warns(UserWarning, match="no trial has completed"):
        study.optimize(4)
    trials = load_study("s", url, evaluator=evaluator).trials
    assert [t.state for t in trials] == [TrialState.FAIL] * 4
    assert all(STORABLE_PROBLEMS[kind] in t.error for t in trials)


@pytest.mark.parametrize("kind", ["none", "float"])
def test_an_evaluator_that_returns_no_measurement_stops_with_a_clear_error(kind, tmp_path):
    evaluator = OddResultEvaluator(kind)
    study = create_study(space=evaluator.space, agent="random", evaluator=evaluator, storage=None, name="s")
    with pytest.raises(ConfigError, match=r"the evaluator returned (NoneType None|float [\d.]+), not a Measurement"):
        study.optimize(4)
    (trial,) = study.trials
    assert trial.state is TrialState.FAIL and "not a Measurement" in trial.error


def test_numpy_numbers_in_the_info_are_stored_as_plain_ones(tmp_path):
    url = f"sqlite:///{tmp_path / 'runs.db'}"
    evaluator = OddResultEvaluator("numpy_int_info")
    create_study(space=evaluator.space, agent="random", evaluator=evaluator, storage=url, name="s").optimize(2)
    trials = load_study("s", url, evaluator=evaluator).trials
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 2
    assert trials[0].eval_info["count"] == 3 and type(trials[0].eval_info["count"]) is int


def test_odd_results_cover_every_kind():
    assert set(STORABLE_PROBLEMS) | {"none", "float", "nan_metric", "inf_metric", "numpy_int_info"} == set(ODD_RESULTS)


# ------------------------------------------------------- item 13: NaN metrics, unregistered evaluators
def test_a_nan_or_infinite_metric_round_trips_on_every_backend(any_url):
    for kind, check in (("nan_metric", math.isnan), ("inf_metric", math.isinf)):
        evaluator = OddResultEvaluator(kind)
        create_study(space=evaluator.space, agent="random", evaluator=evaluator, storage=any_url,
                     name=kind).optimize(2)
        for trial in load_study(kind, any_url, evaluator=evaluator).trials:
            assert trial.state is TrialState.COMPLETE and check(trial.metrics["test_acc"]), trial.metrics


class _Unregistered(ToyEvaluator):
    def spec(self):
        return {"name": "not_registered_anywhere"}


def test_a_study_with_an_unregistered_evaluator_can_be_reopened_and_read(tmp_path):
    url = f"sqlite:///{tmp_path / 'runs.db'}"
    create_study(space=TOY.space, agent="random", evaluator=_Unregistered(), storage=url, name="s").optimize(3)
    study = load_study("s", url)
    assert len(study.trials) == 3 and study.best_trial is not None
    with pytest.raises(ConfigError, match="'not_registered_anywhere', which is not registered here: load the plugin "
                                          r"that registers it \(RLNAS_PLUGINS=module, docs/extending.md\), or from "
                                          "Python pass evaluator="):
        study.optimize(5)
    load_study("s", url, evaluator=_Unregistered()).optimize(5)
    assert len(load_study("s", url).trials) == 5


# ------------------------------------------------------------------------- item 7: API input
def _study(name="s", **options):
    return create_study(space=TOY.space, agent="random", evaluator=TOY, storage=None, name=name, **options)


@pytest.mark.parametrize(("call", "message"), [
    (lambda: _study().optimize(budget_seconds=float("nan")), "budget_seconds must be a positive finite number"),
    (lambda: _study().optimize(2.5), "n_trials must be an integer from 0 to 1,000,000,000, got 2.5"),
    (lambda: _study(seed="abc"), "seed must be an integer, got str 'abc'"),
    (lambda: _study(seed=2**70), "seed must be between 0 and 2147483647"),
    (lambda: _study(checkpoint_every="5"), "checkpoint_every must be an integer >= 0, got '5'"),
    (lambda: create_study(space=123, agent="random", evaluator=TOY), "space must be a registered name or a Space"),
    (lambda: _study(n_trials=-1), "n_trials must be an integer from 0 to 1,000,000,000"),
])
def test_bad_api_input_is_a_config_error_naming_the_argument(call, message):
    with pytest.raises(ConfigError, match=message):
        call()


def test_tell_takes_a_state_by_name_and_refuses_running():
    study = _study()
    trial = study.ask()
    with pytest.raises(ConfigError, match="state RUNNING cannot be told"):
        study.tell(trial, 50.0, state=TrialState.RUNNING)
    with pytest.raises(ConfigError, match="state must be one of COMPLETE, FAIL, PRUNED, got 'DONE'"):
        study.tell(trial, 50.0, state="DONE")
    assert study.tell(trial, 50.0, state="COMPLETE").state is TrialState.COMPLETE  # still tellable after refusals
    assert study.tell(study.ask(), None, state="FAIL", error="x").state is TrialState.FAIL


def test_a_trial_of_one_study_cannot_be_told_to_another():
    a, b = _study("a"), _study("b")
    trial_a, trial_b = a.ask(), b.ask()
    assert (trial_a.number, trial_a.slot, trial_a.key) == (trial_b.number, trial_b.slot, trial_b.key)
    with pytest.raises(RlnasError, match="was not asked from study 'b'"):
        b.tell(trial_a, 1.0)
    assert b.tell(trial_b, Measurement({"valid_acc": 1.0})).state is TrialState.COMPLETE
    assert a.tell(trial_a, Measurement({"valid_acc": 2.0})).reward == 2.0


def test_reward_none_on_an_empty_file_creates_the_study(tmp_path):
    study = create_study(space=TOY.space, agent="random", evaluator=TOY, reward=None, name="s",
                         storage=f"sqlite:///{tmp_path / 'empty.db'}")
    assert study.record.reward == "valid_acc"


# ---------------------------------------------------------- item 10: nothing completed
def test_a_search_in_which_no_trial_completed_exits_1_with_the_most_common_failure(tmp_path):
    url = f"sqlite:///{tmp_path / 'runs.db'}"
    result = run_cli(_search(url, "s", "--space", "toy", "--evaluator", "odd_toy", "--eval-option", "kind=text_metric",
                             "--agent", "random", "--trials", "4"))
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 1 and len(lines) == 1, result.stderr
    assert "no trial of study 's' completed; most common failure (4x): the evaluator reported metric" in lines[0]
