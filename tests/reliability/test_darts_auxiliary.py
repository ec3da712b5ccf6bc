"""Item 10 (the crash): a DARTS network with its auxiliary head trains in the train evaluator."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from rlnas.errors import ConfigError
from rlnas.evaluators import create_evaluator
from rlnas.evaluators.train import training_loss
from rlnas.models import create_model
from rlnas.spaces import create_space
from rlnas.study import create_study
from rlnas.testing.data import write_fake_cifar10

SMALL_DARTS = {"channels": 4, "layers": 5, "auxiliary": True}


def test_a_darts_candidate_with_the_auxiliary_head_trains_on_32x32_images(tmp_path):
    root = write_fake_cifar10(tmp_path / "cifar", per_batch=8)
    evaluator = create_evaluator("train", space="darts", dataset="cifar10", data_root=str(root), epochs=1,
                                 batch_size=16, model_kwargs=SMALL_DARTS, valid_fraction=0.2)
    candidate = evaluator.space.known()["darts_v2"]
    m = evaluator.evaluate(candidate)
    assert math.isfinite(m.metrics["train_loss"]) and 0 <= m.metrics["valid_acc"] <= 100
    # the auxiliary head is counted: the network is bigger than the one without it
    plain = create_evaluator("train", space="darts", dataset="cifar10", data_root=str(root), epochs=1,
                             batch_size=16, model_kwargs={**SMALL_DARTS, "auxiliary": False}, valid_fraction=0.2)
    assert m.metrics["params_m"] > plain.evaluate(candidate).metrics["params_m"]


def test_the_loss_adds_the_weighted_auxiliary_cross_entropy():
    space = create_space("darts")
    torch.manual_seed(0)
    model = create_model(space, space.known()["darts_v2"], **SMALL_DARTS, auxiliary_weight=0.25).train()
    x, y = torch.randn(4, 3, 32, 32), torch.tensor([0, 1, 2, 3])
    logits, aux = model(x)
    expected = F.cross_entropy(logits, y) + 0.25 * F.cross_entropy(aux, y)
    assert torch.equal(training_loss(model, (logits, aux), y), expected)
    assert torch.equal(training_loss(model, logits, y), F.cross_entropy(logits, y))


def test_images_too_small_for_the_head_are_refused_before_a_study_is_created(tmp_path):
    url = f"sqlite:///{tmp_path / 'runs.db'}"
    evaluator = create_evaluator("train", space="darts", dataset="digits", epochs=0.05, model_kwargs=SMALL_DARTS)
    with pytest.raises(ConfigError, match="auxiliary head needs an 8x8 feature map .* got 2x2"):
        create_study(space="darts", agent="random", evaluator=evaluator, seed=0, storage=url, name="s")
    assert not (tmp_path / "runs.db").exists()  # checked before the database is even opened
