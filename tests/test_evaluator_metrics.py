"""Evaluators declare the metrics they report, and a study refuses a reward reading another one
before anything runs or is stored; an evaluator's ``prepare`` runs before the database is opened."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from rlnas.errors import ConfigError
from rlnas.evaluators import create_evaluator
from rlnas.evaluators.base import check_reward_metrics
from rlnas.spaces import create_space
from rlnas.study import create_study

TINY = {
    "nb201": {"dataset": "cifar10"},
    "nbgraph": {"dataset": "cora"},
    "train": {"space": "nb201", "dataset": "digits", "epochs": 0.05, "threads": 1,
              "model_kwargs": {"channels": 4, "cells_per_stage": 1}},
    "optimizer": {"dataset": "digits", "network": "mlp", "steps": 3, "lr_grid": [0.1], "threads": 1},
    "shared": {"space": "enas_micro", "dataset": "digits", "epochs": 0.05, "threads": 1,
               "model_kwargs": {"channels": 4, "layers": 1}},
    "supernet": {"space": "proxyless", "dataset": "digits", "epochs": 0.05, "threads": 1,
                 "model_kwargs": {"width_mult": 0.35, "stem_stride": 1, "input_size": 8}},
}
SPACES = {"nb201": "nb201", "nbgraph": "nbgraph", "train": "nb201", "optimizer": "optimizer_rules",
          "shared": "enas_micro", "supernet": "proxyless"}


@pytest.mark.parametrize("name", sorted(TINY))
def test_every_built_in_evaluator_reports_exactly_the_metrics_it_declares(name):
    torch.manual_seed(0)
    evaluator = create_evaluator(name, **TINY[name])
    candidate = create_space(SPACES[name]).sample(np.random.default_rng(0))
    measurement = evaluator.evaluate(candidate)
    assert set(measurement.metrics) == set(evaluator.metrics)
    assert len(evaluator.metrics) == len(set(evaluator.metrics))


def test_a_reward_reading_an_unreported_metric_is_refused_before_anything_is_stored(tmp_path):
    database = tmp_path / "runs.db"
    evaluator = create_evaluator("nb201", dataset="cifar10")
    for reward, missing in (("valid_accuracy", "'valid_accuracy'"),
                            ({"name": "abs", "target": 10.0, "beta": -0.1, "cost": "flops_m"}, "'flops_m'")):
        with pytest.raises(ConfigError, match=f"^the reward reads metric\\(s\\) {missing}, which evaluator 'nb201' "
                                              "does not report \\(it reports: valid_acc, test_acc, params_m, "):
            create_study(space="nb201", agent="random", evaluator=evaluator, reward=reward,
                         storage=f"sqlite:///{database}")
    assert not database.exists()
    check_reward_metrics(["anything"], object())  # an evaluator that declares nothing is not checked


def test_a_failing_prepare_leaves_no_database_file(tmp_path):
    database = tmp_path / "runs.db"
    evaluator = create_evaluator("supernet", **TINY["supernet"], latency_table=str(tmp_path / "missing.json"))
    with pytest.raises(ConfigError, match="latency table .*missing.json' does not exist"):
        create_study(space="proxyless", agent="tunas", evaluator=evaluator, storage=f"sqlite:///{database}")
    assert not database.exists()
    shared = create_evaluator("shared", **(TINY["shared"] | {"model_kwargs": {"channels": 0}}))
    with pytest.raises(ConfigError, match="channels must be a positive integer, got 0"):
        create_study(space="enas_micro", agent="enas", evaluator=shared, storage=f"sqlite:///{database}")
    assert not database.exists()


def test_a_device_this_machine_lacks_is_refused_before_anything_is_stored(tmp_path):
    from rlnas.checks import check_device

    assert check_device("cpu") == "cpu" and check_device(torch.device("cpu")) == "cpu"
    with pytest.raises(ConfigError, match="^device 'tpu' is not a torch device"):
        check_device("tpu")
    with pytest.raises(ConfigError, match="^device must be a torch device"):
        check_device(3)
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    with pytest.raises(ConfigError, match=f"^device 'cuda:{count}' is not available: this machine has {count} CUDA"):
        check_device(f"cuda:{count}")
    database = tmp_path / "runs.db"
    for bad in ("tpu", f"cuda:{count}"):
        with pytest.raises(ConfigError, match=f"device '{bad}'"):
            create_study(space="nb201", agent="ppo", evaluator=create_evaluator("nb201", dataset="cifar10"),
                         device=bad, storage=f"sqlite:///{database}")
        with pytest.raises(ConfigError, match=f"device '{bad}'"):
            create_evaluator("train", space="nb201", dataset="digits", device=bad)
    assert not database.exists()


@pytest.mark.parametrize("name", ["train", "optimizer", "shared", "supernet"])
def test_training_evaluators_refuse_a_thread_count_torch_cannot_take(name):
    for threads, message in ((0, "^threads must be an integer from 1 to 1024, got 0"),
                             (-2, "^threads must be an integer from 1 to 1024, got -2"),
                             ("2", "option 'threads' must be an integer or null, got '2'"),  # by the registry
                             (True, "option 'threads' must be an integer or null, got True")):
        with pytest.raises(ConfigError, match=message):
            create_evaluator(name, **(TINY[name] | {"threads": threads}))
    assert create_evaluator(name, **(TINY[name] | {"threads": 2})).threads == 2
