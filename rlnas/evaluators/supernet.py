"""The ``supernet`` evaluator: trains one weight-sharing supernet of a mobile space and scores its paths.

A weight-sharing driver alternates :meth:`SupernetEvaluator.train_step` (one SGD step of the
shared weights on a training batch, on the path an agent chose) with
:meth:`SupernetEvaluator.evaluate` (a path's accuracy on the next validation minibatch for a
controller's reward, or on the whole validation split for a recorded trial).

TuNAS's warm-up acts in ``train_step``, at shared step ``t`` of ``T``:

* op warm-up: every op decision (kernel, squeeze-excite, skip, depth) independently runs all
  its choices, averaged, with probability ``p = 1 − t / (op_warmup · T)`` (0 afterwards);
* filter warm-up: every filter decision (width, expansion) independently takes its largest
  count with probability ``q = 1 − t / (filter_warmup · T)``.

Both draws come from a generator seeded by ``(seed, t)``; the training batches of epoch ``e``
are a permutation seeded by ``(seed, e)``; the learning rate is a closed-form cosine of ``t``.
So the whole search state is the supernet's weights, the optimizer's momenta and the count of
validation batches drawn (:meth:`state_dict`): a resumed search is bit-identical on the CPU.

Metrics of :meth:`evaluate`: ``supernet_acc`` (a fraction in [0, 1], like TuNAS's quality
term, so the published β values apply), ``cost`` and the same number under its unit's name
(``latency_ms``, ``flops_m`` or ``params_m``): the cost model's value for the deployable
network (the candidate at the space's own resolution, see :mod:`rlnas.costs.models`).
BatchNorm always uses the statistics of the batch being scored (the supernet keeps none).

Small images: unless ``model_kwargs`` says otherwise, images under 64 px train with
``stem_stride=1`` and ``input_size`` = their own size (so OFA's resolution choice scales them);
width multiplier 0.35.
"""
from __future__ import annotations

import math
import time
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from rlnas.costs.measure import num_threads
from rlnas.costs.models import COST_UNITS, CostModel, create_cost_model
from rlnas.datasets import DatasetSplits, ImageData, load_dataset
from rlnas.errors import ConfigError
from rlnas.evaluators.base import Measurement
from rlnas.evaluators.train import TrainingDiverged
from rlnas.models import create_supernet
from rlnas.models.supernet import MobileSupernet, decision_role
from rlnas.models.supernet_layers import recalibrate_batchnorm
from rlnas.spaces.base import Candidate, Choice, Space
from rlnas.spaces.mobilenet import MobileSpace

SMALL_IMAGE = 64
"""Images smaller than this many pixels get ``stem_stride=1`` by default."""
REWARDS = ("abs", "soft", "hard")


def derived_seed(*parts: int) -> int:
    """A 63-bit seed from integers (``numpy.random.SeedSequence``), for per-step and per-epoch generators."""
    return int(np.random.SeedSequence([int(p) for p in parts]).generate_state(2, np.uint64)[0] >> 1)


def linear_decay(step: int, steps: int) -> float:
    """1 at step 0 falling linearly to 0 at ``steps`` (0 throughout when ``steps`` is 0)."""
    return max(0.0, 1.0 - step / steps) if steps > 0 else 0.0


class SupernetEvaluator:
    """Weight-sharing evaluator of the mobile spaces (see the module docstring)."""

    name = "supernet"

    def __init__(self, space: str | Space = "proxyless", dataset: str = "mnist5k", *, epochs: float = 10,
                 batch_size: int = 64, valid_batch_size: int = 256, lr: float = 0.1, momentum: float = 0.9,
                 weight_decay: float = 4e-5, seed: int = 0, data_root: str | None = None, split_seed: int = 0,
                 valid_fraction: float | None = None, dataset_options: Mapping[str, Any] | None = None,
                 model_kwargs: Mapping[str, Any] | None = None, op_warmup: float = 0.25,
                 filter_warmup: float = 0.25, remat: bool = False, cost: str = "latency",
                 latency_table: str | None = None, device: str = "cpu", threads: int | None = None,
                 eval_batch_size: int = 500, channels_last: bool = True):
        if isinstance(space, str):
            from rlnas.spaces import create_space

            space = create_space(space)
        if not isinstance(space, MobileSpace):
            raise ConfigError(f"supernet evaluator: space {space.name!r} is not a mobile space "
                              "(choices: ofa_mbv3, proxyless, proxyless_enlarged, tunas_mbv3)")
        self.space: Space = space
        for label, value in (("epochs", epochs), ("batch_size", batch_size), ("valid_batch_size", valid_batch_size),
                             ("lr", lr), ("eval_batch_size", eval_batch_size)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise ConfigError(f"supernet evaluator: {label} must be a positive number, got {value!r}")
        for label, value in (("op_warmup", op_warmup), ("filter_warmup", filter_warmup)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
                raise ConfigError(f"supernet evaluator: {label} must be a fraction in [0, 1], got {value!r}")
        if cost not in COST_UNITS:
            raise ConfigError(f"supernet evaluator: unknown cost {cost!r} (choices: {', '.join(COST_UNITS)})")
        self.dataset, self.data_root, self.split_seed = dataset, data_root, int(split_seed)
        self.valid_fraction = valid_fraction
        self.dataset_options = dict(dataset_options or {})
        self.epochs, self.batch_size, self.valid_batch_size = epochs, int(batch_size), int(valid_batch_size)
        self.lr, self.momentum, self.weight_decay = float(lr), float(momentum), float(weight_decay)
        self.seed, self.remat, self.device, self.threads = int(seed), bool(remat), device, threads
        self.op_warmup, self.filter_warmup = float(op_warmup), float(filter_warmup)
        self.cost, self.latency_table = cost, latency_table
        self.eval_batch_size = int(eval_batch_size)
        self.channels_last = bool(channels_last)
        self.model_kwargs = dict(model_kwargs) if model_kwargs is not None else None
        self._data: DatasetSplits | None = None
        self._supernet: MobileSupernet | None = None
        self._optimizer: torch.optim.Optimizer | None = None
        self._cost_model: CostModel | None = None
        self._built_entries: dict[str, float] | None = None
        self.valid_batches = 0
        self.roles = {d.name: decision_role(d.name) for d in space.decisions}

    # ----------------------------------------------------------------- spec
    def spec(self) -> dict[str, Any]:
        """``{"name": "supernet", **options}`` for ``create_evaluator``."""
        return {
            "name": self.name, "space": self.space.name, "dataset": self.dataset, "epochs": self.epochs,
            "batch_size": self.batch_size, "valid_batch_size": self.valid_batch_size, "lr": self.lr,
            "momentum": self.momentum, "weight_decay": self.weight_decay, "seed": self.seed,
            "data_root": self.data_root, "split_seed": self.split_seed, "valid_fraction": self.valid_fraction,
            "dataset_options": self.dataset_options, "model_kwargs": self.model_kwargs,
            "op_warmup": self.op_warmup, "filter_warmup": self.filter_warmup, "remat": self.remat,
            "cost": self.cost, "latency_table": self.latency_table, "device": self.device,
            "threads": self.threads, "eval_batch_size": self.eval_batch_size, "channels_last": self.channels_last,
        }

    # ------------------------------------------------------------ lazy parts
    @property
    def data(self) -> DatasetSplits:
        """The train/valid/test splits (loaded on first use)."""
        if self._data is None:
            self._data = load_dataset(self.dataset, self.data_root, split_seed=self.split_seed,
                                      valid_fraction=self.valid_fraction, **self.dataset_options)
            if len(self._data.train) < self.batch_size:
                raise ConfigError(f"supernet evaluator: batch_size {self.batch_size} is larger than the "
                                  f"{len(self._data.train)} training images")
        return self._data

    def resolved_model_kwargs(self) -> dict[str, Any]:
        """Supernet options: ``model_kwargs`` or the small-image defaults, plus the data's classes and channels."""
        channels, height, _ = self.data.input_shape
        if self.model_kwargs is None:
            kwargs: dict[str, Any] = {"width_mult": 0.35}
            if height < SMALL_IMAGE:
                kwargs.update(stem_stride=1, input_size=height)
        else:
            kwargs = dict(self.model_kwargs)
        kwargs.setdefault("num_classes", self.data.num_classes)
        kwargs.setdefault("in_channels", channels)
        return kwargs

    @property
    def supernet(self) -> MobileSupernet:
        """The shared weights (initialised from ``seed`` on first use, without touching the global RNG)."""
        if self._supernet is None:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(self.seed)
                net = create_supernet(self.space, **self.resolved_model_kwargs(), remat=self.remat)
            self._supernet = net.to(self.device, memory_format=self.memory_format)
        return self._supernet

    @property
    def memory_format(self) -> torch.memory_format:
        """``channels_last`` (several times faster depthwise convs on the CPU) or ``contiguous_format``."""
        return torch.channels_last if self.channels_last else torch.contiguous_format

    def _input(self, x: torch.Tensor) -> torch.Tensor:
        return x.to(self.device).contiguous(memory_format=self.memory_format)

    @property
    def optimizer(self) -> torch.optim.Optimizer:
        """SGD with Nesterov momentum over the shared weights (learning rate set every step)."""
        if self._optimizer is None:
            self._optimizer = torch.optim.SGD(self.supernet.parameters(), lr=self.lr, momentum=self.momentum,
                                              weight_decay=self.weight_decay, nesterov=self.momentum > 0)
        return self._optimizer

    @property
    def cost_model(self) -> CostModel:
        """The cost of deployable networks (see :mod:`rlnas.costs.models`)."""
        if self._cost_model is None:
            self._cost_model = create_cost_model(self.space, self.cost, model_kwargs=self.resolved_model_kwargs(),
                                                 latency_table=self.latency_table, entries=self._built_entries)
        return self._cost_model

    # ------------------------------------------------------------- schedule
    @property
    def steps_per_epoch(self) -> int:
        """Full training batches per epoch."""
        return len(self.data.train) // self.batch_size

    @property
    def total_steps(self) -> int:
        """Shared-weight steps of the whole search: ``ceil(epochs · steps_per_epoch)``."""
        return max(1, math.ceil(self.epochs * self.steps_per_epoch))

    def learning_rate(self, step: int, total_steps: int) -> float:
        """Cosine decay from ``lr`` at step 0 towards 0 at ``total_steps``."""
        return 0.5 * self.lr * (1.0 + math.cos(math.pi * min(step, total_steps) / total_steps))

    def warmup_path(self, candidate: Mapping[str, Choice], step: int, total_steps: int) -> tuple[Candidate, frozenset[str]]:
        """The path shared step ``step`` trains for ``candidate``: filter warm-up applied, op warm-up names."""
        p = linear_decay(step, round(self.op_warmup * total_steps))
        q = linear_decay(step, round(self.filter_warmup * total_steps))
        if p == 0 and q == 0:
            return self.space.candidate(candidate), frozenset()
        rng = np.random.default_rng(derived_seed(self.seed, 1, step))
        choices = dict(candidate)
        all_ops = set()
        for d in self.space.decisions:
            draw = rng.random()
            if self.roles[d.name] == "op" and draw < p:
                all_ops.add(d.name)
            elif self.roles[d.name] == "filters" and draw < q:
                choices[d.name] = max(d.choices)
        return self.space.candidate(choices), frozenset(all_ops)

    def train_batch(self, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Training batch of shared step ``step``: slice ``step mod steps_per_epoch`` of epoch ``step // steps_per_epoch``'s permutation."""
        epoch, i = divmod(step, self.steps_per_epoch)
        order = torch.randperm(len(self.data.train), generator=torch.Generator().manual_seed(derived_seed(self.seed, 2, epoch)))
        return self.data.train.batch(order[i * self.batch_size : (i + 1) * self.batch_size])

    def valid_batch(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Validation minibatch number ``index`` (the split is walked in seeded permutations, batch by batch)."""
        n = len(self.data.valid)
        size = min(self.valid_batch_size, n)
        per_pass = n // size
        epoch, i = divmod(index, per_pass)
        order = torch.randperm(n, generator=torch.Generator().manual_seed(derived_seed(self.seed, 3, epoch)))
        return self.data.valid.batch(order[i * size : (i + 1) * size])

    # ------------------------------------------------------------- protocol
    def train_step(self, candidate: Mapping[str, Choice], *, step: int, total_steps: int) -> dict[str, float]:
        """One SGD step of the shared weights on ``candidate``'s path (with warm-up) and the next training batch."""
        self.space.validate(candidate)
        path, all_ops = self.warmup_path(candidate, step, total_steps)
        x, y = self.train_batch(step)
        lr = self.learning_rate(step, total_steps)
        net, optimizer = self.supernet, self.optimizer
        for group in optimizer.param_groups:
            group["lr"] = lr
        with num_threads(self.threads):
            net.train()
            loss = F.cross_entropy(net(self._input(x), path, all_ops=all_ops), y.to(self.device))
            if not torch.isfinite(loss):
                raise TrainingDiverged(f"supernet training diverged at step {step + 1}: loss {loss.item()} (lr {lr:.4g}); "
                                  "try a smaller lr")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(net.parameters(), 5.0)
            optimizer.step()
        return {"loss": loss.item(), "lr": lr, "op_warmup_p": linear_decay(step, round(self.op_warmup * total_steps)),
                "filter_warmup_q": linear_decay(step, round(self.filter_warmup * total_steps)),
                "all_ops": float(len(all_ops))}

    def evaluate(self, candidate: Mapping[str, Choice], *, split: str = "valid", seed: int | None = None,
                 budget: float | None = None) -> Measurement:
        """Score ``candidate``'s path with the shared weights on the next validation minibatch
        (``split="valid_batch"``) or on the whole validation split (``"valid"``); ``seed`` and
        ``budget`` are accepted for the evaluator protocol and not used."""
        start = time.perf_counter()
        candidate = self.space.candidate(candidate)
        if split == "valid_batch":
            x, y = self.valid_batch(self.valid_batches)
            self.valid_batches += 1
            acc = self._accuracy(candidate, [(x, y)])
        elif split == "valid":
            acc = self._accuracy(candidate, self._chunks(self.data.valid))
        else:
            raise ConfigError(f"supernet evaluator: split must be 'valid_batch' or 'valid', got {split!r}")
        cost = self.cost_model(candidate)
        metrics = {"supernet_acc": acc, "cost": cost, self.cost_model.metric: cost}
        return Measurement(metrics, time.perf_counter() - start, {"split": split, "cost_unit": self.cost_model.unit})

    def _chunks(self, split: ImageData) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """The whole split in batches of ``eval_batch_size``, in a fixed shuffled order: BatchNorm with
        batch statistics needs batches that mix the classes (a split may be stored sorted by label)."""
        order = torch.randperm(len(split), generator=torch.Generator().manual_seed(derived_seed(self.seed, 4)))
        return [split.batch(order[s : s + self.eval_batch_size]) for s in range(0, len(split), self.eval_batch_size)]

    @torch.no_grad()
    def _accuracy(self, candidate: Candidate, batches: list[tuple[torch.Tensor, torch.Tensor]]) -> float:
        net = self.supernet
        net.eval()
        correct = total = 0
        with num_threads(self.threads):
            for x, y in batches:
                correct += int((net(self._input(x), candidate).argmax(1).cpu() == y).sum())
                total += len(y)
        return correct / max(total, 1)

    # ---------------------------------------------------------------- state
    def state_dict(self) -> dict[str, Any]:
        """Shared weights, optimizer momenta, validation batches drawn, and a latency table measured in this run."""
        return {"supernet": self.supernet.state_dict(), "optimizer": self.optimizer.state_dict(),
                "valid_batches": self.valid_batches, "latency_entries": self.cost_model.extra_entries()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state_dict` (into a fresh evaluator built from the same :meth:`spec`)."""
        self.supernet.load_state_dict(state["supernet"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.valid_batches = int(state["valid_batches"])
        if state.get("latency_entries"):
            self._built_entries = dict(state["latency_entries"])
            self._cost_model = None

    # ------------------------------------------------------------ after search
    def check_reward(self, reward: str, *, beta: float, target: float) -> None:
        """Raise a one-line :class:`ConfigError` when a cost-aware reward cannot work with this cost model:
        an unknown reward, ``beta`` not negative, or ``target`` outside the space's cost range."""
        if reward not in REWARDS:
            raise ConfigError(f"unknown reward {reward!r} (choices: {', '.join(REWARDS)})")
        if isinstance(beta, bool) or not isinstance(beta, (int, float)) or not math.isfinite(beta) or not beta < 0:
            raise ConfigError(f"reward {reward!r}: beta must be negative (a cost above the target lowers the "
                              f"reward), got {beta!r}")
        low, high = self.cost_model.range()
        if isinstance(target, bool) or not isinstance(target, (int, float)) or not low <= target <= high:
            raise ConfigError(f"target {target!r} {self.cost_model.unit} is outside the {self.cost} range of space "
                              f"{self.space.name!r}: {low:.4g} (smallest) to {high:.4g} (largest)")

    def export_model(self, candidate: Mapping[str, Choice], *, finetune_epochs: float = 0,
                     calibration_batches: int = 10) -> nn.Module:
        """``candidate``'s stand-alone network with the inherited weights, optionally fine-tuned on the
        training split (SGD, cosine, ``finetune_epochs``), BatchNorm statistics recalibrated on
        ``calibration_batches`` training batches; returned in eval mode."""
        candidate = self.space.candidate(candidate)
        model = self.supernet.extract(candidate).to(memory_format=self.memory_format)
        steps = math.ceil(finetune_epochs * self.steps_per_epoch)
        with num_threads(self.threads):
            if steps > 0:
                self._finetune(model, steps)
            recalibrate_batchnorm(model, [self._input(self.train_batch(i)[0])
                                          for i in range(min(calibration_batches, self.steps_per_epoch))])
        return model.eval()

    def _finetune(self, model: nn.Module, steps: int) -> None:
        optimizer = torch.optim.SGD(model.parameters(), lr=self.lr, momentum=self.momentum,
                                    weight_decay=self.weight_decay, nesterov=self.momentum > 0)
        model.train()
        for step in range(steps):
            for group in optimizer.param_groups:
                group["lr"] = self.learning_rate(step, steps) * 0.1
            x, y = self.train_batch(step)
            loss = F.cross_entropy(model(self._input(x)), y.to(self.device))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 5.0)
            optimizer.step()

    @torch.no_grad()
    def accuracy_of(self, model: nn.Module, split: str = "test") -> float:
        """Accuracy (fraction) of a stand-alone ``model`` in eval mode on ``split``."""
        model.eval()
        data = getattr(self.data, split)
        correct = sum(int((model(self._input(x)).argmax(1).cpu() == y).sum()) for x, y in self._chunks(data))
        return correct / max(len(data), 1)
