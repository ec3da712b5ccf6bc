"""Cost models for searches: shipped latency tables cover their spaces, FLOP/parameter sums are exact."""
from __future__ import annotations

import numpy as np
import pytest

from rlnas.costs import count_flops, count_params
from rlnas.costs.models import create_cost_model, shipped_latency_table
from rlnas.errors import ConfigError
from rlnas.models import create_model
from rlnas.spaces import create_space

SMALL = {"width_mult": 0.35, "in_channels": 1, "num_classes": 10}
MOBILE = ("proxyless", "proxyless_enlarged", "tunas_mbv3", "ofa_mbv3")


@pytest.mark.parametrize("name", MOBILE)
def test_shipped_tables_hold_every_unit_of_random_candidates(name: str) -> None:
    space = create_space(name)
    for channels in (1, 3):
        model = create_cost_model(space, "latency", model_kwargs={**SMALL, "in_channels": channels})
        assert model.source == "shipped" and model.unit == "ms"
        rng = np.random.default_rng(channels)
        costs = [model(space.sample(rng)) for _ in range(30)]
        assert model.table.misses == 0, "a shipped table must never measure on the fly"
        low, high = model.range()
        assert 0 < low <= min(costs) and max(costs) <= high


def test_flops_and_params_are_exact_sums_over_units() -> None:
    space = create_space("tunas_mbv3")
    flops = create_cost_model(space, "flops", model_kwargs=SMALL)
    params = create_cost_model(space, "params", model_kwargs=SMALL)
    rng = np.random.default_rng(0)
    for cand in [space.sample(rng) for _ in range(3)] + [space.extreme(True)]:
        net = create_model(space, cand, **SMALL)
        assert flops(cand) == pytest.approx(count_flops(net, (1, 224, 224)) / 1e6, rel=1e-9)
        assert params(cand) == pytest.approx(count_params(net) / 1e6, rel=1e-9)
    assert (flops.metric, params.metric) == ("flops_m", "params_m")


def test_cost_is_that_of_the_deployable_network_whatever_the_training_options() -> None:
    space = create_space("proxyless")
    plain = create_cost_model(space, "flops", model_kwargs=SMALL)
    small_images = create_cost_model(space, "flops", model_kwargs={**SMALL, "stem_stride": 1, "input_size": 16})
    cand = space.known()["proxylessnas_mobile"]
    assert plain(cand) == small_images(cand)


def test_missing_data_is_a_config_error() -> None:
    space = create_space("proxyless")
    with pytest.raises(ConfigError, match="no latency table ships for space 'proxyless'.*latency_table='build'"):
        create_cost_model(space, "latency", model_kwargs={**SMALL, "width_mult": 0.5})
    with pytest.raises(ConfigError, match="space 'nb201' has no cost data"):
        create_cost_model(create_space("nb201"), "latency", model_kwargs={})
    with pytest.raises(ConfigError, match="unknown cost 'energy'"):
        create_cost_model(space, "energy", model_kwargs=SMALL)
    with pytest.raises(ConfigError, match="does not exist"):
        create_cost_model(space, "latency", model_kwargs=SMALL, latency_table="/no/such/table.json")
    assert shipped_latency_table(create_space("tunas_mbv3"), {**SMALL, "num_classes": 100}) is None


def test_a_saved_table_loads_and_another_spaces_table_is_refused(tmp_path) -> None:
    space = create_space("proxyless")
    shipped = create_cost_model(space, "latency", model_kwargs=SMALL)
    path = tmp_path / "proxyless.json"
    shipped.table.save(path)
    loaded = create_cost_model(space, "latency", model_kwargs=SMALL, latency_table=str(path))
    cand = space.extreme(True)
    assert loaded(cand) == shipped(cand) and loaded.source == str(path)
    with pytest.raises(ConfigError, match="was built for space 'proxyless', not 'ofa_mbv3'"):
        create_cost_model(create_space("ofa_mbv3"), "latency", model_kwargs=SMALL, latency_table=str(path))


def _edited(table: dict, **changes) -> dict:
    return {**table, **changes}


@pytest.mark.parametrize(("edit", "message"), [
    (lambda t: _edited(t, entries={k: "x" for k in t["entries"]}), r"entry '.*' is 'x', not milliseconds"),
    (lambda t: _edited(t, entries={k: float("nan") for k in t["entries"]}), r"entry '.*' is nan, not milliseconds"),
    (lambda t: _edited(t, entries={k: -1.0 for k in t["entries"]}), r"entry '.*' is -1.0, not milliseconds"),
    (lambda t: {k: v for k, v in t.items() if k != "timing"}, "is not a saved LatencyTable: timing missing"),
    (lambda t: [1, 2], "is not a saved LatencyTable: a JSON list, not an object"),
    (lambda t: _edited(t, fingerprint="deadbeef"), "was built for another version of space 'proxyless'"),
    # a table that lacks units was completed by timing them on this machine: other costs on every run
    (lambda t: _edited(t, entries=dict(list(t["entries"].items())[:5])), r"has no entry for unit .*: it does not "
                                                                          r"cover the networks of space 'proxyless'"),
])
def test_a_table_file_that_is_not_a_whole_saved_table_is_refused_in_one_line(tmp_path, edit, message) -> None:
    import json

    space = create_space("proxyless")
    table = create_cost_model(space, "latency", model_kwargs=SMALL).table.to_json()
    path = tmp_path / "table.json"
    path.write_text(json.dumps(edit(table)))
    with pytest.raises(ConfigError, match=message):
        create_cost_model(space, "latency", model_kwargs=SMALL, latency_table=str(path)).range()
    for odd, says in ((tmp_path, "is a folder, not a file"), ("", "the path is empty")):
        with pytest.raises(ConfigError, match=says):
            create_cost_model(space, "latency", model_kwargs=SMALL, latency_table=str(odd) if odd else "")


@pytest.mark.parametrize(("space", "model_kwargs", "message"), [
    ("proxyless", {}, "needs a Space .* got str 'proxyless'"),  # (AttributeError: 'str' object has no attribute 'name')
    (None, {"width_mult": "x"}, "width_mult must be a positive number, got 'x'"),  # (ValueError from float())
    (None, {"width_mult": float("nan")}, "width_mult must be a positive number"),
    (None, {"num_classes": 2.5}, "num_classes must be a positive whole number, got 2.5"),
    (None, {"in_channels": 0}, "in_channels must be a positive whole number, got 0"),
    (None, [("width_mult", 1.0)], "model_kwargs must be a mapping, got list"),
])
def test_bad_arguments_of_create_cost_model_are_one_config_error(space, model_kwargs, message):
    with pytest.raises(ConfigError, match=message):
        create_cost_model(space or create_space("proxyless"), "flops", model_kwargs=model_kwargs)


def test_numpy_numbers_are_model_kwargs_as_the_evaluators_take_them():
    import numpy as np

    model = create_cost_model(create_space("proxyless"), "flops",
                              model_kwargs={"width_mult": np.float32(0.35), "num_classes": np.int64(10),
                                            "in_channels": np.int32(1)})
    assert model.kind == "flops"
