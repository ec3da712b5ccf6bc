"""Networks built from candidates: parameter counts against published tables, forward shapes."""
from __future__ import annotations

import csv
import gzip
from pathlib import Path

import numpy as np
import pytest
import torch

from rlnas.data.nb201 import load_nb201_table
from rlnas.errors import ConfigError, InvalidCandidate
from rlnas.models import count_parameters, create_model, list_models, nb201_param_count
from rlnas.spaces import create_space, list_spaces
from rlnas.spaces.nb201 import NB201_EDGES, edge_name

torch.set_num_threads(1)
NB201_COST = Path("/work/shared/data/nasbench201/nb201_cost_nats.csv.gz")
CLASSES = {"params_mb_c10": 10, "params_mb_c100": 100, "params_mb_in16": 120}
# One cell edge holding a conv in all 15 cells: 5 * sum over C in (16, 32, 64) of (k*k*C*C + 2C).
ONE_CONV = {1: 5 * sum(c * c + 2 * c for c in (16, 32, 64)), 3: 5 * sum(9 * c * c + 2 * c for c in (16, 32, 64))}


@pytest.fixture(scope="module")
def nb201_rows() -> list[dict[str, str]]:
    if not NB201_COST.exists():
        pytest.skip(f"{NB201_COST} not available")
    with gzip.open(NB201_COST, "rt", newline="") as f:
        return list(csv.DictReader(f))


NO_NETWORK = {"nbgraph", "nbgraph_proteins", "toy"}
"""Spaces without an image network: NAS-Bench-Graph's GNN cells (tabular only) and the test-only toy space
(registered when rlnas.testing is imported)."""


def test_every_space_has_a_model() -> None:
    assert set(list_spaces()) - NO_NETWORK <= set(list_models())


def test_nb201_closed_form_matches_table_for_all_cells(nb201_rows: list[dict[str, str]]) -> None:
    space = create_space("nb201")
    table = load_nb201_table()
    mismatches = []
    for row in nb201_rows:
        i = int(row["index"])
        cand = space.from_key(row["arch_str"])
        closed = [nb201_param_count(cand, num_classes=k) for k in CLASSES.values()]
        # the shipped table follows the closed form for every cell and every data set
        assert [round(p * 1e6) for p in table.params_m[:, i]] == closed, row["arch_str"]
        diffs = {round(float(row[col]) * 1e6) - c for col, c in zip(CLASSES, closed)}
        if diffs != {0}:
            mismatches.append((i, diffs))
    # 150 source rows (about 1 %) disagree with every consistent network, each by exactly one
    # conv edge (1x1 or 3x3) in all 15 cells and equally for the three data sets: a known
    # defect of the source's params field, corrected in the shipped table (rlnas/data/NB201.md).
    assert len(mismatches) == 150
    assert [i for i, _ in mismatches] == np.flatnonzero(table.params_from_closed_form).tolist()
    for _, diffs in mismatches:
        assert len(diffs) == 1 and abs(diffs.pop()) in ONE_CONV.values()


def test_nb201_built_network_matches_table(nb201_rows: list[dict[str, str]]) -> None:
    space = create_space("nb201")
    rng = np.random.default_rng(0)
    picks = list(rng.choice(len(nb201_rows), size=200, replace=False))
    by_arch = {r["arch_str"]: r for r in nb201_rows}
    extremes = [space.key(space.from_indices([i] * 6)) for i in range(5)]  # all-none ... all-conv3x3 ... all-pool
    rows = [nb201_rows[i] for i in picks] + [by_arch[k] for k in extremes]
    checked = 0
    for row in rows:
        cand = space.from_key(row["arch_str"])
        for col, k in CLASSES.items():
            built = count_parameters(create_model(space, cand, num_classes=k)) if k == 10 else nb201_param_count(cand, k)
            assert built == nb201_param_count(cand, num_classes=k)
            if round(float(row[col]) * 1e6) == built:
                checked += 1
    assert checked >= 3 * len(rows) - 6  # at most ~1 % of rows carry the table quirk
    assert round(float(by_arch[extremes[3]]["params_mb_c10"]) * 1e6) == 1_531_546  # all conv3x3: the largest
    assert round(float(by_arch[extremes[0]]["params_mb_c10"]) * 1e6) == 73_306  # all none: the smallest


def test_nb201_counts_without_table() -> None:
    space = create_space("nb201")
    conv3 = space.from_indices([3] * 6)
    assert count_parameters(create_model(space, conv3)) == 1_531_546
    assert count_parameters(create_model(space, space.from_indices([0] * 6), num_classes=100)) == 73_306 + 90 * 65


def test_nb201_forward_and_reduction_structure() -> None:
    space = create_space("nb201")
    model = create_model(space, space.known()["best_cifar10"], channels=4, cells_per_stage=1, num_classes=7)
    assert model(torch.randn(2, 3, 16, 16)).shape == (2, 7)
    bn = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert all(m.affine for m in bn)
    assert all(m.bias is None for m in model.modules() if isinstance(m, torch.nn.Conv2d))
    assert {edge_name(s, t) for s, t in NB201_EDGES} == set(model.cells[0].edges.keys())


def test_darts_paper_networks_parameter_counts() -> None:
    space = create_space("darts")
    known = space.known()
    v2 = create_model(space, known["darts_v2"])
    v1 = create_model(space, known["darts_v1"])
    # DARTS code logs 3.349342 MB for DARTS_V2 (C=36, 20 cells), auxiliary head excluded.
    assert count_parameters(v2) == 3_349_342
    assert count_parameters(v1) == 3_169_414
    # Paper: 3.3M for both; V2 rounds to it, V1 (3.17M) is within 5 %.
    assert round(count_parameters(v2) / 1e6, 1) == 3.3
    assert abs(count_parameters(v1) / 3.3e6 - 1) < 0.05
    aux = create_model(space, known["darts_v2"], auxiliary=True)
    assert count_parameters(aux) - count_parameters(v2) == 476_426
    assert count_parameters(aux, exclude="auxiliary") == 3_349_342


def test_darts_forward_aux_and_drop_path() -> None:
    space = create_space("darts")
    cand = space.sample(np.random.default_rng(3))
    model = create_model(space, cand, channels=4, layers=5, auxiliary=True, drop_path_prob=0.2, num_classes=5)
    model.train()
    logits, aux = model(torch.randn(2, 3, 32, 32))
    assert logits.shape == (2, 5) and aux.shape == (2, 5)
    model.eval()
    out = model(torch.randn(2, 3, 32, 32))
    assert isinstance(out, torch.Tensor) and out.shape == (2, 5)
    assert model(torch.randn(1, 3, 15, 15)).shape == (1, 5)  # odd sizes work


def test_proxylessnas_mobile_parameter_count() -> None:
    space = create_space("proxyless")
    model = create_model(space, space.known()["proxylessnas_mobile"])
    # Paper: 4.1M; the official proxyless_mobile config builds to exactly 4,080,512 parameters.
    assert count_parameters(model) == 4_080_512
    assert round(count_parameters(model) / 1e6, 1) == 4.1
    assert model.resolution == 224


@pytest.mark.parametrize("name", ["ofa_mbv3", "proxyless", "proxyless_enlarged", "tunas_mbv3"])
def test_mobile_forward_shapes(name: str) -> None:
    space = create_space(name)
    for cand in list(space.known().values()) + [space.sample(np.random.default_rng(1))]:
        model = create_model(space, cand, num_classes=3, width_mult=0.25).eval()
        with torch.no_grad():
            assert model(torch.randn(2, 3, 32, 32)).shape == (2, 3)


def test_mobile_param_counts_of_extremes_are_ordered() -> None:
    for name in ["ofa_mbv3", "proxyless", "proxyless_enlarged", "tunas_mbv3"]:
        space = create_space(name)
        big, small = (count_parameters(create_model(space, space.known()[k])) for k in ("largest", "smallest"))
        assert big > small


def test_ofa_width_multiplier_widths() -> None:
    space = create_space("ofa_mbv3")
    model = create_model(space, space.known()["largest"], width_mult=1.2)
    assert model.features[0].body[0].out_channels == 24  # OFA w1.2 stem
    assert model.classifier.in_features == 1536


def test_create_model_errors() -> None:
    space = create_space("nb201")
    with pytest.raises(ConfigError, match="num_widgets"):
        create_model(space, space.known()["all_skip"], num_widgets=3)
    with pytest.raises(InvalidCandidate):
        create_model(space, {"edge_0_1": "conv"})
