"""The NAS-Bench-Graph space: a 4-node GNN cell (Qin et al., NeurIPS 2022 Datasets and Benchmarks).

A cell has four computing nodes. Node ``i`` (1-4) applies one GNN operation to the output of
an earlier node (0 is the cell's input); nodes that feed no other node are the cell's
outputs. Decisions: ``link`` (one of the benchmark's 9 wiring patterns, written as the input
node of each computing node, e.g. ``"0012"``) and ``op1`` … ``op4`` (9 operations each; the
``proteins`` variant of the benchmark has 5). That is 9 · 9⁴ = 59,049 candidates.

The benchmark trained one representative of every class of equivalent cells (26,206 of them):
:func:`canonical` maps any candidate to the representative the table holds, following the
benchmark's own rules (skip operations moved to the front, interchangeable nodes sorted),
and :func:`bench_key` gives its key in the table. The 9 all-skip candidates have no
representative (the benchmark excludes them).
"""
from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from functools import lru_cache

import numpy as np

from rlnas.errors import ConfigError, InvalidCandidate
from rlnas.spaces.base import Categorical, Choice, Space

NBGRAPH_LINKS: tuple[str, ...] = ("0000", "0001", "0011", "0012", "0013", "0111", "0112", "0122", "0123")
"""The 9 wiring patterns, in the benchmark's order (position = the link digit of its key)."""
NBGRAPH_OPS: tuple[str, ...] = ("gat", "gcn", "gin", "cheb", "sage", "arma", "graph", "fc", "skip")
"""The 9 operations, in the benchmark's order (position = the op digit of its key)."""
NBGRAPH_PROTEINS_OPS: tuple[str, ...] = ("gcn", "sage", "arma", "fc", "skip")
"""The operations trained on ogbn-proteins."""
OP_SETS = {"all": NBGRAPH_OPS, "proteins": NBGRAPH_PROTEINS_OPS}

# Nodes (0-based positions) whose operations may be permuted without changing the cell,
# per wiring pattern; "0012" swaps the two branches (positions 0,2 and 1,3) together.
_INTERCHANGEABLE = {"0000": (0, 1, 2, 3), "0001": (1, 2), "0011": (2, 3), "0111": (1, 2, 3), "0122": (2, 3)}
# Wirings that moving skips can produce outside the 9 patterns, and how to relabel them.
_RELABEL = {(0, 1, 2, 1): ((0, 1, 1, 2), (0, 1, 3, 2)), (0, 1, 1, 3): ((0, 1, 1, 2), (0, 2, 1, 3))}


def _reads_input_unchanged(node: int, link: Sequence[int], ops: Sequence[str]) -> bool:
    """True when ``node`` and every node on its path back to the input are skips."""
    while node >= 0:
        if ops[node] != "skip":
            return False
        node = link[node] - 1
    return True


def _skips_to_front(link: list[int], ops: list[str]) -> tuple[list[int], list[str]]:
    """The benchmark's first rule: a skip node that has a child, has no sibling (no other node
    reading the same input) or only forwards the cell input is moved to the front, reading the
    input; its children then read its input instead. Positions are visited left to right on
    the arrays as they change."""
    for pos in range(4):
        if ops[pos] != "skip":
            continue
        has_child = any(src == pos + 1 for src in link)
        has_sibling = any(other != pos and src == link[pos] for other, src in enumerate(link))
        if not (has_child or not has_sibling or _reads_input_unchanged(pos, link, ops)):
            continue
        ops = [ops[pos]] + ops[:pos] + ops[pos + 1:]
        for i, source in enumerate(list(link)):
            if source == pos + 1:
                link[i] = link[pos]
            if source <= pos:
                link[i] += 1
        link = [0] + link[:pos] + link[pos + 1:]
    if tuple(link) in _RELABEL:
        new_link, order = _RELABEL[tuple(link)]
        link, ops = list(new_link), [ops[i] for i in order]
    return link, ops


def _sort_interchangeable(link: str, ops: list[str]) -> list[str]:
    """The benchmark's second rule: operations of interchangeable nodes in the benchmark's op order."""
    rank = NBGRAPH_OPS.index
    if link == "0012":
        if rank(ops[0]) > rank(ops[1]) or (ops[0] == ops[1] and rank(ops[2]) > rank(ops[3])):
            ops = [ops[1], ops[0], ops[3], ops[2]]
        return ops
    positions = _INTERCHANGEABLE.get(link, ())
    for pos, op in zip(positions, sorted((ops[p] for p in positions), key=rank)):
        ops[pos] = op
    return ops


def canonical(link: str, ops: Sequence[str]) -> tuple[str, tuple[str, ...]]:
    """The representative ``(link, ops)`` of the cell, as the benchmark table holds it."""
    if link not in NBGRAPH_LINKS:
        raise InvalidCandidate(f"unknown NAS-Bench-Graph link {link!r} (choices: {', '.join(NBGRAPH_LINKS)})")
    if len(ops) != 4 or any(op not in NBGRAPH_OPS for op in ops):
        raise InvalidCandidate(f"a NAS-Bench-Graph cell needs 4 operations from {list(NBGRAPH_OPS)}, got {list(ops)}")
    if all(op == "skip" for op in ops):
        raise InvalidCandidate("NAS-Bench-Graph has no cell whose four operations are all skip")
    wiring, new_ops = _skips_to_front([int(c) for c in link], list(ops))
    link = "".join(str(i) for i in wiring)
    if link not in NBGRAPH_LINKS:  # never happens for the 9 patterns (checked by the tests)
        raise InvalidCandidate(f"NAS-Bench-Graph cell {link!r} {list(ops)} has no representative")
    return link, tuple(_sort_interchangeable(link, new_ops))


def bench_key(link: str, ops: Sequence[str]) -> int:
    """The benchmark's key of a representative: ``link digit · 10⁴ + op digits`` (ops in their order)."""
    key = NBGRAPH_LINKS.index(link)
    for op in ops:
        key = key * 10 + NBGRAPH_OPS.index(op)
    return key


class NBGraphSpace(Space):
    """NAS-Bench-Graph cells: decisions ``link``, ``op1``…``op4`` (``ops="proteins"``: the 5 proteins ops)."""

    def __init__(self, ops: str = "all") -> None:
        if ops not in OP_SETS:
            raise ConfigError(f"unknown nbgraph op set {ops!r} (choices: {', '.join(OP_SETS)})")
        self.op_set = ops
        super().__init__("nbgraph" if ops == "all" else "nbgraph_proteins",
                         [Categorical("link", NBGRAPH_LINKS)]
                         + [Categorical(f"op{i}", OP_SETS[ops]) for i in range(1, 5)])

    def cell(self, candidate: Mapping[str, Choice]) -> tuple[str, tuple[str, ...]]:
        """``(link, ops)`` of a candidate."""
        self.validate(candidate)
        return str(candidate["link"]), tuple(str(candidate[f"op{i}"]) for i in range(1, 5))

    def bench_key(self, candidate: Mapping[str, Choice]) -> int:
        """Key of the candidate's representative in the benchmark table."""
        return bench_key(*canonical(*self.cell(candidate)))

    def identity(self, candidate: Mapping[str, Choice]) -> str:
        """The key of the candidate's representative (equivalent cells are one network in the
        table); an all-skip cell, which has none, is only itself."""
        return _identity(*self.cell(candidate))

    def network_count(self) -> int:
        """The table's cells and the 9 all-skip ones: 26,215 (``proteins``: 2,021 + 9)."""
        return _network_count(self.op_set)

    def canonical_codes(self) -> np.ndarray:
        """For every candidate (by the mixed-radix code of its choice indices, first decision most
        significant), the code of its representative in this space; the all-skip cells map to
        themselves. Agents use it to treat equivalent cells as one architecture."""
        return _canonical_codes(self.op_set)


def nbgraph_proteins_space() -> NBGraphSpace:
    """The ``nbgraph_proteins`` space: NAS-Bench-Graph cells with the five operations trained on proteins."""
    return NBGraphSpace("proteins")


@lru_cache(maxsize=len(NBGRAPH_LINKS) * len(NBGRAPH_OPS) ** 4)
def _identity(link: str, ops: tuple[str, ...]) -> str:
    """The key (the default JSON list) of the representative of ``(link, ops)``; of itself when all-skip."""
    if set(ops) != {"skip"}:
        link, ops = canonical(link, ops)
    return json.dumps([link, *ops], separators=(",", ":"))


@lru_cache(maxsize=2)
def _network_count(op_set: str) -> int:
    return int(len(np.unique(_canonical_codes(op_set))))


@lru_cache(maxsize=2)
def _canonical_codes(op_set: str) -> np.ndarray:
    ops = OP_SETS[op_set]
    k = len(ops)
    codes = np.arange(len(NBGRAPH_LINKS) * k ** 4, dtype=np.int64)
    out = codes.copy()
    for code in codes.tolist():
        link, rest = divmod(code, k ** 4)
        digits = [(rest // k ** (3 - i)) % k for i in range(4)]
        names = [ops[d] for d in digits]
        if set(names) == {"skip"}:
            continue
        new_link, new_ops = canonical(NBGRAPH_LINKS[link], names)
        value = NBGRAPH_LINKS.index(new_link)
        for op in new_ops:
            value = value * k + ops.index(op)
        out[code] = value
    out.setflags(write=False)
    return out


__all__ = ["NBGRAPH_LINKS", "NBGRAPH_OPS", "NBGRAPH_PROTEINS_OPS", "NBGraphSpace", "bench_key", "canonical"]
