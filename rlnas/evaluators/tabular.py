"""Tabular NAS-Bench-201 evaluator: a table look-up instead of training (15,625 cells, 3 datasets)."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from rlnas.data.nb201 import load_nb201_table
from rlnas.errors import ConfigError, InvalidCandidate
from rlnas.evaluators.base import Measurement, reduce_by_options
from rlnas.spaces.base import Candidate
from rlnas.spaces.nb201 import NB201Space

NB201_DATASETS: tuple[str, ...] = ("cifar10", "cifar100", "imagenet16-120")
NB201_FIDELITIES: tuple[int, ...] = (200, 12)


class NB201Evaluator:
    """Looks candidates of the ``nb201`` space up in the shipped NAS-Bench-201 table.

    Options: ``dataset`` (``cifar10``, ``cifar100``, ``imagenet16-120``), ``fidelity`` (200 or
    12 epochs behind the reward), ``noisy`` (one training seed instead of the seed mean) and
    ``latency_device`` (a HELP latency column, see ``load_nb201_table().latency_devices``).

    Metrics of :meth:`evaluate` (accuracies in percent):

    - ``valid_acc``: the search reward. Seed-mean validation accuracy after 200 epochs, or of
      the separate 12-epoch schedule when ``fidelity=12``. With ``noisy=True`` (200 epochs only)
      it is ONE training seed drawn with ``numpy.random.default_rng(seed)``: on cifar10 the
      per-seed validation accuracy itself; on cifar100 / imagenet16-120, where only per-seed
      *valtest* accuracies exist, the seed-mean validation accuracy plus that seed's deviation
      from the cell's mean valtest accuracy.
    - ``test_acc``: always the 200-epoch seed-mean test accuracy, the number to report
      (cifar10: the model trained on all 50k training images).
    - ``params_m`` (millions), ``latency_ms`` (HELP column ``latency_device``, CIFAR-10 input),
      ``train_time_s`` (simulated seconds to train 200 epochs).

    ``cost_seconds`` is the simulated training time: ``train_time_s``, or 12/200 of it at
    ``fidelity=12`` (an approximation: the table has no 12-epoch times). ``budget`` is ignored.
    For the few cells whose source time was replaced by an estimate (see ``rlnas/data/NB201.md``)
    ``info["train_time_estimated"]`` is true.
    """

    name = "nb201"
    metrics = ("valid_acc", "test_acc", "params_m", "latency_ms", "train_time_s")
    simulated_time = True
    """A trial's cost is the table's training time, not time spent here (summaries say so)."""

    def __init__(self, dataset: str = "cifar10", fidelity: int = 200, noisy: bool = False,
                 latency_device: str = "pixel3"):
        table = load_nb201_table()
        self.dataset = _choice("dataset", dataset.lower() if isinstance(dataset, str) else dataset, NB201_DATASETS)
        if isinstance(fidelity, str) and fidelity.strip().isdigit():
            fidelity = int(fidelity)
        self.fidelity = int(_choice("fidelity", fidelity, NB201_FIDELITIES))
        if not isinstance(noisy, (bool, np.bool_)):
            raise ConfigError(f"noisy must be true or false, got {noisy!r}")
        self.noisy = bool(noisy)
        if self.noisy and self.fidelity != 200:
            raise ConfigError("noisy=True needs fidelity=200: the table has no per-seed 12-epoch results")
        self.latency_device = _choice("latency_device", latency_device, table.latency_devices)

        self.table = table
        self.space = NB201Space()
        self._row = table.dataset_row(self.dataset)
        self._reward = self._reward_array().tolist()
        self._test = table.test_acc[self._row].tolist()
        self._params = table.params_m[self._row].tolist()
        self._time = table.train_time_s[self._row].tolist()
        self._cost = (table.train_time_s[self._row] * (self.fidelity / 200)).tolist()
        self._time_estimated = set(np.flatnonzero(table.train_time_estimated[self._row]).tolist())
        self._latency = table.latency_ms[table.latency_devices.index(self.latency_device)].tolist()
        self._seed_values: list[list[float]] = []
        if self.noisy:  # per-seed values, only for noisy draws
            seed_rewards = self._seed_reward_matrix().tolist()
            self._seed_values = [row[:n] for row, n in zip(seed_rewards, table.n_seeds.tolist())]
        self._index_cache: dict[Candidate, int] = {}

    # ----------------------------------------------------------------- protocol
    def evaluate(self, candidate: Candidate, *, budget: float | None = None, seed: int | None = None) -> Measurement:
        """Metrics of ``candidate`` (see the class docstring); ``seed`` drives the noisy draw."""
        try:
            i = self._index_cache[candidate]  # type: ignore[index]
        except (KeyError, TypeError):
            i = self._resolve(candidate)
        info: dict[str, Any] = {"index": i, "arch_str": self.table.arch_str[i]}
        if i in self._time_estimated:
            info["train_time_estimated"] = True
        if not self.noisy:
            valid = self._reward[i]
        else:
            values = self._seed_values[i]
            slot = int(np.random.default_rng(seed).integers(len(values)))
            valid = values[slot]
            info["train_seed"] = self.table.seed_labels[slot]
        metrics = {
            "valid_acc": valid,
            "test_acc": self._test[i],
            "params_m": self._params[i],
            "latency_ms": self._latency[i],
            "train_time_s": self._time[i],
        }
        return Measurement(metrics, self._cost[i], info)

    def spec(self) -> dict[str, Any]:
        """``{"name": "nb201", **options}``; ``create_evaluator(**spec)`` rebuilds an equal evaluator."""
        return {"name": self.name, "dataset": self.dataset, "fidelity": self.fidelity, "noisy": self.noisy,
                "latency_device": self.latency_device}

    # ------------------------------------------------------------------ helpers
    def optimum(self, metric: str = "valid_acc") -> tuple[str, float]:
        """``(arch_str, value)`` of the best cell by ``metric``: ``valid_acc`` (seed-mean reward at
        this fidelity) or ``test_acc`` (200 epochs); ties go to the lowest index."""
        values = {"valid_acc": self._reward_array(), "test_acc": self.table.test_acc[self._row]}
        if metric not in values:
            raise ConfigError(f"unknown metric {metric!r} for optimum (choices: {', '.join(values)})")
        i = int(np.argmax(values[metric]))
        return self.table.arch_str[i], float(values[metric][i])

    def test_acc_of_best_valid(self) -> float:
        """200-epoch test accuracy of the cell with the best seed-mean validation reward."""
        return self._test[int(np.argmax(self._reward_array()))]

    def lookup(self, arch: str | Mapping[str, Any]) -> dict[str, Any]:
        """Every table value of one cell (an arch string or a candidate) for this dataset.

        ``valid_acc`` is the seed-mean reward at this fidelity; ``seed_valid_acc`` lists the
        values a noisy evaluation draws from; ``seed_acc`` the raw per-seed accuracies
        (validation on cifar10, valtest otherwise); ``latency_ms_all`` every latency column.
        """
        t, d = self.table, self._row
        i = t.index_of(arch) if isinstance(arch, str) else self._resolve(arch)
        n = int(t.n_seeds[i])
        return {
            "index": i,
            "arch_str": t.arch_str[i],
            "dataset": self.dataset,
            "valid_acc": self._reward[i],
            "valid_acc_200": float(t.valid_acc[d, i]),
            "valid_acc_12ep": float(t.valid_acc_12ep[d, i]),
            "test_acc": float(t.test_acc[d, i]),
            "test_acc_12ep": float(t.test_acc_12ep[d, i]),
            "params_m": float(t.params_m[d, i]),
            "train_time_s": float(t.train_time_s[d, i]),
            "cost_seconds": self._cost[i],
            "latency_ms": self._latency[i],
            "latency_ms_all": {dev: float(t.latency_ms[k, i]) for k, dev in enumerate(t.latency_devices)},
            "n_seeds": n,
            "seed_labels": list(t.seed_labels[:n]),
            "seed_acc": t.seed_acc[d, i, :n].tolist(),
            "seed_valid_acc": self._seed_reward_matrix()[i, :n].tolist(),
        }

    # ---------------------------------------------------------------- internals
    def _resolve(self, candidate: Any) -> int:
        """Index of a candidate given as any mapping; caches hashable candidates."""
        if not isinstance(candidate, Mapping):
            raise InvalidCandidate(f"the nb201 evaluator needs a candidate of the nb201 space, got "
                                   f"{type(candidate).__name__}")
        i = self.table.index[self.space.key(candidate)]
        if isinstance(candidate, Candidate):
            self._index_cache[candidate] = i
        return i

    def _reward_array(self) -> np.ndarray:
        t = self.table
        return (t.valid_acc if self.fidelity == 200 else t.valid_acc_12ep)[self._row]

    def _seed_reward_matrix(self) -> np.ndarray:
        """(cells, 3) values a noisy evaluation draws from, NaN where a cell has fewer seeds."""
        t, d = self.table, self._row
        raw = t.seed_acc[d]
        if self.dataset == "cifar10":
            return raw
        # Only valtest accuracies exist per seed: shift the seed-mean validation accuracy by
        # the seed's deviation from the cell's mean valtest accuracy.
        return t.valid_acc[d][:, None] + (raw - np.nanmean(raw, axis=1, keepdims=True))

    # ------------------------------------------------------------------- dunder
    def __eq__(self, other: object) -> bool:
        return isinstance(other, NB201Evaluator) and self.spec() == other.spec()

    def __hash__(self) -> int:
        return hash(tuple(self.spec().items()))

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return reduce_by_options(self, NB201Evaluator, (self.dataset, self.fidelity, self.noisy, self.latency_device))

    def __repr__(self) -> str:
        options = ", ".join(f"{k}={v!r}" for k, v in self.spec().items() if k != "name")
        return f"NB201Evaluator({options})"


def _choice(option: str, value: Any, choices: tuple[Any, ...]) -> Any:
    """``value`` if it is one of ``choices``, else a one-line :class:`ConfigError`."""
    if isinstance(value, bool) or value not in choices:
        raise ConfigError(f"unknown {option} {value!r} for the nb201 evaluator "
                          f"(choices: {', '.join(str(c) for c in choices)})")
    return value


__all__ = ["NB201_DATASETS", "NB201_FIDELITIES", "NB201Evaluator"]
