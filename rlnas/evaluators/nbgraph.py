"""Tabular NAS-Bench-Graph evaluator: a table look-up instead of training a GNN (9 graph data sets)."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from rlnas.data.nbgraph import load_nbgraph_table
from rlnas.errors import ConfigError, InvalidCandidate
from rlnas.evaluators.base import Measurement, reduce_by_options
from rlnas.spaces.base import Candidate
from rlnas.spaces.nbgraph import NBGraphSpace

NBGRAPH_DATASETS: tuple[str, ...] = ("arxiv", "citeseer", "computers", "cora", "cs", "photo", "physics",
                                     "proteins", "pubmed")


class NBGraphEvaluator:
    """Looks candidates of the ``nbgraph`` space up in the shipped NAS-Bench-Graph table.

    A candidate is first mapped to the representative of its class of equivalent cells
    (:func:`rlnas.spaces.nbgraph.canonical`), whose results the table holds. Metrics:

    - ``valid_acc``: the search reward, the benchmark's validation performance in percent
      (accuracy; for ``proteins`` the benchmark's metric, presumably ROC-AUC);
    - ``test_acc``: test performance in percent, the number to report;
    - ``valid_perf`` / ``test_perf``: the same as stored (fractions);
    - ``latency_s`` and ``params_m``: the benchmark's ``latency`` and ``para`` columns.

    ``cost_seconds`` is 0: the light table has no training times. On ``proteins`` only the
    five operations trained there exist: other candidates, and the all-skip cells on every
    data set, raise :class:`InvalidCandidate` (the trial fails). ``budget`` and ``seed`` are
    ignored (the table holds one result per architecture).
    """

    name = "nbgraph"
    metrics = ("valid_acc", "test_acc", "valid_perf", "test_perf", "latency_s", "params_m")
    reports_cost = False
    """Its measurements cost 0 s: a budget of seconds would never run out (studies refuse one)."""

    def __init__(self, dataset: str = "cora"):
        if not isinstance(dataset, str) or dataset.lower() not in NBGRAPH_DATASETS:
            raise ConfigError(f"unknown dataset {dataset!r} for the nbgraph evaluator "
                              f"(choices: {', '.join(NBGRAPH_DATASETS)})")
        self.dataset = dataset.lower()
        self.table = load_nbgraph_table()
        self.space = NBGraphSpace("proteins" if self.dataset == "proteins" else "all")
        row = self.table.dataset_row(self.dataset)
        self._valid = self.table.valid_perf[row]
        self._test = self.table.test_perf[row]
        self._latency = self.table.latency_s[row]
        self._params = self.table.params_m[row]
        self._cache: dict[Candidate, int] = {}

    def column_of(self, candidate: Mapping[str, Any]) -> int:
        """Table column of the candidate's representative; :class:`InvalidCandidate` when there is none."""
        if isinstance(candidate, Candidate) and candidate in self._cache:
            return self._cache[candidate]
        if not isinstance(candidate, Mapping):
            raise InvalidCandidate(f"the nbgraph evaluator needs a candidate of the nbgraph space, "
                                   f"got {type(candidate).__name__}")
        key = NBGraphSpace().bench_key(candidate)
        column = self.table.column.get(key)
        if column is None or np.isnan(self._valid[column]):
            raise InvalidCandidate(f"NAS-Bench-Graph has no result for {dict(candidate)} on {self.dataset}")
        if isinstance(candidate, Candidate):
            self._cache[candidate] = column
        return column

    def evaluate(self, candidate: Candidate, *, budget: float | None = None, seed: int | None = None) -> Measurement:
        """Metrics of ``candidate`` (see the class docstring)."""
        i = self.column_of(candidate)
        valid, test = float(self._valid[i]), float(self._test[i])
        metrics = {"valid_acc": 100.0 * valid, "test_acc": 100.0 * test, "valid_perf": valid, "test_perf": test,
                   "latency_s": float(self._latency[i]), "params_m": float(self._params[i])}
        return Measurement(metrics, 0.0, {"bench_key": int(self.table.key[i])})

    def spec(self) -> dict[str, Any]:
        """``{"name": "nbgraph", "dataset": ...}``; ``create_evaluator(**spec)`` rebuilds an equal evaluator."""
        return {"name": self.name, "dataset": self.dataset}

    def optimum(self, metric: str = "valid_acc") -> tuple[int, float]:
        """``(bench key, value in percent)`` of the best representative by ``valid_acc`` or ``test_acc``."""
        values = {"valid_acc": self._valid, "test_acc": self._test}
        if metric not in values:
            raise ConfigError(f"unknown metric {metric!r} for optimum (choices: {', '.join(values)})")
        i = int(np.nanargmax(values[metric]))
        return int(self.table.key[i]), 100.0 * float(values[metric][i])

    def test_acc_of_best_valid(self) -> float:
        """Test performance (percent) of the representative with the best validation performance."""
        return 100.0 * float(self._test[int(np.nanargmax(self._valid))])

    def __eq__(self, other: object) -> bool:
        return isinstance(other, NBGraphEvaluator) and self.spec() == other.spec()

    def __hash__(self) -> int:
        return hash(tuple(self.spec().items()))

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return reduce_by_options(self, NBGraphEvaluator, (self.dataset,))

    def __repr__(self) -> str:
        return f"NBGraphEvaluator(dataset={self.dataset!r})"


__all__ = ["NBGRAPH_DATASETS", "NBGraphEvaluator"]
