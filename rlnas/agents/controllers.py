"""Policy networks ("controllers") over a categorical space, shared by REINFORCE and PPO.

A controller is a distribution over candidates, written as choice indices ``[D]`` for the
``D`` decisions of a :class:`~rlnas.spaces.base.Space`. Two kinds:

- :class:`FactorizedController`: an independent softmax per decision (TuNAS, NATS-Bench's
  REINFORCE). All logits live in one padded ``[D, K_max]`` parameter so that sampling and
  scoring are a handful of tensor operations, whatever ``D``.
- :class:`LSTMController`: autoregressive, as in NAS (Zoph & Le) and ENAS: a learned start
  input, an LSTM cell, one linear softmax head per decision, and the embedding of the
  previous decision's choice as the next input (one embedding table per decision, since
  cardinalities differ).

Both expose ``sample(n, generator)`` and ``log_prob_and_entropy(indices)``. Randomness only
ever comes from the ``torch.Generator`` passed in (parameter initialisation included), never
from torch's global RNG, so runs are reproducible and resumable.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence

import torch
from torch import nn
from torch.nn import functional as F

from rlnas.errors import ConfigError, RlnasError
from rlnas.registry import Registry
from rlnas.rewards import MAX_REWARD


class Controller(nn.Module):
    """Base class: a distribution over choice-index vectors of a space with cardinalities ``sizes``."""

    def __init__(self, sizes: Sequence[int]):
        super().__init__()
        self.sizes = tuple(int(k) for k in sizes)
        if not self.sizes or min(self.sizes) < 1:
            raise ConfigError(f"a controller needs at least one decision with a choice, got sizes {self.sizes}")

    def sample(self, n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Draw ``n`` candidates: ``(indices [n, D] long, log_prob [n], entropy [n])``."""
        raise NotImplementedError

    def log_prob_and_entropy(self, indices: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Log-probability of each row of ``indices [n, D]`` and the policy entropy along it, both ``[n]``."""
        raise NotImplementedError

    def mode(self) -> torch.Tensor:
        """The greedy candidate (argmax of every decision in turn) as indices ``[D]``."""
        raise NotImplementedError

    def decision_log_probs(self, indices: torch.Tensor) -> list[torch.Tensor]:
        """Along each row of ``indices [n, D]``: the log-probabilities of every choice of decision
        ``i`` (given the earlier ones), one ``[n, K_i]`` tensor per decision."""
        raise NotImplementedError


class FactorizedController(Controller):
    """Independent categorical distribution per decision; zero logits at init (uniform).

    The logits sit in one ``[D, K_max]`` parameter; entries beyond a decision's
    cardinality are masked to ``-inf`` and never receive gradient.
    """

    def __init__(self, sizes: Sequence[int]):
        super().__init__(sizes)
        width = max(self.sizes)
        self.logits = nn.Parameter(torch.zeros(len(self.sizes), width))
        pad = torch.arange(width)[None, :] >= torch.tensor(self.sizes)[:, None]
        self.register_buffer("pad", pad, persistent=False)

    def log_probs(self) -> torch.Tensor:
        """Log-probabilities ``[D, K_max]`` (``-inf`` on padding)."""
        return F.log_softmax(self.logits.masked_fill(self.pad, -math.inf), dim=1)

    def entropy(self, log_probs: torch.Tensor | None = None) -> torch.Tensor:
        """Exact entropy of the joint distribution (sum over decisions), a scalar."""
        lp = self.log_probs() if log_probs is None else log_probs
        return -(lp.exp() * lp.masked_fill(self.pad, 0.0)).sum()

    def sample(self, n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        lp = self.log_probs()
        # One multinomial call draws all decisions: rows are decisions, columns the n samples.
        idx = torch.multinomial(lp.detach().exp(), n, replacement=True, generator=generator)
        log_prob = lp.gather(1, idx).sum(0)
        return idx.t().contiguous(), log_prob, self.entropy(lp).expand(n)

    def log_prob_and_entropy(self, indices: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        lp = self.log_probs()
        log_prob = lp.gather(1, indices.t()).sum(0)
        return log_prob, self.entropy(lp).expand(indices.shape[0])

    def mode(self) -> torch.Tensor:
        return self.log_probs().argmax(dim=1)

    def decision_log_probs(self, indices: torch.Tensor) -> list[torch.Tensor]:
        lp = self.log_probs()
        return [lp[i, :k].expand(indices.shape[0], k) for i, k in enumerate(self.sizes)]


class LSTMController(Controller):
    """Autoregressive LSTM policy (NAS / ENAS).

    Step ``i`` feeds the LSTM cell with the learned start vector (``i = 0``) or the embedding
    of decision ``i−1``'s choice, and turns the hidden state into decision ``i``'s logits with
    its own linear head. Optional ENAS logit shaping: ``logits / temperature``, then
    ``tanh_constant · tanh(logits)`` (bounds the log-odds between choices by ``2·tanh_constant``).
    All parameters start uniform in ``[−init_range, init_range]`` (ENAS: 0.1), drawn from
    ``generator``. The reported entropy of a sample is the sum of the per-step conditional
    entropies along its path, whose expectation is the joint entropy.
    """

    def __init__(self, sizes: Sequence[int], hidden: int = 64, *, temperature: float | None = None,
                 tanh_constant: float | None = None, init_range: float = 0.1,
                 generator: torch.Generator | None = None):
        super().__init__(sizes)
        self.hidden = int(hidden)
        self.temperature = temperature
        self.tanh_constant = tanh_constant
        # skip_init: build without touching torch's global RNG; we initialise below.
        self.start = nn.Parameter(torch.empty(1, self.hidden))
        self.cell = nn.utils.skip_init(nn.LSTMCell, self.hidden, self.hidden)
        self.embeddings = nn.ModuleList(nn.utils.skip_init(nn.Embedding, k, self.hidden) for k in self.sizes[:-1])
        self.heads = nn.ModuleList(nn.utils.skip_init(nn.Linear, self.hidden, k) for k in self.sizes)
        gen = generator if generator is not None else torch.Generator().manual_seed(0)
        with torch.no_grad():
            for p in self.parameters():
                nn.init.uniform_(p, -init_range, init_range, generator=gen)

    def step_logits(self, i: int, h: torch.Tensor) -> torch.Tensor:
        """Logits of decision ``i`` from hidden state ``h`` (with the optional ENAS shaping)."""
        logits = self.heads[i](h)
        if self.temperature is not None:
            logits = logits / self.temperature
        if self.tanh_constant is not None:
            logits = self.tanh_constant * torch.tanh(logits)
        return logits

    def steps(self, n: int, indices: torch.Tensor | None = None, generator: torch.Generator | None = None,
              greedy: bool = False) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Run the LSTM over all decisions, following ``indices`` or choosing (sampled or greedy);
        yield each decision's log-probabilities ``[n, K_i]`` and choices ``[n]``."""
        x = self.start.expand(n, -1)
        h = x.new_zeros(n, self.hidden)
        c = x.new_zeros(n, self.hidden)
        for i in range(len(self.sizes)):
            h, c = self.cell(x, (h, c))
            lp = F.log_softmax(self.step_logits(i, h), dim=1)
            if indices is not None:
                a = indices[:, i]
            elif greedy:
                a = lp.argmax(dim=1)
            else:
                a = torch.multinomial(lp.detach().exp(), 1, generator=generator).squeeze(1)
            yield lp, a
            if i + 1 < len(self.sizes):
                x = self.embeddings[i](a)

    def rollout(self, n: int, indices: torch.Tensor | None = None, generator: torch.Generator | None = None,
                greedy: bool = False) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Choices ``[n, D]``, their log-probability and the summed step entropies along the path
        (see :meth:`steps`)."""
        chosen, log_prob, entropy = [], self.start.new_zeros(n), self.start.new_zeros(n)
        for lp, a in self.steps(n, indices, generator, greedy):
            log_prob = log_prob + lp.gather(1, a[:, None]).squeeze(1)
            entropy = entropy - (lp.exp() * lp).sum(1)
            chosen.append(a)
        return torch.stack(chosen, dim=1), log_prob, entropy

    def sample(self, n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return self.rollout(n, generator=generator)

    def log_prob_and_entropy(self, indices: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        _, log_prob, entropy = self.rollout(indices.shape[0], indices=indices)
        return log_prob, entropy

    def mode(self) -> torch.Tensor:
        return self.rollout(1, greedy=True)[0][0]

    def decision_log_probs(self, indices: torch.Tensor) -> list[torch.Tensor]:
        return [lp for lp, _ in self.steps(indices.shape[0], indices=indices)]


def _factorized(sizes: Sequence[int], *, hidden: int, temperature: float | None, tanh_constant: float | None,
                generator: torch.Generator | None) -> Controller:
    return FactorizedController(sizes)


def _lstm(sizes: Sequence[int], *, hidden: int, temperature: float | None, tanh_constant: float | None,
          generator: torch.Generator | None) -> Controller:
    return LSTMController(sizes, hidden, temperature=temperature, tanh_constant=tanh_constant, generator=generator)


CONTROLLERS: Registry[Callable[..., Controller]] = Registry("controller", {"factorized": _factorized, "lstm": _lstm})
"""Controller builders by name, each called as ``(sizes, *, hidden, temperature, tanh_constant, generator)``."""


def build_controller(kind: str, sizes: Sequence[int], *, hidden: int = 64, temperature: float | None = None,
                     tanh_constant: float | None = None, generator: torch.Generator | None = None) -> Controller:
    """Controller ``kind`` (see :data:`CONTROLLERS`) for a space with cardinalities ``sizes``."""
    return CONTROLLERS.get(kind)(sizes, hidden=hidden, temperature=temperature, tanh_constant=tanh_constant,
                                 generator=generator)


def make_generator(seed: int | None) -> torch.Generator:
    """A CPU ``torch.Generator`` seeded with ``seed`` (non-deterministically when ``None``)."""
    generator = torch.Generator()
    if seed is None:
        generator.seed()
    else:
        generator.manual_seed(int(seed))
    return generator


MAX_LR = 100.0
"""Largest controller learning rate (beyond it the float32 logits overflow at the first update)."""
MAX_WIDTH = 4096
"""Most LSTM units of a controller."""
MAX_BATCH = 65_536
"""Most proposals per controller update."""
MAX_ENTROPY_WEIGHT = 100.0
"""Largest entropy bonus weight (beyond it the loss is the bonus alone, and the logits overflow)."""


MIN_TEMPERATURE = 1e-3
"""Exclusive lower bound of a controller's temperature (logits are divided by it)."""
MAX_LOGIT_SCALE = 1000.0
"""Largest temperature or tanh constant (ENAS: 5 and 2.5)."""
MAX_REWARD_SCALE = 1e6
"""Largest ``reward_scale`` (rewards are multiplied by it before they reach float32)."""


def check_learnable_reward(agent: str, reward: float) -> float:
    """``reward`` if a controller can learn from it (``|reward| <=`` :data:`MAX_REWARD`), else a
    one-line :class:`RlnasError`."""
    if abs(reward) > MAX_REWARD:
        raise RlnasError(f"{agent}: reward {reward:g} is beyond what the controller learns from (magnitude at most "
                         f"{MAX_REWARD:g} in float32): scale the reward down")
    return reward


def check_controller_options(agent: str, controller: str, lr: float, lstm_hidden: int,
                             temperature: float | None, tanh_constant: float | None,
                             entropy_weight: float, batch_size: int, baseline_decay: float) -> None:
    """Raise a one-line :class:`ConfigError` for the options the policy-gradient agents share."""
    if controller not in CONTROLLERS:
        raise ConfigError(f"{agent}: unknown controller {controller!r} (choices: {', '.join(CONTROLLERS)})")
    check_lr_and_entropy(agent, lr, entropy_weight)
    for name, value, most in (("lstm_hidden", lstm_hidden, MAX_WIDTH), ("batch_size", batch_size, MAX_BATCH)):
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= most:
            raise ConfigError(f"{agent}: {name} must be an integer from 1 to {most:,}, got {value!r}")
    for name, value, low in (("temperature", temperature, MIN_TEMPERATURE), ("tanh_constant", tanh_constant, 0.0)):
        if value is not None and (not is_finite_number(value) or not low < value <= MAX_LOGIT_SCALE):
            raise ConfigError(f"{agent}: {name} must be a number in ({low:g}, {MAX_LOGIT_SCALE:g}] or null, "
                              f"got {value!r}")
    if not is_finite_number(baseline_decay) or not 0 <= baseline_decay < 1:
        raise ConfigError(f"{agent}: baseline_decay must be in [0, 1), got {baseline_decay!r}")


def check_lr_and_entropy(agent: str, lr: float, entropy_weight: float) -> None:
    """A one-line :class:`ConfigError` unless ``0 < lr <= MAX_LR`` and ``0 <= entropy_weight <= MAX_ENTROPY_WEIGHT``."""
    if not is_finite_number(lr) or not 0 < lr <= MAX_LR:
        raise ConfigError(f"{agent}: lr must be a number in (0, {MAX_LR:g}], got {lr!r}")
    if not is_finite_number(entropy_weight) or not 0 <= entropy_weight <= MAX_ENTROPY_WEIGHT:
        raise ConfigError(f"{agent}: entropy_weight must be a number in [0, {MAX_ENTROPY_WEIGHT:g}], "
                          f"got {entropy_weight!r}")


def is_finite_number(value: object) -> bool:
    """True for an int or float (not a bool) that is finite."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
