"""A tiny weight-sharing pair for tests of the one-shot driver: an MLP supernet on the 8x8 digits
and a factorized REINFORCE controller. Small enough that a whole search takes a second.

Space ``toy_supernet``: ``layer0`` and ``layer1`` each pick one of three shared linear layers
(with ReLU, with tanh, or a skip); ``width`` masks the hidden units to 8, 16 or 32 of 32.
"""
from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from rlnas.agents.base import AgentConfig, Proposal, WeightSharingAgent
from rlnas.agents.controllers import FactorizedController, make_generator
from rlnas.evaluators.weight_sharing import WeightSharingEvaluator
from rlnas.spaces.base import Candidate, Categorical, Space

OPS = ("relu", "tanh", "skip")
WIDTHS = (8, 16, 32)


def toy_supernet_space() -> Space:
    """Two layer-op decisions and one width decision."""
    return Space("toy_supernet", [Categorical("layer0", OPS), Categorical("layer1", OPS),
                                  Categorical("width", WIDTHS)])


class ToySupernet(nn.Module):
    """Shared weights: one linear layer per (layer, op); a path uses one per layer."""

    def __init__(self, in_features: int, num_classes: int, hidden: int = 32):
        super().__init__()
        self.stem = nn.Linear(in_features, hidden)
        self.layers = nn.ModuleList(nn.ModuleDict({op: nn.Linear(hidden, hidden) for op in OPS[:2]}) for _ in range(2))
        self.head = nn.Linear(hidden, num_classes)
        self.hidden = hidden

    def forward(self, x: torch.Tensor, candidate: Mapping[str, Any]) -> torch.Tensor:
        mask = (torch.arange(self.hidden) < int(candidate["width"])).to(x.dtype)
        h = torch.relu(self.stem(x.flatten(1))) * mask
        for i, layer in enumerate(self.layers):
            op = candidate[f"layer{i}"]
            if op != "skip":
                h = (torch.relu if op == "relu" else torch.tanh)(layer[op](h)) * mask
        return self.head(h)


class ToySupernetEvaluator(WeightSharingEvaluator):
    """Trains :class:`ToySupernet` on the digits; ``cost`` = width (a closed-form cost)."""

    name = "toy_supernet"

    def __init__(self, space: str | Space | None = None, dataset: str = "digits", **options: Any):
        super().__init__(space if space is not None else toy_supernet_space(), dataset, **options)

    def build_supernet(self, num_classes: int, in_channels: int) -> nn.Module:
        h, w = self.data.input_shape[1:]
        return ToySupernet(in_channels * h * w, num_classes)

    def extra_metrics(self, candidate: Candidate) -> dict[str, float]:
        return {"cost": float(candidate["width"])}

    def spec(self) -> dict[str, Any]:
        return super().spec() | {"space": None}


@dataclass
class ToyWeightSharingConfig(AgentConfig):
    """Options of :class:`ToyWeightSharingAgent`."""

    lr: float = 0.05
    """Adam learning rate of the controller."""
    batch_size: int = 4
    """Proposals per controller update."""
    warmup: float = 0.2
    """Share of the search with the controller off."""


class ToyWeightSharingAgent(WeightSharingAgent):
    """One shared step, then one REINFORCE update (EMA baseline), after a warm-up."""

    name = "toy_ws"
    Config = ToyWeightSharingConfig

    def __init__(self, space: Space, config: Any = None, *, seed: int | None = None, device: str = "cpu"):
        super().__init__(space, config, seed=seed, device=device)
        self.generator = make_generator(seed)
        self.controller = FactorizedController(space.sizes)
        self.optimizer = torch.optim.Adam(self.controller.parameters(), lr=self.config.lr)
        self.baseline: float | None = None

    @property
    def batch_size(self) -> int:
        return self.config.batch_size

    def plan_round(self, step: int, total_steps: int, steps_per_epoch: int) -> tuple[int, int]:
        return 1, int(step >= self.config.warmup * total_steps)

    def train_children(self, n: int) -> list[Candidate]:
        return [p.candidate for p in self.ask(n)]

    def ask(self, n: int = 1) -> list[Proposal]:
        with torch.no_grad():
            indices, _, _ = self.controller.sample(n, self.generator)
        return [Proposal(self.space.from_indices(row), {"indices": row}) for row in indices.tolist()]

    def tell(self, results: Sequence[tuple[Proposal, float | None]]) -> dict[str, float]:
        scored = [(p, r) for p, r in results if r is not None]
        if not scored:
            return {}
        rewards = torch.tensor([r for _, r in scored])
        mean = float(rewards.mean())
        self.baseline = mean if self.baseline is None else 0.9 * self.baseline + 0.1 * mean
        log_prob, entropy = self.controller.log_prob_and_entropy(torch.tensor([p.info["indices"] for p, _ in scored]))
        loss = -((rewards - self.baseline) * log_prob).mean()
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        return {"reward_mean": mean, "baseline": self.baseline, "entropy": float(entropy.mean().detach())}

    def mode(self) -> Candidate:
        with torch.no_grad():
            return self.space.from_indices(self.controller.mode().tolist())

    def state_dict(self) -> dict[str, Any]:
        return {"controller": self.controller.state_dict(), "optimizer": self.optimizer.state_dict(),
                "baseline": self.baseline, "generator": self.generator.get_state()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.controller.load_state_dict(state["controller"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.baseline = state["baseline"]
        self.generator.set_state(state["generator"])


@contextmanager
def registered_toy_agent() -> Iterator[None]:
    """Register the agent ``toy_ws`` while the block runs."""
    from rlnas.agents import AGENTS

    AGENTS.register("toy_ws", ToyWeightSharingAgent)
    try:
        yield
    finally:
        AGENTS.unregister("toy_ws")


__all__ = ["registered_toy_agent", "ToySupernet", "ToySupernetEvaluator", "ToyWeightSharingAgent", "toy_supernet_space"]
