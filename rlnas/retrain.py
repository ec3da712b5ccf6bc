"""After a search: the architectures it answers with, and training them from scratch.

A weight-sharing search (TuNAS, ENAS) answers with its controller's most likely architecture
(the *mode*, also recorded as its trials) and, as ENAS reports too, with the best of ``n``
architectures *sampled* from the final controller, ranked by their accuracy with the final
shared weights on the whole validation split. Any other study answers with its best trial (or
a chosen one). :func:`retrain` trains an answer from scratch with the ``train`` evaluator on the
study's data set; by default the network is built as the search built it (the supernet's
widths, via the search evaluator's ``resolved_model_kwargs``), so the numbers are comparable.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from rlnas.agents.base import WeightSharingAgent
from rlnas.errors import ConfigError, RlnasError
from rlnas.evaluators.base import Measurement
from rlnas.spaces.base import Candidate, Space
from rlnas.trial import TrialState

DATA_OPTIONS = ("dataset", "data_root", "split_seed", "valid_fraction", "dataset_options")
"""Options of the search evaluator that the retraining copies: the same data and the same split."""


@dataclass(frozen=True)
class Answer:
    """An architecture a search answers with."""

    source: str
    """How it was chosen: ``"mode"``, ``"sampled"``, ``"best trial"`` or ``"trial N"``."""
    candidate: Candidate
    """The architecture."""
    key: str
    """Its key in the study's space."""
    metrics: dict[str, float] = field(default_factory=dict)
    """What the search measured (the shared-weight accuracy on the whole validation split, or the trial's metrics)."""


MAX_SAMPLES = 10_000
"""Most architectures sampled from a controller for retraining (each is evaluated on the validation split)."""


def search_answers(study: Any, samples: int = 0, trial: int | None = None) -> list[Answer]:
    """The study's answers: for a weight-sharing study the mode then the ``samples`` sampled
    architectures (distinct, best first), from its newest checkpoint; for any other study its
    best trial, or trial number ``trial``."""
    if isinstance(samples, bool) or not isinstance(samples, int) or not 0 <= samples <= MAX_SAMPLES:
        raise ConfigError(f"samples must be an integer from 0 to {MAX_SAMPLES:,}, got {samples!r}")
    if trial is not None or not isinstance(study.agent, WeightSharingAgent):
        if samples:
            raise ConfigError("sampled answers need a weight-sharing study (and no trial number)")
        return [_trial_answer(study, trial)]
    study.rebuild()
    if study.store.latest_checkpoint(study.record.id) is None:
        raise RlnasError(f"study {study.name!r} has no checkpoint yet: run the search first")
    evaluator, space = study.evaluator, study.space
    if evaluator is None:
        raise ConfigError(f"study {study.name!r}: its evaluator is not available here")
    mode = study.agent.mode()
    answers = [Answer("mode", mode, space.key(mode), _mode_metrics(study, mode, evaluator))]
    sampled: dict[str, Candidate] = {}
    for proposal in study.agent.ask(samples) if samples else []:
        sampled.setdefault(space.key(proposal.candidate), proposal.candidate)
    ranked = [Answer("sampled", c, k, _metrics(evaluator.evaluate(c, split="valid"))) for k, c in sampled.items()]
    metric = getattr(evaluator, "quality_metric", None) or next(iter(answers[0].metrics))
    return answers + sorted(ranked, key=lambda a: -a.metrics[metric])


def _mode_metrics(study: Any, mode: Candidate, evaluator: Any) -> dict[str, float]:
    """What the search measured for its final mode: the newest recorded trial when that is the mode (it
    was measured with the newest checkpoint's weights, on the search's threads), else measured now."""
    recorded = [t for t in study.trials if t.state is TrialState.COMPLETE]
    newest = max(recorded, key=lambda t: t.slot, default=None)
    checkpoint = study.store.latest_checkpoint(study.record.id)
    if (newest is not None and checkpoint is not None and checkpoint[0] == newest.slot + 1  # taken right after it
            and newest.key == study.space.key(mode) and newest.metrics):
        return {k: float(v) for k, v in newest.metrics.items()}
    return _metrics(evaluator.evaluate(mode, split="valid"))


def _trial_answer(study: Any, number: int | None) -> Answer:
    from rlnas.study import best_of

    complete = [t for t in study.trials if t.state is TrialState.COMPLETE]
    if number is None:
        chosen, source = best_of(complete), "best trial"
        if chosen is None:
            raise RlnasError(f"study {study.name!r} has no completed trial yet")
    else:
        chosen, source = next((t for t in complete if t.number == number), None), f"trial {number}"
        if chosen is None:
            raise RlnasError(f"study {study.name!r} has no COMPLETE trial {number}")
    candidate = study.space.candidate(chosen.candidate)
    return Answer(source, candidate, chosen.key, dict(chosen.metrics))


def _metrics(measurement: Measurement) -> dict[str, float]:
    return {k: float(v) for k, v in measurement.metrics.items()}


def retrain_options(study: Any, epochs: float, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """``train`` evaluator options that retrain the study's answers: its data (and split), the
    network as the search built it, ``epochs``; ``overrides`` win."""
    spec = dict(study.record.evaluator or {})
    overrides = dict(overrides or {})
    if spec.get("name") in TABLES:
        check_table_retrain(study.name, spec, overrides)
        spec = {"dataset": "cifar10"} if spec.get("dataset", "cifar10") == "cifar10" else {}  # not a table's name
    options: dict[str, Any] = {k: spec[k] for k in DATA_OPTIONS if spec.get(k) is not None}
    resolve = getattr(study.evaluator, "resolved_model_kwargs", None)
    if callable(resolve):
        options["model_kwargs"] = {k: v for k, v in resolve().items() if k not in ("num_classes", "in_channels")}
    return options | {"epochs": epochs} | overrides


TABLES = {"nb201": "NAS-Bench-201", "nbgraph": "NAS-Bench-Graph"}
"""Tabular evaluators: their studies trained nothing here, and their data sets are tables."""


def check_table_retrain(name: str, spec: Mapping[str, Any], overrides: Mapping[str, Any]) -> None:
    """:class:`ConfigError` unless the train evaluator options ``overrides`` say which images a
    study scored by a table is retrained on (CIFAR-10 needs its python batches)."""
    table = TABLES[str(spec["name"])]
    if spec["name"] == "nbgraph":
        raise ConfigError(f"study {name!r} searched {table} cells, graph networks rlnas does not build: "
                          "there is nothing to retrain")
    dataset = str(spec.get("dataset", "cifar10"))
    if "dataset" in overrides or (dataset == "cifar10" and "data_root" in overrides):
        return
    if dataset == "cifar10":
        raise ConfigError(f"study {name!r} was scored by the {table} table, which holds no images: retraining on "
                          "CIFAR-10 needs its python batches (--eval-option data_root=PATH), or choose another data "
                          "set (--eval-option dataset=digits)")
    raise ConfigError(f"study {name!r} was scored by the {table} table on {dataset}, for which rlnas has no loader: "
                      "retrain on another data set (--eval-option dataset=cifar10 --eval-option data_root=PATH, or "
                      "dataset=digits, mnist5k, imagefolder)")


def retrain(space: Space, candidate: Candidate, options: Mapping[str, Any], seed: int = 0,
            threads: int | None = None, device: str = "cpu") -> Measurement:
    """Train ``candidate`` from scratch with the ``train`` evaluator built with ``options``."""
    from rlnas.evaluators import EVALUATORS

    evaluator = EVALUATORS.create("train", space=space, **options, threads=threads, device=device)
    return evaluator.evaluate(candidate, seed=seed)


__all__ = ["Answer", "search_answers", "retrain_options", "retrain", "DATA_OPTIONS"]
