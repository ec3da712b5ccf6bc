"""The NAS-Bench-201 cell space: 6 edges of a 4-node DAG, 5 operations each (15,625 cells)."""
from __future__ import annotations

from collections.abc import Mapping

from rlnas.errors import InvalidCandidate
from rlnas.spaces.base import Candidate, Categorical, Choice, Space

NB201_OPS: tuple[str, ...] = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
# Edges (source -> target) in the order of the official arch string.
NB201_EDGES: tuple[tuple[int, int], ...] = ((0, 1), (0, 2), (1, 2), (0, 3), (1, 3), (2, 3))


def edge_name(source: int, target: int) -> str:
    """Decision name of the edge ``source -> target``."""
    return f"edge_{source}_{target}"


_EDGE_NAMES = tuple(edge_name(s, t) for s, t in NB201_EDGES)
_ARCH_TEMPLATE = "+".join(
    "|" + "|".join(f"{{}}~{s}" for s in range(target)) + "|" for target in (1, 2, 3)
)  # "|{}~0|+|{}~0|{}~1|+|{}~0|{}~1|{}~2|", filled in edge order


class NB201Space(Space):
    """NAS-Bench-201 cells; the key is the official string ``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|``."""

    def __init__(self) -> None:
        super().__init__("nb201", [Categorical(edge_name(s, t), NB201_OPS) for s, t in NB201_EDGES])

    def key(self, candidate: Mapping[str, Choice]) -> str:
        """The official NAS-Bench-201 arch string of ``candidate``."""
        self.validate(candidate)
        return _ARCH_TEMPLATE.format(*(candidate[name] for name in _EDGE_NAMES))

    def from_key(self, key: str) -> Candidate:
        """Parse an official arch string, saying exactly what is wrong when it is malformed."""
        if not isinstance(key, str):
            raise InvalidCandidate(f"an NB201 arch string must be a str, got {type(key).__name__}")
        where = f"NB201 arch string {key!r}"
        nodes = key.split("+")
        if len(nodes) != 3:
            raise InvalidCandidate(f"{where} has {len(nodes)} node group(s) separated by '+', expected 3")
        choices: dict[str, Choice] = {}
        for target, group in enumerate(nodes, start=1):
            if len(group) < 2 or not (group.startswith("|") and group.endswith("|")):
                raise InvalidCandidate(f"{where}: node {target} group {group!r} must start and end with '|'")
            edges = group[1:-1].split("|")
            if len(edges) != target:
                raise InvalidCandidate(f"{where}: node {target} has {len(edges)} input edge(s), expected {target}")
            for source, token in enumerate(edges):
                op, sep, src = token.rpartition("~")
                if not sep or not op:
                    raise InvalidCandidate(f"{where}: edge {token!r} must look like 'op~{source}'")
                if src != str(source):
                    raise InvalidCandidate(f"{where}: edge {token!r} into node {target} must come from node {source}")
                if op not in NB201_OPS:
                    raise InvalidCandidate(f"{where}: unknown operation {op!r} (choices: {', '.join(NB201_OPS)})")
                choices[edge_name(source, target)] = op
        return self.candidate(choices)

    def known(self) -> dict[str, Candidate]:
        """The best cells of the table by validation accuracy and the all-conv / all-skip extremes."""
        return {
            "best_cifar10": self.from_key(  # index 6111
                "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|"
            ),
            "best_cifar100": self.from_key(  # index 9930
                "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"
            ),
            "all_conv3x3": self.from_indices([3] * 6),
            "all_skip": self.from_indices([1] * 6),
        }
