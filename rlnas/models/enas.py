"""ENAS networks: stand-alone children and shared-weight supernets for ``enas_macro`` / ``enas_micro``.

A network is built for a *set* of operations per layer (macro) or per cell edge (micro) and
runs one child's path through it. A stand-alone network (:class:`EnasMacroNetwork`,
:class:`EnasMicroNetwork`) holds only its candidate's operations; a supernet
(:class:`EnasMacroSupernet`, :class:`EnasMicroSupernet`) holds every operation of every
layer / edge once and ``supernet(x, candidate)`` runs only that candidate's path, so
children with the same operation at the same place use the same weights. Both use the same
module names, so :meth:`child_state_dict` of a supernet loads into the stand-alone network of
the same candidate (strictly, when built with ``running_stats=False``), which then computes
exactly what the supernet computes for that candidate.

Macro (ENAS "general" child): stem conv3x3 + BN; layer ``i`` applies its op to the previous
output; from layer 1 on, ``BN(op(x) + Σ skip outputs)``. Ops: ``conv_kxk`` = 1x1 conv-BN-ReLU
then kxk conv-BN-ReLU; ``sep_conv_kxk`` = 1x1 conv-BN-ReLU then depthwise kxk + pointwise
1x1-BN-ReLU; pools = 1x1 conv-BN-ReLU then a 3x3 pool (stride 1). After the layers at
:func:`macro_reduction_layers` every output still needed is halved in resolution by its own
factorized reduction and the width doubles. Head: global average pool, dropout, linear.

Micro (ENAS "micro" child): stem conv3x3 to ``stem_multiplier · C`` + BN; ``layers`` normal
cells with a reduction cell inserted at :func:`micro_reduction_cells`; the width doubles at
each reduction. A cell brings the inputs its nodes use to its width and resolution (ReLU-conv1x1-BN,
or factorized reductions), computes its nodes (each the sum of two ops at stride 1), and
returns ``BN(Σ_{unused nodes k} conv1x1_k(ReLU(h_k)))``: a 1x1 conv over the concatenation of
the unused nodes, with one weight block per node. Ops: identity, ``sep_conv_kxk`` = two
(ReLU, depthwise kxk, pointwise 1x1, BN), 3x3 average / max pool (stride 1). Head: ReLU,
global average pool, dropout, linear.

``stem_stride=2`` halves the input resolution in the stem (cheaper CPU searches on 28x28
images). ``running_stats=False`` makes every BatchNorm normalise with the statistics of the batch it
sees, in training and evaluation alike (what ENAS does for shared weights: running
statistics mixed over many children describe none of them). Supernets always do this.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from rlnas.errors import ConfigError
from rlnas.registry import check_options
from rlnas.spaces.base import Choice, Space
from rlnas.spaces.enas import (
    ENAS_CELLS,
    ENAS_MACRO_OPS,
    ENAS_MICRO_OPS,
    macro_layer_count,
    macro_layers,
    micro_cell,
    micro_node_count,
    unused_states,
)

MacroStructure = list[tuple[str, list[int]]]
MicroStructure = dict[str, list[list[tuple[int, str]]]]


# ------------------------------------------------------------------------ blocks
class ConvBNReLU(nn.Sequential):
    """k x k convolution (same padding, no bias) -> BN -> ReLU."""

    def __init__(self, c_in: int, c_out: int, kernel: int, running_stats: bool = True):
        super().__init__(nn.Conv2d(c_in, c_out, kernel, padding=kernel // 2, bias=False),
                         nn.BatchNorm2d(c_out, track_running_stats=running_stats), nn.ReLU())


class SepConvBNReLU(nn.Sequential):
    """Depthwise k x k -> pointwise 1x1 -> BN -> ReLU."""

    def __init__(self, c: int, kernel: int, running_stats: bool = True):
        super().__init__(nn.Conv2d(c, c, kernel, padding=kernel // 2, groups=c, bias=False),
                         nn.Conv2d(c, c, 1, bias=False),
                         nn.BatchNorm2d(c, track_running_stats=running_stats), nn.ReLU())


class ReLUSepConvBN(nn.Sequential):
    """ReLU -> depthwise k x k -> pointwise 1x1 -> BN (one half of a micro separable conv)."""

    def __init__(self, c: int, kernel: int, running_stats: bool = True):
        super().__init__(nn.ReLU(), nn.Conv2d(c, c, kernel, padding=kernel // 2, groups=c, bias=False),
                         nn.Conv2d(c, c, 1, bias=False), nn.BatchNorm2d(c, track_running_stats=running_stats))


class ReLUConvBN(nn.Sequential):
    """ReLU -> 1x1 convolution -> BN."""

    def __init__(self, c_in: int, c_out: int, running_stats: bool = True):
        super().__init__(nn.ReLU(), nn.Conv2d(c_in, c_out, 1, bias=False),
                         nn.BatchNorm2d(c_out, track_running_stats=running_stats))


class FactorizedReduce(nn.Module):
    """Halve the resolution: ReLU, two 1x1 stride-2 convs (the second on the input shifted by one
    pixel) concatenated to ``c_out`` channels, BN."""

    def __init__(self, c_in: int, c_out: int, running_stats: bool = True):
        super().__init__()
        self.conv_1 = nn.Conv2d(c_in, c_out // 2, 1, stride=2, bias=False)
        self.conv_2 = nn.Conv2d(c_in, c_out - c_out // 2, 1, stride=2, bias=False)
        self.bn = nn.BatchNorm2d(c_out, track_running_stats=running_stats)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(x)
        shifted = nn.functional.pad(x[:, :, 1:, 1:], (0, 1, 0, 1))
        return self.bn(torch.cat([self.conv_1(x), self.conv_2(shifted)], dim=1))


def pool_3x3(name: str) -> nn.Module:
    """3x3 average (padding not counted) or max pool at stride 1."""
    if name == "avg_pool_3x3":
        return nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)
    return nn.MaxPool2d(3, stride=1, padding=1)


def macro_op(name: str, c: int, running_stats: bool = True) -> nn.Module:
    """One ENAS macro operation with ``c`` channels in and out."""
    head = ConvBNReLU(c, c, 1, running_stats)
    if name.startswith("conv_"):
        return nn.Sequential(head, ConvBNReLU(c, c, int(name[-1]), running_stats))
    if name.startswith("sep_conv_"):
        return nn.Sequential(head, SepConvBNReLU(c, int(name[-1]), running_stats))
    if name in ("avg_pool_3x3", "max_pool_3x3"):
        return nn.Sequential(head, pool_3x3(name))
    raise ValueError(f"unknown ENAS macro operation {name!r}")


def micro_op(name: str, c: int, running_stats: bool = True) -> nn.Module:
    """One ENAS micro operation with ``c`` channels in and out (stride 1)."""
    if name == "identity":
        return nn.Identity()
    if name.startswith("sep_conv_"):
        k = int(name[-1])
        return nn.Sequential(ReLUSepConvBN(c, k, running_stats), ReLUSepConvBN(c, k, running_stats))
    if name in ("avg_pool_3x3", "max_pool_3x3"):
        return pool_3x3(name)
    raise ValueError(f"unknown ENAS micro operation {name!r}")


def calibrate(c_in: int, c_out: int, factor: int, running_stats: bool = True) -> nn.Module:
    """Bring a state to ``c_out`` channels and ``1/factor`` of its resolution (factor 1, 2 or 4)."""
    if factor == 1:
        return ReLUConvBN(c_in, c_out, running_stats)
    if factor == 2:
        return FactorizedReduce(c_in, c_out, running_stats)
    return nn.Sequential(FactorizedReduce(c_in, c_out, running_stats), FactorizedReduce(c_out, c_out, running_stats))


def _check_sizes(**values: int) -> None:
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"ENAS network: {name} must be a positive integer, got {value!r}")


# ------------------------------------------------------------------------- macro
def macro_reduction_layers(layers: int) -> list[int]:
    """Layers after which the macro network halves its resolution (ENAS: ``L//3 − 1`` and ``2·(L//3) − 1``)."""
    third = layers // 3
    return sorted({third - 1, 2 * third - 1} - {-1})


def macro_kept_outputs(structure: MacroStructure) -> set[tuple[int, int]]:
    """``(reduction layer p, output j)`` pairs a child needs: output ``j <= p`` is reduced at ``p``
    when it is the next layer's input (``j == p``) or a later layer takes a skip from it."""
    return {(p, j) for p in macro_reduction_layers(len(structure)) for j in range(p + 1)
            if j == p or any(j in skips for _, skips in structure[p + 1:])}


class _MacroNet(nn.Module):
    """Macro layers holding the operations ``ops[i]`` at layer ``i``; :meth:`run` follows one child."""

    def __init__(self, ops: Sequence[Sequence[str]], reductions: set[tuple[int, int]], num_classes: int,
                 channels: int, in_channels: int, stem_stride: int, dropout: float, running_stats: bool):
        super().__init__()
        _check_sizes(num_classes=num_classes, channels=channels, in_channels=in_channels, stem_stride=stem_stride)
        self.num_layers = len(ops)
        self.stem = nn.Sequential(nn.Conv2d(in_channels, channels, 3, stride=stem_stride, padding=1, bias=False),
                                  nn.BatchNorm2d(channels, track_running_stats=running_stats))
        self.layers = nn.ModuleList()
        self.reductions = nn.ModuleDict()
        c = channels
        for i, names in enumerate(ops):
            layer = nn.Module()
            layer.ops = nn.ModuleDict({name: macro_op(name, c, running_stats) for name in names})
            if i > 0:
                layer.bn = nn.BatchNorm2d(c, track_running_stats=running_stats)
            self.layers.append(layer)
            if i in macro_reduction_layers(self.num_layers):
                self.reductions[str(i)] = nn.ModuleDict({
                    str(j): FactorizedReduce(c, 2 * c, running_stats) for p, j in sorted(reductions) if p == i})
                c *= 2
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(c, num_classes)

    def run(self, x: torch.Tensor, structure: MacroStructure) -> torch.Tensor:
        """Logits of the child ``structure`` (see :func:`~rlnas.spaces.enas.macro_layers`)."""
        if len(structure) != self.num_layers:
            raise ConfigError(f"this ENAS macro network has {self.num_layers} layers, the candidate {len(structure)}")
        kept = macro_kept_outputs(structure)
        outputs: dict[int, torch.Tensor] = {}
        x = self.stem(x)
        for i, (op, skips) in enumerate(structure):
            x = self.layers[i].ops[op](x)
            if i > 0:
                x = self.layers[i].bn(sum((outputs[j] for j in skips), x))
            outputs[i] = x
            if str(i) in self.reductions:
                outputs = {j: self.reductions[str(i)][str(j)](h) for j, h in outputs.items() if (i, j) in kept}
                x = outputs[i]
        return self.classifier(self.dropout(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1)))


class EnasMacroNetwork(_MacroNet):
    """The stand-alone network of one ``enas_macro`` candidate (ENAS search width: 36 channels)."""

    def __init__(self, candidate: Mapping[str, Choice], num_classes: int = 10, channels: int = 36,
                 in_channels: int = 3, stem_stride: int = 1, dropout: float = 0.0, running_stats: bool = True):
        self.structure = macro_layers(candidate)
        super().__init__([[op] for op, _ in self.structure], macro_kept_outputs(self.structure), num_classes,
                         channels, in_channels, stem_stride, dropout, running_stats)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.run(x, self.structure)


class EnasMacroSupernet(_MacroNet):
    """Every op of every layer and every reduction once; ``forward(x, candidate)`` runs one child."""

    def __init__(self, layers: int = 12, num_classes: int = 10, channels: int = 36, in_channels: int = 3,
                 stem_stride: int = 1, dropout: float = 0.0):
        _check_sizes(layers=layers)
        every = {(p, j) for p in macro_reduction_layers(layers) for j in range(p + 1)}
        super().__init__([ENAS_MACRO_OPS] * layers, every, num_classes, channels, in_channels, stem_stride, dropout,
                         False)
        self.options = {"num_classes": num_classes, "channels": channels, "in_channels": in_channels,
                        "stem_stride": stem_stride, "dropout": dropout}

    def forward(self, x: torch.Tensor, candidate: Mapping[str, Choice]) -> torch.Tensor:
        return self.run(x, macro_layers(candidate))

    def child(self, candidate: Mapping[str, Choice]) -> EnasMacroNetwork:
        """A stand-alone network of ``candidate`` holding copies of the supernet weights it uses."""
        return _load_child(EnasMacroNetwork(candidate, running_stats=False, **self.options), self, candidate)

    def child_state_dict(self, candidate: Mapping[str, Choice]) -> dict[str, torch.Tensor]:
        """The supernet tensors ``candidate`` uses, named as in its stand-alone network."""
        return _child_state(self, lambda: EnasMacroNetwork(candidate, running_stats=False, **self.options))


# ------------------------------------------------------------------------- micro
def micro_reduction_cells(layers: int) -> list[int]:
    """Positions of the reduction cells among ``layers + 2`` cells (ENAS: ``L//3`` and ``2·(L//3) + 1``)."""
    third = layers // 3
    return [third, 2 * third + 1]


class _MicroCell(nn.Module):
    """A cell holding the operations ``ops`` on every edge, the input calibrations ``inputs`` (0, 1) and
    the output convs of the nodes ``outputs``; :meth:`run` follows one cell structure (an input no
    node uses is not computed)."""

    def __init__(self, nodes: int, ops: Mapping[str, Sequence[str]], inputs: Sequence[int], outputs: Sequence[int],
                 c_pp: int, c_p: int, c: int, factors: tuple[int, int], running_stats: bool):
        super().__init__()
        widths = (c_pp, c_p)
        self.pre = nn.ModuleDict({str(k): calibrate(widths[k], c, factors[k], running_stats) for k in inputs})
        self.edges = nn.ModuleDict({
            f"{i}_{j}": nn.ModuleDict({name: micro_op(name, c, running_stats) for name in ops[f"{i}_{j}"]})
            for i in range(nodes) for j in (0, 1)})
        self.combine = nn.ModuleDict({str(k): nn.Sequential(nn.ReLU(), nn.Conv2d(c, c, 1, bias=False))
                                      for k in outputs})
        self.bn = nn.BatchNorm2d(c, track_running_stats=running_stats)

    def run(self, s0: torch.Tensor, s1: torch.Tensor, nodes: list[list[tuple[int, str]]],
            outputs: list[int]) -> torch.Tensor:
        used = {src for edges in nodes for src, _ in edges}
        states: list[torch.Tensor | None] = [self.pre[str(k)](s) if k in used else None for k, s in enumerate((s0, s1))]
        for i, edges in enumerate(nodes):
            states.append(sum(self.edges[f"{i}_{j}"][op](states[src]) for j, (src, op) in enumerate(edges)))
        return self.bn(sum(self.combine[str(k)](states[k]) for k in outputs))


class _MicroNet(nn.Module):
    """Stem, ``layers + 2`` cells (two of them reductions) and the head; :meth:`run` follows one child.

    ``ops[kind]``, ``inputs[kind]`` and ``outputs[kind]`` give, for a ``normal`` or ``reduce``
    cell, the operations each edge holds, the inputs it calibrates and the nodes that own an
    output conv.
    """

    def __init__(self, nodes: int, ops: Mapping[str, Mapping[str, Sequence[str]]], inputs: Mapping[str, Sequence[int]],
                 outputs: Mapping[str, Sequence[int]], num_classes: int, channels: int, layers: int,
                 in_channels: int, stem_multiplier: int, stem_stride: int, dropout: float, running_stats: bool):
        super().__init__()
        _check_sizes(num_classes=num_classes, channels=channels, layers=layers, in_channels=in_channels,
                     stem_multiplier=stem_multiplier, stem_stride=stem_stride)
        self.nodes = nodes
        c_stem = stem_multiplier * channels
        self.stem = nn.Sequential(nn.Conv2d(in_channels, c_stem, 3, stride=stem_stride, padding=1, bias=False),
                                  nn.BatchNorm2d(c_stem, track_running_stats=running_stats))
        reductions = micro_reduction_cells(layers)
        self.kinds = ["reduce" if k in reductions else "normal" for k in range(layers + 2)]
        levels = [0, 0]  # reductions done before the two inputs of the next cell (stem counts twice)
        widths = [c_stem, c_stem]
        self.cells = nn.ModuleList()
        for kind in self.kinds:
            level = levels[-1] + (kind == "reduce")
            c = channels * 2**level
            factors = (2 ** (level - levels[-2]), 2 ** (level - levels[-1]))
            self.cells.append(_MicroCell(nodes, ops[kind], inputs[kind], outputs[kind], widths[-2], widths[-1], c,
                                         factors, running_stats))
            levels.append(level)
            widths.append(c)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(widths[-1], num_classes)

    def run(self, x: torch.Tensor, structure: MicroStructure) -> torch.Tensor:
        """Logits of the child ``structure`` (``{cell: micro_cell(candidate, cell)}``)."""
        if any(len(nodes) != self.nodes for nodes in structure.values()):
            raise ConfigError(f"this ENAS micro network has {self.nodes} nodes per cell, the candidate "
                              f"{len(next(iter(structure.values())))}")
        outputs = {kind: unused_states(nodes) for kind, nodes in structure.items()}
        s0 = s1 = self.stem(x)
        for kind, cell in zip(self.kinds, self.cells):
            s0, s1 = s1, cell.run(s0, s1, structure[kind], outputs[kind])
        return self.classifier(self.dropout(torch.flatten(nn.functional.adaptive_avg_pool2d(torch.relu(s1), 1), 1)))


def micro_structure(candidate: Mapping[str, Choice]) -> MicroStructure:
    """``{"normal": [...], "reduce": [...]}``: the two cells of ``candidate`` (see ``micro_cell``)."""
    return {kind: micro_cell(candidate, kind) for kind in ENAS_CELLS}


class EnasMicroNetwork(_MicroNet):
    """The stand-alone network of one ``enas_micro`` candidate (ENAS search: 20 channels, 6 normal cells)."""

    def __init__(self, candidate: Mapping[str, Choice], num_classes: int = 10, channels: int = 20, layers: int = 6,
                 in_channels: int = 3, stem_multiplier: int = 3, stem_stride: int = 1, dropout: float = 0.0,
                 running_stats: bool = True):
        self.structure = micro_structure(candidate)
        ops = {kind: {f"{i}_{j}": [op] for i, edges in enumerate(nodes) for j, (_, op) in enumerate(edges)}
               for kind, nodes in self.structure.items()}
        inputs = {kind: sorted({src for edges in nodes for src, _ in edges} & {0, 1})
                  for kind, nodes in self.structure.items()}
        outputs = {kind: unused_states(nodes) for kind, nodes in self.structure.items()}
        super().__init__(micro_node_count(candidate), ops, inputs, outputs, num_classes, channels, layers, in_channels,
                         stem_multiplier, stem_stride, dropout, running_stats)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.run(x, self.structure)


class EnasMicroSupernet(_MicroNet):
    """Every op of every edge of every cell once; ``forward(x, candidate)`` runs one child."""

    def __init__(self, nodes: int = 5, num_classes: int = 10, channels: int = 20, layers: int = 6,
                 in_channels: int = 3, stem_multiplier: int = 3, stem_stride: int = 1, dropout: float = 0.0):
        _check_sizes(nodes=nodes)
        every_edge = {f"{i}_{j}": ENAS_MICRO_OPS for i in range(nodes) for j in (0, 1)}
        every_node = tuple(range(2, nodes + 2))
        super().__init__(nodes, dict.fromkeys(ENAS_CELLS, every_edge), dict.fromkeys(ENAS_CELLS, (0, 1)),
                         dict.fromkeys(ENAS_CELLS, every_node),
                         num_classes, channels, layers, in_channels, stem_multiplier, stem_stride, dropout, False)
        self.options = {"num_classes": num_classes, "channels": channels, "layers": layers, "in_channels": in_channels,
                        "stem_multiplier": stem_multiplier, "stem_stride": stem_stride, "dropout": dropout}

    def forward(self, x: torch.Tensor, candidate: Mapping[str, Choice]) -> torch.Tensor:
        return self.run(x, micro_structure(candidate))

    def child(self, candidate: Mapping[str, Choice]) -> EnasMicroNetwork:
        """A stand-alone network of ``candidate`` holding copies of the supernet weights it uses."""
        return _load_child(EnasMicroNetwork(candidate, running_stats=False, **self.options), self, candidate)

    def child_state_dict(self, candidate: Mapping[str, Choice]) -> dict[str, torch.Tensor]:
        """The supernet tensors ``candidate`` uses, named as in its stand-alone network."""
        return _child_state(self, lambda: EnasMicroNetwork(candidate, running_stats=False, **self.options))


# ---------------------------------------------------------------------- sharing
def _child_state(supernet: nn.Module, build_child: Any) -> dict[str, torch.Tensor]:
    with torch.device("meta"):
        names = build_child().state_dict().keys()  # the child's names, without allocating its weights
    state = supernet.state_dict()
    return {name: state[name] for name in names}


def _load_child(child: nn.Module, supernet: Any, candidate: Mapping[str, Choice]) -> Any:
    child.load_state_dict(supernet.child_state_dict(candidate))
    return child.to(next(supernet.parameters()).device)


def enas_supernet(space: Space, **options: Any) -> EnasMacroSupernet | EnasMicroSupernet:
    """The shared-weight supernet of an ``enas_macro`` or ``enas_micro`` space (layer / node count
    taken from the space); :class:`ConfigError` for another space or an unknown option."""
    if space.name not in ("enas_macro", "enas_micro"):
        raise ConfigError(f"no ENAS supernet for space {space.name!r} (choices: enas_macro, enas_micro)")
    taken = {"enas_macro": "layers", "enas_micro": "nodes"}[space.name]
    if taken in options:
        raise ConfigError(f"supernet of {space.name!r}: {taken} comes from the space, not an option")
    sample = {d.name: d.choices[0] for d in space.decisions}
    if space.name == "enas_macro":
        check_options(f"supernet of {space.name!r}", EnasMacroSupernet, options)
        return EnasMacroSupernet(layers=macro_layer_count(sample), **options)
    check_options(f"supernet of {space.name!r}", EnasMicroSupernet, options)
    return EnasMicroSupernet(nodes=micro_node_count(sample), **options)
