"""Parameter and FLOP counts (closed forms), latency measurement, the per-layer latency table."""
from __future__ import annotations

import itertools
import json
import re
import time

import pytest
import torch
from torch import nn

from rlnas.costs import LatencyTable, count_flops, count_params, measure_latency, model_units
from rlnas.errors import ConfigError
from rlnas.spaces.base import Categorical, Space

torch.set_num_threads(1)


def test_count_params_closed_form_and_shared_weights():
    model = nn.Sequential(nn.Conv2d(3, 8, 3, bias=False), nn.BatchNorm2d(8), nn.AdaptiveAvgPool2d(1),
                          nn.Flatten(), nn.Linear(8, 10))
    assert count_params(model) == 3 * 8 * 9 + 2 * 8 + 8 * 10 + 10
    shared = nn.Linear(4, 4)
    assert count_params(nn.Sequential(shared, nn.ReLU(), shared)) == 20
    model[0].weight.requires_grad_(False)
    assert count_params(model, trainable_only=True) == 2 * 8 + 8 * 10 + 10


def test_count_flops_closed_form():
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                          nn.Flatten(), nn.Linear(8, 10))
    macs = 8 * 8 * 8 * 3 * 9 + 8 * 10  # conv at 8x8 outputs, then the linear layer
    assert count_flops(model, (3, 8, 8)) == 2 * macs
    assert count_flops(model, (4, 3, 8, 8)) == 4 * 2 * macs
    assert model.training  # the train/eval flag is restored


class Sleepy(nn.Module):
    def forward(self, x):
        time.sleep(0.002)
        return x


def test_measure_latency_is_a_median_in_ms_and_restores_state():
    threads = torch.get_num_threads()
    model = nn.Sequential(Sleepy(), nn.Conv2d(3, 4, 3))
    ms = measure_latency(model, (3, 16, 16), warmup=1, repeats=3, batch_size=2, threads=1)
    assert 2.0 <= ms < 1000
    assert model.training and torch.get_num_threads() == threads
    for options, message in (({"repeats": 0}, "timing needs repeats to be an integer >= 1, got 0"),
                             ({"warmup": -1}, "timing needs warmup to be an integer >= 0, got -1"),
                             ({"threads": 0}, "measure_latency: threads must be an integer >= 1, got 0"),
                             ({"batch_size": 0}, "measure_latency: batch_size must be an integer >= 1, got 0"),
                             ({"batch_size": 2.5}, "measure_latency: batch_size must be an integer >= 1, got 2.5")):
        with pytest.raises(ConfigError, match=re.escape(message)):  # torch's RuntimeError, or an empty batch timed
            measure_latency(model, (3, 16, 16), **options)
    assert torch.get_num_threads() == threads


# ---------------------------------------------------------------- lookup table on a toy mobile space
def toy_space() -> Space:
    decisions = [Categorical("depth", (1, 2))]
    for b in range(2):
        decisions += [Categorical(f"kernel_{b}", (3, 5)), Categorical(f"expand_{b}", (1, 3))]
    return Space("toy_mobile", decisions)


class Block(nn.Module):
    def __init__(self, c_in, c_out, kernel, expand, stride):
        super().__init__()
        mid = c_in * expand
        self.body = nn.Sequential(nn.Conv2d(c_in, mid, 1), nn.ReLU(),
                                  nn.Conv2d(mid, mid, kernel, stride, kernel // 2, groups=mid),
                                  nn.ReLU(), nn.Conv2d(mid, c_out, 1))

    def forward(self, x):
        return self.body(x)


class ToyNet(nn.Module):
    """Stem, block 0 (stride 2), block 1 only when depth == 2, head."""

    def __init__(self, c):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.blocks = nn.ModuleList([Block(8, 16, c["kernel_0"], c["expand_0"], 2)])
        if c["depth"] == 2:
            self.blocks.append(Block(16, 16, c["kernel_1"], c["expand_1"], 1))
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 10))

    def latency_units(self):
        return [("stem", self.stem), *[(f"block{i}", b) for i, b in enumerate(self.blocks)], ("head", self.head)]

    def forward(self, x):
        x = self.stem(x)
        for block in self.blocks:
            x = block(x)
        return self.head(x)


def all_candidates(space):
    return [space.from_indices(i) for i in itertools.product(*(range(s) for s in space.sizes))]


def test_model_units_follow_the_forward_pass():
    space = toy_space()
    c = space.candidate({"depth": 2, "kernel_0": 5, "expand_0": 3, "kernel_1": 3, "expand_1": 1})
    units = model_units(ToyNet(c), (3, 16, 16))
    assert [u.key.split("|")[0] for u in units] == ["Conv2d", "Block", "Block", "Sequential"]
    assert [u.input_shapes for u in units] == [((3, 16, 16),), ((8, 16, 16),), ((16, 8, 8),), ((16, 8, 8),)]
    # the same configuration gives the same key; another kernel another key
    again = model_units(ToyNet(c), (3, 16, 16))
    assert [u.key for u in units] == [u.key for u in again]
    other = model_units(ToyNet({**c, "kernel_1": 5}), (3, 16, 16))
    assert [u.key == v.key for u, v in zip(units, other)] == [True, True, False, True]
    # without latency_units() the direct children are the units; unused children are skipped
    plain = nn.Sequential(nn.Conv2d(3, 4, 3, stride=2, padding=1), nn.ReLU())
    assert [u.input_shapes for u in model_units(plain, (3, 8, 8))] == [((3, 8, 8),), ((4, 4, 4),)]


def test_latency_table_covers_the_space_and_sums_units(tmp_path):
    space = toy_space()
    table = LatencyTable.build(space, model_fn=ToyNet, input_shape=(3, 16, 16), warmup=0, repeats=1)
    # stem + head + block 0 in 4 configs + block 1 in 4 configs
    assert len(table.entries) == 2 + 4 + 4
    for c in all_candidates(space):
        units = table.units(c)
        assert table.predict(c) == pytest.approx(sum(table.entries[u.key] for u in units))
    assert table.misses == 0  # every unit of every candidate was measured by build()
    path = tmp_path / "table.json"
    table.save(path)
    data = json.loads(path.read_text())
    assert data["space"] == "toy_mobile" and data["fingerprint"] == space.fingerprint
    loaded = LatencyTable.load(path, space, model_fn=ToyNet)
    assert loaded.entries == table.entries and loaded.input_shape == (3, 16, 16)
    c = all_candidates(space)[5]
    assert loaded.predict(c) == table.predict(c) and loaded.misses == 0
    other = Space("toy_mobile", [Categorical("depth", (1, 2, 3))])
    with pytest.raises(ConfigError, match="another 'toy_mobile' space"):
        LatencyTable.load(path, other)
    database = tmp_path / "runs.db"  # save wrote over it
    database.write_bytes(b"SQLite format 3\x00" + bytes(100))
    with pytest.raises(ConfigError, match=f"cannot write the latency table to {database}: it is a database"):
        table.save(database)
    assert database.read_bytes().startswith(b"SQLite format 3")


def test_latency_table_measures_unknown_units_on_demand():
    space = toy_space()
    table = LatencyTable(space, model_fn=ToyNet, input_shape=(3, 16, 16), warmup=0, repeats=1)
    c = all_candidates(space)[-1]
    first = table.predict(c)
    assert table.misses == 4 and first > 0
    assert table.predict(c) == first and table.misses == 4


def test_cpu_clock_ignores_sleeping_and_bad_options_are_refused():
    model = nn.Sequential(Sleepy(), nn.Conv2d(3, 4, 3))
    # a sleeping thread uses no CPU time: the CPU clock sees only the convolution
    cpu = measure_latency(model, (3, 16, 16), warmup=1, repeats=3, clock="cpu", statistic="min")
    assert 0 <= cpu < 2.0
    with pytest.raises(ConfigError, match="threads=1"):
        measure_latency(model, (3, 16, 16), clock="cpu", threads=2)
    with pytest.raises(ConfigError, match="unknown clock"):
        measure_latency(model, (3, 16, 16), clock="gpu")
    with pytest.raises(ConfigError, match="unknown statistic"):
        measure_latency(model, (3, 16, 16), statistic="mean")
    with pytest.raises(ConfigError, match="unknown option"):
        LatencyTable(toy_space(), repeat=3)
