"""The two ENAS search spaces (Pham et al., 2018): a macro chain of layers and micro cells.

``enas_macro`` (``layers`` L, default 12, the ENAS CIFAR-10 search): layer ``i`` applies one
of six operations to the output of layer ``i-1`` (the stem for ``i = 0``) and adds the
outputs of any earlier layers it takes a skip connection from. Decisions: ``l{i}_op``
(one of :data:`ENAS_MACRO_OPS`) and, for every ``j < i``, ``l{i}_skip{j}`` (0 or 1).
Size ``6^L · 2^(L(L-1)/2)``: 1.6e29 for L = 12, as the ENAS paper counts.
Key: one group per layer joined by ``|``; a group is the op name, then (from layer 1 on)
``:`` and the skip bits of the earlier layers in order, e.g.
``conv_3x3|sep_conv_5x5:1|max_pool_3x3:01``.

``enas_micro`` (``nodes`` B, default 5): a normal and a reduction cell. Each has two input
states (0 = the output of the cell before the previous one, 1 = the previous cell's output)
and B nodes; node ``i`` (state ``i + 2``) picks two inputs among the states ``0 .. i+1`` and
an operation for each (one of :data:`ENAS_MICRO_OPS`) and sums the two results. The cell's
output concatenates the nodes that no other node of the cell uses. Decisions
``{cell}_n{i}_in{j}`` and ``{cell}_n{i}_op{j}`` for ``j`` in 0, 1. Key: per cell
``{cell}=`` and one group per node joined by ``/``, a group being
``{in0}:{op0},{in1}:{op1}``; the cells are joined by ``;``, e.g.
``normal=0:sep_conv_3x3,1:identity/2:avg_pool_3x3,0:identity/...;reduce=...``.

Every combination of choices is a valid network. Pure Python: nothing here imports torch.
"""
from __future__ import annotations

import re
from collections.abc import Mapping

from rlnas.errors import ConfigError, InvalidCandidate
from rlnas.spaces.base import Candidate, Categorical, Choice, Space

ENAS_MACRO_OPS: tuple[str, ...] = (
    "conv_3x3", "conv_5x5", "sep_conv_3x3", "sep_conv_5x5", "avg_pool_3x3", "max_pool_3x3",
)
ENAS_MICRO_OPS: tuple[str, ...] = ("identity", "sep_conv_3x3", "sep_conv_5x5", "avg_pool_3x3", "max_pool_3x3")
ENAS_CELLS: tuple[str, ...] = ("normal", "reduce")


def _positive_int(label: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{label} must be a positive integer, got {value!r}")
    return value


# ----------------------------------------------------------------------------- macro
def macro_op_name(layer: int) -> str:
    """Decision name of the operation of ``layer``."""
    return f"l{layer}_op"


def macro_skip_name(layer: int, source: int) -> str:
    """Decision name of the skip connection from layer ``source`` into ``layer`` (``source < layer``)."""
    return f"l{layer}_skip{source}"


def macro_layer_count(candidate: Mapping[str, Choice]) -> int:
    """Number of layers of a macro candidate (counted from its ``l{i}_op`` decisions)."""
    return sum(1 for name in candidate if re.fullmatch(r"l\d+_op", name))


def macro_layers(candidate: Mapping[str, Choice]) -> list[tuple[str, list[int]]]:
    """``[(op, [earlier layers it takes a skip from]), ...]``, one entry per layer."""
    return [
        (str(candidate[macro_op_name(i)]), [j for j in range(i) if candidate[macro_skip_name(i, j)] == 1])
        for i in range(macro_layer_count(candidate))
    ]


class EnasMacroSpace(Space):
    """ENAS macro space: ``layers`` layers (default 12), each an op and skip connections from every earlier layer."""

    def __init__(self, layers: int = 12) -> None:
        self.layers = _positive_int("enas_macro: layers", layers)
        decisions = []
        for i in range(self.layers):
            decisions.append(Categorical(macro_op_name(i), ENAS_MACRO_OPS))
            decisions += [Categorical(macro_skip_name(i, j), (0, 1)) for j in range(i)]
        super().__init__("enas_macro", decisions)

    def skip_decisions(self) -> list[int]:
        """Positions (in decision order) of the skip-connection decisions."""
        return [k for k, d in enumerate(self.decisions) if "_skip" in d.name]

    def key(self, candidate: Mapping[str, Choice]) -> str:
        """``op|op:bits|...`` (see the module docstring)."""
        self.validate(candidate)
        groups = []
        for i in range(self.layers):
            bits = "".join(str(candidate[macro_skip_name(i, j)]) for j in range(i))
            groups.append(str(candidate[macro_op_name(i)]) + (f":{bits}" if i else ""))
        return "|".join(groups)

    def from_key(self, key: str) -> Candidate:
        """Parse ``op|op:bits|...``; :class:`InvalidCandidate` says which layer is wrong."""
        if not isinstance(key, str):
            raise InvalidCandidate(f"an enas_macro key must be a str, got {type(key).__name__}")
        groups = key.split("|")
        if len(groups) != self.layers:
            raise InvalidCandidate(f"enas_macro key must have {self.layers} '|'-separated layers, got {len(groups)}")
        choices: dict[str, Choice] = {}
        for i, group in enumerate(groups):
            op, sep, bits = group.partition(":")
            if op not in ENAS_MACRO_OPS:
                raise InvalidCandidate(f"enas_macro key, layer {i}: unknown op {op!r} "
                                       f"(choices: {', '.join(ENAS_MACRO_OPS)})")
            if (i == 0 and sep) or (i > 0 and (len(bits) != i or set(bits) - {"0", "1"})):
                raise InvalidCandidate(f"enas_macro key, layer {i}: needs {i} skip bit(s) of 0/1 after ':', "
                                       f"got {group!r}")
            choices[macro_op_name(i)] = op
            for j, bit in enumerate(bits):
                choices[macro_skip_name(i, j)] = int(bit)
        return self.candidate(choices)


# ----------------------------------------------------------------------------- micro
def micro_input_name(cell: str, node: int, j: int) -> str:
    """Decision name of the ``j``-th input state of ``node`` in ``cell``."""
    return f"{cell}_n{node}_in{j}"


def micro_op_name(cell: str, node: int, j: int) -> str:
    """Decision name of the operation applied to the ``j``-th input of ``node`` in ``cell``."""
    return f"{cell}_n{node}_op{j}"


def micro_node_count(candidate: Mapping[str, Choice]) -> int:
    """Number of nodes per cell of a micro candidate."""
    return sum(1 for name in candidate if re.fullmatch(r"normal_n\d+_in0", name))


def micro_cell(candidate: Mapping[str, Choice], cell: str) -> list[list[tuple[int, str]]]:
    """``[[(in0, op0), (in1, op1)], ...]``, one entry per node of ``cell``."""
    return [
        [(int(candidate[micro_input_name(cell, i, j)]), str(candidate[micro_op_name(cell, i, j)])) for j in (0, 1)]
        for i in range(micro_node_count(candidate))
    ]


def unused_states(nodes: list[list[tuple[int, str]]]) -> list[int]:
    """States (``2 .. B+1``) of the nodes (as :func:`micro_cell` lists them) that no node uses."""
    used = {src for edges in nodes for src, _ in edges}
    return [s for s in range(2, len(nodes) + 2) if s not in used]


def unused_nodes(candidate: Mapping[str, Choice], cell: str) -> list[int]:
    """States (``2 .. B+1``) of the nodes of ``cell`` that no node uses: they form the cell's output."""
    return unused_states(micro_cell(candidate, cell))


class EnasMicroSpace(Space):
    """ENAS micro space: normal and reduction cells of ``nodes`` nodes (default 5) beyond the two inputs."""

    def __init__(self, nodes: int = 5) -> None:
        self.nodes = _positive_int("enas_micro: nodes", nodes)
        decisions = []
        for cell in ENAS_CELLS:
            for i in range(self.nodes):
                for j in (0, 1):
                    decisions.append(Categorical(micro_input_name(cell, i, j), tuple(range(i + 2))))
                    decisions.append(Categorical(micro_op_name(cell, i, j), ENAS_MICRO_OPS))
        super().__init__("enas_micro", decisions)

    def key(self, candidate: Mapping[str, Choice]) -> str:
        """``normal=in:op,in:op/...;reduce=...`` (see the module docstring)."""
        self.validate(candidate)
        return ";".join(
            f"{cell}=" + "/".join(f"{a}:{op_a},{b}:{op_b}" for (a, op_a), (b, op_b) in micro_cell(candidate, cell))
            for cell in ENAS_CELLS
        )

    def from_key(self, key: str) -> Candidate:
        """Parse ``normal=...;reduce=...``; :class:`InvalidCandidate` says which node is wrong."""
        if not isinstance(key, str):
            raise InvalidCandidate(f"an enas_micro key must be a str, got {type(key).__name__}")
        parts = key.split(";")
        if len(parts) != len(ENAS_CELLS):
            raise InvalidCandidate(f"enas_micro key must be 'normal=...;reduce=...', got {key[:60]!r}")
        choices: dict[str, Choice] = {}
        for cell, part in zip(ENAS_CELLS, parts):
            label, eq, body = part.partition("=")
            if label != cell or not eq:
                raise InvalidCandidate(f"enas_micro key: expected '{cell}=...', got {part[:40]!r}")
            nodes = body.split("/")
            if len(nodes) != self.nodes:
                raise InvalidCandidate(f"enas_micro key: {cell} needs {self.nodes} '/'-separated nodes, "
                                       f"got {len(nodes)}")
            for i, node in enumerate(nodes):
                edges = node.split(",")
                if len(edges) != 2:
                    raise InvalidCandidate(f"enas_micro key: {cell} node {i} must be 'in:op,in:op', got {node!r}")
                for j, edge in enumerate(edges):
                    src, colon, op = edge.partition(":")
                    if not colon or not src.isdigit() or not 0 <= int(src) <= i + 1:
                        raise InvalidCandidate(f"enas_micro key: {cell} node {i} input {src!r} must be an int "
                                               f"in 0..{i + 1}")
                    if op not in ENAS_MICRO_OPS:
                        raise InvalidCandidate(f"enas_micro key: unknown op {op!r} "
                                               f"(choices: {', '.join(ENAS_MICRO_OPS)})")
                    choices[micro_input_name(cell, i, j)] = int(src)
                    choices[micro_op_name(cell, i, j)] = op
        return self.candidate(choices)
