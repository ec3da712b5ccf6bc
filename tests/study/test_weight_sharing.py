"""The weight-sharing driver on the tiny supernet pair of rlnas.testing."""
import math

import pytest
import torch

from rlnas import create_study, load_study
from rlnas.errors import ConfigError
from rlnas.testing.weight_sharing import ToySupernetEvaluator, registered_toy_agent, toy_supernet_space
from rlnas.trial import TrialState


@pytest.fixture(autouse=True)
def toy_agent():
    with registered_toy_agent():
        yield


def evaluator(**options):
    return ToySupernetEvaluator(epochs=4, batch_size=64, lr=0.1, record_every=10, **options)


def new_study(storage, name="ws", seed=0, **options):
    return create_study(space=toy_supernet_space(), agent="toy_ws", evaluator=evaluator(**options), seed=seed,
                        name=name, storage=storage)


def history(study):
    return [(t.slot, t.key, round(t.reward, 9), t.metrics["supernet_acc"]) for t in study.completed_trials]


def test_records_the_argmax_every_n_steps_and_logs_controller_updates(sqlite_url):
    study = new_study(sqlite_url)
    total = study.evaluator.total_steps
    study.optimize(100)
    trials = study.completed_trials
    assert len(trials) == -(-total // 10) and [t.slot for t in trials] == list(range(len(trials)))
    assert [t.eval_info["step"] for t in trials] == [min(10 * (i + 1), total) for i in range(len(trials))]
    assert trials[-1].metrics["supernet_acc"] > 50  # the shared weights learned the digits (chance: 10 %)
    steps = [step for step, _ in study.diagnostics()]
    first = math.ceil(0.2 * total)  # the controller is off for the first 20 % of the steps
    assert steps == list(range(first + 1, total + 1))  # then one update after every shared step
    assert study.store.latest_checkpoint(study.record.id)[0] == len(trials)


def test_resume_after_a_crash_mid_segment_gives_the_same_search(sqlite_url, monkeypatch):
    reference = new_study(None, name="ref").optimize(100)
    crashed = new_study(sqlite_url)
    real_step = ToySupernetEvaluator.train_step

    def dying_step(self, candidate, **kw):
        if self.step == 35:
            raise KeyboardInterrupt
        return real_step(self, candidate, **kw)

    monkeypatch.setattr(ToySupernetEvaluator, "train_step", dying_step)
    with pytest.raises(KeyboardInterrupt):
        crashed.optimize(100)
    monkeypatch.setattr(ToySupernetEvaluator, "train_step", real_step)
    assert len(crashed.completed_trials) == 3
    resumed = load_study("ws", sqlite_url, evaluator=evaluator())
    resumed.optimize(100)
    assert history(resumed) == history(reference)
    # the replayed rounds after the checkpoint do not store their diagnostics a second time
    assert resumed.diagnostics() == reference.diagnostics()
    ref_weights = reference.evaluator.supernet.state_dict()
    for name, value in resumed.evaluator.supernet.state_dict().items():
        assert torch.equal(value, ref_weights[name]), name


def test_weight_sharing_agents_need_a_weight_sharing_evaluator():
    from rlnas.testing import ToyEvaluator

    toy = ToyEvaluator()
    with pytest.raises(ConfigError, match="weight-sharing evaluator"):  # when the study is made: nothing stored
        create_study(space=toy_supernet_space(), agent="toy_ws", evaluator=toy)
    study = create_study(space=toy_supernet_space(), agent="toy_ws", evaluator=None)
    with pytest.raises(ConfigError, match="no evaluator to optimize with"):
        study.optimize(3)
    assert all(t.state is not TrialState.RUNNING for t in study.trials)


def test_resume_after_a_crash_between_a_record_and_its_checkpoint_records_every_trial(sqlite_url, monkeypatch):
    from rlnas.study._study import Study

    reference = new_study(None, name="ref").optimize(100)
    crashed = new_study(sqlite_url)
    real_checkpoint = Study.checkpoint

    def dying_checkpoint(self):
        if self._told == 3:  # the third trial is stored, its checkpoint is not
            raise KeyboardInterrupt
        return real_checkpoint(self)

    monkeypatch.setattr(Study, "checkpoint", dying_checkpoint)
    with pytest.raises(KeyboardInterrupt):
        crashed.optimize(100)
    monkeypatch.setattr(Study, "checkpoint", real_checkpoint)
    resumed = load_study("ws", sqlite_url, evaluator=evaluator())
    resumed.optimize(len(reference.completed_trials))
    assert history(resumed) == history(reference)  # the stored third trial is counted once


def test_asking_for_more_trials_than_the_epochs_record_runs_the_whole_search_and_finishes(sqlite_url):
    from rlnas.study._weight_sharing import planned_trials

    study = new_study(sqlite_url)
    planned = planned_trials(study)
    study.optimize(planned + 50)
    assert study.n_finished == planned
    assert study.limits(None, None) == (planned, None)  # the stored target is met: finished, not interrupted


def test_a_budget_longer_than_the_epochs_ends_finished_with_the_last_record_as_its_answer(sqlite_url):
    from rlnas.cli._status import study_status

    study = new_study(sqlite_url)
    study.optimize(budget_seconds=1e6)  # the epochs end long before
    status = study_status(study.store, study.store.get_study("ws"))
    assert status["status"] == "finished" and status["finished"] == len(study.trials)  # was: interrupted, for ever
    assert status["best"]["trial"] == max(study.completed_trials, key=lambda t: t.slot).number


def test_what_a_weight_sharing_search_cannot_do_is_refused_before_anything_changes(sqlite_url):
    from rlnas.study.spec import RunOptions

    study = new_study(sqlite_url)
    study.optimize(1)
    for options, message in ((RunOptions(executor="processes", workers=2), "it runs inline"),
                             (RunOptions(trial_timeout=5.0), "--trial-timeout does not apply")):
        with pytest.raises(ConfigError, match=message):
            study.optimize(3, run=options)
        assert study.limits(None, None) == (1, None) and study.lease is None  # not claimed, target kept
    with pytest.raises(ConfigError, match="--reuse-repeats does not apply to a weight-sharing search"):
        create_study(space=toy_supernet_space(), agent="toy_ws", evaluator=evaluator(), reuse_repeats=True)
    with pytest.raises(ConfigError, match="--checkpoint-every does not apply to a weight-sharing search"):
        create_study(space=toy_supernet_space(), agent="toy_ws", evaluator=evaluator(), checkpoint_every=5)
    with pytest.raises(ConfigError, match="agent 'random' would score an untrained network"):
        create_study(space=toy_supernet_space(), agent="random", evaluator=evaluator())
