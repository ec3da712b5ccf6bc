import math

import pytest

from rlnas import create_study, load_study
from rlnas.cli._status import study_status
from rlnas.errors import ConfigError, DuplicateStudy, RlnasError
from rlnas.evaluators.base import Measurement
from rlnas.study import evaluation_seed
from rlnas.testing.toy import ToyEvaluator, per_trial_agents
from rlnas.trial import TrialState

TOY = ToyEvaluator(decisions=4, choices=5)


def history(study):
    return [(t.slot, t.key, t.reward) for t in study.completed_trials]


def new_study(storage, agent="random", seed=0, name="s", checkpoint_every=7, evaluator=TOY):
    return create_study(space=evaluator.space, agent=agent, evaluator=evaluator, seed=seed, name=name,
                        storage=storage, checkpoint_every=checkpoint_every)


@pytest.mark.parametrize("agent", per_trial_agents())
def test_same_seed_same_trials(agent, tmp_path):
    runs = []
    for i in range(2):
        study = new_study(f"sqlite:///{tmp_path}/r{i}.db", agent=agent, seed=3)
        study.optimize(40)
        runs.append(history(study))
    assert runs[0] == runs[1] and len(runs[0]) == 40
    other = new_study(None, agent=agent, seed=4).optimize(40)
    if agent != "fixed":  # it proposes one given architecture, whatever the seed
        assert history(other) != runs[0]


@pytest.mark.parametrize("agent", per_trial_agents())
def test_crash_and_resume_gives_the_uninterrupted_run(agent, sqlite_url):
    reference = new_study(None, agent=agent, seed=1).optimize(60)
    crashed = new_study(sqlite_url, agent=agent, seed=1)
    crashed.optimize(23)
    crashed.ask()  # left RUNNING, as if the process died during the evaluation
    crashed.close()  # the dead driver's lease is gone (SIGKILL: its pid no longer exists)
    resumed = load_study("s", sqlite_url)
    resumed.optimize(60)
    assert history(resumed) == history(reference)
    orphans = [t for t in resumed.trials if t.orphaned]
    assert len(orphans) == 1 and orphans[0].state is TrialState.FAIL and "orphaned" in orphans[0].error
    assert len(resumed.trials) == 61


def test_resume_replays_past_the_checkpoint(sqlite_url):
    study = new_study(sqlite_url, agent="evolution", checkpoint_every=10)
    study.optimize(25)
    assert study.store.latest_checkpoint(study.record.id)[0] == 20
    resumed = load_study("s", sqlite_url)
    resumed.optimize(50)
    assert history(resumed) == history(new_study(None, agent="evolution").optimize(50))


def test_failed_evaluations_are_stored_and_the_search_goes_on():
    class Flaky:
        def evaluate(self, candidate, *, budget=None, seed=None):
            if seed % 3 == 0:
                raise RuntimeError("diverged")
            return TOY.evaluate(candidate)

        def spec(self):
            return {"name": "flaky"}

    study = create_study(space=TOY.space, agent="evolution", evaluator=Flaky(), seed=0).optimize(30)
    failed = [t for t in study.trials if t.state is TrialState.FAIL]
    assert failed and all(t.error == "RuntimeError: diverged" and t.reward is None for t in failed)
    assert len(failed) == sum(evaluation_seed(0, t.slot) % 3 == 0 for t in study.trials)
    assert study.n_finished == 30


def test_budget_stops_on_simulated_time():
    study = create_study(space=TOY.space, agent="random", evaluator=TOY, seed=0)
    study.optimize(budget_seconds=12.5)
    assert study.n_finished == 13 and study.spent_seconds == 13.0


def test_a_budget_of_seconds_stops_at_an_evaluator_that_reports_no_time():
    class NoCost:  # a user's evaluator that leaves cost_seconds at its default, 0
        space = TOY.space

        def evaluate(self, candidate, *, budget=None, seed=None):
            return Measurement({"valid_acc": 1.0})

        def spec(self):
            return {"name": "no_cost"}

    study = create_study(space=TOY.space, agent="random", evaluator=NoCost(), seed=0)
    with pytest.raises(ConfigError, match=r"^the evaluator reported no evaluation time for trial 0 \(cost_seconds 0\): "
                                          "a budget of seconds counts that time and would never run out"):
        study.optimize(budget_seconds=100)  # ran forever
    assert [t.state for t in study.trials] == [TrialState.COMPLETE]
    assert study.optimize(3).n_finished == 3  # a number of trials needs no time


def test_a_callback_cannot_ask_while_optimize_runs():
    # the trial it asked took a slot the loop never evaluated, and optimize(6) returned after one trial
    study = create_study(space=TOY.space, agent="evolution", evaluator=TOY, seed=0)
    with pytest.raises(RlnasError, match="is running optimize\\(\\): a trial asked now \\(from a callback\\)"):
        study.optimize(6, callbacks=[lambda st, trial: st.ask()])
    assert [t.state for t in study.trials] == [TrialState.COMPLETE]
    study.optimize(6)  # and the study goes on
    assert study.n_finished == 6 and all(t.state is not TrialState.RUNNING for t in study.trials)


def test_a_callback_cannot_start_optimize_inside_optimize():
    # the inner loop ran, then cleared the outer loop's guard, and the outer callbacks were dropped
    study = create_study(space=TOY.space, agent="random", evaluator=TOY, seed=0)
    with pytest.raises(RlnasError, match=r"is running optimize\(\) already: call optimize\(\) again after it returns"):
        study.optimize(6, callbacks=[lambda st, trial: st.optimize(3)])
    assert study.n_finished == 1
    assert study.optimize(6).n_finished == 6


def test_proposal_of_a_trial_not_running_is_an_rlnas_error():
    study = create_study(space=TOY.space, agent="random", seed=0)
    with pytest.raises(RlnasError, match="trial 999 of study .* is not running in this process"):
        study.proposal_of(999)  # KeyError: 999
    trial = study.ask()
    assert study.proposal_of(trial).candidate == trial.candidate


def test_manual_ask_tell_and_rewards():
    study = create_study(space=TOY.space, agent="random", seed=0)
    trial = study.ask()
    assert trial.state is TrialState.RUNNING and trial.number == 0
    done = study.tell(trial, Measurement({"valid_acc": 50.0, "test_acc": 49.0}, cost_seconds=2.0))
    assert done.state is TrialState.COMPLETE and done.reward == 50.0 and done.cost_seconds == 2.0
    with pytest.raises(RlnasError, match="not running"):
        study.tell(trial, 1.0)
    assert study.tell(study.ask(), 70.0).reward == 70.0
    assert study.tell(study.ask(), math.nan).state is TrialState.FAIL
    missing = study.tell(study.ask(), Measurement({"test_acc": 1.0}))
    assert missing.state is TrialState.FAIL and "no 'valid_acc'" in missing.error
    assert study.best_trial.reward == 70.0
    assert study.found_trial == study.best_trial  # a search without weight sharing found its best trial


def test_duplicate_names_and_spaces():
    from rlnas.store import InMemoryStore

    store = InMemoryStore()
    create_study(space=TOY.space, name="x", storage=store)
    with pytest.raises(DuplicateStudy):
        create_study(space=TOY.space, name="x", storage=store)
    with pytest.raises(DuplicateStudy, match="exists with space"):
        create_study(space="nb201", name="x", storage=store, load_if_exists=True)
    assert create_study(space=TOY.space, name="x", storage=store, load_if_exists=True).name == "x"


def test_load_study_refuses_an_evaluator_that_measures_something_else():
    from rlnas.store import InMemoryStore

    store = InMemoryStore()
    create_study(space=TOY.space, evaluator=ToyEvaluator(decisions=4, choices=5, target=[0, 0, 0, 0]), name="x",
                 storage=store).optimize(3)
    with pytest.raises(ConfigError, match=r"created with evaluator target=\[0, 0, 0, 0\] not \[4, 4, 4, 4\]"):
        load_study("x", store, evaluator=ToyEvaluator(decisions=4, choices=5, target=[4, 4, 4, 4]))
    with pytest.raises(DuplicateStudy, match=r"exists with evaluator target"):  # create_study's own check, as before
        create_study(space=TOY.space, evaluator=ToyEvaluator(decisions=4, choices=5, target=[4, 4, 4, 4]),
                     name="x", storage=store, load_if_exists=True)
    same = load_study("x", store, evaluator=ToyEvaluator(decisions=4, choices=5, target=[0, 0, 0, 0]))
    assert same.optimize(5).n_finished == 5


def test_bad_limits_are_config_errors():
    study = create_study(space=TOY.space, evaluator=TOY)
    with pytest.raises(ConfigError):
        study.optimize(-1)
    with pytest.raises(ConfigError):
        study.optimize(budget_seconds=0)
    with pytest.raises(ConfigError, match="unknown agent"):
        create_study(space=TOY.space, agent="nope")


def test_an_evaluator_that_cannot_work_stops_the_search_with_its_reason():
    class Misconfigured:
        def evaluate(self, candidate, *, budget=None, seed=None):
            raise ConfigError("dataset folder /nope does not exist")

        def spec(self):
            return {"name": "misconfigured"}

    study = create_study(space=TOY.space, agent="random", evaluator=Misconfigured(), seed=0)
    with pytest.raises(ConfigError, match="/nope"):
        study.optimize(10)
    assert [(t.state, t.error) for t in study.trials] == [(TrialState.FAIL, "dataset folder /nope does not exist")]


def test_tell_and_the_evaluator_protocol_are_checked_in_one_line():
    from rlnas.errors import ConfigError
    from rlnas.testing.toy import ToyEvaluator

    evaluator = ToyEvaluator()
    study = create_study(space=evaluator.space, evaluator=evaluator)
    trial = study.ask()
    for value in ("12.5", True, {"valid_acc": 3.0}):
        with pytest.raises(ConfigError, match="tell: the value is a Measurement, a real number"):
            study.tell(trial, value)
    assert study.tell(trial, 12.5).reward == 12.5  # the trial was left RUNNING by the refusals

    class NoBudget:
        def evaluate(self, candidate):
            return None

    for bad, message in ((object(), "has no evaluate"), (NoBudget(), r"must take \(candidate, \*, budget=None")):
        with pytest.raises(ConfigError, match=message):
            create_study(space=evaluator.space, evaluator=bad)


def test_an_evaluator_of_another_space_is_refused_before_anything_is_stored():
    from rlnas.evaluators import create_evaluator

    with pytest.raises(ConfigError, match="NB201Evaluator measures space 'nb201', not 'nbgraph'"):
        create_study(space="nbgraph", agent="random", evaluator=create_evaluator("nb201"))


@pytest.mark.parametrize("agent", ["random", "local"])
def test_reuse_repeats_on_an_exhausted_space_stops_at_once_saying_so(agent) -> None:
    from rlnas.spaces.base import Categorical, Space

    class Count:
        def evaluate(self, candidate, *, budget=None, seed=None):
            return Measurement({"valid_acc": float(candidate["a"])})

    space = Space("three", [Categorical("a", (0, 1, 2))])
    study = create_study(space=space, agent=agent, evaluator=Count(), reuse_repeats=True)
    with pytest.warns(UserWarning, match="all 3 networks of space 'three' are evaluated.*ends with 3 trials"):
        study.optimize(n_trials=4)  # it stored 10,003 repeat rows in 72 s (local) before calling it converged
    assert len([t for t in study.trials if t.repeat_of is None]) == 3 and len(study.trials) <= 4
    # all it could do is done: finished (it was an error that left the study 'interrupted' for every resume)
    assert study_status(study.store, study.record)["status"] == "finished"
    assert study.record.settings["planned_trials"] == 3


def test_exhaustion_counts_networks_that_failed() -> None:
    """A network that always fails (NAS-Bench-Graph's all-skip cells) is evaluated too: once every network
    was, the search ends (it went on evaluating the failing one again until n_trials)."""
    from rlnas.spaces.base import Categorical, Space

    class FailsAtZero:
        def evaluate(self, candidate, *, budget=None, seed=None):
            if candidate["a"] == 0:
                raise ValueError("no such network")
            return Measurement({"valid_acc": float(candidate["a"])})

    study = create_study(space=Space("four", [Categorical("a", (0, 1, 2, 3))]), agent="random",
                         evaluator=FailsAtZero(), reuse_repeats=True, seed=0)
    with pytest.warns(UserWarning, match=r"all 4 networks of space 'four' are evaluated \(1 of them failed\)"):
        study.optimize(n_trials=50)
    evaluated = [t for t in study.trials if t.repeat_of is None]
    assert {t.candidate["a"] for t in evaluated} == {0, 1, 2, 3} and len(study.trials) < 50
    assert study_status(study.store, study.record)["status"] == "finished"


def test_exhaustion_counts_networks_where_candidates_share_one() -> None:
    from rlnas.spaces.base import Categorical, Space

    class Pairs(Space):  # 6 candidates, 4 networks: b does not matter when a is 0 or 1
        def identity(self, candidate):
            return str(candidate["a"]) if candidate["a"] < 2 else self.key(candidate)

        def network_count(self):
            return 4

    class Count:
        def evaluate(self, candidate, *, budget=None, seed=None):
            return Measurement({"valid_acc": float(candidate["a"])})

    space = Pairs("pairs", [Categorical("a", (0, 1, 2)), Categorical("b", (0, 1))])
    for agent in ("random", "local"):
        study = create_study(space=space, agent=agent, evaluator=Count(), reuse_repeats=True)
        with pytest.warns(UserWarning, match="all 4 networks of space 'pairs' are evaluated"):
            study.optimize(n_trials=10)
        assert len([t for t in study.trials if t.repeat_of is None]) == 4 and len(study.trials) < 100
    assert Space("s", [Categorical("a", (0, 1, 2))]).network_count() == 3
    assert Space.network_count(space) is None  # an overridden identity without a count: unknown


def test_a_study_object_another_driver_went_past_refuses_to_drive_again(sqlite_url):
    from rlnas.evaluators.tabular import NB201Evaluator

    first = create_study(space="nb201", agent="evolution", evaluator=NB201Evaluator("cifar10"), seed=0,
                         storage=sqlite_url, name="s")
    first.optimize(5)
    other = load_study("s", sqlite_url)
    other.optimize(10)
    other.close()
    with pytest.raises(RlnasError, match="has changed since this Study object last drove it"):
        first.optimize(15)  # its agent and slots are those of 5 trials: it stored slots 5-9 again
    assert [t.slot for t in load_study("s", sqlite_url).completed_trials] == list(range(10))
    other.optimize(12)  # an object that is up to date drives on
    assert len(load_study("s", sqlite_url).completed_trials) == 12
    stale = load_study("s", sqlite_url)
    stale.ask()  # then let go with that trial untold; another driver orphans it and goes on
    stale.close()
    with load_study("s", sqlite_url) as third:
        third.optimize(14)
    with pytest.raises(RlnasError, match="has changed since this Study object last drove it"):
        stale.optimize(20)  # it said to tell the untold trial first, which it then refused to take


def test_api_misuse_is_a_one_line_rlnas_error_before_anything_runs(tmp_path):
    from pathlib import Path

    from rlnas.errors import StorageError
    from rlnas.study import RunOptions

    with pytest.raises(StorageError, match=r"got PosixPath .* \(a file: 'sqlite:///p.db'\)"):
        create_study(space="nb201", storage=Path("p.db"))  # was a TypeError from inside re
    with pytest.raises(StorageError, match="storage must be a database URL, a Store or None, got int 5"):
        load_study("x", 5)
    with pytest.raises(ConfigError, match="load_if_exists must be true or false, got 'no'"):
        create_study(space="nb201", load_if_exists="no")  # was taken as True
    study = create_study(space="nb201")
    with pytest.raises(ConfigError, match="optimize: run must be a RunOptions"):
        study.optimize(3, run="inline")
    with pytest.raises(ConfigError, match=r"optimize: callbacks must be callables \(study, trial\), got \[5\]"):
        study.optimize(3, callbacks=[5])  # failed after the first trial was evaluated and stored
    assert study.trials == [] and RunOptions().workers == 1
    trial = study.ask()
    with pytest.raises(ConfigError, match="tell: the value is a Measurement, a real number"):
        study.tell(trial, 10 ** 400)  # an OverflowError left the trial RUNNING
    with pytest.raises(ConfigError, match="tell: error is the reason of a failure as text, got int 123"):
        study.tell(trial, None, error=123)
    assert study.tell(trial, 50.0).reward == 50.0


def test_init_from_takes_a_study_and_create_agent_a_space_or_its_name():
    from rlnas.agents import create_agent

    study = create_study(space="nb201", agent="reinforce", seed=0)
    for source in ("name", None):  # AttributeError: 'str' object has no attribute 'record'
        with pytest.raises(ConfigError, match=r"init_from takes the source Study \(load_study\(name, storage\)\)"):
            study.init_from(source)
    by_name, by_space = create_agent("ppo", "nb201", seed=3), create_agent("ppo", study.space, seed=3)
    assert by_name.ask(4)[0].candidate == by_space.ask(4)[0].candidate  # AttributeError: no attribute 'sizes'
    with pytest.raises(ConfigError, match="agent 'ppo': space must be a Space or a space's name, got int 5"):
        create_agent("ppo", 5)


def test_a_reward_too_large_for_the_agents_fails_its_trial_and_the_study_goes_on():
    # it was stored COMPLETE, then refused by the controller: every later optimize() failed on replaying it
    study = create_study(space=TOY.space, agent="reinforce", seed=0)
    big = study.tell(study.ask(), 1e31)
    assert big.state is TrialState.FAIL and "reward 1e+31 is beyond what rlnas agents learn from" in big.error
    assert study.tell(study.ask(), -1e30).state is TrialState.COMPLETE  # the bound itself is a reward
    study.evaluator = TOY
    assert study.optimize(5).n_finished == 5


def test_a_study_object_reads_what_another_driver_stored_since(tmp_path):
    # best_trial, n_finished and spent_seconds came from this object's cache while trials read the store
    url = f"sqlite:///{tmp_path}/s.db"
    first = create_study(space=TOY.space, agent="evolution", evaluator=TOY, seed=0, storage=url, name="w")
    first.optimize(3)
    later = load_study("w", url, evaluator=TOY).optimize(12)
    assert (first.n_finished, first.spent_seconds) == (later.n_finished, later.spent_seconds) and first.n_finished == 12
    assert first.best_trial == later.best_trial and first.found_trial == later.found_trial


def test_a_target_below_the_finished_trials_runs_nothing_and_keeps_the_stored_one():
    # it silently rewrote the stored target (resume's) to 3, then to 0
    study = create_study(space=TOY.space, agent="random", evaluator=TOY, seed=0)
    study.optimize(10)
    with pytest.warns(UserWarning, match="holds 10 finished trials, more than n_trials 3 .the total, not a number"):
        study.optimize(3)
    assert study.n_finished == 10 and study.settings["n_trials"] == 10
    study.optimize(10)  # the target reached exactly: stored, no warning
    assert study.settings["n_trials"] == 10 and study.optimize(12).n_finished == 12
    spent = study.spent_seconds  # a budget already spent: the same (it replaced the stored target silently)
    with pytest.warns(UserWarning, match=f"has spent {spent:.6g} s, more than budget_seconds 1 .the total"):
        study.optimize(budget_seconds=1.0)
    assert study.n_finished == 12 and (study.settings["n_trials"], study.settings["budget_seconds"]) == (12, None)


def test_optimize_says_when_no_trial_completed():
    class Failing:
        def evaluate(self, candidate, *, budget=None, seed=None):
            return Measurement({"valid_acc": math.nan})

    study = create_study(space=TOY.space, agent="random", evaluator=Failing(), seed=0)
    with pytest.warns(UserWarning, match=r"no trial has completed \(3 stored, best_trial is None\); the last failure: "
                                         "reward nan is not a finite number"):
        study.optimize(3)
    assert study.best_trial is None


def test_a_tell_the_driver_before_logged_is_not_logged_again_after_a_resume(sqlite_url):
    # the first driver kept three batches untold and told slot 0 when the fourth was asked; a resumed
    # driver with fewer untold batches told slot 0 again, outside the replay, and stored its diagnostics twice
    first = create_study(space=TOY.space, agent="evolution", evaluator=TOY, seed=0, name="s", storage=sqlite_url)
    first.claim()
    first.set_window(4)
    asked = [first.ask() for _ in range(4)]
    for trial in asked[:3]:
        first.tell(trial, Measurement({"valid_acc": TOY.evaluate(trial.candidate).metrics["valid_acc"]}))
    assert [slot for slot, _ in first.diagnostics()] == [1]
    first.close()  # slot 3 is still running: the next driver evaluates it again
    resumed = load_study("s", sqlite_url, evaluator=TOY).optimize(8)
    slots = [slot for slot, _ in resumed.diagnostics()]
    assert slots == sorted(set(slots)) and slots[0] == 1 and resumed.n_finished == 8


def test_save_settings_stores_notes_and_refuses_the_studys_own_settings():
    # save_settings(n_trials="lots") was stored, and rlnas ls then failed comparing it with a number
    study = create_study(space=TOY.space, agent="random", evaluator=TOY, seed=0)
    with pytest.raises(ConfigError, match="save_settings: budget_seconds, n_trials are the study's own setting"):
        study.save_settings(n_trials="lots", budget_seconds=-3)
    with pytest.raises(ConfigError, match="save_settings: the notes must be JSON values"):
        study.save_settings(origin=object())
    study.save_settings(origin={"paper": "x"})
    study.optimize(3)
    assert study.settings["origin"] == {"paper": "x"} and study.settings["n_trials"] == 3


def test_continuing_a_study_with_another_checkpoint_period_is_refused(tmp_path):
    # search --name s --checkpoint-every 1 on a study made with 5 went on with 5, saying nothing
    url = f"sqlite:///{tmp_path}/s.db"
    create_study(space=TOY.space, evaluator=TOY, name="s", storage=url, checkpoint_every=5).optimize(3)
    with pytest.raises(DuplicateStudy, match="exists with checkpoint every 5, not 1"):
        create_study(space=TOY.space, evaluator=TOY, name="s", storage=url, checkpoint_every=1, load_if_exists=True)
    for period in (None, 5):  # not given: the stored one
        again = create_study(space=TOY.space, evaluator=TOY, name="s", storage=url, checkpoint_every=period,
                             load_if_exists=True)
        assert again.settings["checkpoint_every"] == 5
        again.close()
    assert create_study(space=TOY.space, name="t", storage=url).settings["checkpoint_every"] == 50


def test_notebook_manners_repr_pickling_callbacks_and_spec(sqlite_url):
    """What a probe of the Python API found: reprs were '<... object at 0x...>' or a screen long, a file-backed
    Study failed to pickle with SQLAlchemy's AttributeError, a single callback was a TypeError, and
    spec.agent_config was the live dict."""
    import pickle

    from rlnas.evaluators.tabular import NB201Evaluator

    study = create_study(space="nb201", agent="reinforce", evaluator=NB201Evaluator("cifar10"), seed=1,
                         storage=sqlite_url, name="nb")
    seen = []
    study.optimize(3, callbacks=lambda s, t: seen.append(t.number))  # one callable, as such
    assert seen == [0, 1, 2]
    assert repr(study) == f"Study(name='nb', space='nb201', agent='reinforce', seed=1, storage='{sqlite_url}')"
    assert repr(study.agent) == "ReinforceAgent(space='nb201', seed=1)"
    assert repr(study.trials[0]).startswith("Trial(number=0, slot=0, state=COMPLETE, key='|") and len(
        repr(study.trials[0])) < 160
    with pytest.raises(TypeError, match="a Study on a database does not pickle .* call load_study"):
        pickle.dumps(study)
    with pytest.raises(ConfigError, match="callbacks must be a list of callables"):
        study.optimize(4, callbacks=5)
    study.spec.agent_config["lr"] = 5.0
    assert study.spec.agent_config["lr"] != 5.0  # a copy
    in_memory = create_study(space="nb201", agent="random", evaluator=NB201Evaluator("cifar10"), seed=0)
    in_memory.optimize(2)
    assert pickle.loads(pickle.dumps(in_memory)).n_finished == 2
