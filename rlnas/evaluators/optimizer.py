"""The ``optimizer`` evaluator of Neural Optimizer Search: train a small child network with a rule.

For a candidate of the ``optimizer_rules`` space (or any rule), the child network (``network``,
default a small ConvNet) is trained on ``dataset`` (default the shipped MNIST-5k) for ``steps``
iterations of batch ``batch_size`` with :class:`~rlnas.optim.RuleOptimizer`, once per learning
rate of ``lr_grid``, every time from the same initial weights and in the same batch order. The
reward ``valid_acc`` is the best validation accuracy (percent, after the last step) over the
grid; ``test_acc`` is the test accuracy at that learning rate.

A learning rate *diverges* when the training loss becomes NaN, infinite or larger than
``divergence_loss``, or a weight stops being finite; its training stops there. When every
learning rate diverges, :meth:`OptimizerEvaluator.evaluate` raises :class:`RuleDiverged` with
the reasons: the study stores the trial FAIL with that message and the search goes on.

``schedule`` grows the budget over a search: ``[[0, 100], [200, 400]]`` trains with 100 steps
for trials 0-199 and 400 from trial 200 on; :meth:`OptimizerEvaluator.budget_for` gives the
steps of a trial slot, to pass as ``budget``.

Deterministic: for a seed, the initial weights (``torch.manual_seed(seed)`` inside
``torch.random.fork_rng``), the batch order and the rule's random operands are fixed, so the
same seed gives the same metrics (same thread count and device). The evaluator holds only its options
(the data set is loaded on first use and never pickled), so it can be sent to worker processes.
"""
from __future__ import annotations

import math
import numbers
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from rlnas.checks import absolute_path, check_arguments, check_device, check_evaluation_seed, check_seed, check_threads
from rlnas.costs.measure import num_threads
from rlnas.datasets import DatasetSplits, load_dataset
from rlnas.errors import ConfigError, RlnasError, first_line
from rlnas.evaluators.base import Measurement
from rlnas.models.children import CHILD_NETWORKS, create_child
from rlnas.optim.rule import Rule, as_rule
from rlnas.registry import check_options
from rlnas.spaces.optimizer_rules import FIELDS, OptimizerRulesSpace

OptimizerFactory = Callable[[Iterable[nn.Parameter], float, int, int], torch.optim.Optimizer]
"""``(params, lr, seed, total_steps) -> optimizer``."""

DEFAULT_LR_GRID: tuple[float, ...] = (1e-4, 1e-3, 1e-2, 1e-1, 1.0)


class RuleDiverged(RlnasError):
    """Training with the rule diverged at every learning rate of the grid; the message says how."""


MAX_LR = 1e6
"""Largest learning rate of a grid (beyond it, lr times a rule's factors leaves the float range)."""


@dataclass
class ChildRun:
    """One training of the child network at one learning rate."""

    lr: float
    valid_acc: float | None = None
    """Validation accuracy (percent) after the last step; ``None`` when training diverged."""
    test_acc: float | None = None
    train_loss: float | None = None
    """Mean training loss over the last tenth of the steps."""
    diverged: str | None = None
    """Why training stopped early, or ``None``."""
    curve: dict[str, list[float]] = field(default_factory=dict)
    """``step``, ``train_loss`` and ``valid_acc`` every ``record_every`` steps (when asked)."""


def rule_optimizer(rule: Rule | str, **hyper: Any) -> OptimizerFactory:
    """A factory of :class:`~rlnas.optim.RuleOptimizer` for ``rule`` (``total_steps`` is filled in by training)."""
    from rlnas.optim.optimizer import RuleOptimizer

    def make(params: Iterable[nn.Parameter], lr: float, seed: int, total_steps: int) -> torch.optim.Optimizer:
        return RuleOptimizer(params, rule, lr=lr, seed=seed, **({"total_steps": total_steps} | hyper))

    return make


class OptimizerEvaluator:
    """Rewards an update rule with the accuracy of a child network it trained (see the module docstring)."""

    name = "optimizer"
    metrics = ("valid_acc", "test_acc", "best_lr", "train_loss", "diverged_lrs", "train_time_s")
    failed_reward = 0.0
    """What a failed evaluation (a rule diverging at every learning rate) is worth to a controller:
    the lowest accuracy. The CLI gives it to REINFORCE / PPO as their ``fail_reward``."""

    def __init__(self, dataset: str = "mnist5k", network: str = "convnet", *, steps: int = 200,
                 batch_size: int = 64, lr_grid: Sequence[float] = DEFAULT_LR_GRID,
                 schedule: Sequence[Sequence[int]] | None = None, seed: int = 0, split_seed: int = 0,
                 data_root: str | None = None, network_options: Mapping[str, Any] | None = None,
                 dataset_options: Mapping[str, Any] | None = None, divergence_loss: float = 100.0,
                 eval_batch_size: int = 1000, exact_random: bool = False, threads: int | None = None,
                 device: str = "cpu"):
        check_arguments(OptimizerEvaluator, locals(), "optimizer evaluator")
        for label, value in (("steps", steps), ("batch_size", batch_size), ("eval_batch_size", eval_batch_size)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"optimizer evaluator: {label} must be a positive integer, got {value!r}")
        if isinstance(divergence_loss, bool) or not (isinstance(divergence_loss, (int, float))
                                                     and math.isfinite(divergence_loss) and divergence_loss > 0):
            raise ConfigError(f"optimizer evaluator: divergence_loss must be a positive number, "
                              f"got {divergence_loss!r}")
        self.dataset, self.network, self.steps, self.batch_size = dataset, network, steps, batch_size
        self.lr_grid = check_lr_grid(lr_grid)
        self.schedule = check_schedule(schedule)
        self.seed = check_evaluation_seed(seed, "optimizer evaluator: seed")
        self.split_seed = check_seed(split_seed, "optimizer evaluator: split_seed")
        self.data_root = absolute_path(data_root, "optimizer evaluator: data_root")
        self.network_options = dict(network_options or {})
        check_options(f"child network {network!r}", CHILD_NETWORKS.get(network), self.network_options, skip=2)
        self.dataset_options = dict(dataset_options or {})
        if not isinstance(exact_random, bool):
            raise ConfigError(f"optimizer evaluator: exact_random must be true or false, got {exact_random!r}")
        self.divergence_loss, self.eval_batch_size = float(divergence_loss), eval_batch_size
        self.exact_random = exact_random
        self.threads, self.device = check_threads(threads), check_device(device)
        self._data: DatasetSplits | None = None

    # ----------------------------------------------------------------- protocol
    def spec(self) -> dict[str, Any]:
        """``{"name": "optimizer", **options}`` for ``create_evaluator``: what is measured (the run
        options ``threads`` and ``device`` are not part of it)."""
        return {
            "name": self.name, "dataset": self.dataset, "network": self.network, "steps": self.steps,
            "batch_size": self.batch_size, "lr_grid": list(self.lr_grid), "schedule": self.schedule,
            "seed": self.seed, "split_seed": self.split_seed, "data_root": self.data_root,
            "network_options": self.network_options, "dataset_options": self.dataset_options,
            "divergence_loss": self.divergence_loss, "eval_batch_size": self.eval_batch_size,
            # only when set: studies stored before the option existed keep their identity
            **({"exact_random": True} if self.exact_random else {}),
        }

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_data"] = None  # workers load the data themselves
        return state

    @property
    def data(self) -> DatasetSplits:
        """The train/valid/test splits (loaded on first use, then kept; the child network is built once
        then, so that an option value it cannot take is a :class:`ConfigError` before any training)."""
        if self._data is None:
            data = load_dataset(self.dataset, self.data_root, split_seed=self.split_seed, **self.dataset_options)
            self._check_child(data)
            self._data = data
        return self._data

    def _check_child(self, data: DatasetSplits) -> None:
        try:
            with torch.random.fork_rng(devices=[]):
                model = create_child(self.network, data.input_shape, data.num_classes, **self.network_options)
                with torch.no_grad():
                    model(data.valid.tensors()[0][:1])
        except ConfigError:
            raise
        except (TypeError, ValueError, RuntimeError) as err:
            raise ConfigError(f"child network {self.network!r} with options {self.network_options} cannot "
                              f"take {self.dataset} images: {first_line(err)}") from None

    def prepare(self) -> None:
        """Check, before a study is created, that rules can be evaluated: load the data set and build
        the child network once (see :attr:`data`)."""
        _ = self.data

    def data_fingerprint(self) -> str | None:
        """The digest of the data (``DatasetSplits.fingerprint``) when they come from ``data_root``, else
        ``None`` (the shipped sets cannot change under a study): a resumed study checks it."""
        return None if self.data_root is None else self.data.fingerprint

    def budget_for(self, slot: int) -> int:
        """Training steps for the trial in ``slot`` under ``schedule`` (``steps`` without one)."""
        steps = self.steps
        for start, value in self.schedule or ():
            if slot >= start:
                steps = value
        return steps

    def evaluate(self, candidate: Mapping[str, Any], *, budget: float | None = None,
                 seed: int | None = None) -> Measurement:
        """Train the child with the candidate's rule over the learning-rate grid; ``budget`` = steps."""
        return self.evaluate_rule(rule_of_candidate(candidate), steps=None if budget is None else int(budget),
                                  seed=seed)

    def evaluate_rule(self, rule: Rule | str, *, steps: int | None = None, seed: int | None = None,
                      lr_grid: Sequence[float] | None = None) -> Measurement:
        """:meth:`evaluate` for a rule given directly (a :class:`Rule`, its written form or a name)."""
        parsed = as_rule(rule)
        hyper = {"exact_random": True} if self.exact_random else {}
        measurement = self.evaluate_optimizer(rule_optimizer(parsed, **hyper), steps=steps, seed=seed, lr_grid=lr_grid,
                                              label=f"rule {str(parsed)!r}")
        return Measurement(measurement.metrics, measurement.cost_seconds, {"rule": str(parsed), **measurement.info})

    def evaluate_optimizer(self, make_optimizer: OptimizerFactory, *, steps: int | None = None,
                           seed: int | None = None, lr_grid: Sequence[float] | None = None,
                           label: str = "optimizer", record_every: int | None = None) -> Measurement:
        """Train with any optimizer factory at every learning rate of the grid; the best one's metrics."""
        steps = self.steps if steps is None else steps
        if steps < 1:
            raise ConfigError(f"optimizer evaluator: budget {steps!r} gives no training step")
        seed = self.seed if seed is None else check_evaluation_seed(seed, "optimizer evaluator: seed")
        grid = self.lr_grid if lr_grid is None else check_lr_grid(lr_grid)
        start = time.perf_counter()
        runs = [self.train(make_optimizer, lr, steps=steps, seed=seed, record_every=record_every) for lr in grid]
        trained = [r for r in runs if r.diverged is None]
        if not trained:
            reasons = "; ".join(f"lr {r.lr:g}: {r.diverged}" for r in runs)
            raise RuleDiverged(f"{label} diverged at every learning rate ({reasons})")
        best = max(trained, key=lambda r: r.valid_acc)  # on ties, the first in grid order
        metrics = {"valid_acc": best.valid_acc, "test_acc": best.test_acc, "best_lr": best.lr,
                   "train_loss": best.train_loss, "diverged_lrs": float(len(runs) - len(trained)),
                   "train_time_s": time.perf_counter() - start}
        info = {"steps": steps, "seed": seed,
                "per_lr": [{"lr": r.lr, "valid_acc": r.valid_acc, "diverged": r.diverged} for r in runs]}
        if record_every:
            info["curves"] = {f"{r.lr:g}": r.curve for r in runs}
        return Measurement(metrics, time.perf_counter() - start, info)

    # ----------------------------------------------------------------- training
    def train(self, make_optimizer: OptimizerFactory, lr: float, *, steps: int, seed: int,
              record_every: int | None = None) -> ChildRun:
        """Train a fresh child (initialised from ``seed``) for ``steps`` steps at ``lr``."""
        data = self.data
        x_train, y_train = (t.to(self.device) for t in data.train.tensors())
        batch = min(self.batch_size, len(y_train))
        per_epoch = len(y_train) // batch
        run = ChildRun(lr)
        curve: dict[str, list[float]] = {"step": [], "train_loss": [], "valid_acc": []}
        with num_threads(self.threads), torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = create_child(self.network, data.input_shape, data.num_classes, **self.network_options)
            optimizer = make_optimizer(model.to(self.device).parameters(), lr, seed, steps)
            gen = torch.Generator().manual_seed(seed)
            order = torch.randperm(len(y_train), generator=gen).to(self.device)
            losses: list[float] = []
            recorded = 0
            for step in range(steps):
                i = step % per_epoch
                if step and i == 0:
                    order = torch.randperm(len(y_train), generator=gen).to(self.device)
                index = order[i * batch:(i + 1) * batch]
                loss = F.cross_entropy(model(x_train[index]), y_train[index])
                value = loss.item()
                if not math.isfinite(value) or value > self.divergence_loss:
                    run.diverged = f"loss {value:.4g} at step {step + 1}"
                    break
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                try:
                    optimizer.step()
                except RuntimeError as exc:  # e.g. lr x the rule's factor beyond float range: the rule failed here
                    run.diverged = f"the step failed at step {step + 1}: {first_line(exc)}"
                    break
                losses.append(value)
                if record_every and ((step + 1) % record_every == 0 or step + 1 == steps):
                    curve["step"].append(step + 1)
                    curve["train_loss"].append(sum(losses[recorded:]) / len(losses[recorded:]))
                    curve["valid_acc"].append(self._accuracy(model, data.valid))
                    recorded = len(losses)
            if run.diverged is None and not all(bool(torch.isfinite(p).all()) for p in model.parameters()):
                run.diverged = f"a weight is not finite after step {steps}"
            if run.diverged is None:
                run.valid_acc = curve["valid_acc"][-1] if record_every else self._accuracy(model, data.valid)
                run.test_acc = self._accuracy(model, data.test)
                tail = losses[-max(1, steps // 10):]
                run.train_loss = sum(tail) / len(tail)
        if record_every:
            run.curve = curve
        return run

    @torch.no_grad()
    def _accuracy(self, model: nn.Module, split: Any) -> float:
        """Top-1 accuracy in percent on ``split``."""
        x, y = (t.to(self.device) for t in split.tensors())
        correct = 0
        for start in range(0, len(y), self.eval_batch_size):
            logits = model(x[start:start + self.eval_batch_size])
            correct += int((logits.argmax(1) == y[start:start + self.eval_batch_size]).sum())
        return 100.0 * correct / max(len(y), 1)


def rule_of_candidate(candidate: Mapping[str, Any]) -> Rule:
    """The rule of an ``optimizer_rules`` candidate, whatever its number of iterations."""
    iterations = len(candidate) // len(FIELDS)
    if iterations < 1 or len(candidate) != iterations * len(FIELDS):
        raise ConfigError(f"optimizer evaluator: {dict(candidate)!r} is not a candidate of the optimizer_rules space")
    return OptimizerRulesSpace(iterations).rule_of(candidate)


def check_lr_grid(lr_grid: Any) -> list[float]:
    """``lr_grid`` as a list of floats, each in ``(0, MAX_LR]``, or a one-line :class:`ConfigError`."""
    grid = list(lr_grid) if isinstance(lr_grid, (list, tuple)) else None
    if not grid or not all(isinstance(x, (int, float)) and not isinstance(x, bool) and 0 < x <= MAX_LR
                           for x in grid):
        raise ConfigError(f"optimizer evaluator: lr_grid must be a non-empty list of numbers in (0, {MAX_LR:g}], "
                          f"got {lr_grid!r}")
    return [float(x) for x in grid]


def check_schedule(schedule: Sequence[Sequence[int]] | None) -> list[list[int]] | None:
    """Validate ``[[first slot, steps], ...]`` (integers; slots increasing from 0, steps positive)."""
    if schedule is None:
        return None
    try:
        if any(isinstance(x, bool) or not isinstance(x, numbers.Integral) for pair in schedule for x in pair):
            raise TypeError
        pairs = [[int(a), int(b)] for a, b in schedule]
    except (TypeError, ValueError):
        raise ConfigError(f"optimizer evaluator: schedule must be [[first trial, steps], ...], "
                          f"got {schedule!r}") from None
    starts = [a for a, _ in pairs]
    if not pairs or starts[0] != 0 or starts != sorted(set(starts)) or any(b < 1 for _, b in pairs):
        raise ConfigError(f"optimizer evaluator: schedule {schedule!r} must start at trial 0, with increasing "
                          "trials and positive steps")
    return pairs
