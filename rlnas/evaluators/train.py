"""Train-from-scratch evaluator: build the candidate's network, train it with SGD, report accuracy.

One evaluation, for a given seed, is deterministic on the CPU (same seed, same thread count ->
identical metrics): the weights are initialised under ``torch.manual_seed(seed)`` inside
``torch.random.fork_rng`` (the global RNG is left as it was), and the batch order and
augmentation come from a ``torch.Generator`` seeded with the same seed.

Training recipe: SGD with Nesterov momentum, cosine learning-rate decay to 0 over all steps,
weight decay, gradient-norm clipping at 5, cross-entropy loss; each epoch visits a fresh
permutation of the train split in ``len(train) // batch_size`` full batches.
"""
from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from rlnas.checks import (
    MAX_EPOCHS,
    absolute_path,
    check_arguments,
    check_device,
    check_seed,
    check_sgd_options,
    check_threads,
)
from rlnas.costs import count_flops, count_params
from rlnas.costs.measure import num_threads
from rlnas.datasets import DatasetSplits, ImageData, load_dataset
from rlnas.errors import ConfigError, RlnasError, first_line
from rlnas.evaluators.base import Measurement
from rlnas.evaluators.weights import save_weights
from rlnas.files import check_folder_can_be_made
from rlnas.spaces.base import Candidate, Space

Progress = Callable[[int, int, Mapping[str, float]], None]
ModelFn = Callable[[Space, Candidate, Mapping[str, Any]], nn.Module]

# Small widths so that a search on the 8x8 digits finishes in minutes on one CPU core.
DEFAULT_MODEL_KWARGS: dict[str, dict[str, Any]] = {
    "nb201": {"channels": 8, "cells_per_stage": 1},
    "darts": {"channels": 8, "layers": 5},
    "ofa_mbv3": {"width_mult": 0.35},
    "proxyless": {"width_mult": 0.35},
    "proxyless_enlarged": {"width_mult": 0.35},
    "tunas_mbv3": {"width_mult": 0.35},
    "enas_macro": {"channels": 8},
    "enas_micro": {"channels": 8, "layers": 2},
}


class TrainingDiverged(RlnasError):
    """The training loss became NaN or infinite; the message says when."""


def _check_ranges(*, momentum: float, weight_decay: float, valid_fraction: float | None) -> None:
    check_sgd_options(momentum, weight_decay, "train evaluator")
    if valid_fraction is not None and not 0 < valid_fraction < 1:
        raise ConfigError(f"train evaluator: valid_fraction must be in (0, 1), got {valid_fraction!r}")


class TrainEvaluator:
    """Trains each candidate from scratch on a small image set (see the module docstring).

    Metrics of :meth:`evaluate` (accuracies in percent, as the tabular evaluators):
    ``valid_acc`` (after the last epoch; the search signal), ``test_acc``, ``train_loss`` (mean of
    the last epoch), ``train_time_s`` (wall seconds of the training loop), ``params_m``
    (millions) and ``flops_m`` (MFLOPs of one image, multiply-add = 2). ``info["curve"]`` holds
    per-epoch ``train_loss`` and ``valid_acc``.

    With ``weights_dir``, the trained weights of every network (or of the ``keep_weights`` best
    by ``valid_acc``) are saved there and ``info["weights"]`` names the file (``None`` when it
    was not kept); see :mod:`rlnas.evaluators.weights`.

    ``budget`` in :meth:`evaluate` overrides ``epochs`` (a float is allowed: 0.5 = half the
    steps of one epoch) or, when the evaluator was built with ``steps``, the number of steps.
    """

    name = "train"
    metrics = ("valid_acc", "test_acc", "train_loss", "train_time_s", "params_m", "flops_m")

    def __init__(self, space: str | Space = "nb201", dataset: str = "digits", *, epochs: float = 10,
                 steps: int | None = None, batch_size: int = 64, lr: float = 0.05, momentum: float = 0.9,
                 weight_decay: float = 5e-4, seed: int = 0, data_root: str | None = None,
                 model_kwargs: Mapping[str, Any] | None = None, split_seed: int = 0,
                 valid_fraction: float | None = None, dataset_options: Mapping[str, Any] | None = None,
                 augment: bool = False, device: str = "cpu", threads: int | None = None,
                 eval_batch_size: int = 512, progress: Progress | None = None, model_fn: ModelFn | None = None,
                 weights_dir: str | None = None, keep_weights: int | None = None, channels_last: bool = False):
        check_arguments(TrainEvaluator, locals(), "train evaluator")
        if isinstance(space, str):
            from rlnas.spaces import create_space

            space = create_space(space)
        self.space: Space = space
        for label, value in (("epochs", epochs), ("batch_size", batch_size), ("lr", lr),
                             ("eval_batch_size", eval_batch_size)):
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value) or value <= 0:
                raise ConfigError(f"train evaluator: {label} must be a positive number, got {value!r}")
        if epochs > MAX_EPOCHS:
            raise ConfigError(f"train evaluator: epochs must be at most {MAX_EPOCHS:,}, got {epochs!r}")
        if steps is not None and (not isinstance(steps, int) or steps <= 0):
            raise ConfigError(f"train evaluator: steps must be a positive integer, got {steps!r}")
        _check_ranges(momentum=momentum, weight_decay=weight_decay, valid_fraction=valid_fraction)
        seed = check_seed(seed, "train evaluator: seed")
        split_seed = check_seed(split_seed, "train evaluator: split_seed")
        if model_kwargs is not None and model_fn is None:
            from rlnas.models import check_options_for

            check_options_for(space, model_kwargs)
        if keep_weights is not None and (isinstance(keep_weights, bool) or not isinstance(keep_weights, int)
                                         or keep_weights < 1):
            raise ConfigError(f"train evaluator: keep_weights must be a positive integer or null (all), "
                              f"got {keep_weights!r}")
        clash = sorted({"split_seed", "valid_fraction"} & set(dataset_options or {}))
        if clash:
            what = "are options" if len(clash) > 1 else "is an option"
            raise ConfigError(f"train evaluator: {' and '.join(clash)} {what} of the evaluator itself, not of "
                              "dataset_options")
        if keep_weights is not None and weights_dir is None:
            raise ConfigError("train evaluator: keep_weights needs weights_dir (the folder to keep them in)")
        self.weights_dir = absolute_path(weights_dir, "train evaluator: weights_dir")
        self.keep_weights = keep_weights
        self.dataset, self.split_seed = dataset, int(split_seed)
        self.data_root = absolute_path(data_root, "train evaluator: data_root")
        self.valid_fraction = valid_fraction
        self.dataset_options = dict(dataset_options or {})
        self.epochs, self.steps, self.batch_size = epochs, steps, int(batch_size)
        self.lr, self.momentum, self.weight_decay = float(lr), float(momentum), float(weight_decay)
        self.seed, self.augment, self.device = int(seed), bool(augment), check_device(device)
        self.threads = check_threads(threads)
        self.eval_batch_size = int(eval_batch_size)
        self.channels_last = bool(channels_last)
        self.model_kwargs = dict(model_kwargs) if model_kwargs is not None else None
        self.progress = progress
        self.model_fn = model_fn
        self._data: DatasetSplits | None = None

    # ----------------------------------------------------------------- protocol
    def spec(self) -> dict[str, Any]:
        """``{"name": "train", **options}`` for ``create_evaluator``: what is measured. How it runs
        (``threads``, ``device``) and the ``progress``/``model_fn`` hooks are not part of it."""
        return {
            "name": self.name, "space": self.space.name, "dataset": self.dataset, "epochs": self.epochs,
            "steps": self.steps, "batch_size": self.batch_size, "lr": self.lr, "momentum": self.momentum,
            "weight_decay": self.weight_decay, "seed": self.seed, "data_root": self.data_root,
            "model_kwargs": self.model_kwargs, "split_seed": self.split_seed, "valid_fraction": self.valid_fraction,
            "dataset_options": self.dataset_options, "augment": self.augment, "eval_batch_size": self.eval_batch_size,
            "weights_dir": self.weights_dir, "keep_weights": self.keep_weights,
        } | ({"channels_last": True} if self.channels_last else {})  # older studies' specs lack the key

    @property
    def memory_format(self) -> torch.memory_format:
        """``channels_last`` (much faster depthwise convs on the CPU; same results up to rounding) or not."""
        return torch.channels_last if self.channels_last else torch.contiguous_format

    def __getstate__(self) -> dict[str, Any]:
        # Sent to worker processes: without the loaded data (reloaded there) or the progress hook.
        state = dict(self.__dict__)
        state["_data"] = None
        state["progress"] = None
        return state

    @property
    def data(self) -> DatasetSplits:
        """The train/valid/test splits (loaded on first use, then kept)."""
        if self._data is None:
            self._data = load_dataset(self.dataset, self.data_root, split_seed=self.split_seed,
                                      valid_fraction=self.valid_fraction, **self.dataset_options)
        return self._data

    def data_fingerprint(self) -> str | None:
        """The digest of the data (``DatasetSplits.fingerprint``) when they come from ``data_root``, else
        ``None`` (the shipped sets cannot change under a study): a resumed study checks it."""
        return None if self.data_root is None else self.data.fingerprint

    def prepare(self) -> None:
        """Check, before a study is created, that evaluations can run: load the data set and pass
        two images through the network of one sampled candidate in training mode (a data folder
        that is missing, or a network that does not fit the images, is a :class:`ConfigError`)."""
        import numpy as np

        if self.weights_dir is not None:
            check_folder_can_be_made(self.weights_dir, "train evaluator: weights_dir")
        data = self.data
        kwargs = self.resolved_model_kwargs()
        classes, channels = kwargs.get("num_classes"), kwargs.get("in_channels")
        if isinstance(classes, int) and classes < data.num_classes:
            raise ConfigError(f"train evaluator: model_kwargs num_classes={classes}, but data set {self.dataset!r} "
                              f"has {data.num_classes} classes")
        if isinstance(channels, int) and channels != data.input_shape[0]:
            raise ConfigError(f"train evaluator: model_kwargs in_channels={channels}, but the images of data set "
                              f"{self.dataset!r} have {data.input_shape[0]} channel(s)")
        candidate = self.space.sample(np.random.default_rng(0))
        self._check_fits_in_memory(candidate, kwargs)
        with num_threads(self.threads), torch.random.fork_rng(devices=[]), torch.no_grad():
            try:
                model = self.build_model(candidate).to(self.device).train()
            except (RuntimeError, MemoryError) as exc:  # torch's "you tried to allocate 360000000000 bytes"
                if isinstance(exc, RuntimeError) and "alloc" not in str(exc).lower():
                    raise
                raise ConfigError(f"train evaluator: the {self.space.name} network with model_kwargs {kwargs} does "
                                  f"not fit in memory: {first_line(exc)[:200]}") from None
            x, _ = data.train.batch(torch.arange(min(2, len(data.train))))
            try:
                model(x.to(self.device))
            except (RuntimeError, ValueError) as exc:  # shapes that do not fit: images too small, ...
                reason = first_line(exc)
                shape = "x".join(map(str, data.input_shape))
                raise ConfigError(f"train evaluator: the {self.space.name} network does not run on the {shape} "
                                  f"images of {self.dataset!r}: {reason}") from None

    def _check_fits_in_memory(self, candidate: Candidate, kwargs: Mapping[str, Any]) -> None:
        """:class:`ConfigError` when training ``candidate``'s network on the CPU would need more memory than the
        machine has (weights, gradients and SGD's momentum; measured on torch's meta device, which allocates
        nothing), before the kernel kills the process half-way through building it."""
        if torch.device(self.device).type != "cpu":
            return
        try:
            memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
            with torch.device("meta"), torch.random.fork_rng(devices=[]):
                weights = sum(p.numel() * p.element_size() for p in self.build_model(candidate).parameters())
        except Exception:  # noqa: BLE001 - no such sysconf, a builder that needs real tensors: not known here
            return
        if 3 * weights > memory:
            raise ConfigError(f"train evaluator: the {self.space.name} network with model_kwargs {dict(kwargs)} has "
                              f"{weights / 2**30:.2f} GiB of weights: training it needs about "
                              f"{3 * weights / 2**30:.2f} GiB, and this machine has {memory / 2**30:.2f} GiB")

    def resolved_model_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for the model builder: the space's small defaults or ``model_kwargs``,
        plus ``num_classes`` and ``in_channels`` of the data set."""
        kwargs = dict(DEFAULT_MODEL_KWARGS.get(self.space.name, {}) if self.model_kwargs is None else self.model_kwargs)
        channels = self.data.input_shape[0]
        kwargs.setdefault("num_classes", self.data.num_classes)
        kwargs.setdefault("in_channels", channels)
        return kwargs

    def build_model(self, candidate: Candidate) -> nn.Module:
        """The untrained network of ``candidate`` (weights drawn from the current torch RNG)."""
        kwargs = self.resolved_model_kwargs()
        if self.model_fn is not None:
            return self.model_fn(self.space, candidate, kwargs)
        from rlnas.models import create_model

        return create_model(self.space, candidate, **kwargs)

    def evaluate(self, candidate: Candidate, *, budget: float | None = None, seed: int | None = None) -> Measurement:
        """Train ``candidate`` from scratch for ``budget`` (epochs or steps) and measure it."""
        self.space.validate(candidate)
        seed = self.seed if seed is None else int(seed)
        data = self.data
        batch = min(self.batch_size, len(data.train))
        steps_per_epoch = len(data.train) // batch
        if self.steps is not None:
            total_steps = int(budget) if budget is not None else self.steps
        else:
            total_steps = math.ceil((self.epochs if budget is None else float(budget)) * steps_per_epoch)
        if total_steps <= 0:
            raise ConfigError(f"train evaluator: budget {budget!r} gives no training step")
        n_epochs = math.ceil(total_steps / steps_per_epoch)

        with num_threads(self.threads), torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = self.build_model(candidate).to(self.device, memory_format=self.memory_format)
            gen = torch.Generator().manual_seed(seed)
            start = time.perf_counter()
            curve = self._train(model, data, gen, batch, steps_per_epoch, total_steps, n_epochs)
            train_time = time.perf_counter() - start
            valid_acc = curve["valid_acc"][-1]
            test_acc = self._accuracy(model, data.test)
        metrics = {
            "valid_acc": valid_acc, "test_acc": test_acc, "train_loss": curve["train_loss"][-1],
            "train_time_s": train_time, "params_m": count_params(model) / 1e6,
            "flops_m": count_flops(model.cpu().to(memory_format=torch.contiguous_format), data.input_shape) / 1e6,
        }
        info = {"epochs": total_steps / steps_per_epoch, "steps": total_steps, "seed": seed, "curve": curve}
        if self.weights_dir is not None:
            info["weights"] = save_weights(
                self.weights_dir, model, space=self.space.name, key=self.space.key(candidate), seed=seed,
                model_kwargs=self.resolved_model_kwargs(), input_shape=tuple(data.input_shape), metrics=metrics,
                keep=self.keep_weights)
        return Measurement(metrics, time.perf_counter() - start, info)

    # ------------------------------------------------------------------ helpers
    def _train(self, model: nn.Module, data: DatasetSplits, gen: torch.Generator, batch: int,
               steps_per_epoch: int, total_steps: int, n_epochs: int) -> dict[str, list[float]]:
        optimizer = torch.optim.SGD(model.parameters(), lr=self.lr, momentum=self.momentum,
                                    weight_decay=self.weight_decay, nesterov=self.momentum > 0)
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total_steps)
        curve: dict[str, list[float]] = {"epoch": [], "train_loss": [], "valid_acc": []}
        step = 0
        for epoch in range(1, n_epochs + 1):
            model.train()
            order = torch.randperm(len(data.train), generator=gen)
            losses = []
            for i in range(min(steps_per_epoch, total_steps - step)):
                x, y = data.train.batch(order[i * batch : (i + 1) * batch])
                if self.augment:
                    x = augment_batch(x, gen)
                x = x.to(self.device).contiguous(memory_format=self.memory_format)
                loss = training_loss(model, model(x), y.to(self.device))
                if not torch.isfinite(loss):
                    raise TrainingDiverged(
                        f"training diverged: loss is {loss.item()} at step {step + 1} of {total_steps} "
                        f"(epoch {epoch}, lr {schedule.get_last_lr()[0]:.4g}); try a smaller lr")
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                nn.utils.clip_grad_norm_(model.parameters(), 5.0)
                optimizer.step()
                schedule.step()
                losses.append(loss.item())
                step += 1
            curve["epoch"].append(step / steps_per_epoch)
            curve["train_loss"].append(sum(losses) / len(losses))
            curve["valid_acc"].append(self._accuracy(model, data.valid))
            if self.progress is not None:
                self.progress(epoch, n_epochs, {"train_loss": curve["train_loss"][-1],
                                                "valid_acc": curve["valid_acc"][-1]})
        return curve

    @torch.no_grad()
    def _accuracy(self, model: nn.Module, split: ImageData) -> float:
        """Top-1 accuracy in percent of ``model`` (eval mode) on ``split``."""
        model.eval()
        correct = 0
        for start in range(0, len(split), self.eval_batch_size):
            x, y = split.batch(torch.arange(start, min(start + self.eval_batch_size, len(split))))
            x = x.to(self.device).contiguous(memory_format=self.memory_format)
            correct += int((model(x).argmax(1).cpu() == y).sum())
        return 100.0 * correct / max(len(split), 1)


def training_loss(model: nn.Module, output: torch.Tensor | tuple[torch.Tensor, torch.Tensor],
                  labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of the logits; for ``(logits, aux_logits)`` (an auxiliary head in training
    mode) plus ``model.auxiliary_weight`` times the auxiliary head's cross-entropy."""
    if isinstance(output, tuple):
        logits, aux = output
        return F.cross_entropy(logits, labels) + model.auxiliary_weight * F.cross_entropy(aux, labels)
    return F.cross_entropy(output, labels)


def augment_batch(x: torch.Tensor, gen: torch.Generator, pad: int = 4) -> torch.Tensor:
    """Random crop after zero-padding by ``pad`` pixels and random horizontal flip, per image."""
    n, _, h, w = x.shape
    padded = F.pad(x, (pad, pad, pad, pad))
    dy = torch.randint(0, 2 * pad + 1, (n,), generator=gen)
    dx = torch.randint(0, 2 * pad + 1, (n,), generator=gen)
    flip = torch.rand(n, generator=gen) < 0.5
    rows = (dy[:, None] + torch.arange(h)[None, :])[:, None, :, None]
    cols = (dx[:, None] + torch.arange(w)[None, :])
    cols = torch.where(flip[:, None], cols.flip(1), cols)[:, None, None, :]
    index = torch.arange(n)[:, None, None, None]
    channel = torch.arange(x.shape[1])[None, :, None, None]
    return padded[index, channel, rows, cols]
