"""The update-rule language and the optimizer_rules space: round trips, named rules, clear errors."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from rlnas.errors import ConfigError, InvalidCandidate
from rlnas.optim import (
    BASE_OPERANDS,
    BINARY,
    UNARY,
    Iteration,
    Rule,
    RuleSyntaxError,
    list_rules,
    parse_rule,
    rule,
)
from rlnas.spaces import create_space
from rlnas.spaces.optimizer_rules import OptimizerRulesSpace
from rlnas.testing.space_contract import check_space_contract


@pytest.mark.parametrize("iterations", [1, 2, 3])
def test_space_honours_the_contract(iterations):
    check_space_contract(OptimizerRulesSpace(iterations), samples=40)


def test_space_decisions_and_sizes():
    space = create_space("optimizer_rules", iterations=2)
    assert [d.name for d in space.decisions[:5]] == ["i1_op1", "i1_op2", "i1_u1", "i1_u2", "i1_b"]
    assert space.sizes == (21, 21, 12, 12, 6, 22, 22, 12, 12, 6)
    assert space.decision("i2_op1").choices[-1] == "o1"
    assert "o1" not in space.decision("i1_op2").choices
    assert space.size == (21 * 21 * 12 * 12 * 6) * (22 * 22 * 12 * 12 * 6)
    assert create_space("optimizer_rules").iterations == 1
    stored = space.to_json()
    assert stored["options"] == {"iterations": 2}
    assert create_space(stored["name"], **stored["options"]).fingerprint == space.fingerprint


def test_every_candidate_key_round_trips_through_the_parser():
    rng = np.random.default_rng(1)
    space = OptimizerRulesSpace(4)
    for _ in range(300):
        candidate = space.sample(rng)
        text = space.key(candidate)
        assert str(parse_rule(text)) == text
        assert space.from_key(text) == candidate


def test_named_rules_round_trip_and_read_as_documented():
    assert list_rules()[:6] == ["sgd", "momentum", "adam", "rmsprop", "powersign", "addsign"]
    for variant in ("ld", "cd", "rd"):
        assert f"powersign-{variant}" in list_rules() and f"addsign-{variant}" in list_rules()
    for name in list_rules():
        r = rule(name)
        assert parse_rule(str(r)) == r
    assert str(rule("adam")) == "m / sqrt(v)"
    assert str(rule("powersign")) == "sign(g) * sign(m); exp(o1) * g"
    assert str(rule("addsign")) == "sign(g) * sign(m); o1 + 1; o2 * g"
    assert str(rule("addsign-ld")) == "sign(g) * sign(m); o1 * ld; o2 + 1; o3 * g"
    assert rule("powersign").iterations[0] == Iteration("sign(g)", "sign(m)", binary="mul")


def test_written_forms_of_every_token():
    cases = {
        "keep(g, 1)": Iteration("g", "1"),
        "neg(g^2) - exp(g^3)": Iteration("g^2", "g^3", "neg", "exp", "sub"),
        "log(gamma) / sqrt(v)": Iteration("gamma", "v", "log", "sqrt", "div"),
        "clip(eps, 1e-5) + drop(noise, 0.5)": Iteration("eps", "noise", "clip_1e-5", "drop_0.5", "add"),
        "pow(sgn(1e-4w), 2)": Iteration("1e-4w", "2", "sign", "identity", "pow"),
        "adam * rmsprop": Iteration("adam", "rmsprop", binary="mul"),
        "ld * cd": Iteration("ld", "cd", binary="mul"),
        "keep(rd, 1e-1w)": Iteration("rd", "1e-1w"),
    }
    for text, iteration in cases.items():
        assert parse_rule(text) == Rule((iteration,)), text
        assert str(Rule((iteration,))) == text


def test_parser_ignores_spacing_and_accepts_equal_numbers():
    assert parse_rule("sign(g)*sign(m);exp( o1 )*g") == rule("powersign")
    assert str(parse_rule("clip(g, 0.001) * 1.0")) == "clip(g, 1e-3) * 1"
    assert str(parse_rule("0.0001w + g")) == "1e-4w + g"


@pytest.mark.parametrize("text, message", [
    ("exp(g) * foo", r"unknown operand .* at 'foo' \(column 10\)"),
    ("g", r"expected a binary operator .* at the end"),
    ("o1 * g", r"iteration 1: operand out of range \(earlier outputs: none\) at 'o1'"),
    ("g * g; o2 + g", r"iteration 2: operand out of range \(earlier outputs: o1\) at 'o2' \(column 8\)"),
    ("sign(v) * g", r"sign\(g\) or sign\(m\); the unary sign is sgn\(x\) at 'v'"),
    ("clip(g, 0.5) * g", r"clip\(x, \.\.\.\) takes one of 1e-5, 1e-4, 1e-3 at '0\.5'"),
    ("drop(g, 1e-3) * g", r"drop\(x, \.\.\.\) takes one of 0\.1, 0\.3, 0\.5 at '1e-3'"),
    ("g * 3", r"the constants are 1 and 2\) at '3'"),
    ("1e-5w + g", r"scaled weights are 1e-4w, .* at '1e-5'"),
    ("", r"empty rule"),
    ("g + g;", r"iteration 2: expected an operand at the end"),
    ("g # g", r"unexpected character '#' at column 3"),
    ("keep(g, 1) x", r"expected ';' or the end of the rule at 'x'"),
    ("exp(exp(g)) * g", r"functions do not nest .* at 'exp' \(column 5\)"),
    ("tanh(g) * g", r"unknown function .* at 'tanh'"),
    ("g * pow(g, 2)", r"pow\(a, b\) is a binary function"),
    ("g * g; o01 + g", r"iteration 2: unknown operand .* at 'o01'"),  # one spelling of o1 (o01 crashed the compiler)
])
def test_bad_rules_name_the_bad_token_on_one_line(text, message):
    with pytest.raises(RuleSyntaxError, match=message) as err:
        parse_rule(text)
    assert "\n" not in str(err.value)
    assert isinstance(err.value, InvalidCandidate)


def test_rule_objects_are_checked_on_construction():
    with pytest.raises(RuleSyntaxError, match="iteration 2 uses o2, out of range"):
        Rule((Iteration("g", "g"), Iteration("o2", "g")))
    with pytest.raises(RuleSyntaxError, match="unknown operand 'w'"):
        Rule((Iteration("w", "g"),))
    with pytest.raises(RuleSyntaxError, match="unknown operand 'o01'"):
        Rule((Iteration("g", "g"), Iteration("o01", "g")))
    with pytest.raises(RuleSyntaxError, match="unknown unary function 'tanh'"):
        Rule((Iteration("g", "g", "tanh"),))
    with pytest.raises(RuleSyntaxError, match="unknown binary function 'max'"):
        Rule((Iteration("g", "g", binary="max"),))
    with pytest.raises(RuleSyntaxError, match="at least one iteration"):
        Rule(())


def test_unknown_rule_name_lists_the_names():
    with pytest.raises(ConfigError, match="unknown rule name 'adamw' \\(choices: sgd, momentum, adam"):
        rule("adamw")


def test_space_rejects_rules_of_another_length_and_knows_the_named_rules():
    space = OptimizerRulesSpace(1)
    with pytest.raises(InvalidCandidate, match="has 2 iteration\\(s\\) but space 'optimizer_rules' has 1"):
        space.from_key(str(rule("powersign")))
    assert set(space.known()) == {"sgd", "momentum", "adam", "rmsprop"}
    assert space.key(space.known()["adam"]) == "m / sqrt(v)"
    three = OptimizerRulesSpace(3)
    assert space.key(space.known()["sgd"]) == "keep(g, 1)"
    assert three.key(three.known()["sgd"]) == "keep(g, 1); keep(o1, 1); keep(o2, 1)"
    assert "addsign-ld" not in three.known() and "powersign-rd" in three.known()
    with pytest.raises(ConfigError, match="iterations must be a positive integer"):
        OptimizerRulesSpace(0)


def test_vocabulary_sizes_match_the_issue():
    assert len(BASE_OPERANDS) == 21 and len(UNARY) == 12 and len(BINARY) == 6


def test_the_rule_language_and_space_do_not_import_torch():
    code = ("import sys; from rlnas.spaces import create_space; from rlnas.optim import parse_rule, rule; "
            "create_space('optimizer_rules', iterations=2).known(); parse_rule('m / sqrt(v)'); "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_the_error_of_a_very_long_rule_is_one_readable_line():
    # 20,000 parentheses were repeated whole in the one-line error
    with pytest.raises(RuleSyntaxError) as info:
        parse_rule("(" * 20_000 + "g")
    message = str(info.value)
    assert len(message) < 300 and "(20,001 characters): iteration 1: expected an operand at '(' (column 1)" in message


def test_an_operand_given_as_a_rule_name_says_how_a_rule_is_written():
    from rlnas.optim.rule import as_rule

    with pytest.raises(ConfigError, match=r"unknown rule name 'g' .*; 'g' is an operand: a rule is written as, "
                                          r"e.g., 'g \* 1'"):
        as_rule("g")
    assert str(as_rule("g * 1")) == "g * 1"
    with pytest.raises(ConfigError, match=r"unknown rule name 'adamw' \(choices: [^;]*\)$"):
        as_rule("adamw")
