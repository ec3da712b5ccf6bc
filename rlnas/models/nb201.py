"""The NAS-Bench-201 network: a stem, three stages of identical cells, ResNet reductions.

The structure reproduces the parameter counts of the NAS-Bench-201 / NATS-Bench tables
exactly (``params_mb_*`` columns, all 15,625 cells): every ``Conv2d`` has no bias, every
``BatchNorm2d`` is affine, the reductions are ResNet basic blocks whose shortcut is
``AvgPool2d(2) + Conv2d 1x1``.
"""
from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from rlnas.spaces.base import Choice
from rlnas.spaces.nb201 import NB201_EDGES, edge_name


class ReLUConvBN(nn.Sequential):
    """ReLU -> Conv2d (no bias) -> BatchNorm2d (affine)."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int = 1):
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=kernel // 2, bias=False),
            nn.BatchNorm2d(c_out),
        )


class Zero(nn.Module):
    """The ``none`` operation: an all-zero tensor of the input's shape."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mul(0.0)


def nb201_op(name: str, channels: int) -> nn.Module:
    """One NAS-Bench-201 edge operation at stride 1 with ``channels`` in and out."""
    if name == "none":
        return Zero()
    if name == "skip_connect":
        return nn.Identity()
    if name == "nor_conv_1x1":
        return ReLUConvBN(channels, channels, 1)
    if name == "nor_conv_3x3":
        return ReLUConvBN(channels, channels, 3)
    if name == "avg_pool_3x3":
        return nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)
    raise ValueError(f"unknown NAS-Bench-201 operation {name!r}")


class NB201Cell(nn.Module):
    """Four-node DAG: node t is the sum of the edge operations applied to nodes 0..t-1."""

    def __init__(self, ops: Mapping[str, Choice], channels: int):
        super().__init__()
        self.edges = nn.ModuleDict(
            {edge_name(s, t): nb201_op(str(ops[edge_name(s, t)]), channels) for s, t in NB201_EDGES}
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nodes = [x]
        for target in (1, 2, 3):
            nodes.append(sum(self.edges[edge_name(s, target)](nodes[s]) for s in range(target)))
        return nodes[3]


class ResNetBasicBlock(nn.Module):
    """Stride-2 reduction: two ReLU-Conv3x3-BN layers plus an AvgPool + Conv1x1 shortcut."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.conv_a = ReLUConvBN(c_in, c_out, 3, stride=2)
        self.conv_b = ReLUConvBN(c_out, c_out, 3)
        self.shortcut = nn.Sequential(
            nn.AvgPool2d(2, stride=2, padding=0), nn.Conv2d(c_in, c_out, 1, bias=False)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv_b(self.conv_a(x)) + self.shortcut(x)


class NB201Network(nn.Module):
    """NAS-Bench-201 macro skeleton around one cell (defaults: C=16, N=5, 10 classes)."""

    def __init__(self, ops: Mapping[str, Choice], num_classes: int = 10, channels: int = 16,
                 cells_per_stage: int = 5, in_channels: int = 3):
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, channels, 3, padding=1, bias=False), nn.BatchNorm2d(channels)
        )
        layers: list[nn.Module] = []
        c = channels
        for stage in range(3):
            if stage > 0:
                layers.append(ResNetBasicBlock(c, 2 * c))
                c *= 2
            layers.extend(NB201Cell(ops, c) for _ in range(cells_per_stage))
        self.cells = nn.Sequential(*layers)
        self.lastact = nn.Sequential(nn.BatchNorm2d(c), nn.ReLU(inplace=False))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.lastact(self.cells(self.stem(x)))
        return self.classifier(torch.flatten(self.pool(x), 1))


def nb201_param_count(ops: Mapping[str, Choice], num_classes: int = 10, channels: int = 16,
                      cells_per_stage: int = 5) -> int:
    """Closed-form parameter count of :class:`NB201Network` (no module is built)."""
    per_op = {"nor_conv_1x1": lambda c: c * c + 2 * c, "nor_conv_3x3": lambda c: 9 * c * c + 2 * c}
    total = 3 * 9 * channels + 2 * channels  # stem
    c = channels
    for stage in range(3):
        if stage > 0:
            total += 9 * c * 2 * c + 2 * 2 * c + 9 * 4 * c * c + 2 * 2 * c + c * 2 * c
            c *= 2
        cell = sum(per_op[str(op)](c) for op in (ops[edge_name(s, t)] for s, t in NB201_EDGES) if op in per_op)
        total += cells_per_stage * cell
    return total + 2 * c + c * num_classes + num_classes
