"""The ``supernet`` evaluator (TuNAS): one weight-sharing supernet of a mobile space, trained while
a controller searches it.

It is a :class:`~rlnas.evaluators.weight_sharing.WeightSharingEvaluator` (SGD with Nesterov
momentum and cosine decay, resumable data streams, ``train_step`` / ``evaluate`` /
``state_dict``) over :class:`~rlnas.models.supernet.MobileSupernet`, with TuNAS's warm-up in
the path each shared step trains. At shared step ``t`` of ``T``:

* op warm-up: every op decision (kernel, squeeze-excite, skip, depth) independently runs all
  its choices, averaged, with probability ``p = 1 − t / (op_warmup · T)`` (0 afterwards);
* filter warm-up: every filter decision (width, expansion) independently takes its largest
  count with probability ``q = 1 − t / (filter_warmup · T)``.

The draws come from a generator seeded by ``(seed, t)``, so a resumed search repeats them.

Metrics of :meth:`evaluate`: ``supernet_acc`` (percent, through the shared weights; BatchNorm
uses the statistics of the batch being scored), ``cost`` and the same number under its unit's
name (``latency_ms``, ``flops_m`` or ``params_m``): the cost model's value for the deployable
network, the candidate at the space's own resolution (see :mod:`rlnas.costs.models`).

Small images: unless ``model_kwargs`` says otherwise, images under 64 px train with
``stem_stride=1`` and ``input_size`` = their own size (so OFA's resolution choice scales them),
at width multiplier 0.35.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from rlnas.checks import check_arguments
from rlnas.costs.measure import num_threads
from rlnas.costs.models import COST_UNITS, CostModel, create_cost_model
from rlnas.errors import ConfigError
from rlnas.evaluators.base import Measurement
from rlnas.evaluators.weight_sharing import WeightSharingEvaluator
from rlnas.models import create_supernet
from rlnas.models.supernet import MobileSupernet, WarmupPath, decision_role
from rlnas.models.supernet_layers import recalibrate_batchnorm
from rlnas.rewards import MAX_REWARD, CostAwareReward
from rlnas.spaces.base import Candidate, Choice, Space
from rlnas.spaces.mobilenet import MobileSpace

SMALL_IMAGE = 64
"""Images smaller than this many pixels get ``stem_stride=1`` by default."""
COST_REWARDS = ("abs", "soft", "hard")
"""Cost-aware rewards :meth:`SupernetEvaluator.check_reward` knows."""


def derived_seed(*parts: int) -> int:
    """A 63-bit seed from integers (``numpy.random.SeedSequence``)."""
    return int(np.random.SeedSequence([int(p) for p in parts]).generate_state(2, np.uint64)[0] >> 1)


def linear_decay(step: int, steps: int) -> float:
    """1 at step 0 falling linearly to 0 at ``steps`` (0 throughout when ``steps`` is 0)."""
    return max(0.0, 1.0 - step / steps) if steps > 0 else 0.0


class SupernetEvaluator(WeightSharingEvaluator):
    """TuNAS's weight-sharing evaluator of the mobile spaces (see the module docstring)."""

    name = "supernet"
    quality_metric = "supernet_acc"

    def __init__(self, space: str | Space = "proxyless", dataset: str = "mnist5k", *, epochs: float = 10,
                 batch_size: int = 64, valid_batch_size: int = 256, lr: float = 0.1, momentum: float = 0.9,
                 weight_decay: float = 4e-5, grad_clip: float = 5.0, seed: int = 0, data_root: str | None = None,
                 split_seed: int = 0, dataset_options: Mapping[str, Any] | None = None,
                 record_every: int | None = None, model_kwargs: Mapping[str, Any] | None = None,
                 op_warmup: float = 0.25, filter_warmup: float = 0.25, remat: bool = False,
                 cost: str = "latency", latency_table: str | None = None, channels_last: bool = True,
                 device: str = "cpu", threads: int | None = None):
        check_arguments(SupernetEvaluator, locals(), "supernet evaluator")
        if isinstance(space, str):
            from rlnas.spaces import create_space

            space = create_space(space)
        if not isinstance(space, MobileSpace):
            raise ConfigError(f"supernet evaluator: space {space.name!r} is not a mobile space "
                              "(choices: ofa_mbv3, proxyless, proxyless_enlarged, tunas_mbv3)")
        super().__init__(space, dataset, epochs=epochs, batch_size=batch_size, valid_batch_size=valid_batch_size,
                         lr=lr, momentum=momentum, weight_decay=weight_decay, grad_clip=grad_clip, seed=seed,
                         data_root=data_root, split_seed=split_seed, dataset_options=dataset_options,
                         record_every=record_every, device=device, threads=threads)
        for label, value in (("op_warmup", op_warmup), ("filter_warmup", filter_warmup)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
                raise ConfigError(f"supernet evaluator: {label} must be a fraction in [0, 1], got {value!r}")
        if cost not in COST_UNITS:
            raise ConfigError(f"supernet evaluator: unknown cost {cost!r} (choices: {', '.join(COST_UNITS)})")
        self.model_kwargs = dict(model_kwargs) if model_kwargs is not None else None
        if self.model_kwargs is not None:  # width_mult -1 is a bad option, not a latency table that is missing
            from rlnas.models import check_model_options
            from rlnas.models.supernet import MobileSupernet

            check_model_options(space, MobileSupernet, self.model_kwargs)
        self.op_warmup, self.filter_warmup, self.remat = float(op_warmup), float(filter_warmup), bool(remat)
        self.cost, self.latency_table, self.channels_last = cost, latency_table, bool(channels_last)
        self._cost_model: CostModel | None = None
        self._built_entries: dict[str, float] | None = None
        self.roles = {d.name: decision_role(d.name) for d in space.decisions}

    def spec_options(self) -> dict[str, Any]:
        return {"model_kwargs": self.model_kwargs, "op_warmup": self.op_warmup, "filter_warmup": self.filter_warmup,
                "remat": self.remat, "cost": self.cost, "latency_table": self.latency_table,
                "channels_last": self.channels_last}

    # ----------------------------------------------------------- supernet
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
    def memory_format(self) -> torch.memory_format:
        """``channels_last`` (several times faster depthwise convs on the CPU) or ``contiguous_format``."""
        return torch.channels_last if self.channels_last else torch.contiguous_format

    def build_supernet(self, num_classes: int, in_channels: int) -> nn.Module:
        kwargs = self.resolved_model_kwargs() | {"num_classes": num_classes, "in_channels": in_channels}
        return create_supernet(self.space, **kwargs, remat=self.remat).to(memory_format=self.memory_format)

    def transform(self, x: torch.Tensor) -> torch.Tensor:
        return x.contiguous(memory_format=self.memory_format)

    def train_path(self, candidate: Candidate, step: int, total_steps: int) -> WarmupPath:
        """The path shared step ``step`` trains for ``candidate``: filter warm-up applied, op warm-up named."""
        p = linear_decay(step, round(self.op_warmup * total_steps))
        q = linear_decay(step, round(self.filter_warmup * total_steps))
        if p == 0 and q == 0:
            return WarmupPath(self.space.candidate(candidate))
        rng = np.random.default_rng(derived_seed(self.seed, 1, step))
        choices = dict(candidate)
        all_ops = set()
        for d in self.space.decisions:
            draw = rng.random()
            if self.roles[d.name] == "op" and draw < p:
                all_ops.add(d.name)
            elif self.roles[d.name] == "filters" and draw < q:
                choices[d.name] = max(d.choices)
        return WarmupPath(self.space.candidate(choices), frozenset(all_ops))

    # ---------------------------------------------------------------- cost
    def prepare(self) -> None:
        """:meth:`WeightSharingEvaluator.prepare`, and the cost model (a latency table that is missing
        or does not fit the space is a :class:`ConfigError` before a study is created; a table to
        ``"build"`` is measured at the first evaluation, as before, since a resumed search restores it)."""
        super().prepare()
        if self.latency_table != "build":
            _ = self.cost_model

    @property
    def cost_model(self) -> CostModel:
        """The cost of deployable networks (see :mod:`rlnas.costs.models`)."""
        if self._cost_model is None:
            self._cost_model = create_cost_model(self.space, self.cost, model_kwargs=self.resolved_model_kwargs(),
                                                 latency_table=self.latency_table, entries=self._built_entries)
        return self._cost_model

    @property
    def cost_metric(self) -> str:
        """Name of the metric holding the cost in its unit: ``latency_ms``, ``flops_m`` or ``params_m``."""
        return COST_UNITS[self.cost][1]

    @property
    def metrics(self) -> tuple[str, ...]:
        """Names of the metrics :meth:`evaluate` reports: the accuracy and the cost (twice: ``cost`` and
        the name of its unit)."""
        return self.quality_metric, "cost", self.cost_metric

    def extra_metrics(self, candidate: Candidate) -> dict[str, float]:
        value = self.cost_model(candidate)
        return {"cost": value, self.cost_metric: value}

    def check_reward(self, reward: str, *, beta: float, target: float) -> None:
        """Raise a one-line :class:`ConfigError` when a cost-aware reward cannot work with this cost model:
        an unknown reward, ``beta`` not negative, or ``target`` outside the space's cost range."""
        if reward not in COST_REWARDS:
            raise ConfigError(f"unknown cost-aware reward {reward!r} (choices: {', '.join(COST_REWARDS)})")
        if isinstance(beta, bool) or not isinstance(beta, (int, float)) or not math.isfinite(beta) or not beta < 0:
            raise ConfigError(f"reward {reward!r}: beta must be negative (a cost above the target lowers the "
                              f"reward), got {beta!r}")
        low, high = self.cost_model.range()
        if isinstance(target, bool) or not isinstance(target, (int, float)) or not low <= target <= high:
            raise ConfigError(f"target {target!r} {self.cost_model.unit} is outside the {self.cost} range of space "
                              f"{self.space.name!r}: {low:.4g} (smallest) to {high:.4g} (largest)")
        form = CostAwareReward(reward, float(target), float(beta), self.quality_metric, self.cost_metric)
        for cost in (low, high):  # the reward's extremes, for an accuracy of 0 or 100 %
            for quality in (0.0, 100.0):
                try:
                    value = form(Measurement({self.quality_metric: quality, self.cost_metric: cost}))
                except OverflowError:  # soft/hard: ratio ** beta beyond a float
                    value = math.inf
                if not abs(value) <= MAX_REWARD:
                    raise ConfigError(f"reward {reward!r} with beta {beta:g} reaches {value:.4g} at a cost of "
                                      f"{cost:.4g} {self.cost_model.unit}, beyond what a controller learns from "
                                      f"(magnitude at most {MAX_REWARD:g}): choose a beta nearer 0")

    # --------------------------------------------------------------- state
    def state_dict(self) -> dict[str, Any]:
        """The base's state plus the entries of a latency table measured during this search."""
        return super().state_dict() | {"latency_entries": self.cost_model.extra_entries()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        super().load_state_dict(state)
        if state.get("latency_entries"):
            self._built_entries = dict(state["latency_entries"])
            self._cost_model = None

    # --------------------------------------------------------- after search
    def export_model(self, candidate: Mapping[str, Choice], *, finetune_epochs: float = 0,
                     calibration_batches: int = 10) -> nn.Module:
        """``candidate``'s stand-alone network with the inherited weights, optionally fine-tuned on the
        training split (SGD at a tenth of ``lr``, cosine, ``finetune_epochs``), BatchNorm statistics
        recalibrated on ``calibration_batches`` training batches; returned in eval mode."""
        if isinstance(finetune_epochs, bool) or not isinstance(finetune_epochs, (int, float)) or not (
                math.isfinite(finetune_epochs) and finetune_epochs >= 0):
            raise ConfigError(f"finetune_epochs must be a finite number >= 0, got {finetune_epochs!r}")
        candidate = self.space.candidate(candidate)
        supernet: MobileSupernet = self.supernet  # type: ignore[assignment]
        model = supernet.extract(candidate).to(memory_format=self.memory_format)
        steps = math.ceil(finetune_epochs * self.steps_per_epoch)
        batches = self._training_batches(max(steps, calibration_batches))
        with num_threads(self.threads):
            if steps > 0:
                self._finetune(model, batches[:steps])
            recalibrate_batchnorm(model, [self.transform(x.to(self.device)) for x, _ in batches[:calibration_batches]])
        return model.eval()

    def _training_batches(self, n: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """``n`` training batches in a fixed seeded order (passes reshuffled), independent of the search's stream."""
        size, batch = len(self.data.train), min(self.batch_size, len(self.data.train))
        gen = torch.Generator().manual_seed(derived_seed(self.seed, 5))
        out: list[tuple[torch.Tensor, torch.Tensor]] = []
        while len(out) < n:
            order = torch.randperm(size, generator=gen)
            out += [self.data.train.batch(order[i : i + batch]) for i in range(0, size - batch + 1, batch)]
        return out[:n]

    def _finetune(self, model: nn.Module, batches: list[tuple[torch.Tensor, torch.Tensor]]) -> None:
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1 * self.lr, momentum=self.momentum,
                                    weight_decay=self.weight_decay, nesterov=self.momentum > 0)
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=len(batches))
        model.train()
        for x, y in batches:
            loss = F.cross_entropy(model(self.transform(x.to(self.device))), y.to(self.device))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), self.grad_clip)
            optimizer.step()
            schedule.step()

    @torch.no_grad()
    def accuracy_of(self, model: nn.Module, split: str = "test") -> float:
        """Accuracy (percent) of a stand-alone ``model`` in eval mode on ``split``."""
        model.eval()
        data = getattr(self.data, split)
        correct = 0
        with num_threads(self.threads):
            for chunk in torch.arange(len(data)).split(512):
                x, y = data.batch(chunk)
                correct += int((model(self.transform(x.to(self.device))).argmax(1).cpu() == y).sum())
        return 100.0 * correct / max(len(data), 1)
