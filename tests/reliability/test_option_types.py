"""Item 14: every option is checked against its declared type and range before anything is built
or stored: agent configs and seeds, evaluator options, model options, from the API and the CLI."""
from __future__ import annotations

import dataclasses
import sqlite3
import subprocess
import typing

import numpy as np
import pytest

from rlnas.agents import agent_class, create_agent, list_agents
from rlnas.checks import SEED_MAX, check_value
from rlnas.errors import ConfigError
from rlnas.evaluators import EVALUATORS, create_evaluator, list_evaluators
from rlnas.models import create_model
from rlnas.registry import accepted_options
from rlnas.spaces import create_space
from rlnas.testing.toy import toy_space

SPACE = toy_space()


def _wrong_kind(annotation: typing.Any) -> typing.Any:
    """A JSON value that does not fit ``annotation`` (None when every value fits)."""
    members = set(typing.get_args(annotation)) or {annotation}
    if members & {int, float}:
        return "fast"
    if bool in members:
        return "false"
    if str in members:
        return 3
    return None


def _fields(name: str) -> list[tuple[str, typing.Any]]:
    config = agent_class(name).Config
    hints = typing.get_type_hints(config)
    return [(f.name, hints[f.name]) for f in dataclasses.fields(config)]


CASES = [(agent, field, annotation) for agent in list_agents() for field, annotation in _fields(agent)
         if _wrong_kind(annotation) is not None]


def test_every_agent_has_typed_fields_to_check():
    assert {agent for agent, _, _ in CASES} >= set(list_agents()) - {"random"}


@pytest.mark.parametrize(("agent", "field", "annotation"), CASES, ids=[f"{a}.{f}" for a, f, _ in CASES])
def test_a_value_of_the_wrong_type_is_a_config_error_naming_the_field(agent, field, annotation):
    bad = _wrong_kind(annotation)
    with pytest.raises(ConfigError) as err:
        create_agent(agent, SPACE, {field: bad}, seed=0)
    message = str(err.value)
    assert field in message and repr(bad) in message and "\n" not in message


def test_a_text_boolean_is_refused_and_a_real_one_is_kept():
    with pytest.raises(ConfigError, match="avoid_repeats.*true or false, got 'false'"):
        create_agent("l2nas", SPACE, {"avoid_repeats": "false"}, seed=0)
    assert create_agent("l2nas", SPACE, {"avoid_repeats": False}, seed=0).config.avoid_repeats is False


def test_an_integral_float_becomes_an_int_and_a_fraction_is_refused():
    config = create_agent("l2nas", SPACE, {"top_k": 5.0}, seed=0).config
    assert config.top_k == 5 and type(config.to_dict()["top_k"]) is int
    with pytest.raises(ConfigError, match="top_k"):
        create_agent("l2nas", SPACE, {"top_k": 5.5}, seed=0)
    with pytest.raises(ConfigError, match="must be a JSON object"):
        agent_class("l2nas").Config.from_dict([("top_k", 5)])  # type: ignore[arg-type]


def test_non_finite_numbers_are_refused():
    for value in (float("nan"), float("inf"), 10**400):
        with pytest.raises(ConfigError, match="actor_lr"):
            create_agent("l2nas", SPACE, {"actor_lr": value}, seed=0)


def test_a_config_that_is_not_a_mapping_is_refused():
    with pytest.raises(ConfigError, match="EvolutionAgent expects a EvolutionConfig, got list"):
        create_agent("evolution", SPACE, [("population_size", 3)], seed=0)  # type: ignore[arg-type]


@pytest.mark.parametrize("agent", list_agents())
@pytest.mark.parametrize("seed", [-3, SEED_MAX + 1, 99999999999999999999999, 2**70, 1.5, "1", True])
def test_seeds_outside_the_shared_range_are_refused(agent, seed):
    with pytest.raises(ConfigError, match=f"seed must be (an integer, got|between 0 and {SEED_MAX})"):
        create_agent(agent, SPACE, seed=seed)


@pytest.mark.parametrize("agent", list_agents())
def test_the_ends_of_the_seed_range_work(agent):
    for seed in (0, SEED_MAX, np.int64(7)):
        assert create_agent(agent, SPACE, seed=seed).ask(1)


def test_check_value_understands_optional_literal_and_containers():
    assert check_value(None, float | None, "x") is None
    assert check_value([1, 2.0], tuple[int, ...], "x") == (1, 2)
    assert check_value("a", typing.Literal["a", "b"], "x") == "a"
    for value, annotation, words in [("c", typing.Literal["a", "b"], "one of 'a', 'b'"),
                                     ([1, "x"], list[int], "a list of integers"),
                                     ({"a": 1}, list[int], "a list of integers"),
                                     (1, dict[str, int], "a JSON object"),
                                     ([8], tuple[int, int], "a list of 2 integers"),  # said "a list of integers"
                                     ([float("nan")], list[float], "a list of finite numbers"),  # did not say why
                                     (["x", "y"], tuple[int, str], "a list of 2: an integer, a string")]:
        with pytest.raises(ConfigError, match=f"x must be {words}"):
            check_value(value, annotation, "x")


# ------------------------------------------------------------------ evaluators and models
CLOSED_EVALUATORS = [e for e in list_evaluators() if accepted_options(EVALUATORS.get(e)) is not None]
"""Evaluators whose constructor names every option it takes (no ``**options`` passed on)."""


@pytest.mark.parametrize("evaluator", CLOSED_EVALUATORS)
def test_an_unknown_evaluator_option_is_named(evaluator):
    with pytest.raises(ConfigError, match=rf"evaluator '{evaluator}': unknown option\(s\) foo \(accepted: "):
        create_evaluator(evaluator, foo=1)


@pytest.mark.parametrize(("evaluator", "options", "message"), [
    ("train", {"epochs": "abc"}, "option 'epochs' must be a finite number, got 'abc'"),
    ("train", {"seed": "x"}, "option 'seed' must be an integer, got 'x'"),
    ("train", {"seed": -1}, "seed must be between 0 and"),
    ("train", {"momentum": 1.5}, "momentum must be in"),
    ("train", {"threads": 0}, "threads must be an integer from 1 to 1024"),
    ("train", {"model_kwargs": {"num_classes": "abc"}}, "the nb201 model option 'num_classes' must be an integer"),
    ("train", {"model_kwargs": {"dropout": 0.1}}, r"the nb201 model: unknown option\(s\) dropout"),
    ("nb201", {"fidelity": "twelve"}, "option 'fidelity' must be an integer, got 'twelve'"),
    ("nb201", {"noisy": "no"}, "option 'noisy' must be true or false"),
    ("toy", {"target": "abc"}, "option 'target' must be a list of integers or null"),
])
def test_evaluator_options_are_checked(evaluator, options, message):
    with pytest.raises(ConfigError, match=message):
        create_evaluator(evaluator, **options)


@pytest.mark.parametrize("space", ["nb201", "darts", "proxyless"])
@pytest.mark.parametrize(("options", "message"), [
    ({"num_classes": "abc"}, "option 'num_classes' must be an integer, got 'abc'"),
    ({"num_classes": 0}, "option 'num_classes' must be positive"),
    ({"foo": 1}, r"model: unknown option\(s\) foo \(accepted: "),
])
def test_model_options_are_checked(space, options, message):
    sp = create_space(space)
    with pytest.raises(ConfigError, match=message):
        create_model(sp, sp.sample(np.random.default_rng(0)), **options)


# --------------------------------------------------------------------------------- the CLI
def _rlnas(rlnas_bin: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([rlnas_bin, *args], check=False, capture_output=True, text=True, timeout=300)


def _stored_studies(path) -> list[str]:
    if not path.exists():
        return []
    with sqlite3.connect(path) as db:
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        return [r[0] for r in db.execute("SELECT name FROM rlnas_studies")] if "rlnas_studies" in tables else []


@pytest.mark.parametrize(("args", "message"), [
    (["--set", "actor_lr=fast"], "option 'actor_lr' of L2NASConfig must be a finite number, got 'fast'"),
    (["--agent-config", '{"avoid_repeats": "false"}'], "avoid_repeats must be true or false, got 'false'"),
    (["--agent", "evolution", "--seed", "-3"], "seed must be between 0 and 2147483647, got -3"),
    (["--seed", "99999999999999999999999"], "seed must be between 0 and 2147483647"),
    (["--eval-option", "foo=1"], "evaluator 'nb201': unknown option(s) foo (accepted: "),
])
def test_bad_search_options_are_one_line_and_store_nothing(rlnas_bin, tmp_path, args, message):
    db = tmp_path / "runs.db"
    result = _rlnas(rlnas_bin, "search", "--trials", "2", "--no-progress", "--storage", f"sqlite:///{db}", *args)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1 and message in lines[0], result.stderr[-800:]
    assert _stored_studies(db) == []


def test_a_bad_model_option_on_export_is_one_line(rlnas_bin, tmp_path):
    url = f"sqlite:///{tmp_path / 'runs.db'}"
    assert _rlnas(rlnas_bin, "search", "--agent", "random", "--trials", "2", "--name", "s", "--no-progress",
                  "--storage", url).returncode == 0
    result = _rlnas(rlnas_bin, "export", "s", "--onnx", str(tmp_path / "net.onnx"), "--model-option", "num_classes=abc",
                    "--storage", url)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1, result.stderr[-800:]
    assert "the nb201 model option 'num_classes' must be an integer, got 'abc'" in lines[0]
    assert not (tmp_path / "net.onnx").exists()
