"""The update-rule language of Neural Optimizer Search: tokens, the rule AST, parsing and named rules.

A rule computes the update ``Δw = λ · b(u1(op1), u2(op2))`` (the weight moves by ``w ← w − Δw``)
in one or more *iterations*; the output of iteration ``k`` is the operand ``ok`` of every
later iteration and the last iteration's output is the update. Everything is element-wise.

Written form (``str(rule)`` and :func:`parse_rule`), iterations separated by ``;``::

    sign(g) * sign(m); exp(o1) * g          # PowerSign
    m / sqrt(v)                             # Adam

* operands: ``g g^2 g^3`` (gradient and its powers), ``m v gamma`` (bias-corrected running
  averages of ``g``, ``g^2``, ``g^3``), ``sign(g) sign(m)``, the constants ``1 2``, ``eps``
  (Gaussian noise), ``1e-4w 1e-3w 1e-2w 1e-1w`` (scaled weights), ``adam rmsprop`` (their
  updates), the decays ``ld cd rd`` (linear, cosine, cosine with restarts) and ``noise``
  (annealed Gaussian noise), and ``o1 o2 ...`` (earlier iterations' outputs);
* unary functions: ``x`` (identity), ``neg(x) exp(x) log(x) sqrt(x)`` (log and sqrt of ``|x|``),
  ``clip(x, 1e-5|1e-4|1e-3)``, ``drop(x, 0.1|0.3|0.5)`` (zero with that probability) and
  ``sgn(x)`` (the sign function; ``sign(g)`` and ``sign(m)`` are operands);
* binary functions: ``a + b``, ``a - b``, ``a * b``, ``a / b`` (computed as ``a / (b + δ)``),
  ``pow(a, b)`` and ``keep(a, b)`` (= ``a``).

Pure Python: no torch here. :mod:`rlnas.optim.codegen` turns a rule into torch code.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from rlnas.errors import ConfigError, InvalidCandidate

BASE_OPERANDS: tuple[str, ...] = (
    "g", "g^2", "g^3", "m", "v", "gamma", "sign(g)", "sign(m)", "1", "2", "eps",
    "1e-4w", "1e-3w", "1e-2w", "1e-1w", "adam", "rmsprop", "ld", "cd", "rd", "noise",
)
"""Operands every iteration can use (iteration ``k`` adds ``o1 .. o{k-1}``)."""

UNARY: tuple[str, ...] = (
    "identity", "neg", "exp", "log", "sqrt", "clip_1e-5", "clip_1e-4", "clip_1e-3",
    "drop_0.1", "drop_0.3", "drop_0.5", "sign",
)
"""Unary function tokens (``clip_L`` clips to ``[-L, L]``, ``drop_P`` zeroes with probability ``P``)."""

BINARY: tuple[str, ...] = ("add", "sub", "mul", "div", "pow", "keep")
"""Binary function tokens."""

INFIX = {"add": "+", "sub": "-", "mul": "*", "div": "/"}
CALL_BINARY = ("pow", "keep")
SIMPLE_UNARY = {"neg": "neg", "exp": "exp", "log": "log", "sqrt": "sqrt", "sign": "sgn"}
PARAM_UNARY = {"clip": ("1e-5", "1e-4", "1e-3"), "drop": ("0.1", "0.3", "0.5")}
WEIGHT_SCALES = ("1e-4", "1e-3", "1e-2", "1e-1")
NAMED_OPERANDS = frozenset({"g", "m", "v", "gamma", "eps", "adam", "rmsprop", "ld", "cd", "rd", "noise"})
DECAY_OPERANDS = frozenset({"ld", "cd", "rd"})
RANDOM_OPERANDS = frozenset({"eps", "noise"})


def _shown(text: str, most: int = 160) -> str:
    """``repr(text)``, its middle cut out when longer than ``most`` characters (an error stays one readable line;
    the column it names still points into the whole rule)."""
    if len(text) <= most:
        return repr(text)
    return f"{text[:most - 40]!r} ... {text[-30:]!r} ({len(text):,} characters)"


class RuleSyntaxError(InvalidCandidate):
    """A rule string or rule token is malformed; the message names the bad token."""


def output_operand(k: int) -> str:
    """Name of iteration ``k``'s output as an operand of later iterations (``k`` from 1)."""
    return f"o{k}"


def operands_at(k: int) -> tuple[str, ...]:
    """Operands iteration ``k`` (from 1) may use: the base operands and ``o1 .. o{k-1}``."""
    return BASE_OPERANDS + tuple(output_operand(j) for j in range(1, k))


@dataclass(frozen=True)
class Iteration:
    """One ``b(u1(op1), u2(op2))``: two operand tokens, two unary tokens and a binary token."""

    op1: str
    """First operand (a base operand or ``oK`` of an earlier iteration)."""
    op2: str
    """Second operand."""
    u1: str = "identity"
    """Unary function applied to ``op1``."""
    u2: str = "identity"
    """Unary function applied to ``op2``."""
    binary: str = "keep"
    """Binary function combining the two."""

    def tokens(self) -> tuple[str, str, str, str, str]:
        """The five tokens in the controller's order: op1, op2, u1, u2, b."""
        return (self.op1, self.op2, self.u1, self.u2, self.binary)

    def __str__(self) -> str:
        a, b = _term(self.u1, self.op1), _term(self.u2, self.op2)
        if self.binary in INFIX:
            return f"{a} {INFIX[self.binary]} {b}"
        return f"{self.binary}({a}, {b})"


def _term(unary: str, operand: str) -> str:
    if unary == "identity":
        return operand
    if unary in SIMPLE_UNARY:
        return f"{SIMPLE_UNARY[unary]}({operand})"
    name, _, value = unary.partition("_")
    return f"{name}({operand}, {value})"


@dataclass(frozen=True)
class Rule:
    """An update rule: one or more :class:`Iteration` (checked on construction)."""

    iterations: tuple[Iteration, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "iterations", tuple(self.iterations))
        if not self.iterations:
            raise RuleSyntaxError("a rule needs at least one iteration")
        for k, it in enumerate(self.iterations, 1):
            if not isinstance(it, Iteration):
                raise RuleSyntaxError(f"iteration {k} is a {type(it).__name__}, not an Iteration")
            for operand in (it.op1, it.op2):
                check_operand(operand, k)
            for unary in (it.u1, it.u2):
                if unary not in UNARY:
                    raise RuleSyntaxError(f"iteration {k}: unknown unary function {unary!r} "
                                          f"(choices: {', '.join(UNARY)})")
            if it.binary not in BINARY:
                raise RuleSyntaxError(f"iteration {k}: unknown binary function {it.binary!r} "
                                      f"(choices: {', '.join(BINARY)})")

    def __str__(self) -> str:
        return "; ".join(str(it) for it in self.iterations)

    def __len__(self) -> int:
        return len(self.iterations)

    def operands(self) -> frozenset[str]:
        """Every operand token the rule reads."""
        return frozenset(op for it in self.iterations for op in (it.op1, it.op2))

    def unaries(self) -> frozenset[str]:
        """Every unary token the rule applies."""
        return frozenset(u for it in self.iterations for u in (it.u1, it.u2))

    def padded(self, iterations: int) -> Rule:
        """The same update written with ``iterations`` iterations (appending ``keep(oK, 1)``)."""
        if iterations < len(self):
            raise ConfigError(f"rule {self} has {len(self)} iterations, more than {iterations}")
        extra = tuple(Iteration(output_operand(k), "1") for k in range(len(self), iterations))
        return Rule(self.iterations + extra)


def check_operand(operand: str, k: int) -> None:
    """Raise :class:`RuleSyntaxError` unless ``operand`` may be used in iteration ``k`` (from 1)."""
    if operand in BASE_OPERANDS:
        return
    match = re.fullmatch(r"o([1-9]\d*)", operand) if isinstance(operand, str) else None  # one spelling: o1, not o01
    if match is None:
        raise RuleSyntaxError(f"iteration {k}: unknown operand {operand!r} (operands: {', '.join(BASE_OPERANDS)}, "
                              "and o1, o2, ... for earlier iterations' outputs)")
    j = int(match.group(1))
    if not 1 <= j < k:
        earlier = ", ".join(output_operand(i) for i in range(1, k)) or "none"
        raise RuleSyntaxError(f"iteration {k} uses {operand}, out of range: only earlier iterations' outputs "
                              f"can be operands there ({earlier})")


# ------------------------------------------------------------------- parsing
_TOKEN = re.compile(r"\s*(?:(?P<num>\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)|(?P<name>[A-Za-z_][A-Za-z0-9_]*)"
                    r"|(?P<sym>[-+*/^(),;]))")


@dataclass(frozen=True)
class _Tok:
    kind: str  # "num", "name", "sym" or "end"
    text: str
    column: int  # 1-based


def _tokenize(text: str) -> list[_Tok]:
    tokens, pos = [], 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        match = _TOKEN.match(text, pos)
        if match is None:
            column = pos + len(text[pos:]) - len(text[pos:].lstrip()) + 1
            raise RuleSyntaxError(f"rule {_shown(text)}: unexpected character {text[column - 1]!r} at column {column}")
        kind = match.lastgroup or "sym"
        tokens.append(_Tok(kind, match.group(kind), match.start(kind) + 1))
        pos = match.end()
    tokens.append(_Tok("end", "", len(text) + 1))
    return tokens


class _Parser:
    """Recursive descent over the token list; every error names the offending token and column."""

    def __init__(self, text: str):
        self.text = text
        self.tokens = _tokenize(text)
        self.i = 0
        self.k = 1  # the iteration being parsed

    # token helpers
    @property
    def tok(self) -> _Tok:
        return self.tokens[self.i]

    def peek(self, ahead: int = 1) -> _Tok:
        return self.tokens[min(self.i + ahead, len(self.tokens) - 1)]

    def fail(self, message: str, tok: _Tok | None = None) -> RuleSyntaxError:
        tok = tok or self.tok
        shown = "the end" if tok.kind == "end" else _shown(tok.text, 60)
        return RuleSyntaxError(f"rule {_shown(self.text)}: {message} at {shown} (column {tok.column})")

    def expect(self, text: str) -> None:
        if self.tok.text != text or self.tok.kind == "end":
            raise self.fail(f"expected {text!r}")
        self.i += 1

    # grammar
    def rule(self) -> Rule:
        if self.tok.kind == "end":
            raise self.fail("empty rule")
        iterations = [self.iteration()]
        while self.tok.text == ";" and self.tok.kind == "sym":
            self.i += 1
            self.k += 1
            iterations.append(self.iteration())
        if self.tok.kind != "end":
            raise self.fail("expected ';' or the end of the rule")
        return Rule(tuple(iterations))

    def iteration(self) -> Iteration:
        if self.tok.kind == "name" and self.tok.text in CALL_BINARY and self.peek().text == "(":
            binary = self.tok.text
            self.i += 2
            u1, op1 = self.term()
            self.expect(",")
            u2, op2 = self.term()
            self.expect(")")
            return Iteration(op1, op2, u1, u2, binary)
        u1, op1 = self.term()
        symbol = self.tok
        by_symbol = {v: k for k, v in INFIX.items()}
        if symbol.kind != "sym" or symbol.text not in by_symbol:
            raise self.fail(f"iteration {self.k}: expected a binary operator (+ - * /) after {_term(u1, op1)!r}, "
                            "or write pow(a, b) / keep(a, b)")
        self.i += 1
        u2, op2 = self.term()
        return Iteration(op1, op2, u1, u2, by_symbol[symbol.text])

    def term(self) -> tuple[str, str]:
        tok = self.tok
        if tok.kind == "name" and self.peek().text == "(" and tok.text != "sign":
            if tok.text in SIMPLE_UNARY.values():
                self.i += 2
                operand = self.operand()
                self.expect(")")
                return {v: k for k, v in SIMPLE_UNARY.items()}[tok.text], operand
            if tok.text in PARAM_UNARY:
                self.i += 2
                operand = self.operand()
                self.expect(",")
                value = self.tok
                allowed = PARAM_UNARY[tok.text]
                matched = [a for a in allowed if value.kind == "num" and float(value.text) == float(a)]
                if not matched:
                    raise self.fail(f"{tok.text}(x, ...) takes one of {', '.join(allowed)}", value)
                self.i += 1
                self.expect(")")
                return f"{tok.text}_{matched[0]}", operand
            if tok.text in CALL_BINARY:
                raise self.fail(f"iteration {self.k}: {tok.text}(a, b) is a binary function: it can only be "
                                "the outer function of an iteration")
            raise self.fail(f"iteration {self.k}: unknown function (unary: neg, exp, log, sqrt, clip, drop, sgn)")
        return "identity", self.operand()

    def operand(self) -> str:
        tok = self.tok
        if tok.kind == "num":
            self.i += 1
            if self.tok.kind == "name" and self.tok.text == "w":
                scale = [s for s in WEIGHT_SCALES if float(tok.text) == float(s)]
                if not scale:
                    raise self.fail(f"scaled weights are {', '.join(s + 'w' for s in WEIGHT_SCALES)}", tok)
                self.i += 1
                return f"{scale[0]}w"
            if float(tok.text) in (1.0, 2.0):
                return str(int(float(tok.text)))
            raise self.fail("unknown operand (the constants are 1 and 2)", tok)
        if tok.kind != "name":
            raise self.fail(f"iteration {self.k}: expected an operand")
        if tok.text != "sign" and self.peek().text == "(":
            raise self.fail(f"iteration {self.k}: functions do not nest (a unary takes an operand; "
                            "compute the inner part in an earlier iteration and use its output oK)")
        self.i += 1
        if tok.text == "sign":
            if self.tok.text != "(":
                raise self.fail("'sign' is only an operand as sign(g) or sign(m)", tok)
            self.i += 1
            inner = self.tok
            if inner.text not in ("g", "m") or inner.kind != "name":
                raise self.fail("sign(...) is an operand only as sign(g) or sign(m); the unary sign is sgn(x)", inner)
            self.i += 1
            self.expect(")")
            return f"sign({inner.text})"
        if tok.text == "g" and self.tok.text == "^":
            self.i += 1
            power = self.tok
            if power.kind != "num" or power.text not in ("2", "3"):
                raise self.fail("g^2 and g^3 are the powers of g that are operands (pow(a, b) raises to a power)",
                                power)
            self.i += 1
            return f"g^{power.text}"
        if tok.text in NAMED_OPERANDS:
            return tok.text
        if re.fullmatch(r"o[1-9]\d*", tok.text):  # o01 would be a second spelling of o1
            if not 1 <= int(tok.text[1:]) < self.k:
                earlier = ", ".join(output_operand(j) for j in range(1, self.k)) or "none"
                raise self.fail(f"iteration {self.k}: operand out of range (earlier outputs: {earlier})", tok)
            return tok.text
        raise self.fail(f"iteration {self.k}: unknown operand (operands: {', '.join(BASE_OPERANDS)}, o1, o2, ...)",
                        tok)


def parse_rule(text: str) -> Rule:
    """Parse the written form of a rule (the inverse of ``str(rule)``).

    Raises :class:`RuleSyntaxError` (a one-line :class:`~rlnas.errors.InvalidCandidate`)
    naming the bad token and its column.
    """
    if not isinstance(text, str):
        raise RuleSyntaxError(f"a rule must be a string, got {type(text).__name__}")
    return _Parser(text).rule()


# ---------------------------------------------------------------- named rules
def _sign_agreement(decay: str | None, combine: str) -> str:
    agree = "sign(g) * sign(m)"
    if combine == "power":
        if decay is None:
            return f"{agree}; exp(o1) * g"
        return f"{agree}; o1 * {decay}; exp(o2) * g"
    if decay is None:
        return f"{agree}; o1 + 1; o2 * g"
    return f"{agree}; o1 * {decay}; o2 + 1; o3 * g"


NAMED_RULES: dict[str, str] = {
    "sgd": "keep(g, 1)",
    "momentum": "keep(m, 1)",
    "adam": "m / sqrt(v)",
    "rmsprop": "g / sqrt(v)",
    "powersign": _sign_agreement(None, "power"),
    "addsign": _sign_agreement(None, "add"),
    **{f"powersign-{d}": _sign_agreement(d, "power") for d in ("ld", "cd", "rd")},
    **{f"addsign-{d}": _sign_agreement(d, "add") for d in ("ld", "cd", "rd")},
}
"""Well-known rules in the written form. ``momentum`` is the bias-corrected running average
(``m``, β1 = 0.9), which is SGD with momentum 0.9 at a 10x larger learning rate once the bias
correction has faded; ``adam`` with δ = 1e-8 is exactly Adam's update; PowerSign is
``exp(sign(g)·sign(m))·g`` and AddSign ``(1 + sign(g)·sign(m))·g``, and their ``-ld``, ``-cd``,
``-rd`` variants scale ``sign(g)·sign(m)`` by the linear, cosine or restart decay."""


def list_rules() -> list[str]:
    """Names accepted by :func:`rule`."""
    return list(NAMED_RULES)


def rule(name: str) -> Rule:
    """The named rule ``name`` (see :data:`NAMED_RULES`); :class:`ConfigError` names the choices."""
    if name not in NAMED_RULES:
        hint = f"; {name!r} is an operand: a rule is written as, e.g., '{name} * 1'" if name in BASE_OPERANDS else ""
        raise ConfigError(f"unknown rule name {name!r} (choices: {', '.join(NAMED_RULES)}){hint}")
    return parse_rule(NAMED_RULES[name])


def as_rule(value: Rule | str) -> Rule:
    """A :class:`Rule` from a rule, a rule name (a single word), or a written rule."""
    if isinstance(value, Rule):
        return value
    if isinstance(value, str) and re.fullmatch(r"[A-Za-z][\w-]*", value.strip()):
        return rule(value.strip())  # a single word: a rule name (an unknown one is named as such)
    return parse_rule(value)
