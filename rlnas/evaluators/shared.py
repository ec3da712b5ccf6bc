"""The ``shared`` evaluator: ENAS's shared weights, trained one sampled child at a time, scoring children.

A :class:`~rlnas.evaluators.weight_sharing.WeightSharingEvaluator` whose supernet is
:func:`rlnas.models.enas.enas_supernet`: every op of every layer / cell edge owns one set of
weights, a child runs only its own path, and BatchNorm always normalises with the statistics
of the batch it sees (ENAS's shared-weight setting). ``train_step`` trains one child's path
on the next training minibatch (SGD, Nesterov momentum, cosine decay over the search,
gradient norm clipped at 5, as ENAS trains its children); ``evaluate`` reports
``shared_acc`` (percent) of a child with the shared weights on the next validation
minibatch (``split="valid_batch"``, ENAS's reward), the whole validation split (``"valid"``)
or the test split (``"test"``).

Network size: ``model_kwargs`` (see :mod:`rlnas.models.enas`) or, by default, a CPU-sized
one: 8 channels, the micro network with 2 normal cells, and stem stride 2 for 16 to 31
pixel images such as MNIST's 28.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import nn

from rlnas.checks import check_arguments
from rlnas.errors import ConfigError
from rlnas.evaluators.weight_sharing import WeightSharingEvaluator
from rlnas.models.enas import enas_supernet
from rlnas.spaces.base import Choice, Space

CPU_MODEL_KWARGS: dict[str, dict[str, Any]] = {
    "enas_macro": {"channels": 8},
    "enas_micro": {"channels": 8, "layers": 2},
}
"""Network sizes used when ``model_kwargs`` is not given (see the module docstring)."""


class SharedEvaluator(WeightSharingEvaluator):
    """ENAS weight-sharing evaluator of ``enas_macro`` / ``enas_micro`` (see the module docstring)."""

    name = "shared"
    quality_metric = "shared_acc"
    metrics = ("shared_acc",)

    def __init__(self, space: str | Space = "enas_micro", dataset: str = "mnist5k", *, epochs: float = 10,
                 batch_size: int = 64, valid_batch_size: int = 128, lr: float = 0.05, momentum: float = 0.9,
                 weight_decay: float = 1e-4, grad_clip: float = 5.0, seed: int = 0, data_root: str | None = None,
                 split_seed: int = 0, dataset_options: Mapping[str, Any] | None = None,
                 record_every: int | None = None, model_kwargs: Mapping[str, Any] | None = None,
                 device: str = "cpu", threads: int | None = None):
        check_arguments(SharedEvaluator, locals(), "shared evaluator")
        super().__init__(space, dataset, epochs=epochs, batch_size=batch_size, valid_batch_size=valid_batch_size,
                         lr=lr, momentum=momentum, weight_decay=weight_decay, grad_clip=grad_clip, seed=seed,
                         data_root=data_root, split_seed=split_seed, dataset_options=dataset_options,
                         record_every=record_every, device=device, threads=threads)
        if self.space.name not in CPU_MODEL_KWARGS:
            raise ConfigError(f"shared evaluator: no ENAS supernet for space {self.space.name!r} "
                              f"(choices: {', '.join(CPU_MODEL_KWARGS)})")
        if model_kwargs is not None and not isinstance(model_kwargs, Mapping):
            raise ConfigError(f"shared evaluator: model_kwargs must be a mapping, got {model_kwargs!r}")
        self.model_kwargs = dict(model_kwargs) if model_kwargs is not None else None

    def spec_options(self) -> dict[str, Any]:
        return {"model_kwargs": self.model_kwargs}

    def resolved_model_kwargs(self) -> dict[str, Any]:
        """Network options: ``model_kwargs`` or the CPU-sized defaults (without classes and input channels)."""
        if self.model_kwargs is not None:
            return dict(self.model_kwargs)
        height = self.data.input_shape[1]
        return dict(CPU_MODEL_KWARGS[self.space.name], stem_stride=2 if 16 <= height < 32 else 1)

    def build_supernet(self, num_classes: int, in_channels: int) -> nn.Module:
        return enas_supernet(self.space, **self.resolved_model_kwargs(), num_classes=num_classes,
                             in_channels=in_channels)

    def child(self, candidate: Mapping[str, Choice]) -> nn.Module:
        """``candidate``'s stand-alone network holding copies of the shared weights it uses."""
        return self.supernet.child(self.space.candidate(candidate))  # type: ignore[operator]
