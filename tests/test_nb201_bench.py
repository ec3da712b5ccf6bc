"""The NAS-Bench-201 benchmark harness on the real table: tiny runs, numbers recomputed by hand."""
from __future__ import annotations

import math
import sys
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("rlnas.evaluators.tabular")
pytest.importorskip("rlnas.study")

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import _nb201_report as report
import nb201


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    cfg = nb201.BenchConfig(agents=["random", "evolution"], seeds=2, queries=30, workers=1,
                            out=tmp_path_factory.mktemp("nb201"))
    runs, meta = nb201.search_benchmark(cfg, log=lambda *_: None)
    summary = nb201.write_outputs(runs, meta, cfg.out)
    return cfg, runs, meta, summary


def best_by_valid_test(run, q: int) -> float:
    """Test accuracy of the highest-reward trial among the first q, earliest on ties (by hand)."""
    rewards = run.rewards[:q]
    return run.test_acc[rewards.index(max(rewards))]


def test_runs_cover_every_agent_dataset_protocol_and_seed(bench) -> None:
    _, runs, _, _ = bench
    assert len(runs) == 2 * 3 * 2 * 2
    assert {(r.agent, r.dataset, r.protocol, r.seed) for r in runs} == {
        (a, d, p, s) for a in ("random", "evolution") for d in nb201.DATASETS for p in (200, 12) for s in (0, 1)}
    # Protocol 200 runs go on until 30 distinct architectures; repeats (evolution has some) cost trials.
    assert all(sum(r.new) == 30 and len(r.rewards) >= 30 and len(r.new) == len(r.rewards)
               for r in runs if r.protocol == 200)
    assert any(len(r.rewards) > 30 for r in runs if r.protocol == 200 and r.agent == "evolution")


def test_table_cells_recompute_from_the_raw_runs(bench) -> None:
    cfg, runs, meta, summary = bench
    assert summary["checkpoints"] == [30]
    for dataset in nb201.DATASETS:
        for agent in ("random", "evolution"):
            group = [r for r in runs if r.protocol == 200 and r.dataset == dataset and r.agent == agent]
            values = [best_by_valid_test(r, 30) for r in group]
            mean, std, n = summary["protocol_200"][dataset][agent]["test_at"]["30"]
            assert n == 2 and mean == pytest.approx(np.mean(values)) and std == pytest.approx(np.std(values, ddof=1))
            found = [r for r in group if meta["optima"][f"200/{dataset}"]["reward_optimum"] in r.rewards]
            assert summary["protocol_200"][dataset][agent]["found_share"] == len(found) / 2
    mean, std, _ = summary["protocol_200"]["cifar100"]["evolution"]["test_at"]["30"]
    page = (cfg.out / "results.md").read_text()
    assert f"| evolution | {mean:.2f} ± {std:.2f} |" in page
    assert (cfg.out / "regret.png").read_bytes()[:4] == b"\x89PNG"


def test_nats_protocol_spends_the_budget_and_reports_the_best_by_reward_cell(bench) -> None:
    _, runs, meta, summary = bench
    for r in (r for r in runs if r.protocol == 12):
        budget = meta["budgets"]["12"][r.dataset]
        assert sum(r.cost_seconds[:-1]) < budget <= sum(r.cost_seconds)  # the crossing query counts
    group = [r for r in runs if r.protocol == 12 and r.dataset == "imagenet16-120" and r.agent == "random"]
    row = summary["protocol_12"]["imagenet16-120"]["random"]
    assert row["test"][0] == pytest.approx(np.mean([best_by_valid_test(r, len(r.rewards)) for r in group]))
    assert row["queries"][0] == pytest.approx(np.mean([len(r.rewards) for r in group]))
    # The 12-epoch reward is not the 200-epoch one: the reward optimum differs on cifar10.
    assert meta["optima"]["12/cifar10"]["reward_optimum"] < meta["optima"]["200/cifar10"]["reward_optimum"]


def test_a_run_is_reproducible_and_the_process_pool_gives_the_same_runs() -> None:
    jobs = [nb201.Job("evolution", "cifar10", 200, seed, n_trials=15, budget_seconds=None) for seed in (3, 4)]
    inline = nb201.run_jobs(jobs, workers=1, log=lambda *_: None)
    pooled = nb201.run_jobs(jobs, workers=2, log=lambda *_: None)
    def strip(run: nb201.RunResult) -> dict:
        return {k: v for k, v in asdict(run).items() if k != "wall_seconds"}

    assert [strip(r) for r in inline] == [strip(r) for r in pooled]
    assert inline[0].rewards != inline[1].rewards


def test_agent_config_overrides_reach_the_agent_and_bad_ones_fail_early() -> None:
    cfg = nb201.parse_args(["--agents", "evolution", "--agent-config", 'evolution:{"population_size": 4}',
                            "--agent-config", 'evolution:{"sample_size": 4}', "--protocols", "200"])
    assert cfg.agent_configs == {"evolution": {"population_size": 4, "sample_size": 4}} and cfg.protocols == [200]
    job = nb201.make_jobs(cfg, ["evolution"])[0]
    assert job.agent_config == {"population_size": 4, "sample_size": 4} and job.n_trials == 500
    with pytest.raises(nb201.RlnasError, match="sample_size"):
        nb201.available_agents(["evolution"], {"evolution": {"sample_size": 99}})
    for bad in (["--agent-config", "evolution:{oops"], ["--agents", "nope"], ["--protocols", "100"]):
        with pytest.raises(SystemExit):
            nb201.parse_args(bad)


@pytest.mark.parametrize("argv, message", [
    # a traceback (only with 2 workers), or a failure after some runs
    (["--first-seed", "-3"], "--first-seed and --seeds must give seeds from 0 to 2147483647, got -3..46"),
    (["--first-seed", "2147483647", "--seeds", "2"], "got 2147483647..2147483648"),
    (["--agents", ""], "--agents and --datasets must name at least one each"),  # ran nothing, exit 0
    (["--agents", "random,random"], "--agents names one twice: random,random"),
    (["--agent-config", 'ppo:{"nosuch": 1}'], "--agent-config for ppo, which --agents does not run"),  # never checked
    (["--noisy", "--protocols", "12"], "--noisy applies to protocol 200"),  # silently not noisy
])
def test_options_that_would_fail_late_or_be_ignored_are_refused_at_once(capsys, argv, message) -> None:
    with pytest.raises(SystemExit):
        nb201.parse_args(["--agents", "random", "--datasets", "cifar10", *argv])
    assert message in capsys.readouterr().err


def test_an_out_path_that_cannot_be_a_folder_is_refused_before_any_run(capsys, tmp_path) -> None:
    (tmp_path / "afile").write_text("")  # the results were lost after every run had finished
    with pytest.raises(SystemExit):
        nb201.parse_args(["--agents", "random", "--out", str(tmp_path / "afile")])
    assert "is a file, not a folder" in capsys.readouterr().err


def test_by_distinct_architectures_skips_repeats() -> None:
    run = nb201.RunResult("x", "cifar10", 200, 0, rewards=[1.0, 5.0, 5.0, 3.0, 9.0], test_acc=[10, 50, 50, 30, 90],
                          cost_seconds=[0] * 5, found_at=None, wall_seconds=0.0,
                          new=[True, True, False, True, True])
    assert [report.incumbent_at_distinct(run, n) for n in (1, 2, 3, 4)] == [10, 50, 50, 90]
    assert math.isnan(report.incumbent_at_distinct(run, 5))
    assert report.incumbent_reward(run, 4) == 5.0


def test_variants_tpe_and_nbgraph_runs() -> None:
    agent, config = nb201.agent_and_config("l2nas_nolearn", {"top_k": 3})
    assert agent == "l2nas" and config == {"learn": False, "top_k": 3}
    job = nb201.Job("l2nas_nolearn", "cora", 200, 0, n_trials=12, budget_seconds=None, benchmark="nbgraph")
    run = nb201.run_job(job)
    assert run.agent == "l2nas_nolearn" and sum(run.new) == 12 and 0 < max(run.rewards) < 100
    pytest.importorskip("optuna")
    tpe = [nb201.run_job(nb201.Job("tpe", "cifar10", 200, 1, n_trials=15, budget_seconds=None)) for _ in range(2)]
    assert tpe[0].rewards == tpe[1].rewards and sum(tpe[0].new) == 15  # seeded: the same run twice
    cfg = nb201.parse_args(["--benchmark", "nbgraph", "--agents", "tpe,local"])
    assert cfg.datasets == list(nb201.NBGRAPH_DATASETS) and cfg.protocols == [200] and cfg.out.name == "nbgraph"
    for bad in (["--protocols", "12"], ["--noisy"]):  # NAS-Bench-Graph: no 12-epoch nor per-seed results
        with pytest.raises(SystemExit):
            nb201.parse_args(["--benchmark", "nbgraph", *bad])


def test_comparison_by_the_search_reward_uses_the_validation_column() -> None:
    # l2nas minus a peer: difference 1.0 over sqrt(1/4 + 1/4) = 0.707 standard errors -> +1.4 (valid);
    # the test column differs the other way, so a table that read it would show a negative difference.
    by_agent = {"l2nas": {"valid_at": {"50": [2.0, 1.0, 4]}, "test_at": {"50": [0.0, 1.0, 4]}},
                "tpe": {"valid_at": {"50": [1.0, 1.0, 4]}, "test_at": {"50": [1.0, 1.0, 4]}}}
    valid = report._comparison_table(by_agent, ["l2nas", "tpe"], [50], metric="valid_at")
    test = report._comparison_table(by_agent, ["l2nas", "tpe"], [50])
    assert "validation accuracy" in valid[0] and "| tpe | +1.000 (+1.4) |" in valid
    assert "test accuracy" in test[0] and "| tpe | -1.000 (-1.4) |" in test
