"""Study: the ask / tell loop between an agent, an evaluator and a store.

A study hands out proposals in *slots* (their position in the agent's stream). Batches of
``agent.batch_size`` proposals are told to the agent in slot order once all of them have
results, and every ``checkpoint_every`` told slots the agent's state is stored. Resuming
loads the newest checkpoint and replays the agent from there, serving results from stored
trials instead of evaluating again, so a resumed run continues exactly like an unbroken one.
"""
from __future__ import annotations

import io
import math
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from rlnas.agents import Agent, Proposal, create_agent
from rlnas.errors import ConfigError, DuplicateStudy, RlnasError, StorageError
from rlnas.evaluators import Evaluator, Measurement, create_evaluator
from rlnas.spaces import SPACES, Space, create_space
from rlnas.store import Store, StudyRecord, open_store
from rlnas.trial import Trial, TrialState

DEFAULT_CHECKPOINT_EVERY = 50
"""Told proposals between agent checkpoints. Resume replays at most this many stored results
(agent work only, no evaluation), so a long period costs little, and a short one slows fast
tabular searches (a checkpoint is a ``torch.save`` of the agent and one database write)."""
ORPHAN_REASON = "orphaned: the process running this trial stopped before it finished"

Callback = Callable[["Study", Trial], None]


@dataclass
class _Batch:
    """Proposals asked together; told to the agent together once every one has a result."""

    start: int
    proposals: list[Proposal]
    numbers: dict[int, int] = field(default_factory=dict)      # position -> trial number
    results: dict[int, float | None] = field(default_factory=dict)  # position -> reward

    def unassigned(self) -> int | None:
        for i in range(len(self.proposals)):
            if i not in self.numbers and i not in self.results:
                return i
        return None

    @property
    def complete(self) -> bool:
        return len(self.results) == len(self.proposals)


def evaluation_seed(study_seed: int, slot: int) -> int:
    """Seed handed to the evaluator for the proposal in ``slot`` (independent of crashes).

    A SplitMix64 finaliser over (seed, slot): cheap, and neighbouring slots get unrelated seeds.
    """
    mask = 0xFFFFFFFFFFFFFFFF
    z = (int(study_seed) * 0x9E3779B97F4A7C15 + slot * 0xBF58476D1CE4E5B9 + 0x94D049BB133111EB) & mask
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & mask
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & mask
    return (z ^ (z >> 31)) & 0x7FFFFFFFFFFFFFFF


class Study:
    """A search: one space, one agent, one evaluator, one reward, stored in one store.

    Build it with :func:`create_study` or :func:`load_study`. ``ask``/``tell`` give manual
    control; :meth:`optimize` runs the loop until a number of finished trials or a
    simulated-time budget is reached.
    """

    def __init__(self, store: Store, record: StudyRecord, space: Space, agent: Agent,
                 evaluator: Evaluator | None):
        self.store = store
        self.record = record
        self.space = space
        self.agent = agent
        self.evaluator = evaluator
        self._batches: list[_Batch] = []
        self._next_slot = 0
        self._told = 0
        self._last_checkpoint = 0
        self._running: dict[int, tuple[_Batch, int]] = {}  # trial number -> (batch, position)
        self._finished = 0
        self._spent = 0.0
        self._best: Trial | None = None
        self._rebuilt = False    # the agent has been restored from the store
        self._claimed = False    # orphans are marked: this process drives the study
        self._replaying = False  # stored results are being told again

    # ------------------------------------------------------------ properties
    @property
    def name(self) -> str:
        return self.record.name

    @property
    def seed(self) -> int:
        return self.record.seed

    @property
    def settings(self) -> dict[str, Any]:
        return dict(self.record.settings)

    @property
    def trials(self) -> list[Trial]:
        """Every stored trial, in order of number (orphaned ones included)."""
        return self.store.trials(self.record.id)

    @property
    def completed_trials(self) -> list[Trial]:
        """COMPLETE trials in slot order: the run's history, the same with or without crashes."""
        done = self.store.trials(self.record.id, [TrialState.COMPLETE])
        return sorted(done, key=lambda t: t.slot)

    @property
    def best_trial(self) -> Trial | None:
        """The COMPLETE trial with the highest reward (the earliest one on ties)."""
        best = None
        for t in self.completed_trials:
            if t.reward is not None and (best is None or t.reward > best.reward):
                best = t
        return best

    @property
    def n_finished(self) -> int:
        """Finished trials that count towards ``n_trials`` (orphans excluded)."""
        if self._rebuilt:
            return self._finished
        return sum(1 for t in self.store.trials(self.record.id) if t.state.finished and not t.orphaned)

    @property
    def spent_seconds(self) -> float:
        """Sum of ``cost_seconds`` over finished trials (simulated time for tabular evaluators)."""
        if self._rebuilt:
            return self._spent
        return sum(t.cost_seconds for t in self.store.trials(self.record.id) if t.state.finished and not t.orphaned)

    def diagnostics(self) -> list[tuple[int, dict[str, float]]]:
        """What the agent reported from each ``tell``, as ``(told slots, values)``."""
        return self.store.diagnostics(self.record.id)

    # -------------------------------------------------------------- ask/tell
    def ask(self) -> Trial:
        """Take the next proposal (asking the agent for a new batch when needed) as a RUNNING trial."""
        self._prepare()
        batch, position = self._next_unassigned()
        proposal = batch.proposals[position]
        trial = self.store.add_trial(self.record.id, batch.start + position, self.space.key(proposal.candidate),
                                     proposal.candidate.to_dict(), proposal.info)
        batch.numbers[position] = trial.number
        self._running[trial.number] = (batch, position)
        return trial

    def proposal_of(self, trial: Trial | int) -> Proposal:
        """The agent's proposal behind a RUNNING trial of this process."""
        batch, position = self._running[trial if isinstance(trial, int) else trial.number]
        return batch.proposals[position]

    def tell(self, trial: Trial | int, value: Measurement | float | None = None, *,
             state: TrialState | None = None, error: str | None = None) -> Trial:
        """Finish a RUNNING trial with a measurement, a plain reward, or a failure.

        ``state`` defaults to COMPLETE when a value is given and FAIL otherwise. A reward
        that is missing or not finite makes the trial FAIL. Returns the stored record.
        """
        self._prepare()
        number = trial if isinstance(trial, int) else trial.number
        if number not in self._running:
            raise RlnasError(f"trial {number} of study {self.name!r} is not running in this process")
        metrics: dict[str, float] = {}
        cost, eval_info, reward = 0.0, {}, None
        if isinstance(value, Measurement):
            metrics = {k: float(v) for k, v in value.metrics.items()}
            cost, eval_info = float(value.cost_seconds), dict(value.info)
            reward = metrics.get(self.record.reward)
            if reward is None and state in (None, TrialState.COMPLETE):
                state, error = TrialState.FAIL, f"the evaluator reported no {self.record.reward!r} metric"
        elif value is not None:
            reward = float(value)
        if state is None:
            state = TrialState.COMPLETE if reward is not None else TrialState.FAIL
        if state is TrialState.COMPLETE and (reward is None or not math.isfinite(reward)):
            state, error = TrialState.FAIL, error or f"reward {reward!r} is not a finite number"
        if state is not TrialState.COMPLETE:
            reward = None
        stored = self.store.finish_trial(self.record.id, number, state, reward=reward, metrics=metrics,
                                         cost_seconds=cost, error=error, eval_info=eval_info)
        batch, position = self._running.pop(number)
        self._record_result(batch, position, stored)
        self._flush()
        return stored

    # -------------------------------------------------------------- optimize
    def optimize(self, n_trials: int | None = None, budget_seconds: float | None = None, *,
                 progress: bool = False, callbacks: Iterable[Callback] = ()) -> "Study":
        """Ask, evaluate and tell until the study holds ``n_trials`` finished trials or has spent
        ``budget_seconds`` of (simulated) evaluation time; both limits are stored so that
        ``resume`` continues towards them. A trial that crosses the budget still counts.
        """
        if self.evaluator is None:
            raise ConfigError(f"study {self.name!r} has no evaluator to optimize with")
        if n_trials is not None and n_trials < 0:
            raise ConfigError(f"n_trials must be >= 0, got {n_trials}")
        if budget_seconds is not None and budget_seconds <= 0:
            raise ConfigError(f"budget_seconds must be > 0, got {budget_seconds}")
        if n_trials is None and budget_seconds is None:
            n_trials = self.record.settings.get("n_trials")
            budget_seconds = self.record.settings.get("budget_seconds")
            if n_trials is None and budget_seconds is None:
                raise ConfigError("give n_trials or budget_seconds")
        self._save_settings(n_trials=n_trials, budget_seconds=budget_seconds)
        self._prepare()
        callbacks = list(callbacks)
        bar = None
        if progress:
            from rlnas.progress import SearchProgress

            bar = SearchProgress(self, n_trials, budget_seconds)
            bar.start()
            if hasattr(self.evaluator, "progress"):  # evaluators that train report each epoch
                previous_hook = self.evaluator.progress
                self.evaluator.progress = bar.on_epoch
        try:
            while not self._limit_reached(n_trials, budget_seconds):
                trial = self.ask()
                try:
                    measurement = self.evaluator.evaluate(self.proposal_of(trial).candidate,
                                                          seed=evaluation_seed(self.seed, trial.slot))
                except (KeyboardInterrupt, SystemExit):
                    raise
                except ConfigError as exc:  # the evaluator cannot work at all: stop, saying why
                    self.tell(trial, None, state=TrialState.FAIL, error=str(exc))
                    raise
                except Exception as exc:  # an evaluation error ends this trial, not the search
                    finished = self.tell(trial, None, state=TrialState.FAIL, error=f"{type(exc).__name__}: {exc}")
                else:
                    finished = self.tell(trial, measurement)
                for callback in callbacks:
                    callback(self, finished)
                if bar is not None:
                    bar.update(finished)
        finally:
            if bar is not None:
                bar.stop()
                if hasattr(self.evaluator, "progress"):
                    self.evaluator.progress = previous_hook
        return self

    def _limit_reached(self, n_trials: int | None, budget_seconds: float | None) -> bool:
        started = self._finished + len(self._running)
        if n_trials is not None and started >= n_trials:
            return True
        return budget_seconds is not None and self._spent >= budget_seconds

    def _save_settings(self, **changes: Any) -> None:
        settings = dict(self.record.settings) | changes
        if settings != self.record.settings:
            self.store.update_settings(self.record.id, settings)
            self.record = replace(self.record, settings=settings)

    # --------------------------------------------------------------- batches
    def _next_unassigned(self) -> tuple[_Batch, int]:
        for batch in self._batches:
            position = batch.unassigned()
            if position is not None:
                return batch, position
        batch = self._new_batch()
        return batch, 0

    def _new_batch(self) -> _Batch:
        proposals = self.agent.ask(self.agent.batch_size)
        if not proposals:
            raise RlnasError(f"agent {self.record.agent!r} proposed nothing")
        batch = _Batch(self._next_slot, list(proposals))
        self._next_slot += len(proposals)
        self._batches.append(batch)
        return batch

    def _record_result(self, batch: _Batch, position: int, trial: Trial) -> None:
        if trial.orphaned:
            return
        batch.results[position] = trial.reward
        self._finished += 1
        self._spent += trial.cost_seconds
        if trial.reward is not None and (self._best is None or trial.reward > self._best.reward):
            self._best = trial

    def _flush(self) -> None:
        while self._batches and self._batches[0].complete:
            batch = self._batches.pop(0)
            told = [(p, batch.results[i]) for i, p in enumerate(batch.proposals)]
            values = self.agent.tell(told)
            self._told += len(told)
            if values and not self._replaying:  # replayed tells were logged the first time
                self.store.log_diagnostics(self.record.id, self._told, values)
            every = int(self.record.settings.get("checkpoint_every", DEFAULT_CHECKPOINT_EVERY))
            if every > 0 and self._told - self._last_checkpoint >= every and not self._replaying:
                self.checkpoint()

    # ----------------------------------------------------------- checkpoints
    def checkpoint(self) -> None:
        """Store the agent's state, the slot counter and the proposals asked but not yet told."""
        import torch

        outstanding = [
            {"start": b.start, "proposals": [{"candidate": p.candidate.to_dict(), "info": p.info} for p in b.proposals]}
            for b in self._batches
        ]
        payload = {"agent": self.agent.state_dict(), "next_slot": self._next_slot, "told": self._told,
                   "outstanding": outstanding}
        buffer = io.BytesIO()
        torch.save(payload, buffer)
        self.store.save_checkpoint(self.record.id, self._told, buffer.getvalue())
        self._last_checkpoint = self._told

    def init_from(self, source: "Study") -> None:
        """Start this (new) study's agent from what ``source``'s agent learned (policy transfer).

        Both studies must search the same space with the same agent. The transferred state is
        stored at once as this study's first checkpoint, so a crash cannot lose it.
        """
        self._prepare()
        if self._next_slot or self._finished:
            raise ConfigError(f"study {self.name!r} has already started: transfer only into a new study")
        if source.space.fingerprint != self.space.fingerprint:
            raise ConfigError(f"cannot start from study {source.name!r}: it searched space {source.space.name!r} "
                              f"({source.space.fingerprint}), this study searches {self.space.name!r} "
                              f"({self.space.fingerprint})")
        if source.record.agent != self.record.agent:
            raise ConfigError(f"cannot start from study {source.name!r}: it used agent {source.record.agent!r}, "
                              f"not {self.record.agent!r}")
        source._prepare(claim=False)
        if not source._finished:
            raise ConfigError(f"cannot start from study {source.name!r}: it has no finished trial")
        self.agent.load_policy(source.agent.state_dict())
        self._save_settings(init_from=source.name)
        self.checkpoint()

    def _prepare(self, *, claim: bool = True) -> None:
        """On first use: restore the newest checkpoint, replay stored results, mark orphans.

        ``claim=False`` only rebuilds the agent (to read it, e.g. as a transfer source):
        RUNNING trials stay as they are, since another process may still be running them.
        """
        if not self._rebuilt:
            self._replaying = True
            try:
                self._rebuild()
            finally:
                self._replaying = False
            self._rebuilt = True
        if claim and not self._claimed:
            self.store.fail_orphans(self.record.id, ORPHAN_REASON)
            self._claimed = True

    def _rebuild(self) -> None:
        """Restore the newest checkpoint and tell the agent every finished trial after it."""
        stored = [t for t in self.store.trials(self.record.id) if not t.orphaned and t.state.finished]
        by_slot = {t.slot: t for t in stored}
        checkpoint = self.store.latest_checkpoint(self.record.id)
        if checkpoint is not None:
            import torch

            payload = torch.load(io.BytesIO(checkpoint[1]), weights_only=True)
            self.agent.load_state_dict(payload["agent"])
            self._next_slot = int(payload["next_slot"])
            self._told = self._last_checkpoint = int(payload["told"])
            for b in payload["outstanding"]:
                proposals = [Proposal(self.space.candidate(p["candidate"]), dict(p["info"])) for p in b["proposals"]]
                self._batches.append(_Batch(int(b["start"]), proposals))
        for t in stored:
            self._finished += 1
            self._spent += t.cost_seconds
            if t.state is TrialState.COMPLETE and t.reward is not None and (self._best is None or t.reward > self._best.reward):
                self._best = t
        self._replay(by_slot)

    def _replay(self, by_slot: Mapping[int, Trial]) -> None:
        """Feed stored results back to the agent, asking it again where the checkpoint left off."""
        def fill(batch: _Batch) -> None:
            for i, proposal in enumerate(batch.proposals):
                trial = by_slot.get(batch.start + i)
                if trial is None:
                    continue
                if trial.key != self.space.key(proposal.candidate):
                    warnings.warn(f"study {self.name!r}: slot {trial.slot} was {trial.key} but the restored agent "
                                  f"proposes {self.space.key(proposal.candidate)}; telling the stored trial",
                                  RuntimeWarning, stacklevel=3)
                    batch.proposals[i] = Proposal(self.space.candidate(trial.candidate), dict(trial.info))
                batch.results[i] = trial.reward

        for batch in self._batches:
            fill(batch)
        self._flush()
        last_slot = max(by_slot, default=-1)
        while self._next_slot <= last_slot:
            fill(self._new_batch())
            self._flush()


# ---------------------------------------------------------------- factories
def _resolve_space(space: str | Space) -> Space:
    return create_space(space) if isinstance(space, str) else space


def _evaluator_spec(evaluator: Evaluator | None) -> dict[str, Any]:
    if evaluator is None:
        return {}
    spec = getattr(evaluator, "spec", None)
    return dict(spec()) if callable(spec) else {"name": type(evaluator).__name__}


def create_study(*, space: str | Space, agent: str = "random", agent_config: Mapping[str, Any] | None = None,
                 evaluator: Evaluator | None = None, reward: str = "valid_acc", seed: int = 0,
                 name: str | None = None, storage: str | Store | None = None,
                 checkpoint_every: int = DEFAULT_CHECKPOINT_EVERY, load_if_exists: bool = False,
                 device: str = "cpu") -> Study:
    """Create (or with ``load_if_exists`` reopen) a study.

    ``storage`` is a SQLAlchemy URL, a :class:`Store`, or ``None`` for an in-memory study.
    ``reward`` names the metric of the evaluator's measurements that the agent maximises.
    """
    from rlnas import __version__

    if checkpoint_every < 0:
        raise ConfigError(f"checkpoint_every must be >= 0, got {checkpoint_every}")
    resolved = _resolve_space(space)
    agent_obj = create_agent(agent, resolved, agent_config, seed=seed, device=device)
    store = open_store(storage)
    name = name or f"{resolved.name}-{agent}-{seed}"
    record = StudyRecord(
        id=0, name=name, space_name=resolved.name, space_json=resolved.to_json(), fingerprint=resolved.fingerprint,
        agent=agent, agent_config=agent_obj.config.to_dict(), evaluator=_evaluator_spec(evaluator),
        reward=reward, seed=int(seed), settings={"checkpoint_every": checkpoint_every}, version=__version__,
    )
    try:
        stored = store.create_study(record)
    except DuplicateStudy:
        if not load_if_exists:
            raise
        existing = store.get_study(name)
        if existing.fingerprint != record.fingerprint:
            raise DuplicateStudy(f"study {name!r} exists with space {existing.space_name!r} "
                                 f"(fingerprint {existing.fingerprint}); it cannot continue with space "
                                 f"{resolved.name!r} ({record.fingerprint})") from None
        return load_study(name, store, evaluator=evaluator, device=device)
    return Study(store, stored, resolved, agent_obj, evaluator)


def space_of(record: StudyRecord) -> Space:
    """The space a stored study searches (registered when it matches, else rebuilt from its JSON)."""
    if record.space_name in SPACES:
        space = create_space(record.space_name)
        if space.fingerprint == record.fingerprint:
            return space
    space = Space.from_json(record.space_json)
    if space.fingerprint != record.fingerprint:
        raise StorageError(f"study {record.name!r}: stored space does not match its fingerprint")
    return space


def load_study(name: str, storage: str | Store | None, *, evaluator: Evaluator | None = None,
               device: str = "cpu") -> Study:
    """Reopen a stored study; its agent is restored (and orphans marked) on the first ask or optimize.

    The evaluator is rebuilt from the stored spec unless one is given.
    """
    store = open_store(storage, create=False)
    record = store.get_study(name)
    space = space_of(record)
    agent = create_agent(record.agent, space, record.agent_config, seed=record.seed, device=device)
    if evaluator is None and record.evaluator:
        options = dict(record.evaluator)
        evaluator = create_evaluator(options.pop("name"), **options)
    return Study(store, record, space, agent, evaluator)
