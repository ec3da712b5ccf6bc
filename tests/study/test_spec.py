"""What a study is (StudySpec, compared on reopen) and how it runs (RunOptions, free to change)."""
import subprocess
import sys

import pytest

from rlnas import create_study, load_study
from rlnas.errors import ConfigError, DuplicateStudy
from rlnas.testing.toy import ToyEvaluator
from rlnas.trial import TrialState

TOY = ToyEvaluator()


def test_reopening_names_only_what_differs(sqlite_url):
    create_study(space=TOY.space, agent="evolution", evaluator=TOY, name="s", storage=sqlite_url, seed=1)
    same = create_study(space=TOY.space, agent="evolution", evaluator=TOY, name="s", storage=sqlite_url, seed=1,
                        load_if_exists=True)
    assert same.spec.agent_config["population_size"] > 0
    cases = [({"agent_config": {"population_size": 7}}, r"agent config population_size=\d+ not 7"),
             ({"seed": 2}, "seed 1, not 2"), ({"reward": "test_acc"}, "reward 'valid_acc', not 'test_acc'"),
             ({"evaluator": ToyEvaluator(choices=5, target=[0, 1, 2, 3])}, "evaluator target="),
             ({"reuse_repeats": True}, "reuse repeats False, not True")]
    for change, message in cases:
        options = {"agent": "evolution", "evaluator": TOY, "seed": 1} | change
        with pytest.raises(DuplicateStudy, match=message) as caught:
            create_study(space=TOY.space, name="s", storage=sqlite_url, load_if_exists=True, **options)
        assert "\n" not in str(caught.value) and len(str(caught.value)) < 200
    assert len(load_study("s", sqlite_url).trials) == 0


def test_inputs_are_checked_before_anything_is_stored(sqlite_url):
    for options, message in [({"seed": -3}, "seed must be between"), ({"seed": 2**70}, "seed must be between"),
                             ({"seed": "abc"}, "seed must be an integer"), ({"space": 123}, "space must be"),
                             ({"checkpoint_every": "5"}, "checkpoint_every"), ({"name": "x" * 256}, "255"),
                             ({"name": "a\x1b[31mb"}, "printable"), ({"reward": {"name": "abs"}}, "missing option"),
                             ({"agent_config": {"nope": 1}}, "unknown option")]:
        with pytest.raises(ConfigError, match=message):
            create_study(**({"space": TOY.space, "evaluator": TOY, "storage": sqlite_url} | options))
    from rlnas.store import open_store

    assert open_store(sqlite_url).list_studies() == []


def test_threads_and_device_are_run_options_not_identity(sqlite_url):
    from rlnas.evaluators.train import TrainEvaluator

    one = TrainEvaluator("nb201", threads=1)
    two = TrainEvaluator("nb201", threads=2, device="cpu")
    assert one.spec() == two.spec() and "threads" not in one.spec()
    create_study(space="nb201", evaluator=one, name="t", storage=sqlite_url)
    again = create_study(space="nb201", evaluator=two, name="t", storage=sqlite_url, load_if_exists=True)
    assert again.evaluator.threads == 2


def test_reuse_repeats_answers_known_candidates_from_the_store():
    small = ToyEvaluator(decisions=2, choices=2)
    study = create_study(space=small.space, agent="random", evaluator=small, reuse_repeats=True, seed=0)
    study.optimize(4)  # only 4 candidates exist: the 4 trials must be the 4 of them
    evaluated = [t for t in study.trials if t.repeat_of is None]
    repeats = [t for t in study.trials if t.repeat_of is not None]
    assert sorted(t.key for t in evaluated) == sorted({t.key for t in study.trials}) and len(evaluated) == 4
    assert repeats and study.n_finished == 4 and study.spent_seconds == 4.0
    by_number = {t.number: t for t in study.trials}
    for r in repeats:
        assert r.state is TrialState.COMPLETE and r.cost_seconds == 0
        assert by_number[r.repeat_of].key == r.key and by_number[r.repeat_of].reward == r.reward
    plain = create_study(space=small.space, agent="random", evaluator=small, seed=0).optimize(4)
    assert len({t.key for t in plain.trials}) < 4  # without it, repeats cost trials


@pytest.mark.parametrize("agent", ["random", "evolution", "local", "l2nas"])
def test_tabular_searches_do_not_import_torch(agent, tmp_path):
    url = f"sqlite:///{tmp_path}/r.db"
    code = ("import sys; from rlnas.cli import main; "
            f"main(['search', '--agent', '{agent}', '--trials', '60', '--storage', '{url}', "
            "'--no-progress', '--checkpoint-every', '20']); "
            f"main(['resume', 'nb201-{agent}-cifar10-0', '--trials', '80', '--no-progress', '--storage', '{url}']); "
            "print('torch imported:', 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "torch imported: False" in out
