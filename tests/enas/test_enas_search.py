"""ENAS searches end to end: the CLI with both algorithms, diagnostics, SIGKILL and resume, and
the answers after the search (mode, best sampled) retrained from scratch."""
from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import time

import pytest

from rlnas.errors import ConfigError
from rlnas.evaluators.train import TrainEvaluator
from rlnas.export import load_architecture_json
from rlnas.retrain import retrain, retrain_options, search_answers
from rlnas.study import create_study, load_study

TINY_NET = '{"channels": 4, "layers": 1}'
SEARCH = ["--space", "enas_micro", "--agent", "enas", "--evaluator", "shared", "--dataset", "digits",
          "--eval-option", "batch_size=128", "--eval-option", "valid_batch_size=64",
          "--eval-option", f"model_kwargs={TINY_NET}", "--set", "controller_steps=2", "--set", "batch_size=3",
          "--set", "lstm_hidden=16", "--no-progress", "--threads", "1"]


def run(rlnas_bin: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run([rlnas_bin, *args], capture_output=True, text=True, timeout=600)
    if check and result.returncode != 0:
        raise AssertionError(f"rlnas {' '.join(args)} exited {result.returncode}: {result.stderr}")
    return result


def trials(name: str, url: str) -> list[tuple]:
    return [(t.slot, t.key, t.reward, t.metrics["shared_acc"]) for t in load_study(name, url).completed_trials]


def test_cli_search_records_the_mode_every_epoch_and_logs_each_controller_update(rlnas_bin, sqlite_url):
    out = run(rlnas_bin, "search", *SEARCH, "--algo", "reinforce", "--epochs", "2", "--name", "s",
              "--storage", sqlite_url)
    assert "Answer of weight-sharing study 's'" in out.stdout and "shared_acc" in out.stdout
    recorded = trials("s", sqlite_url)
    assert [slot for slot, *_ in recorded] == [0, 1]  # 1,079 images / 128 = 8 steps an epoch, 2 epochs
    assert all(reward == acc for _, _, reward, acc in recorded)  # the default reward is shared_acc
    study = load_study("s", sqlite_url)
    assert study.record.agent_config["algo"] == "reinforce" and study.spec.reward == "shared_acc"
    assert [step for step, _ in study.diagnostics()] == [8, 8, 16, 16]  # 2 updates after each epoch


def tiny_study(url: str | None, algo: str, name: str = "s", epochs: int = 2):
    from rlnas.evaluators.shared import SharedEvaluator

    evaluator = SharedEvaluator("enas_micro", dataset="digits", epochs=epochs, batch_size=128, valid_batch_size=64,
                                model_kwargs={"channels": 4, "layers": 1}, threads=1)
    return create_study(space="enas_micro", agent="enas", evaluator=evaluator, name=name, storage=url,
                        agent_config={"algo": algo, "controller_steps": 2, "batch_size": 3, "lstm_hidden": 16})


@pytest.mark.parametrize("record_every, epochs_per_round, updates_at", [
    (None, 2, [16, 16]),  # one round of 2 epochs (8 steps each), recorded after each epoch: updates at its end
    (4, 1, [8, 8, 16, 16]),  # a record every 4 steps changes only when trials are stored
])
def test_records_inside_a_round_leave_its_controller_updates_at_its_end(record_every, epochs_per_round, updates_at):
    from rlnas.evaluators.shared import SharedEvaluator

    evaluator = SharedEvaluator("enas_micro", dataset="digits", epochs=2, batch_size=128, valid_batch_size=64,
                                model_kwargs={"channels": 4, "layers": 1}, threads=1, record_every=record_every)
    study = create_study(space="enas_micro", agent="enas", evaluator=evaluator, storage=None,
                         agent_config={"controller_steps": 2, "batch_size": 3, "lstm_hidden": 16,
                                       "epochs_per_round": epochs_per_round})
    study.optimize(100)  # the whole search: it ends with its epochs
    assert len(study.trials) == 16 // (record_every or 8)
    assert [step for step, _ in study.diagnostics()] == updates_at  # were after every record


@pytest.mark.parametrize("algo", ["ppo", "reinforce"])
def test_every_controller_update_stores_its_diagnostics(algo):
    study = tiny_study(None, algo)
    study.optimize(100)  # stops when the epochs are done
    assert len(study.completed_trials) == 2
    diagnostics = study.diagnostics()
    assert [step for step, _ in diagnostics] == [8, 8, 16, 16]
    for _, values in diagnostics:
        assert {"entropy", "approx_kl", "clip_fraction", "baseline", "reward_mean", "policy_loss"} <= set(values)
        assert values["entropy"] > 0 and values["approx_kl"] >= 0 and 0 <= values["clip_fraction"] <= 1


def test_a_crash_mid_epoch_resumes_to_the_same_search(sqlite_url, monkeypatch):
    from rlnas.evaluators.shared import SharedEvaluator

    reference = tiny_study(None, "reinforce", "ref", epochs=3)
    reference.optimize(100)
    crashed = tiny_study(sqlite_url, "reinforce", "k", epochs=3)
    real_step = SharedEvaluator.train_step

    def dying_step(self, candidate, **kw):
        if self.step == 13:  # in the second epoch, after the first trial was recorded
            raise KeyboardInterrupt
        return real_step(self, candidate, **kw)

    monkeypatch.setattr(SharedEvaluator, "train_step", dying_step)
    with pytest.raises(KeyboardInterrupt):
        crashed.optimize(100)
    monkeypatch.setattr(SharedEvaluator, "train_step", real_step)
    assert len(crashed.completed_trials) == 1
    resumed = load_study("k", sqlite_url)
    resumed.optimize(100)
    assert trials("k", sqlite_url) == [(t.slot, t.key, t.reward, t.metrics["shared_acc"])
                                       for t in reference.completed_trials]
    assert [v for _, v in resumed.diagnostics()] == [v for _, v in reference.diagnostics()]


def _count_trials(path) -> int:
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5) as conn:
            return conn.execute("SELECT count(*) FROM rlnas_trials").fetchone()[0]
    except sqlite3.Error:
        return 0


def test_sigkill_and_resume_end_like_an_uninterrupted_search(rlnas_bin, tmp_path):
    common = [*SEARCH, "--algo", "ppo", "--epochs", "3", "--seed", "2", "--name", "k"]
    reference = f"sqlite:///{tmp_path}/ref.db"
    run(rlnas_bin, "search", *common, "--storage", reference)
    path = tmp_path / "killed.db"
    url = f"sqlite:///{path}"
    process = subprocess.Popen([rlnas_bin, "search", *common, "--storage", url],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while _count_trials(path) < 1 and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert _count_trials(path) < 3  # killed mid-search
    run(rlnas_bin, "resume", "k", "--storage", url, "--no-progress", "--threads", "1")
    assert trials("k", url) == trials("k", reference)
    assert len(trials("k", url)) == 3


@pytest.fixture(scope="module")
def searched(tmp_path_factory):
    """A finished two-epoch ENAS search on the digits (library calls, no subprocess)."""
    url = f"sqlite:///{tmp_path_factory.mktemp('enas')}/s.db"
    tiny_study(url, "ppo").optimize(100)
    return url


def test_the_study_found_the_last_epochs_answer_not_its_best_rewarded_record(searched):
    study = load_study("s", searched)
    last = study.completed_trials[-1]
    assert study.found_trial is not None and study.found_trial.slot == last.slot
    assert study.best_trial is not None and study.best_trial.slot == max(
        study.completed_trials, key=lambda t: (t.reward, -t.slot)).slot


def test_answers_are_the_mode_and_the_sampled_children_ranked_by_shared_accuracy(searched):
    study = load_study("s", searched)
    answers = search_answers(study, samples=6)
    mode, sampled = answers[0], answers[1:]
    assert mode.source == "mode" and {a.source for a in sampled} == {"sampled"}
    assert mode.key == study.completed_trials[-1].key  # the last recorded trial is the final mode
    assert mode.metrics["shared_acc"] == study.completed_trials[-1].metrics["shared_acc"]
    accuracies = [a.metrics["shared_acc"] for a in sampled]
    assert 2 <= len(sampled) <= 6 and accuracies == sorted(accuracies, reverse=True)
    assert len({a.key for a in sampled}) == len(sampled)
    again = search_answers(load_study("s", searched), samples=6)
    assert [(a.key, a.metrics) for a in again] == [(a.key, a.metrics) for a in answers]  # from the checkpoint


def test_retraining_an_answer_is_the_train_evaluator_on_the_study_data(searched):
    study = load_study("s", searched)
    options = retrain_options(study, epochs=0.2)
    assert options == {"dataset": "digits", "split_seed": 0, "dataset_options": {}, "epochs": 0.2,
                       "model_kwargs": {"channels": 4, "layers": 1}}
    mode = search_answers(study)[0]
    measured = retrain(study.space, mode.candidate, options, seed=3, threads=1)
    direct = TrainEvaluator(study.space, **options, threads=1).evaluate(mode.candidate, seed=3)
    assert measured.metrics["valid_acc"] == direct.metrics["valid_acc"]
    assert measured.metrics["test_acc"] == direct.metrics["test_acc"]


def test_cli_retrain_writes_the_architectures_and_results(rlnas_bin, searched, tmp_path):
    target = tmp_path / "answers.json"
    out = run(rlnas_bin, "retrain", "s", "--samples", "4", "--top", "1", "--epochs", "0.2", "--threads", "1",
              "--output", str(target), "--storage", searched).stdout
    assert "mode" in out and "sampled" in out
    data = json.loads(target.read_text())
    assert [r["answer"] for r in data["results"]] == ["mode", "sampled"]
    study = load_study("s", searched)
    for result in data["results"]:
        candidate = load_architecture_json(result["architecture"], study.space)
        assert study.space.key(candidate) == result["architecture"]["key"]
        assert 0 <= result["retrained"]["test_acc"] <= 100 and "shared_acc" in result["search_metrics"]
    bad = run(rlnas_bin, "retrain", "s", "--top", "0", "--storage", searched, check=False)
    assert bad.returncode == 2 and "--top must be a positive number" in bad.stderr
    again = run(rlnas_bin, "retrain", "s", "--output", str(target), "--storage", searched, check=False)
    assert again.returncode == 2 and "refusing to overwrite" in again.stderr  # refused before any training


def test_retrain_of_a_study_without_weight_sharing_uses_its_best_trial(tmp_path):
    url = f"sqlite:///{tmp_path}/t.db"
    evaluator = TrainEvaluator("enas_macro", dataset="digits", epochs=0.1, threads=1)
    study = create_study(space="enas_macro", agent="random", evaluator=evaluator, name="r", storage=url)
    study.optimize(2)
    answers = search_answers(load_study("r", url))
    assert [a.source for a in answers] == ["best trial"] and answers[0].key == study.best_trial.key
    assert search_answers(load_study("r", url), trial=1)[0].key == study.trials[1].key
    with pytest.raises(ConfigError, match="sampled answers need a weight-sharing study"):
        search_answers(load_study("r", url), samples=3)
    assert retrain_options(load_study("r", url), 1)["dataset"] == "digits"


def test_a_new_search_can_start_from_another_searchs_controller(sqlite_url):
    import torch

    source = tiny_study(sqlite_url, "ppo", "src", epochs=1)
    source.optimize(100)
    warm = tiny_study(sqlite_url, "ppo", "warm", epochs=1)
    warm.init_from(load_study("src", sqlite_url))
    transferred = warm.agent.controller.state_dict()
    for name, value in source.agent.controller.state_dict().items():
        assert torch.equal(transferred[name], value), name
    warm.close()
    resumed = load_study("warm", sqlite_url)  # the transferred controller is the first checkpoint
    resumed.optimize(100)
    assert resumed.completed_trials and resumed.settings["init_from"] == "src"
