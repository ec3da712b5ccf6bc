"""Item 16: the shipped NB201 table follows the closed-form parameter count for every cell, and
the training times of the corrected cells are checked against cells with the same edge counts."""
from __future__ import annotations

import re
from collections import defaultdict

import numpy as np
import pytest

from rlnas.data.nb201 import NB201_TABLE_PATH, load_nb201_table
from rlnas.evaluators.tabular import NB201Evaluator
from rlnas.models import nb201_param_count
from rlnas.spaces.nb201 import NB201_OPS, NB201Space

SPACE = NB201Space()
CLASSES = (10, 100, 120)


@pytest.fixture(scope="module")
def table():
    return load_nb201_table()


@pytest.fixture(scope="module")
def op_counts(table):
    counts = []
    for arch in table.arch_str:
        ops = [str(op) for op in SPACE.from_key(arch).values()]
        counts.append(tuple(ops.count(op) for op in NB201_OPS))
    return counts


def test_every_cell_has_the_closed_form_params_for_every_data_set(table):
    wrong = [(i, d) for i, arch in enumerate(table.arch_str) for d, k in enumerate(CLASSES)
             if round(table.params_m[d, i] * 1e6) != nb201_param_count(SPACE.from_key(arch), num_classes=k)]
    assert wrong == []
    assert int(table.params_from_closed_form.sum()) == 150  # the cells whose source params were off


def test_estimated_times_are_the_median_of_cells_with_the_same_edge_counts(table, op_counts):
    suspect = table.params_from_closed_form
    peers = defaultdict(list)
    for i, counts in enumerate(op_counts):
        if not suspect[i]:
            peers[counts].append(i)
    estimated = table.train_time_estimated
    assert not (estimated & ~suspect).any()  # only cells with wrong source params are touched
    assert estimated.any()
    for d in range(3):
        for i in np.flatnonzero(suspect):
            times = table.train_time_s[d, peers[op_counts[i]]]
            median = np.median(times)
            mad = np.median(np.abs(times - median))
            assert len(times) >= 10
            if estimated[d, i]:
                assert table.train_time_s[d, i] == median
            else:  # kept: within 3.5 robust standard deviations of its peers
                assert 0.6745 * abs(table.train_time_s[d, i] - median) <= 3.5 * mad


def test_the_evaluator_reports_the_estimate_and_says_so(table):
    d, i = np.argwhere(table.train_time_estimated)[0]
    dataset = table.datasets[d]
    m = NB201Evaluator(dataset).evaluate(SPACE.from_key(table.arch_str[i]))
    assert m.info["train_time_estimated"] is True and m.cost_seconds == table.train_time_s[d, i]
    clean = int(np.flatnonzero(~table.train_time_estimated[d])[0])
    assert "train_time_estimated" not in NB201Evaluator(dataset).evaluate(SPACE.from_key(table.arch_str[clean])).info


def test_nb201_md_lists_exactly_the_corrected_cells(table):
    text = NB201_TABLE_PATH.with_name("NB201.md").read_text(encoding="utf-8")
    section = text[text.index("<!-- corrections:"):text.index("<!-- end of corrections -->")]
    listed = section.split("Their indices:")[1].split("Of these")[0]
    assert [int(x) for x in re.findall(r"\d+", listed)] == np.flatnonzero(table.params_from_closed_form).tolist()
    rows = re.findall(r"^\| (\d+) \|", section, flags=re.MULTILINE)
    assert [int(x) for x in rows] == np.flatnonzero(table.train_time_estimated.any(axis=0)).tolist()
