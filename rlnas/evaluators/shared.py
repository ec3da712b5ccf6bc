"""The ``shared`` evaluator: ENAS's shared weights, trained one sampled child at a time, scoring children.

A weight-sharing driver alternates :meth:`SharedEvaluator.train_step` (one SGD step of the
supernet on one child's path and the next training batch) with :meth:`SharedEvaluator.evaluate`
(a child's accuracy with the shared weights on the next validation minibatch, the ENAS
reward, or on the whole validation split, a recorded trial). The supernet is
:func:`rlnas.models.enas.enas_supernet`: every op of every layer / cell edge owns one set of
weights and a child runs only its own path; BatchNorm always normalises with the statistics
of the batch it sees (ENAS's shared-weight setting).

Schedule (ENAS's child training): SGD with Nesterov momentum 0.9, weight decay, gradient
norm clipped at 5, learning rate a closed-form cosine of the shared step from ``lr`` to 0
over the search. Training batches of epoch ``e`` come from a permutation seeded by
``(seed, e)``, validation minibatches from permutations of the validation split seeded by
``(seed, pass)``, so the whole state is the weights, the optimizer's momenta and the number
of validation minibatches drawn (:meth:`state_dict`): a resumed search is bit-identical on
the CPU.

Metric: ``shared_acc``, accuracy in percent (like ``valid_acc`` of the other evaluators).
Small images: unless ``model_kwargs`` says otherwise, a CPU-sized network (8 channels; the
micro network with 2 normal cells; stem stride 2 for 16 to 31 pixel images such as
MNIST's 28).
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
from rlnas.datasets import DatasetSplits, ImageData, load_dataset
from rlnas.errors import ConfigError
from rlnas.evaluators.base import Measurement
from rlnas.evaluators.train import TrainingDiverged
from rlnas.models.enas import enas_supernet
from rlnas.spaces.base import Candidate, Choice, Space

SPLITS = ("valid_batch", "valid", "test")
CPU_MODEL_KWARGS: dict[str, dict[str, Any]] = {
    "enas_macro": {"channels": 8},
    "enas_micro": {"channels": 8, "layers": 2},
}
"""Network sizes used when ``model_kwargs`` is not given (see the module docstring)."""


def derived_seed(*parts: int) -> int:
    """A 63-bit seed from integers (``numpy.random.SeedSequence``)."""
    return int(np.random.SeedSequence([int(p) for p in parts]).generate_state(1, np.uint64)[0] >> 1)


class SharedEvaluator:
    """ENAS weight-sharing evaluator of ``enas_macro`` / ``enas_micro`` (see the module docstring)."""

    name = "shared"

    def __init__(self, space: str | Space = "enas_micro", dataset: str = "mnist5k", *, epochs: float = 10,
                 batch_size: int = 64, valid_batch_size: int = 64, lr: float = 0.05, momentum: float = 0.9,
                 weight_decay: float = 1e-4, seed: int = 0, data_root: str | None = None, split_seed: int = 0,
                 valid_fraction: float | None = None, dataset_options: Mapping[str, Any] | None = None,
                 model_kwargs: Mapping[str, Any] | None = None, device: str = "cpu", threads: int | None = None,
                 eval_batch_size: int = 500):
        if isinstance(space, str):
            from rlnas.spaces import create_space

            space = create_space(space)
        if space.name not in CPU_MODEL_KWARGS:
            raise ConfigError(f"shared evaluator: no ENAS supernet for space {space.name!r} "
                              f"(choices: {', '.join(CPU_MODEL_KWARGS)})")
        self.space: Space = space
        for label, value in (("epochs", epochs), ("batch_size", batch_size), ("valid_batch_size", valid_batch_size),
                             ("lr", lr), ("eval_batch_size", eval_batch_size)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
                raise ConfigError(f"shared evaluator: {label} must be a positive number, got {value!r}")
        self.dataset, self.data_root, self.split_seed = dataset, data_root, int(split_seed)
        self.valid_fraction = valid_fraction
        self.dataset_options = dict(dataset_options or {})
        self.epochs, self.batch_size, self.valid_batch_size = epochs, int(batch_size), int(valid_batch_size)
        self.lr, self.momentum, self.weight_decay = float(lr), float(momentum), float(weight_decay)
        self.seed, self.device, self.threads = int(seed), device, threads
        self.eval_batch_size = int(eval_batch_size)
        self.model_kwargs = dict(model_kwargs) if model_kwargs is not None else None
        self._data: DatasetSplits | None = None
        self._supernet: nn.Module | None = None
        self._optimizer: torch.optim.Optimizer | None = None
        self.valid_batches = 0

    def spec(self) -> dict[str, Any]:
        """``{"name": "shared", **options}`` for ``create_evaluator``."""
        return {
            "name": self.name, "space": self.space.name, "dataset": self.dataset, "epochs": self.epochs,
            "batch_size": self.batch_size, "valid_batch_size": self.valid_batch_size, "lr": self.lr,
            "momentum": self.momentum, "weight_decay": self.weight_decay, "seed": self.seed,
            "data_root": self.data_root, "split_seed": self.split_seed, "valid_fraction": self.valid_fraction,
            "dataset_options": self.dataset_options, "model_kwargs": self.model_kwargs, "device": self.device,
            "threads": self.threads, "eval_batch_size": self.eval_batch_size,
        }

    # ------------------------------------------------------------ lazy parts
    @property
    def data(self) -> DatasetSplits:
        """The train/valid/test splits (loaded on first use)."""
        if self._data is None:
            data = load_dataset(self.dataset, self.data_root, split_seed=self.split_seed,
                                valid_fraction=self.valid_fraction, **self.dataset_options)
            if len(data.train) < self.batch_size:
                raise ConfigError(f"shared evaluator: batch_size {self.batch_size} is larger than the "
                                  f"{len(data.train)} training images")
            self._data = data
        return self._data

    def resolved_model_kwargs(self) -> dict[str, Any]:
        """Supernet options: ``model_kwargs`` or the CPU-sized defaults, plus the data's classes and channels."""
        channels, height, _ = self.data.input_shape
        if self.model_kwargs is None:
            kwargs = dict(CPU_MODEL_KWARGS[self.space.name], stem_stride=2 if 16 <= height < 32 else 1)
        else:
            kwargs = dict(self.model_kwargs)
        kwargs.setdefault("num_classes", self.data.num_classes)
        kwargs.setdefault("in_channels", channels)
        return kwargs

    @property
    def supernet(self) -> nn.Module:
        """The shared weights (initialised from ``seed`` on first use; the global RNG is left alone)."""
        if self._supernet is None:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(self.seed)
                net = enas_supernet(self.space, **self.resolved_model_kwargs())
            self._supernet = net.to(self.device)
        return self._supernet

    @property
    def optimizer(self) -> torch.optim.Optimizer:
        """SGD with Nesterov momentum over the shared weights (learning rate set at every step)."""
        if self._optimizer is None:
            self._optimizer = torch.optim.SGD(self.supernet.parameters(), lr=self.lr, momentum=self.momentum,
                                              weight_decay=self.weight_decay, nesterov=self.momentum > 0)
        return self._optimizer

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
        """Cosine decay from ``lr`` at step 0 to 0 at ``total_steps``."""
        return 0.5 * self.lr * (1.0 + math.cos(math.pi * min(step, total_steps) / total_steps))

    def train_batch(self, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The training batch of shared step ``step`` (see the module docstring)."""
        epoch, i = divmod(step, self.steps_per_epoch)
        order = torch.randperm(len(self.data.train), generator=torch.Generator().manual_seed(derived_seed(self.seed, 2, epoch)))
        return self.data.train.batch(order[i * self.batch_size : (i + 1) * self.batch_size])

    def valid_batch(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Validation minibatch number ``index`` (the split walked in seeded permutations)."""
        n = len(self.data.valid)
        size = min(self.valid_batch_size, n)
        epoch, i = divmod(index, n // size)
        order = torch.randperm(n, generator=torch.Generator().manual_seed(derived_seed(self.seed, 3, epoch)))
        return self.data.valid.batch(order[i * size : (i + 1) * size])

    # ------------------------------------------------------------- protocol
    def train_step(self, candidate: Mapping[str, Choice], *, step: int, total_steps: int) -> dict[str, float]:
        """One SGD step of the shared weights on ``candidate``'s path and the training batch of ``step``."""
        candidate = self.space.candidate(candidate)
        x, y = self.train_batch(step)
        lr = self.learning_rate(step, total_steps)
        net, optimizer = self.supernet, self.optimizer
        for group in optimizer.param_groups:
            group["lr"] = lr
        with num_threads(self.threads):
            net.train()
            loss = F.cross_entropy(net(x.to(self.device), candidate), y.to(self.device))
            if not torch.isfinite(loss):
                raise TrainingDiverged(f"shared weights diverged at step {step + 1}: loss {loss.item()} "
                                       f"(lr {lr:.4g}); try a smaller lr")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(net.parameters(), 5.0)
            optimizer.step()
        return {"loss": loss.item(), "lr": lr}

    def evaluate(self, candidate: Mapping[str, Choice], *, split: str = "valid", seed: int | None = None,
                 budget: float | None = None) -> Measurement:
        """``shared_acc`` of ``candidate`` with the shared weights on the next validation minibatch
        (``split="valid_batch"``), the whole validation split (``"valid"``) or the test split
        (``"test"``); ``seed`` and ``budget`` belong to the evaluator protocol and are not used."""
        start = time.perf_counter()
        candidate = self.space.candidate(candidate)
        if split == "valid_batch":
            batches = [self.valid_batch(self.valid_batches)]
            self.valid_batches += 1
        elif split in ("valid", "test"):
            batches = self._chunks(getattr(self.data, split))
        else:
            raise ConfigError(f"shared evaluator: split must be one of {', '.join(SPLITS)}, got {split!r}")
        acc = self._accuracy(candidate, batches)
        return Measurement({"shared_acc": acc}, time.perf_counter() - start, {"split": split})

    def _chunks(self, split: ImageData) -> list[tuple[torch.Tensor, torch.Tensor]]:
        return [split.batch(torch.arange(s, min(s + self.eval_batch_size, len(split))))
                for s in range(0, len(split), self.eval_batch_size)]

    @torch.no_grad()
    def _accuracy(self, candidate: Candidate, batches: list[tuple[torch.Tensor, torch.Tensor]]) -> float:
        net = self.supernet
        net.eval()
        correct = total = 0
        with num_threads(self.threads):
            for x, y in batches:
                correct += int((net(x.to(self.device), candidate).argmax(1).cpu() == y).sum())
                total += len(y)
        return 100.0 * correct / max(total, 1)

    # ---------------------------------------------------------------- state
    def state_dict(self) -> dict[str, Any]:
        """Shared weights, optimizer momenta and the number of validation minibatches drawn."""
        return {"supernet": self.supernet.state_dict(), "optimizer": self.optimizer.state_dict(),
                "valid_batches": self.valid_batches}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state_dict` (into an evaluator built from the same :meth:`spec`)."""
        self.supernet.load_state_dict(state["supernet"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.valid_batches = int(state["valid_batches"])

    def child(self, candidate: Mapping[str, Choice]) -> nn.Module:
        """``candidate``'s stand-alone network holding copies of the shared weights it uses."""
        return self.supernet.child(self.space.candidate(candidate))
