"""The update-rule space of Neural Optimizer Search: every rule with a fixed number of iterations.

Each iteration ``k`` (from 1) is five decisions, in the order the controller emits them:
``i{k}_op1``, ``i{k}_op2`` (operands: the 21 base operands and ``o1 .. o{k-1}``), ``i{k}_u1``,
``i{k}_u2`` (12 unary functions) and ``i{k}_b`` (6 binary functions); see
:mod:`rlnas.optim.rule` for the language. The key of a candidate is the rule's written form,
e.g. ``sign(g) * sign(m); exp(o1) * g``.

Pure Python: nothing here imports torch.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rlnas.errors import ConfigError, InvalidCandidate
from rlnas.optim.rule import (
    BINARY,
    NAMED_RULES,
    UNARY,
    Iteration,
    Rule,
    RuleSyntaxError,
    operands_at,
    parse_rule,
    rule,
)
from rlnas.spaces.base import Candidate, Categorical, Choice, Space

FIELDS: tuple[str, ...] = ("op1", "op2", "u1", "u2", "b")
"""Decision suffixes of one iteration, in the controller's order."""


def decision_name(k: int, field: str) -> str:
    """Name of decision ``field`` (one of :data:`FIELDS`) of iteration ``k`` (from 1)."""
    return f"i{k}_{field}"


class OptimizerRulesSpace(Space):
    """Update rules ``Δw = λ·b(u1(op1), u2(op2))`` with ``iterations`` iterations (default 1; 5 decisions each)."""

    def __init__(self, iterations: int = 1):
        if isinstance(iterations, bool) or not isinstance(iterations, int) or iterations < 1:
            raise ConfigError(f"optimizer_rules: iterations must be a positive integer, got {iterations!r}")
        self.iterations = iterations
        decisions = []
        for k in range(1, iterations + 1):
            operands = operands_at(k)
            decisions += [
                Categorical(decision_name(k, "op1"), operands), Categorical(decision_name(k, "op2"), operands),
                Categorical(decision_name(k, "u1"), UNARY), Categorical(decision_name(k, "u2"), UNARY),
                Categorical(decision_name(k, "b"), BINARY),
            ]
        super().__init__("optimizer_rules", decisions)

    def rule_of(self, candidate: Mapping[str, Choice]) -> Rule:
        """The :class:`~rlnas.optim.rule.Rule` a candidate of this space stands for."""
        self.validate(candidate)
        return Rule(tuple(
            Iteration(*(str(candidate[decision_name(k, f)]) for f in FIELDS))
            for k in range(1, self.iterations + 1)
        ))

    def candidate_of(self, value: Rule | str) -> Candidate:
        """The candidate of a rule (a :class:`Rule` or its written form) with this space's iterations."""
        parsed = value if isinstance(value, Rule) else parse_rule(value)
        if len(parsed) != self.iterations:
            raise InvalidCandidate(f"rule {str(parsed)!r} has {len(parsed)} iteration(s) but space "
                                   f"{self.name!r} has {self.iterations} (space option iterations)")
        return self.candidate({decision_name(k, f): token
                               for k, it in enumerate(parsed.iterations, 1) for f, token in zip(FIELDS, it.tokens())})

    def key(self, candidate: Mapping[str, Choice]) -> str:
        """The rule's written form, e.g. ``m / sqrt(v)``."""
        return str(self.rule_of(candidate))

    def from_key(self, key: str) -> Candidate:
        """Parse a written rule, or take a named one (``adam``, padded to this space's iterations);
        :class:`~rlnas.optim.rule.RuleSyntaxError` names a bad token."""
        try:
            return self.candidate_of(key)
        except RuleSyntaxError:
            name = key.strip() if isinstance(key, str) else None
            if name not in NAMED_RULES:
                raise
        named = rule(name)
        return self.candidate_of(named.padded(self.iterations) if len(named) < self.iterations else named)

    def to_json(self) -> dict[str, Any]:
        """Name, decisions and the constructor ``options`` (``create_space(name, **options)`` rebuilds it)."""
        return super().to_json() | {"options": {"iterations": self.iterations}}

    def known(self) -> dict[str, Candidate]:
        """The named rules that fit in this many iterations (shorter ones padded with ``keep(oK, 1)``)."""
        found = {}
        for name in NAMED_RULES:
            named = rule(name)
            if len(named) <= self.iterations:
                found[name] = self.candidate_of(named.padded(self.iterations))
        return found
