"""What an agent would choose over the search, as a heat map (rows: decision=choice, columns: time).

Two sources, both computed from the store alone:

- :func:`policy_heatmap`, the controller's probabilities. An agent's run is a pure function
  of its seed, its config and the rewards it was told (the property resume relies on), so
  the agent is rebuilt from the study's record and told the stored proposals (candidate and
  the info the agent attached, e.g. the sampling log-probability) with their rewards again,
  batch by batch in slot order, exactly as the study told them; after each ``tell`` the
  controller's probability of every choice is read. Nothing is evaluated again and nothing extra is stored. The
  factorized controller's probabilities are exact (its softmax); for the LSTM controller,
  whose decisions depend on earlier ones, they are the marginal frequencies of a fixed
  number of samples drawn with a generator of its own (seed 0), an estimate. An agent that
  cannot be replayed this way (a weight-sharing agent, driven by shared training rather
  than by trial rewards) may log the probabilities instead: diagnostics named
  ``p/<decision>/<choice index>`` are used as they are.
- :func:`choice_heatmap`, for any agent: how often each choice was proposed in consecutive
  windows of trials (the empirical policy).
"""
from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from rlnas.errors import ConfigError
from rlnas.reports.snapshot import StudySnapshot
from rlnas.spaces.base import Space
from rlnas.trial import TrialState

LSTM_MARGINAL_SAMPLES = 4096
"""Samples behind each LSTM marginal estimate (standard error at most 0.5/64 ≈ 0.008)."""

_LOGGED = re.compile(r"^p/(.+)/(\d+)$")


@dataclass(frozen=True)
class Heatmap:
    """``values[row, column]``: probability (or frequency) of choice ``rows[row]`` at ``x[column]``."""

    rows: tuple[str, ...]
    """``"decision=choice"`` labels, decisions in space order."""
    x: np.ndarray
    values: np.ndarray
    xlabel: str
    source: str
    edges: np.ndarray | None = None
    """Column boundaries (one more than columns) where a column spans a window; ``None``: columns centred on ``x``."""


def row_labels(space: Space) -> tuple[str, ...]:
    """``decision=choice`` for every choice of every decision, in space order."""
    return tuple(f"{d.name}={c}" for d in space.decisions for c in d.choices)


def controller_probabilities(agent: object) -> np.ndarray:
    """Probability of every choice (concatenated over decisions, like ``Space.encode``) under the
    agent's controller: exact for the factorized controller, estimated for the LSTM (see the module docstring)."""
    import torch

    from rlnas.agents.controllers import FactorizedController

    controller = getattr(agent, "controller", None)
    if controller is None:
        raise ConfigError(f"agent {getattr(agent, 'name', type(agent).__name__)!r} has no controller whose "
                          "probabilities can be shown; use the choice frequencies (--kind choices) instead")
    sizes = controller.sizes
    with torch.no_grad():
        if isinstance(controller, FactorizedController):
            probs = controller.log_probs().exp()
            return np.concatenate([probs[i, :k].double().numpy() for i, k in enumerate(sizes)])
        generator = torch.Generator().manual_seed(0)
        indices = controller.sample(LSTM_MARGINAL_SAMPLES, generator)[0].numpy()
    return np.concatenate([np.bincount(indices[:, i], minlength=k) / len(indices) for i, k in enumerate(sizes)])


def logged_heatmap(snapshot: StudySnapshot, space: Space) -> Heatmap | None:
    """The heat map from diagnostics named ``p/<decision>/<choice index>``, or ``None`` when there are none."""
    index = {(d.name, i): space.offsets[j] + i for j, d in enumerate(space.decisions) for i in range(d.size)}
    columns, xs = [], []
    for slot, values in snapshot.diagnostics:
        logged = {m.groups(): v for name, v in values.items() if (m := _LOGGED.match(name))}
        if not logged:
            continue
        column = np.full(space.dim, math.nan)
        for (decision, choice), value in logged.items():
            position = index.get((decision, int(choice)))
            if position is None:
                raise ConfigError(f"diagnostic p/{decision}/{choice} names no choice of space {space.name!r}")
            column[position] = float(value)
        columns.append(column)
        xs.append(slot)
    if not columns:
        return None
    return Heatmap(row_labels(space), np.array(xs, dtype=float), np.stack(columns, axis=1),
                   "proposals told", "logged by the agent")


def policy_heatmap(snapshot: StudySnapshot, space: Space) -> Heatmap:
    """The controller's choice probabilities before the first and after every update (see the module docstring)."""
    logged = logged_heatmap(snapshot, space)
    if logged is not None:
        return logged
    from rlnas.agents import Proposal, create_agent
    from rlnas.agents.base import WeightSharingAgent

    record = snapshot.record
    if record.settings.get("init_from"):
        raise ConfigError(f"study {record.name!r} started from study {record.settings['init_from']!r}'s policy, "
                          "so it cannot be replayed from its seed; use the choice frequencies (--kind choices)")
    agent = create_agent(record.agent, space, record.agent_config, seed=record.seed)
    if isinstance(agent, WeightSharingAgent):
        raise ConfigError(f"study {record.name!r}: a weight-sharing agent's controller learns from shared training, "
                          "not from the stored trials, so it cannot be replayed (an agent of your own can log its "
                          "probabilities as diagnostics p/<decision>/<choice index>); --kind choices draws what it "
                          "chose")
    columns, xs = [controller_probabilities(agent)], [0]
    history = snapshot.history
    batch = agent.batch_size
    for start in range(0, len(history) - len(history) % batch, batch):
        told = history[start:start + batch]
        if [t.slot for t in told] != list(range(start, start + batch)):
            break  # a slot is still running (or was never stored): the replay ends before it
        agent.tell([(Proposal(space.candidate(t.candidate), dict(t.info)),
                     t.reward if t.state is TrialState.COMPLETE else None) for t in told])
        columns.append(controller_probabilities(agent))
        xs.append(start + batch)
    source = "replayed (exact)" if type(agent.controller).__name__ == "FactorizedController" else \
        f"replayed (LSTM marginals from {LSTM_MARGINAL_SAMPLES} samples)"
    return Heatmap(row_labels(space), np.array(xs, dtype=float), np.stack(columns, axis=1), "proposals told", source)


def choice_heatmap(snapshot: StudySnapshot, space: Space, window: int | None = None) -> Heatmap:
    """Share of the proposals in each window of ``window`` consecutive finished trials that took each choice.

    ``window`` defaults to a twentieth of the trials (at least 5); the last window may be
    shorter. ``x`` is the number of trials at the end of each window; a column spans its window.
    """
    history = snapshot.history
    if not history:
        raise ConfigError(f"study {snapshot.name!r} has no finished trial")
    window = max(5, len(history) // 20) if window is None else int(window)
    if window < 1:
        raise ConfigError(f"window must be >= 1, got {window}")
    encoded = np.stack([space.encode(t.candidate) for t in history]).astype(float)
    columns, xs = [], []
    for start in range(0, len(history), window):
        chunk = encoded[start:start + window]
        columns.append(chunk.mean(axis=0))
        xs.append(start + len(chunk))
    return Heatmap(row_labels(space), np.array(xs, dtype=float), np.stack(columns, axis=1), "trials",
                   f"proposal frequency per window of {window} trials", edges=np.array([0.0, *xs]))


def heatmap_by_decision(heatmap: Heatmap, space: Space) -> Mapping[str, np.ndarray]:
    """The rows of ``heatmap`` grouped per decision (each block sums to 1 per column when complete)."""
    return {d.name: heatmap.values[o:o + d.size] for d, o in zip(space.decisions, space.offsets)}


__all__ = [
    "LSTM_MARGINAL_SAMPLES",
    "Heatmap",
    "choice_heatmap",
    "controller_probabilities",
    "heatmap_by_decision",
    "logged_heatmap",
    "policy_heatmap",
    "row_labels",
]


