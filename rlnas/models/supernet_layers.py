"""Layers of the mobile supernets: every weight at its largest width, unused channels masked to zero.

A layer is built once at the largest width any candidate can ask of it and called with the
width one candidate uses: its output keeps the largest width, the channels beyond the
candidate's count are multiplied by zero (TuNAS's filter masks). Because the first ``k``
channels of a masked layer compute exactly what a ``k``-channel layer with the first ``k``
filters computes, :meth:`copy_to` can hand a path's weights to the stand-alone
:class:`~rlnas.models.mobilenet.MobileNet`.

Batch normalization keeps no running statistics (``track_running_stats=False``): the
supernet always normalizes with the statistics of the batch it is given, as TuNAS does,
since running averages over many different paths describe none of them. A network taken out
of the supernet gets its running statistics by :func:`recalibrate_batchnorm`.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from rlnas.models.mobilenet import activation
from rlnas.spaces.blocks import make_divisible


def channel_mask(count: int, total: int, like: torch.Tensor) -> torch.Tensor:
    """Ones for the first ``count`` of ``total`` channels, zeros after, shaped ``[1, total, 1, 1]``
    (``[1, total]`` for 2-D ``like``)."""
    shape = (1, total) + (1,) * (like.dim() - 2)
    return (torch.arange(total, device=like.device) < count).to(like.dtype).view(shape)


def masked(x: torch.Tensor, count: int) -> torch.Tensor:
    """``x`` with the channels (dimension 1) from ``count`` on set to zero."""
    total = x.shape[1]
    return x if count >= total else x * channel_mask(count, total, x)


def mean_of(outputs: Sequence[torch.Tensor]) -> torch.Tensor:
    """The average of ``outputs`` (the one output itself when there is one)."""
    return outputs[0] if len(outputs) == 1 else torch.stack(list(outputs)).mean(0)


class MaskedConvBN(nn.Module):
    """Conv2d (no bias) -> BatchNorm (batch statistics) -> activation, output masked to ``c_out`` channels.

    ``depthwise=True`` makes a depthwise conv over ``c_in`` channels (``c_out`` must equal ``c_in``).
    """

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int = 1, *, depthwise: bool = False,
                 act: str = "no"):
        super().__init__()
        if depthwise and c_in != c_out:
            raise ValueError(f"a depthwise conv keeps its width ({c_in} != {c_out})")
        self.depthwise = depthwise
        self.conv = nn.Conv2d(c_in, c_out, kernel, stride, kernel // 2, groups=c_in if depthwise else 1, bias=False)
        self.bn = nn.BatchNorm2d(c_out, track_running_stats=False)
        self.act = activation(act)

    def forward(self, x: torch.Tensor, c_out: int) -> torch.Tensor:
        return masked(self.act(self.bn(self.conv(x))), c_out)

    @torch.no_grad()
    def copy_to(self, target: nn.Sequential, c_in: int, c_out: int) -> None:
        """Write the first filters into ``target`` = ``conv_bn(c_in, c_out, ...)`` of ``MobileNet``."""
        conv, bn = target[0], target[1]
        weight = self.conv.weight[:c_out] if self.depthwise else self.conv.weight[:c_out, :c_in]
        conv.weight.copy_(weight)
        bn.weight.copy_(self.bn.weight[:c_out])
        bn.bias.copy_(self.bn.bias[:c_out])


class MaskedSqueezeExcite(nn.Module):
    """Squeeze-excite over the largest width; the hidden layer is masked to the width a path's ``mid`` gives."""

    def __init__(self, channels: int, ratio: float):
        super().__init__()
        self.ratio = ratio
        hidden = make_divisible(channels * ratio, 8)
        self.reduce = nn.Conv2d(channels, hidden, 1)
        self.expand = nn.Conv2d(hidden, channels, 1)

    def hidden(self, channels: int) -> int:
        """Hidden width of the stand-alone squeeze-excite over ``channels`` channels."""
        return make_divisible(channels * self.ratio, 8)

    def forward(self, x: torch.Tensor, channels: int) -> torch.Tensor:
        s = masked(F.relu(self.reduce(x.mean((2, 3), keepdim=True))), self.hidden(channels))
        return x * F.hardsigmoid(self.expand(s))

    @torch.no_grad()
    def copy_to(self, target: nn.Module, channels: int) -> None:
        """Write the used part into ``target``, a ``SqueezeExcite(channels, ratio)``."""
        h = self.hidden(channels)
        target.reduce.weight.copy_(self.reduce.weight[:h, :channels])
        target.reduce.bias.copy_(self.reduce.bias[:h])
        target.expand.weight.copy_(self.expand.weight[:channels, :h])
        target.expand.bias.copy_(self.expand.bias[:channels])


class MaskedLinear(nn.Module):
    """Linear layer -> activation, output masked to ``c_out`` units (a ``lin`` layer after the pool)."""

    def __init__(self, c_in: int, c_out: int, bias: bool, act: str):
        super().__init__()
        self.linear = nn.Linear(c_in, c_out, bias=bias)
        self.act = activation(act)

    def forward(self, x: torch.Tensor, c_out: int) -> torch.Tensor:
        return masked(self.act(self.linear(x)), c_out)

    @torch.no_grad()
    def copy_to(self, target: nn.Linear, c_in: int, c_out: int) -> None:
        """Write the used part into ``target`` = ``nn.Linear(c_in, c_out)``."""
        target.weight.copy_(self.linear.weight[:c_out, :c_in])
        if target.bias is not None:
            target.bias.copy_(self.linear.bias[:c_out])


@torch.no_grad()
def recalibrate_batchnorm(model: nn.Module, batches: Sequence[torch.Tensor]) -> None:
    """Reset every BatchNorm's running statistics and set them to the exact average over ``batches``.

    Used on a network taken out of a supernet (whose BatchNorms kept no statistics) before it is
    evaluated or exported in eval mode. The model's train/eval flag is restored.
    """
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative average over the calibration batches
    was_training = model.training
    model.train()
    try:
        for x in batches:
            model(x)
    finally:
        for m, momentum in zip(norms, momenta):
            m.momentum = momentum
        model.train(was_training)
