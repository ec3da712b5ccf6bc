"""NAS-Bench-Graph: canonical cells, the shipped table, its rebuild script and the tabular evaluator."""
from __future__ import annotations

import csv
import gzip
import importlib.util
import itertools
from pathlib import Path

import numpy as np
import pytest

from rlnas.agents import AGENTS, register_agent
from rlnas.data.nbgraph import NBGRAPH_TABLE_PATH, load_nbgraph_table
from rlnas.errors import ConfigError, InvalidCandidate
from rlnas.evaluators import create_evaluator
from rlnas.evaluators.nbgraph import NBGRAPH_DATASETS, NBGraphEvaluator
from rlnas.spaces import create_space
from rlnas.spaces.nbgraph import (
    NBGRAPH_LINKS,
    NBGRAPH_OPS,
    NBGRAPH_PROTEINS_OPS,
    NBGraphSpace,
    bench_key,
    canonical,
)
from rlnas.testing.scripted import cycling_agent
from rlnas.testing.space_contract import check_space_contract

REPO = Path(__file__).resolve().parents[1]
RAW = REPO.parent / "shared" / "data" / "nasbench_graph" / "nasbench_graph_light.csv.gz"
needs_raw = pytest.mark.skipif(not RAW.is_file(), reason=f"raw NAS-Bench-Graph CSV not found at {RAW}")


def _script():
    spec = importlib.util.spec_from_file_location("build_nbgraph_table", REPO / "scripts" / "build_nbgraph_table.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def table():
    return load_nbgraph_table()


def test_space_contract_and_size() -> None:
    space = create_space("nbgraph")
    check_space_contract(space, samples=30)
    assert space.size == 9 * 9 ** 4 and space.sizes == (9, 9, 9, 9, 9)
    assert create_space("nbgraph_proteins").sizes == (9, 5, 5, 5, 5)
    with pytest.raises(ConfigError):
        NBGraphSpace("no_such_ops")


def test_canonical_cells_are_exactly_the_table(table) -> None:
    """Every candidate but the all-skip ones maps into the table, and the table is the whole image."""
    keys = set(table.key.tolist())
    image = set()
    for link in NBGRAPH_LINKS:
        for ops in itertools.product(NBGRAPH_OPS, repeat=4):
            if set(ops) != {"skip"}:
                image.add(bench_key(*canonical(link, ops)))
    assert image == keys and len(keys) == 26206
    proteins = table.dataset_row("proteins")
    present = {int(k) for k, v in zip(table.key, table.valid_perf[proteins]) if not np.isnan(v)}
    image = {bench_key(*canonical(link, ops)) for link in NBGRAPH_LINKS
             for ops in itertools.product(NBGRAPH_PROTEINS_OPS, repeat=4) if set(ops) != {"skip"}}
    assert image == present and len(present) == 2021


def test_canonical_closed_forms() -> None:
    # A representative is its own representative; the key is link digit * 10^4 + op digits.
    assert canonical("0123", ("gcn", "gat", "gin", "fc")) == ("0123", ("gcn", "gat", "gin", "fc"))
    assert bench_key("0123", ("gcn", "gat", "gin", "fc")) == 81027
    # Four parallel nodes are interchangeable: the ops are sorted in the benchmark's op order.
    assert canonical("0000", ("fc", "gcn", "gat", "sage")) == ("0000", ("gat", "gcn", "sage", "fc"))
    # Two branches of two nodes swap as a whole.
    assert canonical("0012", ("gin", "gat", "fc", "cheb")) == ("0012", ("gat", "gin", "cheb", "fc"))
    # A skip in a chain is moved to the front, reading the input.
    assert canonical("0123", ("gcn", "skip", "gat", "gat")) == ("0123", ("skip", "gcn", "gat", "gat"))
    with pytest.raises(InvalidCandidate, match="all skip"):
        canonical("0123", ("skip",) * 4)
    with pytest.raises(InvalidCandidate):
        canonical("0213", ("gcn",) * 4)


def test_shipped_table_sanity_numbers(table) -> None:
    """The best validation / test performances listed in shared/data/nasbench_graph/SOURCE.md."""
    assert table.datasets == NBGRAPH_DATASETS and len(table) == 26206
    assert list(table.key) == sorted(table.key) and not table.valid_perf.flags.writeable
    published = {"arxiv": (0.7367, 0.7239), "citeseer": (0.7280, 0.7157), "computers": (0.9190, 0.8558),
                 "cora": (0.8193, 0.8313), "cs": (0.9213, 0.9126), "photo": (0.9407, 0.9279),
                 "physics": (0.9400, 0.9300), "proteins": (0.8533, 0.7926), "pubmed": (0.8113, 0.7860)}
    for dataset, (valid, test) in published.items():
        row = table.dataset_row(dataset)
        assert round(float(np.nanmax(table.valid_perf[row])), 4) == valid
        assert round(float(np.nanmax(table.test_perf[row])), 4) == test
        assert np.isnan(table.valid_perf[row]).sum() == (26206 - 2021 if dataset == "proteins" else 0)


def test_evaluator_metrics_and_equivalent_cells(table) -> None:
    ev = NBGraphEvaluator("cora")
    space = NBGraphSpace()
    a = space.candidate({"link": "0000", "op1": "fc", "op2": "gcn", "op3": "gat", "op4": "sage"})
    b = space.candidate({"link": "0000", "op1": "gat", "op2": "gcn", "op3": "sage", "op4": "fc"})
    ma, mb = ev.evaluate(a), ev.evaluate(b)
    assert ma.metrics == mb.metrics and ma.info == mb.info == {"bench_key": 147}
    column = table.column[147]
    row = table.dataset_row("cora")
    assert ma.metrics["valid_perf"] == table.valid_perf[row, column]
    assert ma.metrics["valid_acc"] == pytest.approx(100 * table.valid_perf[row, column])
    assert ma.metrics["test_acc"] == pytest.approx(100 * table.test_perf[row, column]) and ma.cost_seconds == 0.0
    key, best = ev.optimum("valid_acc")
    assert round(best, 2) == 81.93 and key in table.column
    assert create_evaluator(**ev.spec()) == ev
    with pytest.raises(InvalidCandidate, match="all skip"):
        ev.evaluate(space.candidate({"link": "0123", "op1": "skip", "op2": "skip", "op3": "skip", "op4": "skip"}))
    with pytest.raises(InvalidCandidate, match="no result"):  # gat was not trained on proteins
        NBGraphEvaluator("proteins").evaluate(a)
    proteins = NBGraphEvaluator("proteins")
    assert proteins.space.sizes == (9, 5, 5, 5, 5)
    assert 0 < proteins.evaluate(proteins.space.sample(np.random.default_rng(0))).metrics["valid_acc"] < 100
    with pytest.raises(ConfigError, match="unknown dataset"):
        NBGraphEvaluator("imagenet")


def test_build_script_on_a_fixture(tmp_path: Path) -> None:
    script = _script()
    rows = [("cora", 81027, "0 1 2 3", "gcn gat gin fc", "0.5", "0.4", "0.01", "0.1"),
            ("cora", 0, "0 0 0 0", "gat gat gat gat", "0.7", "0.6", "0.02", "0.2"),
            ("pubmed", 0, "0 0 0 0", "gat gat gat gat", "0.3", "0.25", "0.03", "0.3")]
    path = tmp_path / "fixture.csv.gz"
    with gzip.open(path, "wt", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["dataset", "key", "link", "ops", "valid_perf", "test_perf", "latency_s", "params_m"])
        writer.writerows(rows)
    arrays = script.build(path, check_counts=False)
    out = tmp_path / "t.npz"
    script.write_npz(arrays, out)
    t = load_nbgraph_table(out)
    assert t.datasets == ("cora", "pubmed") and list(t.key) == [0, 81027]
    assert t.valid_perf[0].tolist() == [0.7, 0.5] and t.test_perf[1, 0] == 0.25 and np.isnan(t.valid_perf[1, 1])
    first = out.read_bytes()
    script.write_npz(script.build(path, check_counts=False), out)
    assert out.read_bytes() == first  # deterministic bytes
    with gzip.open(path, "wt", newline="") as f:  # a key that does not encode its cell
        f.write("dataset,key,link,ops,valid_perf,test_perf,latency_s,params_m\n"
                "cora,5,0 0 0 0,gat gat gat gat,1,1,1,1\n")
    with pytest.raises(SystemExit, match="does not encode"):
        script.build(path, check_counts=False)


@needs_raw
def test_rebuild_gives_the_shipped_bytes(tmp_path: Path) -> None:
    out = tmp_path / "nbgraph.npz"
    assert _script().main([str(RAW), "--out", str(out)]) == 0
    assert out.read_bytes() == NBGRAPH_TABLE_PATH.read_bytes()


def test_canonical_codes_let_l2nas_skip_equivalent_cells() -> None:
    from rlnas.agents.l2nas import L2NASAgent

    space = NBGraphSpace()
    codes = space.canonical_codes()
    assert len(codes) == space.size and len(np.unique(codes)) == 26206 + 9  # + the 9 all-skip cells
    a = space.candidate({"link": "0000", "op1": "fc", "op2": "gcn", "op3": "gat", "op4": "sage"})
    b = space.candidate({"link": "0000", "op1": "gat", "op2": "gcn", "op3": "sage", "op4": "fc"})
    agent = L2NASAgent(space, seed=0)
    agent.seen.add(space.indices(a))
    assert agent.seen.contains(np.array([space.indices(b)]))[0]  # equivalent: already seen
    assert agent.seen.space_size == 26215


def test_identity_is_the_representative_cell() -> None:
    space = NBGraphSpace()
    a = space.candidate({"link": "0000", "op1": "fc", "op2": "gcn", "op3": "gat", "op4": "sage"})
    b = space.candidate({"link": "0000", "op1": "gat", "op2": "gcn", "op3": "sage", "op4": "fc"})
    c = space.candidate({"link": "0000", "op1": "gat", "op2": "gcn", "op3": "sage", "op4": "gin"})
    assert space.key(a) != space.key(b) and space.identity(a) == space.identity(b) != space.identity(c)
    assert space.identity(b) == space.key(b)  # b is its class's representative
    skips = space.candidate({"link": "0123", **{f"op{i}": "skip" for i in range(1, 5)}})
    assert space.identity(skips) == space.key(skips)
    # one identity per table entry, plus the 9 all-skip cells
    assert len({space.identity(space.from_indices(ix)) for ix in itertools.product(*map(range, space.sizes))}) \
        == 26206 + 9 == space.network_count()
    assert NBGraphSpace("proteins").network_count() == 2021 + 9


def test_local_search_never_evaluates_two_equivalent_cells(table) -> None:
    from rlnas.agents.local import LocalAgent
    from rlnas.testing.agent_contract import drive, roundtrip_state

    evaluator = NBGraphEvaluator("citeseer")
    space = evaluator.space
    for seed in range(2):
        agent = LocalAgent(space, seed=seed)
        keys = drive(agent, lambda c: float(evaluator.evaluate(c).metrics["valid_acc"]), 300)
        identities = [space.identity(space.from_key(k)) for k in keys]
        assert len(keys) == 300 and len(set(identities)) == len(identities)
    restored = LocalAgent(space, seed=9)
    restored.load_state_dict(roundtrip_state(agent))  # the representatives are rebuilt from the state
    reward = lambda c: float(evaluator.evaluate(c).metrics["valid_acc"])  # noqa: E731
    assert drive(agent, reward, 100) == drive(restored, reward, 100)


THREE_CELLS = ({"link": "0000", "op1": "fc", "op2": "gcn", "op3": "gat", "op4": "sage"},
               {"link": "0000", "op1": "gat", "op2": "gcn", "op3": "sage", "op4": "fc"},  # equivalent to the first
               {"link": "0123", "op1": "gat", "op2": "gcn", "op3": "sage", "op4": "fc"})


@pytest.mark.parametrize("reuse", [True, False])
def test_reuse_repeats_answers_an_equivalent_cell_from_the_store(table, reuse: bool, tmp_path: Path) -> None:
    from rlnas.cli._status import study_status
    from rlnas.reports.compare import summarize
    from rlnas.reports.snapshot import take_snapshot
    from rlnas.study import create_study

    register_agent("three_cells", cycling_agent("three_cells", THREE_CELLS))
    try:
        study = create_study(space=NBGraphSpace(), agent="three_cells", evaluator=NBGraphEvaluator("citeseer"),
                             storage=f"sqlite:///{tmp_path / 's.db'}", name="s", reuse_repeats=reuse)
        study.optimize(n_trials=2)
        trials = study.trials
        assert len(trials) == (3 if reuse else 2)
        assert trials[1].key != trials[0].key and trials[1].reward == trials[0].reward
        assert trials[1].repeat_of == (trials[0].number if reuse else None)
        # the two equivalent cells are one network where distinct architectures are counted
        status = study_status(study.store, study.record)
        assert status["distinct_architectures"] == (2 if reuse else 1)
        assert summarize(take_snapshot(study.store, "s")).distinct == (2 if reuse else 1)
        study.close()
    finally:
        AGENTS.unregister("three_cells")


def test_export_onnx_of_a_nbgraph_study_says_there_is_no_network(rlnas_bin, tmp_path: Path) -> None:
    """It said "unknown model builder 'nbgraph' (choices: ...)", as if the user had mistyped something."""
    import subprocess

    url = f"sqlite:///{tmp_path / 'g.db'}"
    subprocess.run([rlnas_bin, "search", "--space", "nbgraph", "--agent", "random", "--trials", "3", "--name", "g",
                    "--no-progress", "--storage", url], check=True, capture_output=True)
    result = subprocess.run([rlnas_bin, "export", "g", "--onnx", str(tmp_path / "g.onnx"), "--storage", url],
                            capture_output=True, text=True)
    assert result.returncode == 2 and not (tmp_path / "g.onnx").exists()
    assert result.stderr.startswith("rlnas: error: --onnx exports a network, and rlnas builds none for space "
                                    "'nbgraph'") and result.stderr.count("\n") == 1
