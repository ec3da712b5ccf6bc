"""Where a study stands, read from the store: status, driver, target, counts, best (for ls / show / --json)."""
from __future__ import annotations

from typing import Any

from rlnas.trial import Trial, TrialState

STATUSES = ("new", "running", "interrupted", "finished", "damaged")
"""``new``: no trial yet; ``running``: a live driver holds the lease; ``finished``: the stored target
(trials or budget) is reached; ``interrupted``: neither (stopped, crashed or killed: ``rlnas resume``);
``damaged`` (``ls`` only): the stored definition cannot be read (``rlnas rm`` deletes it)."""


def counts(trial: Trial) -> bool:
    """Whether ``trial`` counts towards the target (finished, not orphaned, not a repeat answered from the store)."""
    return trial.state.finished and not trial.orphaned and getattr(trial, "repeat_of", None) is None


def target_text(settings: dict[str, Any]) -> str:
    """``'300 trials'``, ``'20000 s'``, both, or ``'-'``."""
    parts = []
    if settings.get("n_trials") is not None:
        parts.append(f"{settings['n_trials']} trials")
    if settings.get("budget_seconds") is not None:
        parts.append(f"{settings['budget_seconds']:g} s")
    return " or ".join(parts) or "-"


def live_driver(store: Any, study_id: int) -> str | None:
    """Who drives the study now (``pid 123 on host-a since ...``): the holder of its lease unless that is
    stale; ``None`` when nobody does. Read by the study's id, so a damaged definition does not hide it."""
    from rlnas.study.lease import is_stale
    from rlnas.study.spec import RunOptions

    lease = store.get_lease(study_id)
    return None if lease is None or is_stale(lease, RunOptions().lease_seconds) else lease.describe()


def study_status(store: Any, record: Any, trials: list[Trial] | None = None) -> dict[str, Any]:
    """A JSON-able summary of the study's state (see :data:`STATUSES`)."""
    from rlnas.spaces.base import count_networks
    from rlnas.study import found_trial
    from rlnas.study._factories import registered_space

    # the lease before the trials: a search that ends between the two reads shows as running, not interrupted
    driver = live_driver(store, record.id)
    read_before_lease = trials is not None
    trials = store.trials(record.id) if trials is None else trials
    counted = [t for t in trials if counts(t)]
    spent = sum(t.cost_seconds for t in counted)
    live = driver is not None
    n_trials, budget = record.settings.get("n_trials"), record.settings.get("budget_seconds")
    planned = record.settings.get("planned_trials")  # a weight-sharing search ends with its epochs, budget or not
    reached = ((n_trials is not None and len(counted) >= n_trials) or (budget is not None and spent >= budget)
               or (planned is not None and len(counted) >= planned))
    status = "running" if live else "finished" if reached else "new" if not trials else "interrupted"
    if status in ("new", "interrupted") and read_before_lease:  # the caller's trials: the search may have ended since
        return study_status(store, record)
    best = found_trial([t for t in trials if t.state is TrialState.COMPLETE], record.agent)  # weight sharing: answer
    return {
        "name": record.name, "status": status, "driver": driver,
        "target": {"n_trials": n_trials, "budget_seconds": budget}, "finished": len(counted),
        "complete": sum(t.state is TrialState.COMPLETE for t in trials),
        "failed": sum(t.state is TrialState.FAIL and not t.orphaned for t in trials),
        "running": sum(t.state is TrialState.RUNNING for t in trials) if live else 0,
        "abandoned": 0 if live else sum(t.state is TrialState.RUNNING for t in trials),
        "spent_seconds": spent, "distinct_architectures": count_networks(registered_space(record), counted),
        "best": None if best is None else {"trial": best.number, "key": best.key, "reward": best.reward,
                                           "metrics": dict(best.metrics)},
        "space": record.space_name, "agent": record.agent, "evaluator": dict(record.evaluator),
        "seed": record.seed, "created": record.created_at.isoformat(sep=" ", timespec="seconds")
        if record.created_at else None,
    }


def record_json(record: Any) -> dict[str, Any]:
    """The study's stored definition as JSON-able values."""
    return {"name": record.name, "space": record.space_name, "fingerprint": record.fingerprint,
            "agent": record.agent, "agent_config": record.agent_config, "evaluator": record.evaluator,
            "reward": record.reward, "seed": record.seed, "reuse_repeats": getattr(record, "reuse_repeats", False),
            "settings": record.settings, "version": record.version}


def trial_json(trial: Trial) -> dict[str, Any]:
    """One trial as JSON-able values."""
    return {"number": trial.number, "slot": trial.slot, "state": trial.state.value, "key": trial.key,
            "candidate": trial.candidate, "reward": trial.reward, "metrics": dict(trial.metrics),
            "cost_seconds": trial.cost_seconds, "error": trial.error, "orphaned": trial.orphaned,
            "repeat_of": getattr(trial, "repeat_of", None),
            "started_at": trial.started_at.isoformat() if trial.started_at else None,
            "finished_at": trial.finished_at.isoformat() if trial.finished_at else None}
