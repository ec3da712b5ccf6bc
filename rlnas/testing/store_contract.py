"""Contract every store must honour; call :func:`check_store_contract` with a fresh store."""
from __future__ import annotations

import pytest

from rlnas.errors import DuplicateStudy, StorageError, StudyNotFound
from rlnas.store.base import Store, StudyRecord
from rlnas.trial import TrialState


def sample_record(name: str = "contract") -> StudyRecord:
    """A study record with a little of everything the store must keep."""
    return StudyRecord(id=0, name=name, space_name="toy", space_json={"name": "toy", "decisions": []},
                       fingerprint="abc", agent="random", agent_config={"x": [1, 2.5, "a"]},
                       evaluator={"name": "toy", "decisions": 4}, reward="valid_acc", seed=7,
                       settings={"checkpoint_every": 3}, version="0.0")


def check_store_contract(store: Store) -> None:
    """Assert round trips, orderings, state rules and errors of ``store``."""
    record = store.create_study(sample_record())
    assert record.id > 0 and record.created_at is not None
    assert store.get_study("contract") == record
    with pytest.raises(DuplicateStudy):
        store.create_study(sample_record())
    with pytest.raises(StudyNotFound):
        store.get_study("missing")
    other = store.create_study(sample_record("other"))
    assert [s.name for s in store.list_studies()] == ["contract", "other"] == store.study_names()
    store.update_settings(record.id, {"n_trials": 5})
    assert store.get_study("contract").settings == {"n_trials": 5}

    first = store.add_trial(record.id, 0, "k0", {"d0": 1}, {"indices": [1], "logp": -1.5})
    second = store.add_trial(record.id, 1, "k1", {"d0": "x"}, {})
    assert (first.number, second.number) == (0, 1)
    assert store.add_trial(other.id, 0, "o0", {}, {}).number == 0, "numbers count per study"
    assert first.state is TrialState.RUNNING
    done = store.finish_trial(record.id, 0, TrialState.COMPLETE, reward=91.5,
                              metrics={"valid_acc": 91.5, "test_acc": 94.0}, cost_seconds=12.5, eval_info={"index": 3})
    assert done.state is TrialState.COMPLETE and done.reward == 91.5 and done.metrics["test_acc"] == 94.0
    with pytest.raises(StorageError):
        store.finish_trial(record.id, 0, TrialState.FAIL)
    with pytest.raises(StorageError):
        store.finish_trial(record.id, 99, TrialState.FAIL)

    assert store.fail_orphans(record.id, "another driver's", [0, 7]) == []  # only these numbers: 1 is not one
    assert store.trials(record.id)[1].state is TrialState.RUNNING
    orphans = store.fail_orphans(record.id, "process died")
    assert orphans == [1]
    trials = store.trials(record.id)
    assert [t.number for t in trials] == [0, 1]
    assert trials[0].candidate == {"d0": 1} and trials[0].info == {"indices": [1], "logp": -1.5}
    assert trials[0].eval_info == {"index": 3} and trials[0].cost_seconds == 12.5
    assert trials[1].state is TrialState.FAIL and trials[1].orphaned and trials[1].error == "process died"
    assert [t.number for t in store.trials(record.id, [TrialState.COMPLETE])] == [0]
    assert store.add_trial(record.id, 1, "k1", {"d0": "x"}, {}).number == 2

    assert store.latest_checkpoint(record.id) is None
    for slot in (3, 6, 9, 12):
        store.save_checkpoint(record.id, slot, bytes([slot]) * 10)
    assert store.latest_checkpoint(record.id) == (12, bytes([12]) * 10)
    assert store.latest_checkpoint(other.id) is None

    store.log_diagnostics(record.id, 3, {"entropy": 1.25})
    store.log_diagnostics(record.id, 6, {"entropy": 1.0, "kl": 0.01})
    assert store.diagnostics(record.id) == [(3, {"entropy": 1.25}), (6, {"entropy": 1.0, "kl": 0.01})]

    with pytest.raises(DuplicateStudy):
        store.rename_study("contract", "other")
    store.rename_study("contract", "renamed")
    with pytest.raises(StudyNotFound):
        store.get_study("contract")
    assert store.get_study("renamed").id == record.id and len(store.trials(record.id)) == 3
    store.rename_study("renamed", "contract")

    store.delete_study("contract")
    with pytest.raises(StudyNotFound):
        store.get_study("contract")
    assert [s.name for s in store.list_studies()] == ["other"] == store.study_names()
    assert len(store.trials(other.id)) == 1
