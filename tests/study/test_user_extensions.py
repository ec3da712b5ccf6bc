"""Agents and evaluators a user writes: what they hand back is checked where it comes from, and a study
behaves the same in memory and in a database."""
from __future__ import annotations

import numpy as np
import pytest

from rlnas import create_study
from rlnas.agents import AGENTS, Agent, Proposal, register_agent
from rlnas.errors import ConfigError
from rlnas.evaluators.base import Measurement
from rlnas.testing.toy import ToyEvaluator
from rlnas.trial import TrialState

TOY = ToyEvaluator(decisions=3, choices=4)


class Scripted(Agent):
    """Random proposals; what ``ask`` and ``tell`` hand back is set per test."""

    name = "scripted"
    proposal = staticmethod(lambda agent, candidate: Proposal(candidate, {"i": np.int64(3), "p": np.float32(0.5)}))
    diagnostics = staticmethod(lambda agent: {"mean": np.float32(1.5), "told": np.int64(2)})
    size = 1

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.rng = np.random.default_rng(self.seed)

    @property
    def batch_size(self) -> int:
        return type(self).size

    def ask(self, n=1):
        return [type(self).proposal(self, self.space.from_indices(
            [int(self.rng.integers(d.size)) for d in self.space.decisions])) for _ in range(n)]

    def tell(self, results):
        return type(self).diagnostics(self)

    def state_dict(self):
        return {"rng": self.rng.bit_generator.state}

    def load_state_dict(self, state):
        self.rng.bit_generator.state = state["rng"]


@pytest.fixture
def scripted(monkeypatch):
    register_agent("scripted", Scripted)
    for name in ("proposal", "diagnostics", "size"):
        monkeypatch.setattr(Scripted, name, getattr(Scripted, name))  # undone after the test
    yield Scripted
    AGENTS.unregister("scripted")


def test_numpy_values_are_kept_alike_in_memory_and_in_sqlite(scripted, sqlite_url):
    runs = {}
    for storage in (None, sqlite_url):
        study = create_study(space=TOY.space, agent="scripted", evaluator=TOY, storage=storage, name="n")
        study.optimize(4)
        runs[storage] = ([(t.info, t.state) for t in study.trials], study.diagnostics())
    assert runs[None] == runs[sqlite_url]
    info, state = runs[None][0][0]
    assert state is TrialState.COMPLETE and info == {"i": 3, "p": 0.5} and type(info["i"]) is int
    assert runs[None][1][0][1] == {"mean": 1.5, "told": 2.0}


@pytest.mark.parametrize("proposal, message", [
    (lambda agent, c: c.to_dict(), r"Scripted.ask must return Proposal objects \(rlnas.Proposal\(candidate, info\)\)"),
    (lambda agent, c: Proposal(c, {"o": object()}), r"Scripted.ask: a proposal's info must be JSON, as a store keeps "
                                                     r"it \(object .* is not JSON"),
    (lambda agent, c: Proposal(c, ["x"]), r"Scripted.ask: a proposal's info must be a dict, got list"),
    (lambda agent, c: Proposal(42, {}), r"a proposal's candidate must be a Candidate or a mapping of choices, got int"),
    (lambda agent, c: Proposal({"d0": "foo"}, {}), r"^Scripted.ask proposed a candidate that is not one of the space: "
                                                   r"candidate for space .* misses decision\(s\)"),
])
def test_what_ask_returns_is_checked_in_one_line(scripted, proposal, message):
    scripted.proposal = staticmethod(proposal)
    study = create_study(space=TOY.space, agent="scripted", evaluator=TOY)
    with pytest.raises(ConfigError, match=message):
        study.optimize(2)


def test_a_mapping_of_choices_is_taken_as_the_candidate(scripted):
    scripted.proposal = staticmethod(lambda agent, c: Proposal(dict(c.to_dict()), {}))
    study = create_study(space=TOY.space, agent="scripted", evaluator=TOY)
    assert study.optimize(3).n_finished == 3 and study.trials[0].key == TOY.space.key(study.trials[0].candidate)


@pytest.mark.parametrize("diagnostics, message", [
    (lambda agent: [1.0], r"Scripted.tell must return a dict of diagnostics \(name -> number\), got list"),
    (lambda agent: {"phase": "warmup"}, r"Scripted.tell: diagnostic 'phase' must be a number under a str name, got "
                                        r"str 'warmup'"),
])
def test_what_tell_returns_is_checked_in_one_line(scripted, diagnostics, message):
    scripted.diagnostics = staticmethod(diagnostics)
    with pytest.raises(ConfigError, match=message):
        create_study(space=TOY.space, agent="scripted", evaluator=TOY).optimize(2)


def test_a_batch_size_below_one_is_refused_before_anything_is_stored(scripted, sqlite_url):
    scripted.size = 0
    with pytest.raises(ConfigError, match=r"agent 'scripted': batch_size must be an integer >= 1, got 0"):
        create_study(space=TOY.space, agent="scripted", evaluator=TOY, storage=sqlite_url)
    from rlnas.store import open_store

    assert open_store(sqlite_url).list_studies() == []


class OddEvaluator(ToyEvaluator):
    def __init__(self, spec=None, metrics="unset"):
        super().__init__(decisions=3, choices=4)
        self.given_spec, self.given_metrics = spec, metrics

    def spec(self):
        return super().spec() if self.given_spec is None else self.given_spec

    def evaluate(self, candidate, *, budget=None, seed=None):
        if self.given_metrics != "unset":
            return Measurement(self.given_metrics)
        return super().evaluate(candidate, budget=budget, seed=seed)


def test_an_evaluator_spec_must_be_a_json_dict():
    with pytest.raises(ConfigError, match=r"OddEvaluator.spec\(\) must return a dict \(\{'name': ..., \*\*options\}\), "
                                          r"got str"):
        create_study(space=TOY.space, evaluator=OddEvaluator(spec="toy"))
    with pytest.raises(ConfigError, match=r"OddEvaluator.spec\(\) must be JSON, as the study stores it"):
        create_study(space=TOY.space, evaluator=OddEvaluator(spec={"name": "toy", "net": object()}))


@pytest.mark.parametrize("metrics, kind", [(None, "NoneType"), ([90.0], "list")])
def test_a_measurement_without_a_metrics_dict_fails_its_trial_with_the_reason(metrics, kind):
    study = create_study(space=TOY.space, evaluator=OddEvaluator(metrics=metrics))
    with pytest.warns(UserWarning, match="no trial has completed"):
        study.optimize(2)
    assert [t.state for t in study.trials] == [TrialState.FAIL] * 2
    assert study.trials[0].error == f"the evaluator's Measurement has metrics {kind}, not a dict"


def test_a_registered_space_that_is_not_the_stored_one_is_said(sqlite_url):
    from rlnas import Categorical, Space, load_study
    from rlnas.spaces import SPACES, register_space

    def wide(width: int = 3) -> Space:
        return Space("wide", [Categorical(f"d{i}", (0, 1)) for i in range(width)])

    register_space("wide", wide)
    try:
        create_study(space=wide(5), name="w", storage=sqlite_url).close()  # options not in to_json
        with pytest.warns(UserWarning, match="the space registered here as 'wide' is not the one stored"):
            study = load_study("w", sqlite_url)
        assert type(study.space) is Space and len(study.space.decisions) == 5
    finally:
        SPACES.unregister("wide")


def test_a_study_of_an_agent_not_registered_here_can_be_read_not_driven(scripted, sqlite_url):
    from rlnas import load_study

    create_study(space=TOY.space, agent="scripted", evaluator=TOY, storage=sqlite_url, name="mine").optimize(4)
    AGENTS.unregister("scripted")  # another process, without the plugin
    study = load_study("mine", sqlite_url, evaluator=TOY)
    assert len(study.trials) == 4 and study.best_trial is not None
    with pytest.raises(ConfigError, match="unknown agent 'scripted'"):
        study.optimize(6)
    assert len(study.trials) == 4 and study.lease is None
    register_agent("scripted", Scripted)  # the fixture unregisters it again
