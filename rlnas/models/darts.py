"""The DARTS evaluation network for CIFAR (``NetworkCIFAR`` of the DARTS paper).

Defaults are the paper's: 36 initial channels, 20 cells (reductions at 1/3 and 2/3 of the
depth), stem multiplier 3, optional auxiliary head after the second reduction, drop-path.
Every ``Conv2d`` has no bias; every ``BatchNorm2d`` is affine.
"""
from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from rlnas.errors import ConfigError
from rlnas.spaces.base import Choice
from rlnas.spaces.darts import DARTS_NODES, cell_edges


class ReLUConvBN(nn.Sequential):
    """ReLU -> Conv2d -> BatchNorm2d."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, padding: int):
        super().__init__(nn.ReLU(inplace=False), nn.Conv2d(c_in, c_out, kernel, stride, padding, bias=False),
                         nn.BatchNorm2d(c_out))


class DilConv(nn.Sequential):
    """ReLU -> dilated depthwise conv -> pointwise conv -> BN."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, padding: int, dilation: int):
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(c_in, c_in, kernel, stride, padding, dilation=dilation, groups=c_in, bias=False),
            nn.Conv2d(c_in, c_out, 1, bias=False),
            nn.BatchNorm2d(c_out),
        )


class SepConv(nn.Sequential):
    """Two stacked (ReLU, depthwise, pointwise, BN) blocks; the first one carries the stride."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, padding: int):
        super().__init__(
            DilConv(c_in, c_in, kernel, stride, padding, dilation=1),
            DilConv(c_in, c_out, kernel, 1, padding, dilation=1),
        )


class Zero(nn.Module):
    """The ``none`` operation (keeps the stride so shapes agree)."""

    def __init__(self, stride: int):
        super().__init__()
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, :, :: self.stride, :: self.stride].mul(0.0)


class FactorizedReduce(nn.Module):
    """Stride-2 reduction by two offset 1x1 convolutions whose outputs are concatenated."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.relu = nn.ReLU(inplace=False)
        self.conv_1 = nn.Conv2d(c_in, c_out // 2, 1, stride=2, bias=False)
        self.conv_2 = nn.Conv2d(c_in, c_out - c_out // 2, 1, stride=2, bias=False)
        self.bn = nn.BatchNorm2d(c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(x)
        shifted = nn.functional.pad(x[:, :, 1:, 1:], (0, 1, 0, 1))  # keeps odd sizes aligned
        return self.bn(torch.cat([self.conv_1(x), self.conv_2(shifted)], dim=1))


def darts_op(name: str, c: int, stride: int) -> nn.Module:
    """One DARTS operation with ``c`` channels in and out."""
    if name == "none":
        return Zero(stride)
    if name == "avg_pool_3x3":
        return nn.AvgPool2d(3, stride=stride, padding=1, count_include_pad=False)
    if name == "max_pool_3x3":
        return nn.MaxPool2d(3, stride=stride, padding=1)
    if name == "skip_connect":
        return nn.Identity() if stride == 1 else FactorizedReduce(c, c)
    if name.startswith("sep_conv_"):
        k = int(name[-1])
        return SepConv(c, c, k, stride, k // 2)
    if name.startswith("dil_conv_"):
        k = int(name[-1])
        return DilConv(c, c, k, stride, k - 1, dilation=2)
    raise ValueError(f"unknown DARTS operation {name!r}")


def drop_path(x: torch.Tensor, drop_prob: float) -> torch.Tensor:
    """Zero whole samples with probability ``drop_prob`` and rescale the rest."""
    keep = 1.0 - drop_prob
    mask = torch.empty(x.size(0), 1, 1, 1, device=x.device, dtype=x.dtype).bernoulli_(keep)
    return x / keep * mask


class DartsCell(nn.Module):
    """One normal or reduction cell built from its ``[(op, input), ...]`` list."""

    def __init__(self, edges: list[tuple[str, int]], c_pp: int, c_p: int, c: int,
                 reduction: bool, reduction_prev: bool):
        super().__init__()
        self.reduction = reduction
        self.preprocess0 = FactorizedReduce(c_pp, c) if reduction_prev else ReLUConvBN(c_pp, c, 1, 1, 0)
        self.preprocess1 = ReLUConvBN(c_p, c, 1, 1, 0)
        self.inputs = [src for _, src in edges]
        self.ops = nn.ModuleList(
            darts_op(op, c, 2 if reduction and src < 2 else 1) for op, src in edges
        )

    def forward(self, s0: torch.Tensor, s1: torch.Tensor, drop_prob: float = 0.0) -> torch.Tensor:
        states = [self.preprocess0(s0), self.preprocess1(s1)]
        for node in range(DARTS_NODES):
            total = 0
            for e in (2 * node, 2 * node + 1):
                h = self.ops[e](states[self.inputs[e]])
                if self.training and drop_prob > 0 and not isinstance(self.ops[e], nn.Identity):
                    h = drop_path(h, drop_prob)
                total = total + h
            states.append(total)
        return torch.cat(states[2:], dim=1)


class AuxiliaryHeadCIFAR(nn.Module):
    """Auxiliary classifier on the 8x8 feature map after the second reduction."""

    def __init__(self, c: int, num_classes: int):
        super().__init__()
        self.features = nn.Sequential(
            nn.ReLU(inplace=True),
            nn.AvgPool2d(5, stride=3, padding=0, count_include_pad=False),
            nn.Conv2d(c, 128, 1, bias=False), nn.BatchNorm2d(128), nn.ReLU(inplace=True),
            nn.Conv2d(128, 768, 2, bias=False), nn.BatchNorm2d(768), nn.ReLU(inplace=True),
        )
        self.classifier = nn.Linear(768, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if min(x.shape[-2:]) < 8:  # 5x5 pooling with stride 3, then a 2x2 convolution
            raise ConfigError(f"the DARTS auxiliary head needs an 8x8 feature map where it attaches "
                              f"(32x32 images), got {x.shape[-2]}x{x.shape[-1]}: set auxiliary=False for "
                              "these images")
        return self.classifier(torch.flatten(self.features(x), 1))


class DartsNetworkCIFAR(nn.Module):
    """DARTS CIFAR network. In training mode with ``auxiliary=True`` ``forward`` returns
    ``(logits, aux_logits)``; otherwise it returns the logits. ``drop_path_prob`` is an
    attribute so a trainer can schedule it; a trainer adds ``auxiliary_weight`` (DARTS: 0.4)
    times the auxiliary loss to the main one."""

    def __init__(self, candidate: Mapping[str, Choice], num_classes: int = 10, channels: int = 36,
                 layers: int = 20, auxiliary: bool = False, drop_path_prob: float = 0.0,
                 stem_multiplier: int = 3, in_channels: int = 3, auxiliary_weight: float = 0.4):
        super().__init__()
        self.drop_path_prob = drop_path_prob
        self.auxiliary_weight = auxiliary_weight
        self.aux_position = 2 * layers // 3
        c_curr = stem_multiplier * channels
        self.stem = nn.Sequential(nn.Conv2d(in_channels, c_curr, 3, padding=1, bias=False), nn.BatchNorm2d(c_curr))
        c_pp, c_p, c = c_curr, c_curr, channels
        self.cells = nn.ModuleList()
        reduction_prev = False
        c_aux = 0
        for i in range(layers):
            reduction = i in (layers // 3, 2 * layers // 3)
            if reduction:
                c *= 2
            edges = cell_edges(candidate, "reduce" if reduction else "normal")
            self.cells.append(DartsCell(edges, c_pp, c_p, c, reduction, reduction_prev))
            reduction_prev = reduction
            c_pp, c_p = c_p, 4 * c
            if i == self.aux_position:
                c_aux = c_p
        self.auxiliary_head = AuxiliaryHeadCIFAR(c_aux, num_classes) if auxiliary else None
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c_p, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        s0 = s1 = self.stem(x)
        aux = None
        for i, cell in enumerate(self.cells):
            s0, s1 = s1, cell(s0, s1, self.drop_path_prob)
            if i == self.aux_position and self.auxiliary_head is not None and self.training:
                aux = self.auxiliary_head(s1)
        logits = self.classifier(torch.flatten(self.global_pooling(s1), 1))
        return (logits, aux) if aux is not None else logits
