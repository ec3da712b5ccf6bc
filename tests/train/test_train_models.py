"""The train evaluator and the cost models on the networks of ``rlnas.models``."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from rlnas.costs import LatencyTable, count_params
from rlnas.costs.mobile import is_mobile_space, mobile_units
from rlnas.evaluators.train import DEFAULT_MODEL_KWARGS, TrainEvaluator
from rlnas.models import create_model
from rlnas.spaces import create_space

torch.set_num_threads(1)
MOBILE = ("ofa_mbv3", "proxyless", "proxyless_enlarged", "tunas_mbv3")


@pytest.mark.parametrize("name", sorted(DEFAULT_MODEL_KWARGS))
def test_default_small_models_build_for_digits(name):
    ev = TrainEvaluator(name)
    cand = ev.space.sample(np.random.default_rng(0))
    torch.manual_seed(0)
    model = ev.build_model(cand)
    assert model(torch.zeros(2, 1, 8, 8)).shape == (2, 10)
    assert count_params(model) < 2_000_000  # small enough for a CPU search


def test_nb201_default_run_is_deterministic():
    ev = TrainEvaluator("nb201", steps=6)
    cell = ev.space.known()["best_cifar10"]
    a, b = ev.evaluate(cell, seed=1), ev.evaluate(cell, seed=1)
    assert a.info["curve"] == b.info["curve"] and a.metrics["test_acc"] == b.metrics["test_acc"]
    torch.manual_seed(0)
    expected = create_model(ev.space, cell, num_classes=10, in_channels=1, channels=8, cells_per_stage=1)
    assert a.metrics["params_m"] == pytest.approx(count_params(expected) / 1e6)


@pytest.mark.parametrize("name", MOBILE)
def test_mobile_units_match_the_built_network(name):
    """Layer-string units have the block modules and input shapes the real MobileNet has."""
    space = create_space(name)
    assert is_mobile_space(space)
    rng = np.random.default_rng(1)
    for _ in range(3):
        cand = space.sample(rng)
        kw = {"width_mult": 0.25, "num_classes": 7}
        model = create_model(space, cand, **kw).eval()
        r = 32
        units = mobile_units(space, cand, resolution=r, **kw)
        shapes = []
        hooks = [m.register_forward_pre_hook(lambda m, a, shapes=shapes: shapes.append(tuple(a[0].shape[1:])))
                 for m in model.features]
        with torch.no_grad():
            feats = model.features(torch.zeros(1, 3, r, r))
        for h in hooks:
            h.remove()
        assert len(units) == len(model.features) + 1
        assert [u.input_shapes[0] for u in units[:-1]] == shapes
        assert units[-1].input_shapes[0] == tuple(feats.shape[1:])
        for unit, block in zip(units, model.features):
            assert repr(unit.build()) == repr(block)
        head = units[-1].build()
        assert count_params(head) == count_params(model) - count_params(model.features)


def test_latency_table_on_a_mobile_space_covers_random_candidates():
    space = create_space("proxyless")
    table = LatencyTable.build(space, input_shape=(3, 32, 32), model_kwargs={"width_mult": 0.25},
                               measure=False)
    keys = {u.key for u in table.pending}
    rng = np.random.default_rng(0)
    for _ in range(30):
        cand = space.sample(rng)
        assert {u.key for u in table.units(cand)} <= keys


@pytest.mark.slow
@pytest.mark.parametrize("name", ["ofa_mbv3", "proxyless_enlarged", "tunas_mbv3"])
def test_uncapped_table_enumeration_covers_every_sampled_candidate(name):
    space = create_space(name)
    table = LatencyTable.build(space, max_combos=None, measure=False)
    keys = {u.key for u in table.pending}
    rng = np.random.default_rng(0)
    for _ in range(200):
        assert {u.key for u in table.units(space.sample(rng))} <= keys
