"""The weight-sharing (one-shot) driver: one supernet trains while the controller learns.

Rounds alternate shared-weight training and controller updates as the agent plans them
(TuNAS: one step of each; ENAS: an epoch of shared training, then a controller phase). Every
``record_every`` shared steps the agent's most likely architecture is evaluated on the whole
validation split and stored as a trial (slot = record number), then the agent and the
evaluator (weights, optimizer, data order, RNG) are checkpointed together. A driver killed at
any point resumes from the newest checkpoint; the segment after it runs again and, the CPU
being deterministic, records the same trial.

The evaluator must provide ``steps_per_epoch``, ``total_steps``, ``step`` (shared steps taken),
``train_step(candidate, *, step, total_steps)``, ``evaluate(candidate, *, split, seed)`` with
``split`` ``"valid_batch"`` (one validation minibatch, the RL reward) or ``"valid"`` (the whole
split), ``state_dict`` / ``load_state_dict``, and may set ``record_every``; see :mod:`rlnas.evaluators.weight_sharing`.
"""
from __future__ import annotations

import math
import time
from collections import Counter
from typing import TYPE_CHECKING, Any

from rlnas.errors import ConfigError
from rlnas.evaluators.base import Measurement
from rlnas.rewards import RewardError
from rlnas.study.spec import RunOptions
from rlnas.trial import TrialState

if TYPE_CHECKING:
    from rlnas.study._study import Study

REQUIRED = ("steps_per_epoch", "total_steps", "step", "train_step", "evaluate", "state_dict", "load_state_dict")


def record_every(study: Study) -> int:
    """Shared steps between recorded trials (the evaluator's ``record_every``; default one epoch)."""
    evaluator = study.evaluator
    return getattr(evaluator, "record_every", None) or evaluator.steps_per_epoch  # type: ignore[union-attr]


def planned_trials(study: Study) -> int:
    """How many trials a whole search records: one per ``record_every`` steps, the last at the end."""
    return planned_trials_of(study.evaluator)


def planned_trials_of(evaluator: Any) -> int:
    """:func:`planned_trials` of a search with ``evaluator`` (a weight-sharing one)."""
    every = getattr(evaluator, "record_every", None) or evaluator.steps_per_epoch
    return math.ceil(evaluator.total_steps / every)


def within_plan(evaluator: Any, n_trials: int | None) -> int | None:
    """``n_trials``, at most the trials a weight-sharing search with ``evaluator`` records over its epochs
    (asking for more runs the whole search, which then ends finished, not short of its target)."""
    return n_trials if n_trials is None else min(n_trials, planned_trials_of(evaluator))


def check_weight_sharing_run(agent: str, evaluator: Any, options: RunOptions | None = None, *,
                             reuse_repeats: bool = False, checkpoint_every: int | None = None) -> None:
    """Refuse, before anything is stored or claimed, what a weight-sharing search cannot do: another
    evaluator, another executor or a trial timeout (it is one training job whose trials are records of
    the controller's choice), answering repeats from the store, or another checkpoint period (it
    checkpoints at every recorded trial)."""
    from rlnas.study._factories import check_weight_sharing_evaluator
    from rlnas.study._study import DEFAULT_CHECKPOINT_EVERY

    check_weight_sharing_evaluator(agent, evaluator)
    if options is not None and options.executor != "inline":
        raise ConfigError("a weight-sharing search is one training job: it runs inline (scale it with the "
                          "device, not with --workers)")
    if options is not None and options.trial_timeout is not None:
        raise ConfigError("--trial-timeout does not apply to a weight-sharing search: its trials are records of "
                          "one training job (stop it with --budget-seconds)")
    if reuse_repeats:
        raise ConfigError("--reuse-repeats does not apply to a weight-sharing search: its trials record the "
                          "controller's choice as the shared weights train, not evaluations to spare")
    if checkpoint_every not in (None, DEFAULT_CHECKPOINT_EVERY):
        raise ConfigError("--checkpoint-every does not apply to a weight-sharing search: it checkpoints at every "
                          "recorded trial")


def run_weight_sharing(study: Study, n_trials: int | None, budget_seconds: float | None,
                       options: RunOptions) -> None:
    """Drive a weight-sharing study (see the module docstring); :func:`check_weight_sharing_run` has passed."""
    evaluator = study.evaluator
    every = record_every(study)
    total = evaluator.total_steps
    stored = {t.slot: t for t in study.trials if t.state.finished and not t.orphaned}
    # a resumed search replays the rounds after its newest checkpoint: their diagnostics rows are stored
    # already (several per step for ENAS), so the replay logs only rows beyond those
    diagnostics = _DiagnosticsLog(study)
    bar = None
    if options.progress:
        from rlnas.progress import SearchProgress

        bar = SearchProgress(study, n_trials, budget_seconds, epoch_hook=False)
        bar.start()
    try:
        while evaluator.step < total and not study.limit_reached(n_trials, budget_seconds):
            started = time.perf_counter()
            slot = evaluator.step // every
            target = min(total, (slot + 1) * every)
            while evaluator.step < target:
                _check_lease(study)
                _round(study, target, total, diagnostics)
            seconds = time.perf_counter() - started
            trial = stored.get(slot)
            if trial is None:  # a stored one was counted when the study was rebuilt
                trial = _record(study, slot, seconds)
                study._count(trial)
            study._next_slot = study._told = slot + 1
            study.checkpoint()
            for callback in options.callbacks:
                callback(study, trial)
            if bar is not None:
                bar(study, trial)
    finally:
        if bar is not None:
            bar.stop()


class _DiagnosticsLog:
    """Logs an update's diagnostics at a shared step, except the rows that step already has stored."""

    def __init__(self, study: Study) -> None:
        self.study = study
        self.stored = Counter(slot for slot, _ in study.store.diagnostics(study.record.id))
        self.seen: Counter[int] = Counter()

    def log(self, step: int, values: dict[str, float]) -> None:
        self.seen[step] += 1
        if self.seen[step] > self.stored[step]:
            self.study.store.log_diagnostics(self.study.record.id, step, values)


def _round(study: Study, target: int, total: int, diagnostics: _DiagnosticsLog) -> None:
    evaluator, agent = study.evaluator, study.agent
    planned, updates = agent.plan_round(evaluator.step, total, evaluator.steps_per_epoch)  # type: ignore[attr-defined]
    shared = max(0, min(int(planned), target - evaluator.step))
    if shared < planned:  # a record falls inside the round: its controller updates come at the round's end
        updates = 0
    for child in agent.train_children(shared) if shared else []:  # type: ignore[attr-defined]
        evaluator.train_step(child, step=evaluator.step, total_steps=total)
    for _ in range(int(updates)):
        proposals = agent.ask(agent.batch_size)
        results = [(p, _reward(study, evaluator.evaluate(p.candidate, split="valid_batch"))) for p in proposals]
        values = agent.tell(results)
        if values:
            diagnostics.log(evaluator.step, values)
    if shared == 0 and updates == 0:
        raise ConfigError(f"agent {study.record.agent!r} planned an empty round at step {evaluator.step}")


def _reward(study: Study, measurement: Measurement) -> float | None:
    try:
        return study.reward(measurement)
    except RewardError:
        return None


def _record(study: Study, slot: int, seconds: float) -> Any:
    """Evaluate the agent's current answer on the whole validation split and store it as a trial."""
    evaluator, agent = study.evaluator, study.agent
    candidate = agent.mode()  # type: ignore[attr-defined]
    measurement = evaluator.evaluate(candidate, split="valid")
    trial = study.store.add_trial(study.record.id, slot, study.space.key(candidate), candidate.to_dict(),
                                  {"step": evaluator.step})
    metrics = {k: float(v) for k, v in measurement.metrics.items()}
    try:
        reward = study.reward(measurement)
        state, error = TrialState.COMPLETE, None
    except RewardError as exc:
        reward, state, error = None, TrialState.FAIL, str(exc)
    return study.store.finish_trial(study.record.id, trial.number, state, reward=reward, metrics=metrics,
                                    cost_seconds=seconds, error=error,
                                    eval_info=dict(measurement.info) | {"step": evaluator.step})


def _check_lease(study: Study) -> None:
    from rlnas.study._optimize import _check_lease as check

    check(study)


__all__ = ["run_weight_sharing", "record_every", "planned_trials"]
