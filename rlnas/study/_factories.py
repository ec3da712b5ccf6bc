"""``create_study`` / ``load_study``: the only place that decides whether a stored study may be reopened."""
from __future__ import annotations

import inspect
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from rlnas.agents import AGENTS, Agent, Proposal, Result, agent_class, create_agent
from rlnas.agents.base import WeightSharingAgent
from rlnas.agents.fixed import FixedAgent
from rlnas.checks import check_device
from rlnas.errors import ConfigError, DuplicateStudy, StorageError, first_line
from rlnas.evaluators import EVALUATORS, Evaluator, build_evaluator
from rlnas.evaluators.base import check_reward_metrics
from rlnas.rewards import create_reward
from rlnas.spaces import SPACES, Space, create_space
from rlnas.store import Store, StudyRecord, open_store
from rlnas.store.base import as_stored
from rlnas.study._study import DEFAULT_CHECKPOINT_EVERY, Study, check_limits
from rlnas.study.data_check import data_fingerprint_of
from rlnas.study.spec import StudySpec, check_seed, evaluator_identity


def resolve_space(space: str | Space) -> Space:
    """A space object from a registered name or a :class:`Space`."""
    if isinstance(space, Space):
        return space
    if not isinstance(space, str):
        raise ConfigError(f"space must be a registered name or a Space, got {type(space).__name__} {space!r}")
    return create_space(space)


def evaluator_spec(evaluator: Evaluator | None) -> dict[str, Any]:
    """The evaluator's stored spec (``spec()`` without run options), ``{}`` for none."""
    if evaluator is None:
        return {}
    spec = getattr(evaluator, "spec", None)
    if not callable(spec):
        return {"name": type(evaluator).__name__}
    given = spec()
    if not isinstance(given, Mapping):
        raise ConfigError(f"{type(evaluator).__name__}.spec() must return a dict ({{'name': ..., **options}}), "
                          f"got {type(given).__name__}")
    try:
        stored = as_stored(given)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{type(evaluator).__name__}.spec() must be JSON, as the study stores it ({exc})") from None
    return evaluator_identity(stored)


def make_spec(space: Space, agent: str, agent_config: Mapping[str, Any] | None, evaluator: Evaluator | None,
              reward: Any, seed: Any, reuse_repeats: bool) -> StudySpec:
    """A checked :class:`StudySpec` (agent options validated, reward parsed, seed in range)."""
    if not isinstance(agent, str):
        raise ConfigError(f"agent must be a registered name, got {type(agent).__name__} {agent!r}")
    config = agent_class(agent).Config.from_dict(agent_config).to_dict()
    if not isinstance(reuse_repeats, bool):
        raise ConfigError(f"reuse_repeats must be true or false, got {reuse_repeats!r}")
    reward_obj = create_reward(reward)
    check_reward_metrics(reward_obj.metrics, evaluator)  # a metric the evaluator never reports: before any trial
    parsed = reward_obj.spec()
    own_cost = ("cost", getattr(evaluator, "cost_metric", None))  # the cost the evaluator's cost model computes
    if callable(getattr(evaluator, "check_reward", None)) and isinstance(parsed, Mapping) \
            and parsed.get("cost") in own_cost:  # a target outside the model's range: no architecture meets it
        evaluator.check_reward(parsed["name"], beta=parsed["beta"], target=parsed["target"])  # type: ignore[union-attr]
    return StudySpec(space=space.name, fingerprint=space.fingerprint, agent=agent, agent_config=config,
                     evaluator=evaluator_spec(evaluator), reward=reward_obj.spec(),
                     seed=check_seed(seed), reuse_repeats=reuse_repeats)


def check_evaluator_protocol(evaluator: Any) -> None:
    """A :class:`ConfigError` unless ``evaluator.evaluate(candidate, budget=..., seed=...)`` can be called:
    otherwise every trial of the search would fail with the same ``AttributeError`` or ``TypeError``."""
    evaluate = getattr(evaluator, "evaluate", None)
    if not callable(evaluate):
        raise ConfigError(f"evaluator {type(evaluator).__name__} has no evaluate(candidate, *, budget=None, "
                          "seed=None) method")
    try:
        inspect.signature(evaluate).bind(None, budget=None, seed=None)
    except TypeError as exc:
        raise ConfigError(f"evaluator {type(evaluator).__name__}.evaluate must take (candidate, *, budget=None, "
                          f"seed=None): {exc}") from None
    except ValueError:  # no signature to inspect (a builtin): it is called as it is
        pass


def check_budget_measurable(evaluator: Any, budget_seconds: float | None) -> None:
    """A :class:`ConfigError` for a budget of seconds with an evaluator whose measurements cost nothing
    (``reports_cost = False``, e.g. NAS-Bench-Graph's table): the search would never stop."""
    if budget_seconds is not None and getattr(evaluator, "reports_cost", True) is False:
        raise ConfigError(f"evaluator {getattr(evaluator, 'name', type(evaluator).__name__)!r} reports no "
                          "evaluation time (its table has none): a budget of seconds would never run out; "
                          "give a number of trials")


def check_weight_sharing_evaluator(agent: str, evaluator: Any) -> None:
    """A weight-sharing agent needs a weight-sharing evaluator (see ``rlnas.study._weight_sharing.REQUIRED``)."""
    from rlnas.study._weight_sharing import REQUIRED

    missing = [name for name in REQUIRED if not hasattr(evaluator, name)]
    if missing:
        raise ConfigError(f"agent {agent!r} shares weights and needs a weight-sharing evaluator (e.g. supernet or "
                          f"shared); {type(evaluator).__name__} lacks {', '.join(missing)}")


def create_study(*, space: str | Space, agent: str = "random", agent_config: Mapping[str, Any] | None = None,
                 evaluator: Evaluator | None = None, reward: str | Mapping[str, Any] | None = None, seed: int = 0,
                 name: str | None = None, storage: str | Store | None = None,
                 checkpoint_every: int | None = None, load_if_exists: bool = False,
                 reuse_repeats: bool = False, device: str = "cpu", n_trials: int | None = None,
                 budget_seconds: float | None = None) -> Study:
    """Create (or with ``load_if_exists`` reopen) a study.

    ``storage`` is a SQLAlchemy URL, a :class:`Store`, or ``None`` for an in-memory study.
    ``reward`` is a metric name or a reward spec (:mod:`rlnas.rewards`); by default the
    evaluator's ``default_reward`` metric, else ``valid_acc``. Reopening checks that
    the stored study is the same study (space, agent and config, evaluator, reward, seed,
    repeats): a difference is a :class:`DuplicateStudy` naming it. Nothing is written unless
    every check passed (an evaluator's ``prepare()``, if it has one, is one of them: e.g. the
    train evaluator loads its data). ``n_trials`` / ``budget_seconds`` are stored with a new study as its stop
    conditions, so that a run killed before :meth:`Study.optimize` began can be resumed.
    """
    from rlnas import __version__

    if checkpoint_every is not None and (isinstance(checkpoint_every, bool) or not isinstance(checkpoint_every, int)
                                         or checkpoint_every < 0):
        raise ConfigError(f"checkpoint_every must be an integer >= 0, got {checkpoint_every!r}")
    if not isinstance(load_if_exists, bool):
        raise ConfigError(f"load_if_exists must be true or false, got {load_if_exists!r}")
    n_trials, budget_seconds = check_limits(n_trials, budget_seconds)
    stop = {k: v for k, v in (("n_trials", n_trials), ("budget_seconds", budget_seconds)) if v is not None}
    resolved = resolve_space(space)
    if reuse_repeats and issubclass(agent_class(agent), FixedAgent):
        raise ConfigError("agent 'fixed' proposes one candidate: with reuse_repeats every trial after the first would "
                          "be answered from the store, and the search could never end")
    if evaluator is not None:
        check_evaluator_protocol(evaluator)
        check_budget_measurable(evaluator, budget_seconds)
        if issubclass(agent_class(agent), WeightSharingAgent):
            from rlnas.study._weight_sharing import check_weight_sharing_run

            check_weight_sharing_run(agent, evaluator, reuse_repeats=reuse_repeats, checkpoint_every=checkpoint_every)
        elif all(hasattr(evaluator, name) for name in ("train_step", "total_steps")):
            raise ConfigError(f"{type(evaluator).__name__} scores candidates with shared weights that a "
                              f"weight-sharing agent (tunas, enas) trains; agent {agent!r} would score an "
                              "untrained network")
        measured = getattr(evaluator, "space", None)
        if isinstance(measured, Space) and measured.fingerprint != resolved.fingerprint:
            raise ConfigError(f"{type(evaluator).__name__} measures space {measured.name!r}, not {resolved.name!r}: "
                              "every trial would fail")
    if reward is None:
        reward = getattr(evaluator, "default_reward", "valid_acc")
    spec = make_spec(resolved, agent, agent_config, evaluator, reward, seed, reuse_repeats)
    name = f"{resolved.name}-{agent}-{spec.seed}" if name is None else name
    check_name(name)
    check_device(device)
    prepare = getattr(evaluator, "prepare", None)
    if callable(prepare):  # e.g. a training evaluator loads its data: a failure leaves nothing, not even a file
        prepare()
    fingerprint = data_fingerprint_of(evaluator)
    # made before the store is opened: a config the agent refuses (a fixed key not in the space) stores nothing
    agent_obj = create_agent(agent, resolved, spec.agent_config, seed=spec.seed, device=device)
    store = open_store(storage)
    if load_if_exists:
        existing = _find(store, name)
        if existing is not None:
            return _reopen(store, existing, spec, evaluator, device, checkpoint_every)
    record = StudyRecord(
        id=0, name=name, space_name=resolved.name, space_json=resolved.to_json(), fingerprint=resolved.fingerprint,
        agent=agent, agent_config=dict(spec.agent_config), evaluator=dict(spec.evaluator), reward=spec.reward,
        seed=spec.seed, settings={"checkpoint_every": DEFAULT_CHECKPOINT_EVERY if checkpoint_every is None
                                  else checkpoint_every, **stop,
                  **({} if fingerprint is None else {"data_fingerprint": fingerprint})}, version=__version__,
        reuse_repeats=reuse_repeats,
    )
    try:
        stored = store.create_study(record)
    except DuplicateStudy:
        if not load_if_exists:
            raise
        return _reopen(store, store.get_study(name), spec, evaluator, device,  # created meanwhile by another process
                       checkpoint_every)
    study = Study(store, stored, resolved, agent_obj, evaluator)
    study.created_now = True
    return study


def check_name(name: Any) -> None:
    """Study names: 1 to 255 printable characters (the same limit on every backend), not beginning or ending
    with white space."""
    if not isinstance(name, str) or not name:
        raise ConfigError(f"a study name must be a non-empty string, got {name!r}")
    if len(name) > 255:
        raise ConfigError(f"a study name has at most 255 characters, got {len(name)}")
    if not name.isprintable():
        raise ConfigError(f"a study name must be printable (no control characters), got {name!r}")
    if name != name.strip():  # " " showed as an empty cell; "a " and "a" look alike everywhere
        raise ConfigError(f"a study name must not begin or end with white space, got {name!r} (a study named so "
                          "before: rlnas rename gives it another name)")


def _find(store: Store, name: str) -> StudyRecord | None:
    from rlnas.errors import StudyNotFound

    try:
        return store.get_study(name)
    except StudyNotFound:
        return None


def _reopen(store: Store, record: StudyRecord, wanted: StudySpec, evaluator: Evaluator | None, device: str,
            checkpoint_every: int | None) -> Study:
    study = _open(record.name, store, evaluator, device, None)
    stored = study.spec
    if evaluator is None:  # none given: continue with the stored one
        wanted = StudySpec(**{**wanted.__dict__, "evaluator": stored.evaluator})
    found = stored.differences(wanted)
    kept = record.settings.get("checkpoint_every", DEFAULT_CHECKPOINT_EVERY)
    if checkpoint_every is not None and checkpoint_every != kept:  # it was ignored
        found.append(f"checkpoint every {kept}, not {checkpoint_every}")
    if found:
        raise DuplicateStudy(f"study {record.name!r} exists with {'; '.join(found)}: choose another name, or "
                             "continue it as it is (rlnas resume)")
    return study


class UnavailableAgent(Agent):
    """Stands in for a stored study's agent that is not registered in this process: the study's trials
    can be read, and driving it says why it cannot be."""

    name = "unavailable"

    def __init__(self, space: Space, reason: str) -> None:
        super().__init__(space)
        self.reason = reason

    def ask(self, n: int = 1) -> list[Proposal]:
        raise ConfigError(self.reason)

    def tell(self, results: Sequence[Result]) -> dict[str, float]:
        raise ConfigError(self.reason)

    def state_dict(self) -> dict[str, Any]:
        raise ConfigError(self.reason)

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        raise ConfigError(self.reason)


def registered_space(record: StudyRecord) -> Space | None:
    """The registered space a stored study searches, built with the options its JSON names
    (``"options"``, e.g. the iterations of ``optimizer_rules``); ``None`` when no space is registered
    under its name here, or the registered one is another (fingerprint)."""
    if record.space_name not in SPACES:
        return None
    options = record.space_json.get("options") if isinstance(record.space_json, dict) else None
    space = create_space(record.space_name, **(options if isinstance(options, dict) else {}))
    return space if space.fingerprint == record.fingerprint else None


def space_of(record: StudyRecord) -> Space:
    """The space a stored study searches: :func:`registered_space` when there is one, else rebuilt from its JSON."""
    space = registered_space(record)
    if space is not None:
        return space
    if record.space_name in SPACES:
        warnings.warn(f"study {record.name!r}: the space registered here as {record.space_name!r} is not the one "
                      "stored (another fingerprint), so a generic space of the stored decisions stands in, whose "
                      "keys may be written differently (a space built with options returns them under 'options' "
                      "in to_json: docs/extending.md)", stacklevel=2)
    space = Space.from_json(record.space_json)
    if space.fingerprint != record.fingerprint:
        raise StorageError(f"study {record.name!r}: stored space does not match its fingerprint")
    return space


def load_study(name: str, storage: str | Store, *, evaluator: Evaluator | None = None,
               device: str = "cpu", threads: int | None = None) -> Study:
    """Reopen a stored study; its agent is restored (and orphans marked) when it is first driven.

    The evaluator is rebuilt from the stored spec unless one is given (with ``threads`` and
    ``device`` as run options where it takes them). A study whose evaluator is not registered
    here can still be read; driving it needs ``evaluator=``. A given evaluator must have the stored
    spec (run options like ``threads`` aside): one study measures one thing.
    """
    study = _open(name, storage, evaluator, device, threads)
    if evaluator is not None and study.record.evaluator:
        stored = study.spec
        found = stored.differences(replace(stored, evaluator=evaluator_spec(evaluator)))
        if found:
            raise ConfigError(f"study {name!r} was created with {'; '.join(found)}: load it with the evaluator it "
                              "was created with (or with none: it is rebuilt from the stored spec)")
    return study


def _open(name: str, storage: str | Store | None, evaluator: Evaluator | None, device: str,
          threads: int | None) -> Study:
    """:func:`load_study` without the check that a given evaluator has the stored spec."""
    if evaluator is not None:
        check_evaluator_protocol(evaluator)
    store = open_store(storage, create=False)
    record = store.get_study(name)
    space = space_of(record)
    try:
        agent: Agent = create_agent(record.agent, space, record.agent_config, seed=record.seed, device=device)
    except ConfigError as exc:  # not registered here (a plugin not loaded): the trials can still be read
        if record.agent in AGENTS:
            raise
        agent = UnavailableAgent(space, first_line(exc))
    problem = None
    if evaluator is None and record.evaluator:
        spec = evaluator_identity(record.evaluator)
        if spec.get("name") in EVALUATORS:
            evaluator = build_evaluator(spec, threads=threads, device=device)
        else:
            problem = (f"study {name!r} used evaluator {spec.get('name')!r}, which is not registered here: load the "
                       "plugin that registers it (RLNAS_PLUGINS=module, docs/extending.md), or from Python pass "
                       "evaluator=... to load_study")
    return Study(store, record, space, agent, evaluator, create_reward(record.reward), evaluator_error=problem)


__all__ = ["create_study", "load_study", "space_of", "resolve_space", "evaluator_spec", "make_spec", "check_name",
           "check_evaluator_protocol", "check_budget_measurable", "check_weight_sharing_evaluator"]
