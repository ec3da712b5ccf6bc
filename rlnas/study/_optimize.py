"""The search loop: ask while a worker is free, hand the evaluation to the executor, tell outcomes."""
from __future__ import annotations

import math
import warnings
from typing import TYPE_CHECKING, Any

from rlnas.errors import ConfigError, RlnasError, SpaceExhausted
from rlnas.evaluators.base import Measurement
from rlnas.executors import Outcome, Task, create_executor
from rlnas.executors.base import CONFIG_ERROR, OK, TIMEOUT
from rlnas.study.data_check import check_same_data
from rlnas.study.lease import LeaseLost
from rlnas.study.spec import RunOptions
from rlnas.trial import Trial, TrialState

if TYPE_CHECKING:
    from rlnas.progress import SearchProgress
    from rlnas.study._study import Study


def run_search(study: Study, n_trials: int | None, budget_seconds: float | None, options: RunOptions) -> None:
    """Drive ``study`` until its limits are reached (see :meth:`Study.optimize`)."""
    from rlnas.agents.base import WeightSharingAgent
    from rlnas.study._study import evaluation_seed

    if study.evaluator is None:
        raise ConfigError(study._evaluator_error or f"study {study.name!r} has no evaluator to optimize with")
    if isinstance(study.agent, WeightSharingAgent):  # before the study is claimed or its limits stored
        from rlnas.study._weight_sharing import check_weight_sharing_run, within_plan

        check_weight_sharing_run(study.record.agent, study.evaluator, options, reuse_repeats=study.record.reuse_repeats)
        n_trials = within_plan(study.evaluator, n_trials)  # the stored target is what the epochs record
    prepare = getattr(study.evaluator, "prepare", None)
    if callable(prepare):  # a resumed study's data may have gone: one error, not a failed trial per try
        prepare()
    fingerprint = check_same_data(study.name, study.record.settings, study.evaluator)
    study.claim(options)
    try:
        study.store_limits(n_trials, budget_seconds)
        if fingerprint is not None and "data_fingerprint" not in study.record.settings:  # a study from before digests
            study._save_settings(data_fingerprint=fingerprint)
        study._save_settings(threads=options.threads)  # what `rlnas resume` continues with: the same results
        if isinstance(study.agent, WeightSharingAgent):  # the most it can record: reached, it is finished
            from rlnas.study._weight_sharing import planned_trials

            study._save_settings(planned_trials=planned_trials(study))
    except BaseException:
        study.close()
        raise
    if isinstance(study.agent, WeightSharingAgent):
        from rlnas.study._weight_sharing import run_weight_sharing

        try:
            run_weight_sharing(study, n_trials, budget_seconds, options)
        finally:
            study.close()
        return
    study.set_window(untold_window(options.workers, study.agent.batch_size))
    study._callbacks = tuple(options.callbacks)
    bar = _progress_bar(study, n_trials, budget_seconds, options.executor == "inline") if options.progress else None
    executor = create_executor(options)
    stop: Exception | None = None
    exhausted: SpaceExhausted | None = None
    try:
        executor.start(study.evaluator)
        while stop is None:
            _check_lease(study)
            while (exhausted is None and executor.running() < executor.capacity
                   and not study.limit_reached(n_trials, budget_seconds)):
                try:
                    trial = study._next_trial(overflow=False)
                except SpaceExhausted as exc:  # the running trials still finish
                    exhausted = exc
                    break
                if trial is None:
                    break
                candidate = study.proposal_of(trial).candidate
                executor.submit(Task(trial.number, candidate, evaluation_seed(study.seed, trial.slot),
                                     budget_of(study.evaluator, trial.slot)))
            if executor.running() == 0:
                break
            for outcome in executor.wait():
                finished = tell_outcome(study, outcome)
                if outcome.kind == CONFIG_ERROR:
                    stop = ConfigError(outcome.error or "the evaluator cannot work")
                elif (n_trials is None and budget_seconds is not None and finished.state is TrialState.COMPLETE
                      and not finished.cost_seconds):
                    stop = ConfigError(f"the evaluator reported no evaluation time for trial {finished.number} "
                                       "(cost_seconds 0): a budget of seconds counts that time and would never "
                                       "run out; report Measurement(..., cost_seconds=...) or give a number of trials")
                for callback in study._callbacks:
                    callback(study, finished)
                if bar is not None:
                    bar(study, finished)
        if stop is not None:
            raise stop
        if exhausted is not None:  # all it can do is done: finished, not interrupted
            study._save_settings(planned_trials=study._finished)
            warnings.warn(f"{exhausted}: the search ends with {study._finished} trials", stacklevel=3)
    except BaseException as exc:
        why = "was interrupted" if isinstance(exc, KeyboardInterrupt) else f"stopped ({type(exc).__name__})"
        # what stopped the search is what the caller hears: a store that fails now as well (a connection
        # cut mid-query by Ctrl-C) does not replace it; the next driver marks these trials orphaned itself
        if not isinstance(exc, LeaseLost):  # else the study is another driver's now: this one writes nothing
            _quietly(study.abandon_running, f"orphaned: the search {why} before this trial finished")
        _quietly(executor.close)
        _end_run(study, bar)
        _quietly(study.close)
        raise
    executor.close()
    _end_run(study, bar)
    study.close()


def _end_run(study: Study, bar: SearchProgress | None) -> None:
    study._callbacks = ()
    if bar is not None:
        bar.stop()


def _quietly(action: Any, *args: Any) -> None:
    """Run ``action`` while another exception is on its way out; its own errors give way to that one."""
    try:
        action(*args)
    except Exception:  # noqa: BLE001 - the exception being raised already says what went wrong
        pass


def untold_window(workers: int, batch_size: int) -> int:
    """How many agent batches may be asked before the oldest is told.

    Batch agents get one batch per ``batch_size`` workers. An asynchronous agent (batches of one)
    on several workers gets ``2 * workers``: with only ``workers`` a worker whose trial finished
    would wait for an older, slower trial to be told, so the window sets how stale the results an
    asynchronous agent sees may be (at most ``2 * workers - 1`` trials), not how busy workers are.
    """
    if batch_size == 1 and workers > 1:
        return 2 * workers
    return max(1, workers // batch_size)


def budget_of(evaluator: Any, slot: int) -> float | None:
    """The evaluation budget of the trial in ``slot``: the evaluator's ``budget_for(slot)`` when it has
    one (a budget that grows over the search, e.g. the optimizer evaluator's ``schedule``), else ``None``."""
    budget_for = getattr(evaluator, "budget_for", None)
    return budget_for(slot) if callable(budget_for) else None


def tell_outcome(study: Study, outcome: Outcome) -> Trial:
    """Store what the executor reports for a trial (a timeout or a dead worker is a FAIL with its reason).

    An evaluator that returns something else than a :class:`Measurement` cannot work at all: the
    trial is stored FAIL saying what it returned, and a :class:`ConfigError` stops the search.
    """
    number = outcome.task.number
    if outcome.kind == OK:
        if not isinstance(outcome.measurement, Measurement):
            got = outcome.measurement
            problem = (f"the evaluator returned {type(got).__name__} {got!r:.60}, not a Measurement "
                       "(rlnas.evaluators.Measurement(metrics, cost_seconds, info))")
            study.tell(number, None, state=TrialState.FAIL, error=problem)
            raise ConfigError(problem)
        return study.tell(number, outcome.measurement)
    error = outcome.error or outcome.kind
    if outcome.kind == TIMEOUT and not error.startswith("timeout"):
        error = f"timeout: {error}"
    # the time a failure took counts, or a budget would never run out while every trial fails
    seconds = outcome.seconds if math.isfinite(outcome.seconds) and outcome.seconds > 0 else 0.0
    return study.tell(number, None, state=TrialState.FAIL, error=error, cost_seconds=seconds)


def _check_lease(study: Study) -> None:
    if study._heartbeat is not None:
        study._heartbeat.confirm(study.name)  # raises LeaseLost once another driver took the study over


def _progress_bar(study: Study, n_trials: int | None, budget_seconds: float | None,
                  epoch_hook: bool) -> SearchProgress:
    from rlnas.progress import SearchProgress

    bar = SearchProgress(study, n_trials, budget_seconds, epoch_hook=epoch_hook)
    bar.start()
    return bar


__all__ = ["run_search", "tell_outcome", "RlnasError"]
