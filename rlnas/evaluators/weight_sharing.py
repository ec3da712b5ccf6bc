"""The base of weight-sharing evaluators (TuNAS ``supernet``, ENAS ``shared``).

One supernet holds every candidate's weights; ``train_step`` trains the path of one candidate
on the next training minibatch (SGD with Nesterov momentum, cosine learning-rate decay over the
whole search, gradient clipping); ``evaluate`` measures a candidate's path on the next
validation minibatch (``split="valid_batch"``: the controller's reward) or on the whole
validation split (``split="valid"``: recorded trials). Everything that moves is in
``state_dict``: supernet weights, optimizer and schedule, the step, and the data streams'
orders and generators, so a resumed search continues bit for bit on the CPU.

A trial is recorded every ``record_every`` shared steps (default: one epoch).

Subclasses build the supernet (``build_supernet``), may change the path actually trained at a
step (``train_path``, e.g. TuNAS warm-up), the input (``transform``) and add metrics (``extra_metrics``).
"""
from __future__ import annotations

import math
import time
from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from rlnas.checks import MAX_EPOCHS, absolute_path, check_device, check_seed, check_sgd_options, check_threads
from rlnas.costs.measure import num_threads
from rlnas.datasets import load_dataset
from rlnas.errors import ConfigError
from rlnas.evaluators.base import Measurement
from rlnas.spaces.base import Candidate, Space


class _Stream:
    """Minibatches of a split in a seeded order that reshuffles every pass; resumable."""

    def __init__(self, size: int, batch: int, seed: int):
        self.size, self.batch = size, min(batch, size)
        self.generator = torch.Generator().manual_seed(seed)
        self.order = torch.randperm(size, generator=self.generator)
        self.position = 0

    def next(self) -> torch.Tensor:
        if self.position + self.batch > self.size:
            self.order = torch.randperm(self.size, generator=self.generator)
            self.position = 0
        index = self.order[self.position:self.position + self.batch]
        self.position += self.batch
        return index

    def state_dict(self) -> dict[str, Any]:
        return {"generator": self.generator.get_state(), "order": self.order.clone(), "position": self.position}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.generator.set_state(state["generator"])
        self.order = state["order"].clone()
        self.position = int(state["position"])


class WeightSharingEvaluator(ABC):
    """Trains one supernet while a weight-sharing search runs (see the module docstring)."""

    name = ""
    quality_metric = "supernet_acc"
    """Name of the accuracy metric (percent) that ``evaluate`` reports."""

    @property
    def default_reward(self) -> str:
        """The metric a study maximises when it names no reward: the accuracy through the supernet."""
        return self.quality_metric

    def __init__(self, space: str | Space, dataset: str = "mnist5k", *, epochs: float = 10, batch_size: int = 64,
                 valid_batch_size: int = 256, lr: float = 0.05, momentum: float = 0.9, weight_decay: float = 4e-5,
                 grad_clip: float = 5.0, seed: int = 0, data_root: str | None = None, split_seed: int = 0,
                 dataset_options: Mapping[str, Any] | None = None, record_every: int | None = None,
                 device: str = "cpu", threads: int | None = None):
        if isinstance(space, str):
            from rlnas.spaces import create_space

            space = create_space(space)
        self.space: Space = space
        for label, value in (("epochs", epochs), ("batch_size", batch_size), ("valid_batch_size", valid_batch_size),
                             ("lr", lr), ("grad_clip", grad_clip)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
                raise ConfigError(f"{self.name or 'weight-sharing'} evaluator: {label} must be a positive number, "
                                  f"got {value!r}")
        if epochs > MAX_EPOCHS:
            raise ConfigError(f"{self.name or 'weight-sharing'} evaluator: epochs must be at most {MAX_EPOCHS:,}, "
                              f"got {epochs!r}")
        label = f"{self.name or 'weight-sharing'} evaluator"
        check_sgd_options(momentum, weight_decay, label)
        seed, split_seed = check_seed(seed, f"{label}: seed"), check_seed(split_seed, f"{label}: split_seed")
        self.dataset, self.split_seed = dataset, int(split_seed)
        self.data_root = absolute_path(data_root, f"{type(self).__name__}: data_root")
        self.dataset_options = dict(dataset_options or {})
        self.epochs, self.batch_size, self.valid_batch_size = epochs, int(batch_size), int(valid_batch_size)
        self.lr, self.momentum, self.weight_decay, self.grad_clip = float(lr), float(momentum), float(weight_decay), \
            float(grad_clip)
        if record_every is not None and (isinstance(record_every, bool) or not isinstance(record_every, int)
                                         or record_every < 1):
            raise ConfigError(f"record_every must be a positive integer number of steps, got {record_every!r}")
        self.record_every = record_every
        self.seed, self.device, self.threads = int(seed), check_device(device), check_threads(threads)
        self.step = 0
        self._data: Any = None
        self._supernet: nn.Module | None = None
        self._optimizer: torch.optim.Optimizer | None = None
        self._schedule: Any = None
        self._train: _Stream | None = None
        self._valid: _Stream | None = None

    # ------------------------------------------------------------ subclass API
    @abstractmethod
    def build_supernet(self, num_classes: int, in_channels: int) -> nn.Module:
        """The supernet: ``module(x, candidate)`` runs ``candidate``'s path (weights from the torch RNG)."""

    def train_path(self, candidate: Candidate, step: int, total_steps: int) -> Any:
        """What the supernet runs when training ``candidate`` at ``step`` (TuNAS warm-up changes it)."""
        return candidate

    def transform(self, x: torch.Tensor) -> torch.Tensor:
        """The input as the supernet takes it (e.g. upscaled); identity by default."""
        return x

    def extra_metrics(self, candidate: Candidate) -> dict[str, float]:
        """Metrics besides the accuracy (e.g. the candidate's cost)."""
        return {}

    def spec_options(self) -> dict[str, Any]:
        """Options of the subclass that belong in ``spec()``."""
        return {}

    # ---------------------------------------------------------------- protocol
    def prepare(self) -> None:
        """Check, before a study is created, that the search can run: load the data set and build the
        supernet (an option it cannot take is a :class:`ConfigError`; the search would build it first)."""
        self._ensure_built()

    @property
    def data(self) -> Any:
        """The train/valid/test splits (loaded on first use)."""
        if self._data is None:
            self._data = load_dataset(self.dataset, self.data_root, split_seed=self.split_seed, **self.dataset_options)
        return self._data

    def data_fingerprint(self) -> str | None:
        """The digest of the data (``DatasetSplits.fingerprint``) when they come from ``data_root``, else
        ``None`` (the shipped sets cannot change under a study): a resumed study checks it."""
        return None if self.data_root is None else self.data.fingerprint

    @property
    def steps_per_epoch(self) -> int:
        """Training minibatches per pass over the train split."""
        return max(1, len(self.data.train) // min(self.batch_size, len(self.data.train)))

    @property
    def total_steps(self) -> int:
        """Shared-weight steps of the whole search (``epochs`` passes)."""
        return max(1, math.ceil(self.epochs * self.steps_per_epoch))

    @property
    def supernet(self) -> nn.Module:
        """The shared weights (built on first use, seeded by ``seed``)."""
        self._ensure_built()
        assert self._supernet is not None
        return self._supernet

    def _ensure_built(self) -> None:
        if self._supernet is not None:
            return
        shape = self.data.input_shape
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            self._supernet = self.build_supernet(self.data.num_classes, shape[0]).to(self.device)
        self._optimizer = torch.optim.SGD(self._supernet.parameters(), lr=self.lr, momentum=self.momentum,
                                          weight_decay=self.weight_decay, nesterov=self.momentum > 0)
        self._schedule = torch.optim.lr_scheduler.CosineAnnealingLR(self._optimizer, T_max=self.total_steps)
        self._train = _Stream(len(self.data.train), self.batch_size, self.seed + 1)
        self._valid = _Stream(len(self.data.valid), self.valid_batch_size, self.seed + 2)

    def train_step(self, candidate: Candidate, *, step: int | None = None,
                   total_steps: int | None = None) -> dict[str, float]:
        """Train ``candidate``'s path on the next training minibatch; returns ``{"loss": ...}``."""
        self._ensure_built()
        assert self._train is not None and self._optimizer is not None
        total = self.total_steps if total_steps is None else total_steps
        x, y = self.data.train.batch(self._train.next())
        with num_threads(self.threads), torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed * 1_000_003 + self.step)  # dropout/drop-path, if any: a function of the step
            self.supernet.train()
            path = self.train_path(candidate, self.step if step is None else step, total)
            loss = F.cross_entropy(self.supernet(self.transform(x.to(self.device)), path), y.to(self.device))
            if not torch.isfinite(loss):
                raise ConfigError(f"supernet training diverged at step {self.step + 1}: loss {loss.item()}; try a "
                                  "smaller lr")
            self._optimizer.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(self.supernet.parameters(), self.grad_clip)
            self._optimizer.step()
            self._schedule.step()
        self.step += 1
        return {"loss": float(loss.item())}

    def evaluate(self, candidate: Candidate, *, split: str = "valid", budget: float | None = None,
                 seed: int | None = None) -> Measurement:
        """Accuracy of ``candidate``'s path on the next validation minibatch or the whole split."""
        self._ensure_built()
        assert self._valid is not None
        start = time.perf_counter()
        if split == "valid_batch":
            index = self._valid.next()
        elif split in ("valid", "test"):
            # A fixed shuffled order: a supernet normalising with batch statistics needs batches that
            # mix the classes, and a split may be stored sorted by label.
            order = torch.Generator().manual_seed(self.seed + 3)
            index = torch.randperm(len(getattr(self.data, split)), generator=order)
        else:
            raise ConfigError(f"unknown split {split!r} (choices: valid_batch, valid, test)")
        images = getattr(self.data, "valid" if split == "valid_batch" else split)
        correct = 0
        with num_threads(self.threads), torch.no_grad():
            self.supernet.eval()
            for chunk in index.split(512):
                x, y = images.batch(chunk)
                logits = self.supernet(self.transform(x.to(self.device)), candidate)
                correct += int((logits.argmax(1).cpu() == y).sum())
        metrics = {self.quality_metric: 100.0 * correct / max(len(index), 1)} | self.extra_metrics(candidate)
        return Measurement(metrics, time.perf_counter() - start, {"split": split, "step": self.step})

    def state_dict(self) -> dict[str, Any]:
        """Weights, optimizer, schedule, step and data streams."""
        self._ensure_built()
        assert self._optimizer is not None and self._train is not None and self._valid is not None
        return {"supernet": self.supernet.state_dict(), "optimizer": self._optimizer.state_dict(),
                "schedule": self._schedule.state_dict(), "step": self.step,
                "train": self._train.state_dict(), "valid": self._valid.state_dict()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Continue exactly where :meth:`state_dict` was taken."""
        self._ensure_built()
        assert self._optimizer is not None and self._train is not None and self._valid is not None
        self.supernet.load_state_dict(state["supernet"])
        self._optimizer.load_state_dict(state["optimizer"])
        self._schedule.load_state_dict(state["schedule"])
        self.step = int(state["step"])
        self._train.load_state_dict(state["train"])
        self._valid.load_state_dict(state["valid"])

    def spec(self) -> dict[str, Any]:
        """``{"name": ..., **options}`` for ``create_evaluator`` (run options excluded)."""
        return {"name": self.name, "space": self.space.name, "dataset": self.dataset, "epochs": self.epochs,
                "batch_size": self.batch_size, "valid_batch_size": self.valid_batch_size, "lr": self.lr,
                "momentum": self.momentum, "weight_decay": self.weight_decay, "grad_clip": self.grad_clip,
                "seed": self.seed, "data_root": self.data_root, "split_seed": self.split_seed,
                "dataset_options": self.dataset_options, "record_every": self.record_every} | self.spec_options()


__all__ = ["WeightSharingEvaluator"]
