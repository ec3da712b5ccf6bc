"""The DARTS cell space: a normal and a reduction cell, 4 nodes with 2 (input, op) pairs each.

Decisions, for cell ``c`` in (normal, reduce), node ``i`` in 0..3 and input ``j`` in 0..1:
``{c}_n{i}_in{j}`` (which earlier state feeds it: 0, 1 = the two cell inputs, 2.. = earlier
nodes, so ``0..i+1``) and ``{c}_n{i}_op{j}`` (one of the 8 DARTS operations).

Validity: every combination is a valid network. DARTS's own derivation always picks two
*distinct* inputs per node and never ``none``; this space also allows both inputs of a node
to be the same state (the two operations are applied to it and summed) and ``none`` (a zero
edge), so that every one-hot argmax decodes to a buildable network. :func:`is_derivable`
tells whether a candidate is one that DARTS's argmax rule could have produced.

The key is the DARTS ``Genotype`` repr, e.g.
``Genotype(normal=[('sep_conv_3x3', 0), ...], normal_concat=[2, 3, 4, 5], reduce=[...], reduce_concat=[2, 3, 4, 5])``.
"""
from __future__ import annotations

import ast
from collections.abc import Mapping

from rlnas.errors import InvalidCandidate
from rlnas.spaces.base import Candidate, Categorical, Choice, Space

DARTS_OPS: tuple[str, ...] = (
    "none", "max_pool_3x3", "avg_pool_3x3", "skip_connect",
    "sep_conv_3x3", "sep_conv_5x5", "dil_conv_3x3", "dil_conv_5x5",
)
DARTS_CELLS: tuple[str, ...] = ("normal", "reduce")
DARTS_NODES = 4
DARTS_CONCAT: tuple[int, ...] = (2, 3, 4, 5)

# Genotypes of the DARTS paper (Liu et al., 2019): V1 = first-order, V2 = second-order search.
DARTS_V1 = (
    "Genotype(normal=[('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('skip_connect', 0), ('sep_conv_3x3', 1), "
    "('skip_connect', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('skip_connect', 2)], normal_concat=[2, 3, 4, 5], "
    "reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1), ('skip_connect', 2), ('max_pool_3x3', 0), "
    "('max_pool_3x3', 0), ('skip_connect', 2), ('skip_connect', 2), ('avg_pool_3x3', 0)], reduce_concat=[2, 3, 4, 5])"
)
DARTS_V2 = (
    "Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), "
    "('sep_conv_3x3', 1), ('skip_connect', 0), ('skip_connect', 0), ('dil_conv_3x3', 2)], normal_concat=[2, 3, 4, 5], "
    "reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1), ('skip_connect', 2), ('max_pool_3x3', 1), "
    "('max_pool_3x3', 0), ('skip_connect', 2), ('skip_connect', 2), ('max_pool_3x3', 1)], reduce_concat=[2, 3, 4, 5])"
)


def input_name(cell: str, node: int, j: int) -> str:
    """Decision name of the ``j``-th input state of ``node`` in ``cell``."""
    return f"{cell}_n{node}_in{j}"


def op_name(cell: str, node: int, j: int) -> str:
    """Decision name of the operation on the ``j``-th input edge of ``node`` in ``cell``."""
    return f"{cell}_n{node}_op{j}"


def cell_edges(candidate: Mapping[str, Choice], cell: str) -> list[tuple[str, int]]:
    """The cell as DARTS lists it: ``[(op, input), ...]``, two entries per node in order."""
    return [
        (str(candidate[op_name(cell, i, j)]), int(candidate[input_name(cell, i, j)]))
        for i in range(DARTS_NODES) for j in (0, 1)
    ]


def is_derivable(candidate: Mapping[str, Choice]) -> bool:
    """True when every node has two distinct inputs and no ``none`` edge (DARTS's argmax rule)."""
    for cell in DARTS_CELLS:
        for i in range(DARTS_NODES):
            if candidate[input_name(cell, i, 0)] == candidate[input_name(cell, i, 1)]:
                return False
            if "none" in (candidate[op_name(cell, i, 0)], candidate[op_name(cell, i, 1)]):
                return False
    return True


class DartsSpace(Space):
    """DARTS normal + reduction cells (32 decisions, about 5.8e22 candidates)."""

    def __init__(self) -> None:
        decisions = []
        for cell in DARTS_CELLS:
            for i in range(DARTS_NODES):
                for j in (0, 1):
                    decisions.append(Categorical(input_name(cell, i, j), tuple(range(i + 2))))
                    decisions.append(Categorical(op_name(cell, i, j), DARTS_OPS))
        super().__init__("darts", decisions)

    def key(self, candidate: Mapping[str, Choice]) -> str:
        """The DARTS ``Genotype(...)`` repr of ``candidate``."""
        self.validate(candidate)
        parts = []
        for cell in DARTS_CELLS:
            parts.append(f"{cell}={cell_edges(candidate, cell)!r}")
            parts.append(f"{cell}_concat={list(DARTS_CONCAT)!r}")
        return "Genotype(" + ", ".join(parts) + ")"

    def from_key(self, key: str) -> Candidate:
        """Parse a ``Genotype(normal=[...], normal_concat=[...], reduce=[...], reduce_concat=[...])`` string."""
        if not isinstance(key, str):
            raise InvalidCandidate(f"a DARTS genotype must be a str, got {type(key).__name__}")
        where = f"DARTS genotype {key[:60]!r}{'...' if len(key) > 60 else ''}"
        try:
            tree = ast.parse(key.strip(), mode="eval").body
        except SyntaxError:
            raise InvalidCandidate(f"{where} is not a Genotype(...) expression") from None
        if not (isinstance(tree, ast.Call) and isinstance(tree.func, ast.Name) and tree.func.id == "Genotype"
                and not tree.args):
            raise InvalidCandidate(f"{where} must look like Genotype(normal=[...], normal_concat=[...], "
                                   "reduce=[...], reduce_concat=[...])")
        fields: dict[str, object] = {}
        for kw in tree.keywords:
            try:
                fields[str(kw.arg)] = ast.literal_eval(kw.value)
            except ValueError:
                raise InvalidCandidate(f"{where}: field {kw.arg!r} is not a literal") from None
        expected = {f"{c}{s}" for c in DARTS_CELLS for s in ("", "_concat")}
        if set(fields) != expected:
            raise InvalidCandidate(f"{where} must have exactly the fields {sorted(expected)}, got {sorted(fields)}")
        choices: dict[str, Choice] = {}
        for cell in DARTS_CELLS:
            if list(fields[f"{cell}_concat"]) != list(DARTS_CONCAT):  # type: ignore[call-overload]
                raise InvalidCandidate(f"{where}: {cell}_concat must be {list(DARTS_CONCAT)} (all intermediate nodes)")
            edges = fields[cell]
            if not isinstance(edges, (list, tuple)) or len(edges) != 2 * DARTS_NODES:
                raise InvalidCandidate(f"{where}: {cell} must list {2 * DARTS_NODES} (op, input) pairs")
            for e, edge in enumerate(edges):
                node, j = divmod(e, 2)
                if not (isinstance(edge, (list, tuple)) and len(edge) == 2):
                    raise InvalidCandidate(f"{where}: {cell} entry {e} must be an (op, input) pair, got {edge!r}")
                op, src = edge
                if op not in DARTS_OPS:
                    raise InvalidCandidate(f"{where}: unknown operation {op!r} (choices: {', '.join(DARTS_OPS)})")
                if not isinstance(src, int) or isinstance(src, bool) or not 0 <= src <= node + 1:
                    raise InvalidCandidate(f"{where}: {cell} node {node} input {src!r} must be an int in 0..{node + 1}")
                choices[op_name(cell, node, j)] = op
                choices[input_name(cell, node, j)] = src
        return self.candidate(choices)

    def known(self) -> dict[str, Candidate]:
        """The DARTS paper cells (``darts_v1`` first-order, ``darts_v2`` second-order)."""
        return {"darts_v1": self.from_key(DARTS_V1), "darts_v2": self.from_key(DARTS_V2)}
