"""Search with training works end to end with every agent and every space.

Every (space, agent) pair runs a real search through the Python API with the train evaluator
on the shipped 8x8 digits (two SGD steps per candidate, so it stays fast), stored in SQLite,
then is reloaded and continued. The console script runs a search, exports the best network
as ONNX and JSON, and the ONNX file is checked against PyTorch. Diverging trainings fail
their trial with the reason and the search goes on.
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

from rlnas.agents import agent_class, list_agents
from rlnas.agents.base import WeightSharingAgent
from rlnas.evaluators.train import TrainEvaluator
from rlnas.export import export_onnx, load_architecture_json, trained_network
from rlnas.models import list_models
from rlnas.spaces import create_space
from rlnas.study import create_study, load_study
from rlnas.trial import TrialState

torch.set_num_threads(1)

FAST_SPACES = ("nb201", "darts")  # cell networks: a few tenths of a second per candidate
TRIALS = 3

# Small settings so that every agent gets past its start-up phase (and tells) within 3 trials;
# only the fields an agent's Config has are used, so a newly registered agent runs with {}.
SMALL_CONFIG = {
    "batch_size": 2,        # reinforce, ppo: update after 2 results, not 10
    "population_size": 2,   # evolution: the 3rd proposal is a mutation
    "sample_size": 2,
    "initial_random": 1,    # l2nas: actor proposals from the 2nd trial, gradient steps from the 1st result
    "warmup": 1,
    "batch": 4,
    "top_k": 2,
}
LEARNING_AGENTS = {"reinforce", "ppo", "l2nas"}  # their tell reports the update it made


def small_config(agent: str) -> dict:
    fields = {f.name for f in dataclasses.fields(agent_class(agent).Config)}
    return {k: v for k, v in SMALL_CONFIG.items() if k in fields}


def tiny_evaluator(space: str, **options) -> TrainEvaluator:
    """Two SGD steps of 8 images; valid and test splits of 10 % of digits (180 images each)."""
    return TrainEvaluator(space, "digits", steps=2, batch_size=8, valid_fraction=0.1,
                          dataset_options={"test_fraction": 0.1}, **options)


def assert_trained(trial) -> None:
    assert trial.state is TrialState.COMPLETE, trial.error
    for metric in ("valid_acc", "test_acc"):
        value = trial.metrics[metric]
        assert math.isfinite(value) and 0.0 <= value <= 100.0, (metric, value)
    assert trial.reward == trial.metrics["valid_acc"]
    assert trial.metrics["params_m"] > 0 and trial.metrics["flops_m"] > 0
    assert trial.eval_info["steps"] == 2


def _matrix():
    for space in list_models():  # spaces with a network to train
        marks = () if space in FAST_SPACES else (pytest.mark.slow,)
        for agent in list_agents():
            if issubclass(agent_class(agent), WeightSharingAgent):  # they train a supernet, not each trial
                continue
            yield pytest.param(space, agent, marks=marks, id=f"{space}-{agent}")


@pytest.mark.parametrize("space, agent", list(_matrix()))
def test_search_trains_stores_reloads_and_continues(space, agent, sqlite_url):
    evaluator = tiny_evaluator(space)
    study = create_study(space=space, agent=agent, agent_config=small_config(agent), evaluator=evaluator,
                         seed=3, name="s", storage=sqlite_url)
    study.optimize(TRIALS)
    done = study.completed_trials
    assert len(done) == len(study.trials) == TRIALS
    for trial in done:
        assert_trained(trial)
        study.space.validate(study.space.candidate(trial.candidate))
    if agent in LEARNING_AGENTS:
        assert study.diagnostics(), f"{agent} made no update in {TRIALS} trials"
    first_keys = [t.key for t in done]

    # a new process would do this: the evaluator is rebuilt from the stored spec
    again = load_study("s", sqlite_url)
    assert isinstance(again.evaluator, TrainEvaluator) and again.evaluator.spec() == evaluator.spec()
    assert again.n_finished == TRIALS
    again.optimize(TRIALS + 1)
    done = again.completed_trials
    assert [t.slot for t in done] == list(range(TRIALS + 1))
    assert_trained(done[-1])
    assert [t.key for t in done[:TRIALS]] == first_keys


# ------------------------------------------------------------------ divergence
class _DivergesOnOddCalls:
    """Trains normally, except every other evaluation uses an absurd learning rate and diverges."""

    def __init__(self, space: str):
        self.good = tiny_evaluator(space)
        self.bad = TrainEvaluator(space, "digits", steps=5, batch_size=8, lr=1e30)
        self.calls = 0

    def evaluate(self, candidate, *, budget=None, seed=None):
        self.calls += 1
        evaluator = self.bad if self.calls % 2 == 1 else self.good
        return evaluator.evaluate(candidate, budget=budget, seed=seed)


def test_a_diverging_training_fails_its_trial_and_the_search_goes_on():
    study = create_study(space="nb201", agent="l2nas", agent_config=small_config("l2nas"),
                         evaluator=_DivergesOnOddCalls("nb201"), seed=0)
    study.optimize(5)
    trials = sorted(study.trials, key=lambda t: t.slot)
    assert [t.state for t in trials] == [TrialState.FAIL, TrialState.COMPLETE] * 2 + [TrialState.FAIL]
    for trial in trials[0::2]:
        assert trial.reward is None and trial.metrics == {}
        assert trial.error.startswith("TrainingDiverged: training diverged: loss is nan at step "), trial.error
        assert "try a smaller lr" in trial.error
    for trial in trials[1::2]:
        assert_trained(trial)
    assert study.best_trial.number in {t.number for t in trials[1::2]}
    assert study.agent.failed == 3  # the failures were told to the agent as failures


# ------------------------------------------------------------------------ CLI
def run(rlnas_bin: str, *args: str) -> subprocess.CompletedProcess:
    # one OpenMP thread, as in the test process: on two shared cores torch's default of two
    # threads can make training a hundred times slower
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run([rlnas_bin, *args], capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, f"rlnas {' '.join(args)} exited {result.returncode}: {result.stderr}"
    return result


def test_cli_search_with_training_then_export_onnx_and_json(rlnas_bin, sqlite_url, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    onnx = pytest.importorskip("onnx")
    from onnx import numpy_helper
    out = run(rlnas_bin, "search", "--space", "darts", "--evaluator", "train", "--dataset", "digits",
              "--agent", "l2nas", "--trials", "2", "--epochs", "0.2", "--storage", sqlite_url, "--name", "t",
              "--no-progress").stdout
    study = load_study("t", sqlite_url)
    done = study.completed_trials
    assert len(done) == 2
    for trial in done:
        assert trial.state is TrialState.COMPLETE and trial.eval_info["steps"] == 4  # ceil(0.2 * (1079 // 64))
        assert 0.0 <= trial.metrics["test_acc"] <= 100.0 and trial.metrics["params_m"] > 0
    best = study.best_trial
    assert "Best architecture of study 't'" in out and "valid_acc" in out and "test_acc" in out
    assert f"{best.metrics['test_acc']:.3f}" in out
    table_text = "".join(out.replace("│", " ").split())  # the table folds the long key over lines
    assert best.key.replace(" ", "") in table_text

    onnx_path, arch_path = tmp_path / "model.onnx", tmp_path / "arch.json"
    run(rlnas_bin, "export", "t", "--onnx", str(onnx_path), "--arch", str(arch_path), "--storage", sqlite_url)
    assert onnx_path.stat().st_size > 0
    data = json.loads(arch_path.read_text())
    assert data["study"] == "t" and data["trial"] == best.number and data["key"] == best.key
    space = create_space("darts")
    candidate = load_architecture_json(data)
    assert space.key(candidate) == best.key

    # the search kept each trial's trained weights: the export carries the best trial's
    model, shape = trained_network(study.record, best)
    assert list(shape) == [1, 8, 8]  # the digits the search trained on
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
    assert session.get_inputs()[0].name == "input" and list(session.get_inputs()[0].shape[1:]) == list(shape)
    x = torch.randn(2, *shape, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = model(x).numpy()
    got = session.run(None, {"input": x.numpy()})[0]
    assert got.shape == expected.shape == (2, 10)
    np.testing.assert_allclose(got, expected, atol=1e-4)
    # The whole network, not only the logits: the rebuilt model exported again gives the same
    # graph with the same weights.
    reference = onnx.load(export_onnx(model, tmp_path / "reference.onnx", shape))
    exported = onnx.load(onnx_path)
    assert [n.op_type for n in exported.graph.node] == [n.op_type for n in reference.graph.node]
    weights = [numpy_helper.to_array(t) for t in exported.graph.initializer]
    assert len(weights) == len(reference.graph.initializer) > 100
    for mine, theirs in zip(weights, reference.graph.initializer):
        np.testing.assert_array_equal(mine, numpy_helper.to_array(theirs))


def test_cli_search_where_every_training_diverges_reports_the_reason(rlnas_bin, sqlite_url):
    failed = subprocess.run([rlnas_bin, "search", "--space", "nb201", "--evaluator", "train", "--agent", "random",
                             "--trials", "2", "--eval-option", "lr=1e30", "--eval-option", "steps=5", "--eval-option",
                             "batch_size=8", "--storage", sqlite_url, "--name", "nan", "--no-progress"],
                            capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert failed.returncode == 1 and "no trial completed" in failed.stdout
    assert failed.stderr.count("\n") == 1 and "most common failure (2x): TrainingDiverged" in failed.stderr
    trials = load_study("nan", sqlite_url).trials
    assert [t.state for t in trials] == [TrialState.FAIL] * 2
    assert all("TrainingDiverged: training diverged: loss is nan" in t.error for t in trials)
    shown = run(rlnas_bin, "show", "nan", "--storage", sqlite_url).stdout
    assert "FAIL" in shown and "training diverged" in shown


# ------------------------------------------------------------------ benchmark
def test_the_train_search_benchmark_runs_and_writes_its_report(tmp_path):
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "train_search.py"
    spec = importlib.util.spec_from_file_location("train_search_benchmark", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    bench.main(["--trials", "3", "--epochs", "0.15", "--random", "4", "--seeds", "5", "--out", str(tmp_path)])
    report = (tmp_path / "nb201.md").read_text()
    raw = json.loads((tmp_path / "nb201.json").read_text())
    assert report.startswith("### L²NAS with the train evaluator on digits: `nb201`")
    assert len(raw["searches"]) == 1 and raw["searches"][0]["trials"] == 3 and len(raw["random"]["archs"]) == 4
    search = raw["searches"][0]
    assert f"| 5 | {search['wall_s']:.0f} s | 3 (" in report and f"{search['best_test']:.2f}" in report
    assert f"`{search['best_key']}`".replace("|", "\\|") in report  # pipes escaped inside the table
    tests = sorted(a["test_acc"] for a in raw["random"]["archs"])
    assert f"median **{(tests[1] + tests[2]) / 2:.2f}**" in report
    assert bench.quartiles([1.0, 2.0, 3.0, 4.0, 5.0]) == (2.0, 3.0, 4.0)
    assert bench.beaten_share(3.0, [1.0, 3.0, 5.0, 2.0]) == 0.625
