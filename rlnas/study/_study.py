"""Study: the ask / tell loop between an agent, an evaluator and a store.

A study hands out proposals in *slots* (their position in the agent's stream). Proposals are
asked in batches of ``agent.batch_size`` and told to the agent in slot order once every
proposal of a batch has a result. With ``window`` batches allowed to be untold at once (1 when
one trial runs at a time; more when several workers evaluate in parallel), the agent is always
told exactly the batches before ``j - window + 1`` when batch ``j`` is asked, whatever order
results arrive in, so a run is the same for a given seed and worker count.

Every ``checkpoint_every`` told slots the agent's state (and a stateful evaluator's) is stored.
Resuming loads the newest checkpoint and replays the agent from there, serving results from
stored trials instead of evaluating again, so a resumed run continues exactly like an unbroken
one. One process drives a study at a time (see :mod:`rlnas.study.lease`).
"""
from __future__ import annotations

import copy
import math
import numbers
import warnings
import weakref
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from rlnas.agents import Agent, Proposal
from rlnas.agents.base import WeightSharingAgent
from rlnas.errors import ConfigError, RlnasError, SpaceExhausted, StorageError
from rlnas.evaluators import Evaluator, Measurement
from rlnas.rewards import MAX_REWARD, Reward, RewardError, create_reward
from rlnas.spaces import Space
from rlnas.store import Lease, Store, StudyRecord
from rlnas.study import checkpoint as codec
from rlnas.study.lease import Heartbeat, acquire
from rlnas.study.spec import Callback, RunOptions, StudySpec, evaluator_identity
from rlnas.study.transfer import transfer_policy
from rlnas.trial import Trial, TrialState

DEFAULT_CHECKPOINT_EVERY = 50
"""Told proposals between agent checkpoints. Resume replays at most this many stored results
(agent work only, no evaluation), so a long period costs little, and a short one slows fast
tabular searches (a checkpoint is an encoded state dict and one database write)."""
ORPHAN_REASON = "orphaned: the process running this trial stopped before it finished"
MAX_REPEATS_IN_A_ROW = 10_000
"""With ``reuse_repeats``, an agent that proposes only known candidates this often in a row is stuck."""


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


def is_better(trial: Trial, best: Trial | None) -> bool:
    """Whether COMPLETE ``trial`` beats ``best``: a higher reward, or the same reward in an earlier slot."""
    if trial.state is not TrialState.COMPLETE or trial.reward is None:
        return False
    return best is None or trial.reward > best.reward or (trial.reward == best.reward and trial.slot < best.slot)


def best_of(trials: Iterable[Trial]) -> Trial | None:
    """The best COMPLETE trial (see :func:`is_better`), or ``None``."""
    best = None
    for trial in trials:
        if is_better(trial, best):
            best = trial
    return best


WEIGHT_SHARING_ANSWER = ("a weight-sharing search's answer is its last recorded trial: the controller's final choice, "
                         "measured with the final shared weights (an earlier record's higher reward came from weights "
                         "that have changed since)")


def found_trial(complete: Iterable[Trial], agent: str) -> Trial | None:
    """What a study of ``agent`` found among its COMPLETE trials: the best one (:func:`best_of`), or a
    weight-sharing search's answer, its last (see :data:`WEIGHT_SHARING_ANSWER`); ``None`` when there is none."""
    from rlnas.agents import shares_weights

    complete = list(complete)
    if shares_weights(agent):
        return max(complete, key=lambda t: t.slot) if complete else None
    return best_of(complete)


class Study:
    """A search: one space, one agent, one evaluator, one reward, stored in one store.

    Build it with :func:`~rlnas.study.create_study` or :func:`~rlnas.study.load_study`.
    ``ask``/``tell`` give manual control; :meth:`optimize` runs the loop over an executor until
    a number of finished trials or an evaluation-time budget is reached.
    """

    def __init__(self, store: Store, record: StudyRecord, space: Space, agent: Agent,
                 evaluator: Evaluator | None, reward: Reward | None = None, *,
                 evaluator_error: str | None = None):
        self.store = store
        self.record = record
        self.created_now = False
        """Whether :func:`~rlnas.study.create_study` stored this study now (not found it stored)."""
        self._optimizing = False
        self.space = space
        self.agent = agent
        self.evaluator = evaluator
        self.reward: Reward = create_reward(record.reward) if reward is None else reward
        self._evaluator_error = evaluator_error
        self._batches: list[_Batch] = []
        self._next_slot = 0
        self._told = 0
        self._last_checkpoint = 0
        self._window = 1          # batches that may be asked but not yet told
        self._running: dict[int, tuple[_Batch, int]] = {}  # trial number -> (batch, position)
        self._asked: dict[int, Trial] = {}  # trial number -> the RUNNING record handed out
        self._finished = 0
        self._spent = 0.0
        self._best: Trial | None = None
        self._evaluated: dict[str, Trial] = {}  # identity -> first COMPLETE trial of it (reuse_repeats)
        self._tried: set[str] = set()  # identities evaluated, complete or failed (reuse_repeats: the space's end)
        self._repeats_in_a_row = 0
        self._callbacks: tuple[Callback, ...] = ()
        self._rebuilt = False     # the agent has been restored from the store
        self._rows_seen = 0  # trials stored when this object last matched the store (rebuilt, or gave its lease up)
        self._logged: set[int] = set()  # told counts whose diagnostics are stored (never stored twice)
        self._replaying = False   # stored results are being told again
        self._lease: Lease | None = None
        self._heartbeat: Heartbeat | None = None
        self._let_go_when_collected: weakref.finalize | None = None

    def __repr__(self) -> str:
        r = self.record
        return (f"Study(name={r.name!r}, space={r.space_name!r}, agent={r.agent!r}, seed={r.seed}, "
                f"storage={getattr(self.store, 'url', 'memory')!r})")

    def __getstate__(self) -> dict[str, Any]:
        from rlnas.store.base import InMemoryStore

        if not isinstance(self.store, InMemoryStore):  # (SQLAlchemy said: Can't pickle local object ...)
            raise TypeError(f"a Study on a database does not pickle (it holds connections and maybe the study's "
                            f"lease): send its name {self.name!r} and storage URL, and call load_study(name, url) "
                            "in the other process")
        return dict(self.__dict__)

    # ------------------------------------------------------------ properties
    @property
    def name(self) -> str:
        """The study's name (unique in its store)."""
        return self.record.name

    @property
    def seed(self) -> int:
        """The study's seed: the agent's and, per slot, the evaluations' (:func:`evaluation_seed`)."""
        return self.record.seed

    @property
    def settings(self) -> dict[str, Any]:
        """A copy of the stored settings: stop conditions, checkpoint interval, notes."""
        return dict(self.record.settings)

    @property
    def spec(self) -> StudySpec:
        """What this study is: its stored identity."""
        r = self.record
        return StudySpec(space=r.space_name, fingerprint=r.fingerprint, agent=r.agent,
                         agent_config=copy.deepcopy(r.agent_config),  # a copy: editing it changes nothing stored
                         evaluator=evaluator_identity(r.evaluator), reward=r.reward, seed=r.seed,
                         reuse_repeats=r.reuse_repeats)

    @property
    def trials(self) -> list[Trial]:
        """Every stored trial, in order of number (orphaned ones included)."""
        return self.store.trials(self.record.id)

    @property
    def completed_trials(self) -> list[Trial]:
        """COMPLETE trials in slot order: the run's history, the same with or without crashes."""
        done = self.store.trials(self.record.id, [TrialState.COMPLETE])
        return sorted(done, key=lambda t: (t.slot, t.number))

    def trials_dataframe(self) -> Any:
        """Every stored trial as a pandas ``DataFrame`` (needs pandas; columns in :mod:`rlnas.reports.frame`)."""
        from rlnas.reports.frame import trials_dataframe

        return trials_dataframe(self.trials, [d.name for d in self.space.decisions])

    @property
    def best_trial(self) -> Trial | None:
        """The COMPLETE trial with the highest reward (the earliest slot on ties). For what the study
        found, which for a weight-sharing search is not its best-rewarded record, see :attr:`found_trial`."""
        if self._driving():
            return self._best
        return best_of(self.store.trials(self.record.id, [TrialState.COMPLETE]))

    @property
    def found_trial(self) -> Trial | None:
        """What the study found, as every command of the CLI reports it: :attr:`best_trial`, or a
        weight-sharing search's answer, its last COMPLETE trial (:data:`WEIGHT_SHARING_ANSWER`)."""
        from rlnas.agents import shares_weights

        if not shares_weights(self.record.agent):
            return self.best_trial
        return found_trial(self.store.trials(self.record.id, [TrialState.COMPLETE]), self.record.agent)

    @property
    def n_finished(self) -> int:
        """Finished trials that count towards ``n_trials`` (orphans and repeats excluded)."""
        if self._driving():
            return self._finished
        return sum(1 for t in self.store.trials(self.record.id) if _counts(t))

    @property
    def spent_seconds(self) -> float:
        """Sum of ``cost_seconds`` over counted finished trials (simulated time for tabular evaluators)."""
        if self._driving():
            return self._spent
        return sum(t.cost_seconds for t in self.store.trials(self.record.id) if _counts(t))

    def _driving(self) -> bool:
        """Whether this object drives the study with its agent rebuilt: its counts are then the store's,
        kept as it goes (no other driver writes); otherwise the store is read (another may have gone on)."""
        return self._rebuilt and self._lease is not None

    @property
    def lease(self) -> Lease | None:
        """Who drives the study now (read from the store), or ``None``."""
        return self.store.get_lease(self.record.id)

    def diagnostics(self) -> list[tuple[int, dict[str, float]]]:
        """What the agent reported from each ``tell``, as ``(told slots, values)``."""
        return self.store.diagnostics(self.record.id)

    # -------------------------------------------------------------- ask/tell
    def ask(self) -> Trial:
        """Take the next proposal (asking the agent for a new batch when needed) as a RUNNING trial."""
        if self._optimizing:
            raise RlnasError(f"study {self.name!r} is running optimize(): a trial asked now (from a callback) would "
                             "take a slot the loop never evaluates; ask before or after optimize()")
        self.claim()
        trial = self._next_trial(overflow=True)
        assert trial is not None
        return trial

    def proposal_of(self, trial: Trial | int) -> Proposal:
        """The agent's proposal behind a RUNNING trial of this process."""
        batch, position = self._running[self._running_number(trial)]
        return batch.proposals[position]

    def tell(self, trial: Trial | int, value: Measurement | float | None = None, *,
             state: TrialState | None = None, error: str | None = None, cost_seconds: float = 0.0) -> Trial:
        """Finish a RUNNING trial with a measurement, a plain reward, or a failure.

        ``state`` defaults to COMPLETE when a value is given and FAIL otherwise. A reward
        that is missing or not finite makes the trial FAIL. ``cost_seconds`` is what a trial told
        without a :class:`Measurement` cost (a failure's time: a budget counts it). Returns the
        stored record.
        """
        if isinstance(cost_seconds, bool) or not isinstance(cost_seconds, numbers.Real) or not (
                math.isfinite(cost_seconds) and cost_seconds >= 0):
            raise ConfigError(f"tell: cost_seconds must be a finite number >= 0, got {cost_seconds!r}")
        if value is not None and not isinstance(value, Measurement) and not _is_reward_number(value):
            raise ConfigError(f"tell: the value is a Measurement, a real number (the reward) or None, got "
                              f"{value if len(str(value)) < 80 else str(value)[:77] + '...'}")
        if error is not None and not isinstance(error, str):
            raise ConfigError(f"tell: error is the reason of a failure as text, got {type(error).__name__} {error!r}")
        self.claim()
        number = self._running_number(trial)
        state = _told_state(state)
        metrics: dict[str, float] = {}
        cost, eval_info, reward = float(cost_seconds), {}, None
        if isinstance(value, Measurement):
            metrics, cost, eval_info, problem = _checked_measurement(value)
            if problem is None and state in (None, TrialState.COMPLETE):
                try:
                    reward = self.reward(Measurement(metrics, cost, eval_info))
                except RewardError as exc:
                    problem = str(exc)
            if problem is not None:
                state, error = TrialState.FAIL, problem
        elif value is not None:
            reward = float(value)
        if state is None:
            state = TrialState.COMPLETE if reward is not None else TrialState.FAIL
        if state is TrialState.COMPLETE and (reward is None or not math.isfinite(reward)):
            state, error = TrialState.FAIL, error or f"reward {reward!r} is not a finite number"
        elif state is TrialState.COMPLETE and abs(reward) > MAX_REWARD:  # the agent would refuse it when replayed too
            state, error = TrialState.FAIL, (f"reward {reward:g} is beyond what rlnas agents learn from (magnitude at "
                                             f"most {MAX_REWARD:g}, float32): scale the reward down")
        if state is not TrialState.COMPLETE:
            reward = None
        try:
            stored = self.store.finish_trial(self.record.id, number, state, reward=reward, metrics=metrics,
                                             cost_seconds=cost, error=error, eval_info=eval_info)
        except (TypeError, ValueError) as exc:  # the info is not JSON: nothing was written, store the failure
            stored = self.store.finish_trial(self.record.id, number, TrialState.FAIL, metrics=metrics,
                                             cost_seconds=cost, error=f"the evaluator's info cannot be stored: {exc}")
        batch, position = self._running.pop(number)
        self._asked.pop(number, None)
        self._record_result(batch, position, stored)
        self._flush()
        return stored

    def _running_number(self, trial: Trial | int) -> int:
        """The number of a trial this process asked and has not told yet (a Trial must be that trial)."""
        if isinstance(trial, Trial):
            number = trial.number
        elif isinstance(trial, numbers.Integral) and not isinstance(trial, bool):
            number = int(trial)
        else:
            raise ConfigError(f"trial must be a Trial or a trial number, got {type(trial).__name__} {trial!r}")
        if number not in self._running:
            raise RlnasError(f"trial {number} of study {self.name!r} is not running in this process")
        asked = self._asked.get(number)
        if isinstance(trial, Trial) and asked is not None and trial != asked:
            raise RlnasError(f"trial {number} (slot {trial.slot}, {trial.key}) was not asked from study "
                             f"{self.name!r}: tell a trial to the study that asked it")
        return number

    # -------------------------------------------------------------- optimize
    def optimize(self, n_trials: int | None = None, budget_seconds: float | None = None, *,
                 run: RunOptions | None = None, progress: bool = False,
                 callbacks: Iterable[Callback] | Callback = ()) -> Study:
        """Ask, evaluate and tell until the study holds ``n_trials`` finished trials or has spent
        ``budget_seconds`` of (simulated) evaluation time; both limits are stored so that
        ``resume`` continues towards them. A trial that crosses the budget still counts.

        ``run`` says how (executor, workers, timeouts, ...; see :class:`RunOptions`);
        ``progress`` and ``callbacks`` add to its progress bar and callbacks.
        """
        from rlnas.study._optimize import run_search

        if self._optimizing:  # from a callback: the inner loop would end the outer one's bookkeeping and callbacks
            raise RlnasError(f"study {self.name!r} is running optimize() already: call optimize() again after it "
                             "returns (from a callback, stop early by raising an exception)")
        if self._running and self._lease is None and self._changed_by_another():  # its untold trials are gone
            raise self._changed_error()
        if self._running:  # the loop would take their slots' places and could never tell them
            raise RlnasError(f"study {self.name!r}: trial(s) {sorted(self._running)} were asked and not told yet: "
                             "tell them (a failure: tell(trial, state=TrialState.FAIL)) before optimize()")
        if run is not None and not isinstance(run, RunOptions):
            raise ConfigError(f"optimize: run must be a RunOptions (e.g. RunOptions(executor='processes', workers=2)), "
                              f"got {type(run).__name__} {run!r}")
        if callable(callbacks):  # one callback given as such
            callbacks = (callbacks,)
        if isinstance(callbacks, (str, bytes)) or not isinstance(callbacks, Iterable):
            raise ConfigError(f"optimize: callbacks must be a list of callables (study, trial), got "
                              f"{type(callbacks).__name__} {callbacks!r:.80}")
        callbacks = tuple(callbacks)
        if not all(callable(c) for c in callbacks):  # before any trial, not after the first
            raise ConfigError(f"optimize: callbacks must be callables (study, trial), got {list(callbacks)!r}")
        options = run or RunOptions()
        if progress or callbacks:
            options = replace(options, progress=options.progress or progress,
                              callbacks=(*options.callbacks, *callbacks))
        n_trials, budget_seconds = self.limits(n_trials, budget_seconds)
        self._optimizing = True
        try:
            run_search(self, n_trials, budget_seconds, options)  # stores the limits once it drives the study
        finally:
            self._optimizing = False
        self._warn_if_nothing_completed()
        return self

    def _warn_if_nothing_completed(self) -> None:
        """A run in which every trial failed returns (the CLI exits 1), but says so: best_trial is None."""
        if self._best is not None or not self._finished:  # this object's counts, exact when its run ended
            return
        trials = self.store.trials(self.record.id)
        if any(t.state is TrialState.COMPLETE for t in trials):
            return
        errors = [t.error for t in trials if t.error]
        last = f"; the last failure: {errors[-1][:300]}" if errors else ""
        warnings.warn(f"study {self.name!r}: no trial has completed ({len(trials)} stored, best_trial is None){last}",
                      stacklevel=3)

    def limits(self, n_trials: int | None, budget_seconds: float | None) -> tuple[int | None, float | None]:
        """Check the stop conditions, or take the stored ones (:meth:`store_limits` stores them)."""
        n_trials, budget_seconds = check_limits(n_trials, budget_seconds)
        if n_trials is None and budget_seconds is None:
            n_trials = self.record.settings.get("n_trials")
            budget_seconds = self.record.settings.get("budget_seconds")
            if n_trials is None and budget_seconds is None:
                raise ConfigError(f"study {self.name!r} has no stored stop condition: give n_trials or budget_seconds")
        if self.evaluator is not None:
            from rlnas.study._factories import check_budget_measurable  # _factories imports this module

            check_budget_measurable(self.evaluator, budget_seconds)
        return n_trials, budget_seconds

    def store_limits(self, n_trials: int | None, budget_seconds: float | None) -> None:
        """Store the stop conditions, for ``resume``; only the driver does (a command refused because
        another process drives the study must not change that run's target)."""
        if self._lease is None:
            raise RlnasError(f"study {self.name!r}: only its driver stores its stop conditions")
        passed = []  # totals already passed: nothing runs, and they are no new target
        if n_trials is not None and n_trials < self._finished:
            passed.append(f"holds {self._finished} finished trials, more than n_trials {n_trials}")
        if budget_seconds is not None and budget_seconds < self._spent:
            passed.append(f"has spent {self._spent:.6g} s, more than budget_seconds {budget_seconds:g}")
        if passed:
            warnings.warn(f"study {self.name!r} {' and '.join(passed)} (the total, not a number to add): nothing "
                          "runs, and its stored target stays", stacklevel=4)
            return
        self._save_settings(n_trials=n_trials, budget_seconds=budget_seconds)

    def limit_reached(self, n_trials: int | None, budget_seconds: float | None) -> bool:
        """Whether no further trial may start (running ones count as started)."""
        started = self._finished + len(self._running)
        if n_trials is not None and started >= n_trials:
            return True
        return budget_seconds is not None and self._spent >= budget_seconds

    def save_settings(self, **notes: Any) -> None:
        """Store notes of your own (JSON values, e.g. where the study came from) with the study's settings,
        shown by ``rlnas show``. The settings the study keeps itself (:data:`STUDY_SETTINGS`: its stop
        conditions, ...) are set by :func:`~rlnas.study.create_study` and :meth:`optimize`, not here."""
        from rlnas.jsonsafe import strict_json_text

        taken = sorted(set(notes) & STUDY_SETTINGS)
        if taken:
            raise ConfigError(f"save_settings: {', '.join(taken)} {'is' if len(taken) == 1 else 'are'} the study's "
                              "own setting(s), set by create_study and optimize")
        try:
            strict_json_text(notes)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"save_settings: the notes must be JSON values: {exc}") from None
        self._save_settings(**notes)

    def _save_settings(self, **changes: Any) -> None:
        """Store ``changes`` into the study's settings and keep this object's record in step, so that a
        later write of the settings by this object does not take them back."""
        settings = dict(self.record.settings) | changes
        if settings != self.record.settings:
            self.store.update_settings(self.record.id, settings)
            self.record = replace(self.record, settings=settings)

    # ----------------------------------------------------------------- lease
    def _changed_by_another(self) -> bool:
        """Whether another driver stored trials since this object let the study go."""
        return self._rebuilt and self._rows_seen != len(self.store.trials(self.record.id))

    def _changed_error(self) -> RlnasError:
        return RlnasError(f"study {self.name!r} has changed since this Study object last drove it (another "
                          f"driver stored trials): load it again with load_study({self.name!r}, ...)")

    def claim(self, options: RunOptions | None = None) -> None:
        """Become the study's driver: take its lease, restore the agent, mark orphaned trials.

        Raises :class:`~rlnas.study.lease.StudyBusy` when another live process drives it.
        """
        if self._lease is not None:
            if self._heartbeat is not None:
                self._heartbeat.confirm(self.name)  # before every write: still this process's study?
            return
        options = options or RunOptions()
        acquired = acquire(self.store, self.record.id, self.name, options.lease_seconds)
        if self._changed_by_another():  # its agent and slots are out of date
            self.store.release_lease(self.record.id, acquired.lease.holder)
            raise self._changed_error()
        self._lease = acquired.lease
        self._heartbeat = Heartbeat(self.store, self.record.id, acquired.lease.holder,
                                    options.heartbeat_seconds).start()
        # a Study dropped without close() (a notebook cell run again) does not hold the study until the process ends
        self._let_go_when_collected = weakref.finalize(self, _let_go, self.store, self.record.id,
                                                       acquired.lease.holder, self._heartbeat)
        try:
            self.rebuild()
            orphans = self.store.fail_orphans(self.record.id, ORPHAN_REASON)
            for number in orphans:
                self._forget_running(number)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        """Stop driving the study: give its lease up. Trials still RUNNING stay so, and the next
        driver marks them orphaned and evaluates their slots again. Queued diagnostics are written first."""
        if self._let_go_when_collected is not None:
            self._let_go_when_collected.detach()
            self._let_go_when_collected = None
        try:
            if self._heartbeat is not None and self._heartbeat.lost.is_set():
                # another driver took over and replays those tells, logging them itself: written now, they would
                # be stored twice
                self.store.discard_queued(self.record.id)
            self.store.flush()
        finally:
            if self._heartbeat is not None:
                self._heartbeat.stop()
                self._heartbeat = None
            if self._lease is not None:
                try:
                    self._rows_seen = len(self.store.trials(self.record.id))  # claim() compares
                except StorageError:  # the store failed (the error that stopped the run says how): not known
                    self._rows_seen = -1
                finally:
                    try:
                        self.store.release_lease(self.record.id, self._lease.holder)
                    finally:
                        self._lease = None

    def __enter__(self) -> Study:
        return self

    def __exit__(self, *exc_info: object) -> None:
        """Leave a ``with`` block: :meth:`close`."""
        self.close()

    def abandon_running(self, reason: str) -> None:
        """Mark this driver's RUNNING trials orphaned (their slots are evaluated again later); another
        driver's trials of the same study are not touched."""
        if self._running:
            self.store.fail_orphans(self.record.id, reason, list(self._running))
            for number in list(self._running):
                self._forget_running(number)

    def _forget_running(self, number: int) -> None:
        self._asked.pop(number, None)
        entry = self._running.pop(number, None)
        if entry is not None:
            batch, position = entry
            batch.numbers.pop(position, None)

    # --------------------------------------------------------------- batches
    def _next_trial(self, *, overflow: bool) -> Trial | None:
        """The next RUNNING trial, or ``None`` when the window is full until results arrive.

        With ``reuse_repeats``, proposals of already evaluated candidates are answered from the
        store on the way (stored as repeats, telling the agent the earlier result).
        """
        while True:
            found = self._next_unassigned(overflow=overflow)
            if found is None:
                return None
            batch, position = found
            proposal = batch.proposals[position]
            key = self.space.key(proposal.candidate)
            earlier = None
            if self.record.reuse_repeats:
                self._check_not_exhausted()
                earlier = self._evaluated.get(self.space.identity(proposal.candidate))
            if earlier is None:
                self._repeats_in_a_row = 0
                self.claim()
                trial = self.store.add_trial(self.record.id, batch.start + position, key,
                                             proposal.candidate.to_dict(), proposal.info)
                batch.numbers[position] = trial.number
                self._running[trial.number] = (batch, position)
                self._asked[trial.number] = trial
                return trial
            self._answer_repeat(batch, position, proposal, key, earlier)

    def _check_not_exhausted(self) -> None:
        """:class:`SpaceExhausted` once every network of the space is evaluated (with reuse_repeats): a new trial
        could only evaluate a failed one again."""
        networks = self.space.network_count()
        if networks is not None and len(self._tried) >= networks:
            failed = len(self._tried) - len(self._evaluated)
            raise SpaceExhausted(f"study {self.name!r}: all {networks:,} networks of space {self.space.name!r} are "
                                 f"evaluated{f' ({failed:,} of them failed)' if failed else ''}; with reuse_repeats "
                                 "a repeat is answered from the store and does not count, so no further trial can "
                                 "be made")

    def _answer_repeat(self, batch: _Batch, position: int, proposal: Proposal, key: str, earlier: Trial) -> None:
        self._repeats_in_a_row += 1
        if self._repeats_in_a_row > MAX_REPEATS_IN_A_ROW:
            raise RlnasError(f"study {self.name!r}: the agent proposed only already evaluated candidates "
                             f"{MAX_REPEATS_IN_A_ROW} times in a row; it has converged")
        self.claim()
        trial = self.store.add_trial(self.record.id, batch.start + position, key, proposal.candidate.to_dict(),
                                     proposal.info, repeat_of=earlier.number)
        stored = self.store.finish_trial(self.record.id, trial.number, TrialState.COMPLETE, reward=earlier.reward,
                                         metrics=earlier.metrics, cost_seconds=0.0, eval_info=earlier.eval_info)
        self._record_result(batch, position, stored)
        self._flush()
        for callback in self._callbacks:
            callback(self, stored)

    def _next_unassigned(self, *, overflow: bool = False) -> tuple[_Batch, int] | None:
        for batch in self._batches:
            position = batch.unassigned()
            if position is not None:
                return batch, position
        self._flush()
        if len(self._batches) >= self._window and not overflow:
            return None
        return self._new_batch(), 0

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
        self._count(trial)

    def _count(self, trial: Trial) -> None:
        if trial.repeat_of is None:
            self._finished += 1
            self._spent += trial.cost_seconds
            if self.record.reuse_repeats:
                identity = self.space.identity(trial.candidate)
                self._tried.add(identity)
                if trial.state is TrialState.COMPLETE:
                    self._evaluated.setdefault(identity, trial)
        if is_better(trial, self._best):
            self._best = trial

    def _flush(self) -> None:
        """Tell complete batches from the front, keeping up to ``window - 1`` of them untold."""
        while len(self._batches) > self._window - 1 and self._batches[0].complete:
            batch = self._batches.pop(0)
            told = [(p, batch.results[i]) for i, p in enumerate(batch.proposals)]
            values = self.agent.tell(told)
            self._told += len(told)
            # a tell told again (replayed, or after a resume that keeps fewer batches untold than the driver
            # before) was logged the first time, unless the process died between storing the result and telling it
            if values and self._told not in self._logged:
                self.store.log_diagnostics(self.record.id, self._told, values)
                self._logged.add(self._told)
            every = int(self.record.settings.get("checkpoint_every", DEFAULT_CHECKPOINT_EVERY))
            if every > 0 and self._told - self._last_checkpoint >= every and not self._replaying:
                self.checkpoint()

    def set_window(self, window: int) -> None:
        """Allow ``window`` untold batches (the executor's workers per agent batch); a change is
        checkpointed at once (whatever ``checkpoint_every``, and before the first trial too) so that a
        later resume replays with the window the trials had."""
        if window != self._window:
            self._window = window
            if self._rebuilt:
                self.checkpoint()

    # ----------------------------------------------------------- checkpoints
    def checkpoint(self) -> None:
        """Store the agent's state (and a stateful evaluator's), the slot counter, the window and
        the proposals asked but not yet told."""
        outstanding = [
            {"start": b.start, "proposals": [{"candidate": p.candidate.to_dict(), "info": p.info} for p in b.proposals]}
            for b in self._batches
        ]
        payload: dict[str, Any] = {"agent": self.agent.state_dict(), "next_slot": self._next_slot,
                                   "told": self._told, "window": self._window, "outstanding": outstanding}
        if _is_stateful(self.evaluator):
            payload["evaluator"] = self.evaluator.state_dict()  # type: ignore[union-attr]
        self.store.save_checkpoint(self.record.id, self._told, codec.encode(payload))
        self._last_checkpoint = self._told

    def init_from(self, source: Study) -> None:
        """Start this (new) study's agent from what ``source``'s agent learned (policy transfer).

        Both studies must search the same space with the same agent. The transferred state is
        stored at once as this study's first checkpoint, so a crash cannot lose it.
        """
        if not isinstance(source, Study):
            raise ConfigError(f"init_from takes the source Study (load_study(name, storage)), got "
                              f"{type(source).__name__} {source!r:.80}")
        self.claim()
        if self._next_slot or self._finished:
            raise ConfigError(f"study {self.name!r} has already started: transfer only into a new study")
        transfer_policy(source, self.space, self.record.agent, self.agent)
        self._save_settings(init_from=source.name)
        self.checkpoint()

    def rebuild(self) -> None:
        """On first use: restore the newest checkpoint and tell the agent every finished trial
        after it. Needs no lease: a transfer source is only read."""
        if self._rebuilt:
            return
        self._replaying = True
        try:
            self._restore()
        finally:
            self._replaying = False
        self._rebuilt = True

    def _restore(self) -> None:
        rows = self.store.trials(self.record.id)
        self._rows_seen = len(rows)
        stored = [t for t in rows if not t.orphaned and t.state.finished]
        by_slot = {t.slot: t for t in stored}
        self._logged = {slot for slot, _ in self.store.diagnostics(self.record.id)}
        payload = self._newest_readable_checkpoint()
        if payload is not None:
            self._next_slot = payload["next_slot"]
            self._told = self._last_checkpoint = payload["told"]
            self._window = int(payload.get("window", 1))
            self._batches.extend(payload["batches"])
        for t in stored:
            self._count(t)
        if not isinstance(self.agent, WeightSharingAgent):  # its driver resumes from the checkpoint alone
            self._replay(by_slot)

    def _newest_readable_checkpoint(self) -> dict[str, Any] | None:
        """Load the newest checkpoint that decodes and restores (agent, and a stateful evaluator);
        each unreadable newer one is skipped with a warning. ``None``: start from the seed."""
        stored = self.store.checkpoints(self.record.id)
        if not stored:
            return None
        # copies: a state dict may share its arrays with the object, which a failed load half-overwrites
        fresh_agent = copy.deepcopy(self.agent.state_dict())
        stateful = _is_stateful(self.evaluator)
        fresh_evaluator = copy.deepcopy(self.evaluator.state_dict()) if stateful else None  # type: ignore[union-attr]
        unreadable: list[str] = []
        for slot, blob in stored:
            try:
                payload = codec.decode(blob)
                self.agent.load_state_dict(payload["agent"])
                if "evaluator" in payload and stateful:
                    self.evaluator.load_state_dict(payload["evaluator"])  # type: ignore[union-attr]
                batches = [_Batch(int(b["start"]), [Proposal(self.space.candidate(p["candidate"]), dict(p["info"]))
                                                     for p in b["proposals"]]) for b in payload["outstanding"]]
                payload = {**payload, "next_slot": int(payload["next_slot"]), "told": int(payload["told"]),
                           "batches": batches}
            except Exception as exc:  # noqa: BLE001  (any damage: the next older checkpoint may be fine)
                unreadable.append(f"the one after {slot} told trials ({type(exc).__name__}: {exc})")
                self.agent.load_state_dict(copy.deepcopy(fresh_agent))
                if stateful:
                    self.evaluator.load_state_dict(copy.deepcopy(fresh_evaluator))  # type: ignore[union-attr]
                continue
            if unreadable:
                warnings.warn(f"study {self.name!r}: unreadable checkpoint(s): {'; '.join(unreadable)}; resuming "
                              f"from the newest readable one, after {slot} told trials", RuntimeWarning,
                              stacklevel=5)
            return payload
        if unreadable:
            warnings.warn(f"study {self.name!r}: unreadable checkpoint(s): {'; '.join(unreadable)}; none is readable: "
                          "replaying every stored trial from the seed", RuntimeWarning, stacklevel=5)
        return None

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
                                  RuntimeWarning, stacklevel=4)
                    batch.proposals[i] = Proposal(self.space.candidate(trial.candidate), dict(trial.info))
                batch.results[i] = trial.reward

        for batch in self._batches:
            fill(batch)
        self._flush()
        last_slot = max(by_slot, default=-1)
        while self._next_slot <= last_slot and len(self._batches) < self._window:
            fill(self._new_batch())
            self._flush()


STUDY_SETTINGS = frozenset({"n_trials", "budget_seconds", "planned_trials", "checkpoint_every", "init_from",
                            "data_fingerprint", "threads"})
"""The settings a study keeps itself (what ``resume`` and the status read)."""

MAX_TRIALS = 10**9
"""Most trials a study may aim at."""


def check_limits(n_trials: Any, budget_seconds: Any) -> tuple[int | None, float | None]:
    """Stop conditions as ``(int or None, float or None)``, or a :class:`ConfigError` naming the bad one."""
    if n_trials is not None and (isinstance(n_trials, bool) or not isinstance(n_trials, numbers.Integral)
                                 or not 0 <= n_trials <= MAX_TRIALS):
        raise ConfigError(f"n_trials must be an integer from 0 to {MAX_TRIALS:,}, got {n_trials!r}")
    if budget_seconds is not None and (isinstance(budget_seconds, bool) or not isinstance(budget_seconds, numbers.Real)
                                       or not math.isfinite(budget_seconds) or not budget_seconds > 0):
        raise ConfigError(f"budget_seconds must be a positive finite number, got {budget_seconds!r}")
    return (None if n_trials is None else int(n_trials)), (None if budget_seconds is None else float(budget_seconds))


def _let_go(store: Store, study_id: int, holder: str, heartbeat: Heartbeat) -> None:
    """What :meth:`Study.close` does, for a Study collected without it (errors are ignored: nobody hears them)."""
    heartbeat.stop()
    try:
        store.flush()
        store.release_lease(study_id, holder)
    except Exception:  # noqa: BLE001 - the lease then expires on its own
        pass


def _told_state(state: Any) -> TrialState | None:
    """``state`` of :meth:`Study.tell` as a finished :class:`TrialState` (names are accepted)."""
    if state is None:
        return None
    try:
        state = TrialState(state)
    except ValueError:
        raise ConfigError(f"state must be one of COMPLETE, FAIL, PRUNED, got {state!r}") from None
    if not state.finished:
        raise ConfigError("state RUNNING cannot be told: a trial is told COMPLETE, FAIL or PRUNED")
    return state


def _counts(trial: Trial) -> bool:
    return trial.state.finished and not trial.orphaned and trial.repeat_of is None


def _is_stateful(evaluator: Any) -> bool:
    return callable(getattr(evaluator, "state_dict", None)) and callable(getattr(evaluator, "load_state_dict", None))


def _checked_measurement(m: Measurement) -> tuple[dict[str, float], float, dict[str, Any], str | None]:
    """Metrics as floats, the cost and the info, or the reason they cannot be stored."""
    metrics: dict[str, float] = {}
    if not isinstance(m.metrics, Mapping) or not isinstance(m.info, Mapping):
        wrong = "metrics" if not isinstance(m.metrics, Mapping) else "info"
        return {}, 0.0, {}, (f"the evaluator's Measurement has {wrong} {type(getattr(m, wrong)).__name__}, "
                             "not a dict")
    for name, value in m.metrics.items():
        if not isinstance(name, str) or not name:
            return {}, 0.0, {}, f"the evaluator reported a metric named {name!r}: metric names are non-empty strings"
        if type(value) is not float and not _is_reward_number(value):
            return {}, 0.0, {}, (f"the evaluator reported metric {name!r} as {type(value).__name__} "
                                 f"{_short(value)}, not a number that fits a float")
        metrics[name] = float(value)
    cost = m.cost_seconds
    if type(cost) is not float and not _is_reward_number(cost):
        return metrics, 0.0, {}, f"the evaluator reported cost_seconds {_short(cost)}, not a number that fits a float"
    if not (math.isfinite(cost) and cost >= 0):
        return metrics, 0.0, {}, f"the evaluator reported cost_seconds {cost!r}, not a finite number >= 0"
    return metrics, float(cost), dict(m.info), None


def _short(value: object, limit: int = 60) -> str:
    """``repr(value)``, cut to ``limit`` characters (10**400 has 401 digits)."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}..."


def _is_reward_number(value: object) -> bool:
    """A real number (not a bool) that converts to a float: ``10**400`` does not."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return False
    try:
        float(value)
    except OverflowError:
        return False
    return True


__all__ = ["Study", "check_limits", "DEFAULT_CHECKPOINT_EVERY", "ORPHAN_REASON", "evaluation_seed", "best_of",
           "is_better"]
