"""The HTML report without a browser: self-contained, complete, and honest about what is missing."""
from __future__ import annotations

import re

import pytest
from report_fixtures import snapshot, trial
from report_study import write_nb201_report

pytest.importorskip("matplotlib")

from rlnas.reports.html import CSP, best_trials, build_report, failure_reasons
from rlnas.spaces import create_space


@pytest.fixture(scope="module")
def page(tmp_path_factory) -> str:
    return write_nb201_report(tmp_path_factory.mktemp("report") / "report.html", trials=40).read_text()


def test_every_source_is_inline_and_a_policy_forbids_the_rest(page: str) -> None:
    assert f'content="{CSP}"' in page and "default-src 'none'" in CSP
    sources = re.findall(r'\b(?:src|href)="([^"]*)"', page)
    assert sources and all(s.startswith("data:") for s in sources)
    assert "<link" not in page and "@import" not in page
    assert set(re.findall(r"url\((.)", page)) <= {"#"}  # only references inside the page


def test_the_page_holds_the_definition_the_table_the_plots_and_the_cell(page: str) -> None:
    assert page.count('<figure class="plot') == 5 and 'class="missing' not in page
    assert page.count("<tr><td class=\"num\"") == 20
    assert "nb201 (6 decisions, 1.56e+04 candidates" in page and "&quot;batch_size&quot;: 5" in page
    assert page.count('<svg xmlns="http://www.w3.org/2000/svg"') == 1 and "nor_conv_3x3" in page


def test_best_trials_are_distinct_and_ordered() -> None:
    trials = [trial(0, 5.0, key="a"), trial(1, 7.0, key="b"), trial(2, 7.0, key="a"), trial(3, None, key="c")]
    best = best_trials(snapshot("s", trials), top=5)
    assert [(t.number, t.key) for t in best] == [(1, "b"), (2, "a")]
    assert failure_reasons(snapshot("s", trials)) == [("boom", 1)]


def test_a_blank_error_is_no_reason_and_a_small_metric_keeps_its_digits() -> None:
    from dataclasses import replace

    blank = [replace(trial(i, None), error=text) for i, text in enumerate(["   ", "\n", "", "boom\ndetail"])]
    assert failure_reasons(snapshot("s", blank)) == [("no reason stored", 3), ("boom", 1)]
    space = create_space("nb201")
    cell = space.from_indices([1] * 6)
    small = replace(trial(4, 50.0, metrics={"best_lr": 1e-4, "valid_acc": 50.0}), candidate=cell, key=space.key(cell))
    page = build_report(snapshot("s", [*blank, small], space_name="nb201"), space)
    assert ">0.0001<" in page and ">0.000<" not in page


def test_a_study_without_results_says_so() -> None:
    space = create_space("nb201")
    failed = [trial(i, None) for i in range(3)]
    page = build_report(snapshot("empty", failed, space_name="nb201"), space)
    assert "No trial completed." in page and "Not drawn:" in page and "<td><code>boom</code></td>" in page


def test_a_cost_aware_reward_is_shown_as_its_spec() -> None:
    space = create_space("nb201")
    spec = {"name": "abs", "metric": "valid_acc", "cost": "latency_ms", "target": 12.0, "beta": -7.0}
    page = build_report(snapshot("abs", [trial(0, None)], space_name="nb201", reward=spec), space)
    assert "&quot;target&quot;: 12.0" in page  # the report used to end in AttributeError on the dict


def test_best_trials_take_equivalent_cells_as_one_network() -> None:
    from dataclasses import replace

    from rlnas.spaces.nbgraph import NBGraphSpace

    space = NBGraphSpace()
    cells = [{"link": "0000", "op1": "fc", "op2": "gcn", "op3": "gat", "op4": "sage"},
             {"link": "0000", "op1": "gat", "op2": "gcn", "op3": "sage", "op4": "fc"},  # the same network
             {"link": "0123", "op1": "gat", "op2": "gcn", "op3": "sage", "op4": "fc"}]
    trials = [replace(trial(i, r, key=space.key(c)), candidate=c)
              for i, (c, r) in enumerate(zip(cells, (5.0, 5.0, 4.0)))]
    assert [t.number for t in best_trials(snapshot("s", trials), top=5)] == [0, 1, 2]  # by key
    assert [t.number for t in best_trials(snapshot("s", trials), top=5, space=space)] == [0, 2]


def test_a_weight_sharing_study_shows_its_answer_not_its_highest_reward() -> None:
    from dataclasses import replace

    import numpy as np

    from rlnas.reports.compare import summarize

    space = create_space("nb201")
    rng = np.random.default_rng(0)
    rewards = [10.19, 12.54, 10.37, 13.04, 5.93, 11.95]  # the records of a TuNAS search; trial 5 is the answer
    trials = []
    for i, r in enumerate(rewards):
        candidate = space.sample(rng)
        trials.append(replace(trial(i, r, key=space.key(candidate)), candidate=candidate.to_dict()))
    study = snapshot("tunas-d", trials, agent="tunas", space_name="nb201")
    assert study.best.number == 5 and summarize(study).best_reward == 11.95  # (trial 3 and 13.04: the maximum)
    page = build_report(study, space)
    assert "<h2>Answer (the last recorded trial)</h2>" in page and f"<p>Trial 5: <code>{trials[5].key}" in page
    assert "answer&#x27;s reward" in page or "answer's reward" in page
    plain = snapshot("rnd", trials, space_name="nb201")
    assert plain.best.number == 3 and "<h2>Best architecture</h2>" in build_report(plain, space)


def test_a_study_without_test_accuracy_draws_its_reward_accuracy_against_cost(tmp_path) -> None:
    """A TuNAS study reports supernet_acc, not test_acc: its report said "Not drawn: no metric 'test_acc'"
    for accuracy against latency, the main result of such a search."""
    from rlnas import Categorical, Measurement, Space, create_study
    from rlnas.reports.html import report_plots
    from rlnas.reports.snapshot import take_snapshot

    class SupernetLike:
        def evaluate(self, candidate, *, budget=None, seed=None):
            width = candidate["width"]
            return Measurement({"supernet_acc": 50.0 + width / 4, "latency_ms": 1.0 + width / 16})

    space = Space("widths", [Categorical("width", (8, 16, 32, 64))])
    reward = {"name": "abs", "metric": "supernet_acc", "cost": "latency_ms", "target": 2.0, "beta": -7.0}
    study = create_study(space=space, agent="random", evaluator=SupernetLike(), reward=reward, seed=0,
                         storage=f"sqlite:///{tmp_path / 'r.db'}", name="ws")
    study.optimize(8)
    plots = {plot.title: plot for plot in report_plots(take_snapshot(study.store, "ws"), space)}
    pareto = plots["Accuracy against cost, with the Pareto front"]
    assert pareto.svg is not None, pareto


def test_a_report_made_without_matplotlib_warns_from_python_too(monkeypatch, tmp_path) -> None:
    """Only `rlnas report` warned; the README's ten lines wrote a page of "Not drawn" notes silently."""
    import importlib.util

    from rlnas.reports.snapshot import take_snapshot

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "matplotlib" else real(name, *a))
    from rlnas import create_study
    from rlnas.evaluators.tabular import NB201Evaluator

    study = create_study(space="nb201", agent="random", evaluator=NB201Evaluator("cifar10"), seed=0,
                         storage=f"sqlite:///{tmp_path / 'r.db'}", name="demo")
    study.optimize(3)
    with pytest.warns(UserWarning, match=r"the report has no plots: they need matplotlib \(pip install"):
        build_report(take_snapshot(study.store, "demo"), study.space)
