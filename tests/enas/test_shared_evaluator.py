"""The shared evaluator: learning, exact resume, the splits, agreement with stand-alone children, bad input."""
from __future__ import annotations

import io

import numpy as np
import pytest
import torch

from rlnas.agents.enas import EnasAgent
from rlnas.errors import ConfigError
from rlnas.evaluators import EVALUATORS, create_evaluator
from rlnas.evaluators.shared import SharedEvaluator
from rlnas.spaces.enas import EnasMacroSpace, EnasMicroSpace

torch.set_num_threads(1)
TINY = {"dataset": "digits", "batch_size": 32, "valid_batch_size": 50, "epochs": 2, "threads": 1}
assert EVALUATORS.get("shared") is SharedEvaluator


def micro(**options) -> SharedEvaluator:
    return SharedEvaluator("enas_micro", **{**TINY, **options}, model_kwargs={"channels": 4, "layers": 1})


def saved(state: dict) -> dict:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=True)


def test_training_sampled_children_raises_their_shared_accuracy() -> None:
    evaluator = SharedEvaluator(EnasMacroSpace(layers=3), **{**TINY, "epochs": 4}, model_kwargs={"channels": 8})
    rng = np.random.default_rng(0)
    probe = [evaluator.space.sample(rng) for _ in range(3)]
    before = [evaluator.evaluate(c).metrics["shared_acc"] for c in probe]
    total = evaluator.total_steps
    assert total == 4 * (1079 // 32)  # digits: 60 % of 1,797 images train
    losses = [evaluator.train_step(evaluator.space.sample(rng))["loss"] for _ in range(total)]
    after = [evaluator.evaluate(c).metrics["shared_acc"] for c in probe]
    assert np.mean(losses[-20:]) < 0.85 * np.mean(losses[:20])
    # Children trained only through the weights they share with the sampled ones improved.
    assert np.mean(after) > np.mean(before) + 20


def test_resume_is_bit_identical() -> None:
    space = EnasMicroSpace()
    rng = np.random.default_rng(1)
    children = [space.sample(rng) for _ in range(8)]
    first = micro()
    for s in range(4):
        first.train_step(children[s])
    first.evaluate(children[0], split="valid_batch")
    second = create_evaluator(**first.spec())
    second.load_state_dict(saved(first.state_dict()))
    for evaluator in (first, second):
        evaluator.trace = [evaluator.train_step(children[s])["loss"] for s in range(4, 8)]
        evaluator.trace += [evaluator.evaluate(c, split="valid_batch").metrics["shared_acc"] for c in children]
    assert first.trace == second.trace
    for key, value in first.supernet.state_dict().items():
        assert torch.equal(value, second.supernet.state_dict()[key])


def test_splits_and_agreement_with_the_stand_alone_child() -> None:
    evaluator = micro()
    space = evaluator.space
    cand = space.sample(np.random.default_rng(2))
    for _ in range(5):
        evaluator.train_step(cand)
    batches = [evaluator.evaluate(cand, split="valid_batch") for _ in range(8)]
    # 359 validation images walk in batches of 50: 7 per pass, then a new permutation.
    assert len({m.metrics["shared_acc"] for m in batches}) > 1
    assert all(m.metrics["shared_acc"] * 50 / 100 == round(m.metrics["shared_acc"] * 50 / 100) for m in batches)
    whole = evaluator.evaluate(cand, split="valid").metrics["shared_acc"]
    assert whole == evaluator.evaluate(cand).metrics["shared_acc"]  # deterministic, no minibatch drawn
    child = evaluator.child(cand).eval()
    x, y = evaluator.data.valid.tensors()
    with torch.no_grad():
        correct = int((child(x).argmax(1) == y).sum())  # the whole split in one batch (359 < 512)
    assert whole == 100.0 * correct / len(y)
    assert 0 <= evaluator.evaluate(cand, split="test").metrics["shared_acc"] <= 100


def test_an_enas_search_with_shared_weights_is_reproducible() -> None:
    def run() -> tuple[list[str], float]:
        evaluator = micro(epochs=0.3)
        agent = EnasAgent(evaluator.space, {"controller_steps": 2, "batch_size": 3, "lstm_hidden": 16}, seed=5)
        step, keys = 0, []
        while True:
            shared, updates = agent.plan_round(step, evaluator.total_steps, evaluator.steps_per_epoch)
            if shared == 0:
                break
            for child in agent.train_children(shared):
                evaluator.train_step(child)
                keys.append(evaluator.space.key(child))
                step += 1
            for _ in range(updates):
                proposals = agent.ask(agent.batch_size)
                agent.tell([(p, evaluator.evaluate(p.candidate, split="valid_batch").metrics["shared_acc"])
                            for p in proposals])
        return keys, evaluator.evaluate(agent.mode()).metrics["shared_acc"]

    assert run() == run()


@pytest.mark.parametrize("options, fragment", [
    ({"space": "nb201"}, "no ENAS supernet for space 'nb201'"),
    ({"batch_size": 0}, "batch_size must be a positive number"),
    ({"epochs": float("inf")}, "option 'epochs' must be a finite number, got inf"),
    ({"epochs": -1}, "epochs must be a positive number"),
    ({"batch_size": "3"}, "option 'batch_size' must be an integer, got '3'"),
    ({"model_kwargs": {"width": 2}}, "unknown option(s) width"),
    ({"momentum": -0.5}, "momentum must be in [0, 1), got -0.5"),  # these three failed mid-search, in torch
    ({"weight_decay": -0.1}, "weight_decay must be a number >= 0, got -0.1"),
    ({"seed": -1}, "seed must be between 0 and"),
    ({"seed": 10 ** 23}, "seed must be between 0 and"),
    ({"split_seed": -1}, "split_seed must be between 0 and"),
])
def test_bad_options(options: dict, fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        evaluator = SharedEvaluator(**{"space": "enas_micro", "dataset": "digits", **options})
        evaluator.supernet  # noqa: B018  (data and supernet are built on first use)
    assert fragment in str(info.value)


def test_unknown_split() -> None:
    evaluator = micro()
    with pytest.raises(ConfigError, match="unknown split 'train'"):
        evaluator.evaluate(evaluator.space.sample(np.random.default_rng(0)), split="train")
