"""An agent that proposes given candidates in turn: for tests of what a study does with known proposals."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rlnas.agents.base import Agent, Proposal, Result
from rlnas.spaces.base import Choice


def cycling_agent(name: str, candidates: Sequence[Mapping[str, Choice]]) -> type[Agent]:
    """An :class:`~rlnas.agents.base.Agent` class named ``name`` that proposes ``candidates`` in turn,
    for ever, and learns nothing (register it with :func:`rlnas.agents.register_agent`)."""
    cycle = tuple(dict(c) for c in candidates)

    class Cycling(Agent):
        told = 0

        def ask(self, n: int = 1) -> list[Proposal]:
            return [Proposal(self.space.candidate(cycle[(self.told + i) % len(cycle)])) for i in range(n)]

        def tell(self, results: Sequence[Result]) -> dict[str, float]:
            self.told += len(results)
            return {}

        def state_dict(self) -> dict[str, Any]:
            return {"told": self.told}

        def load_state_dict(self, state: Mapping[str, Any]) -> None:
            self.told = int(state["told"])

    Cycling.name = name
    Cycling.__name__ = Cycling.__qualname__ = f"Cycling_{name}"
    return Cycling


__all__ = ["cycling_agent"]
