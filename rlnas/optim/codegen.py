"""Compile a rule into the source of a multi-tensor (``torch._foreach_*``) update function.

The function has the signature and meaning described in :mod:`rlnas.optim.runtime` and runs in
that module's namespace (``torch``, ``_drop``, ``_gauss``, ``_s1``, ...). Every value of the rule
is known, before running it, to be either a list of tensors (anything reading ``g``, ``w``, the
running averages or noise) or one float (constants and decays), so the generated code is
straight-line: one ``torch._foreach_*`` call (or a float expression) per function of the rule,
and nothing is computed that the rule does not read.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from rlnas.optim.rule import DECAY_OPERANDS, RANDOM_OPERANDS, Rule

T, S = "tensors", "scalar"


@dataclass(frozen=True)
class Value:
    """A value of the generated code: a variable (or float expression), its kind, whether it is
    known to be >= 0, and whether it is a temporary list the function owns (may be overwritten)."""

    code: str
    kind: str
    nonneg: bool = False
    fresh: bool = False


@dataclass(frozen=True)
class CompiledSource:
    """The source of ``def <name>(w, g, s, h, gen)`` and what the optimizer must provide for it."""

    name: str
    source: str
    rule_text: str
    state_names: tuple[str, ...]
    uses_random: bool
    uses_decay: bool


STATE_READERS = {"m": ("m", "sign(m)", "adam"), "v": ("v", "adam", "rmsprop"), "gamma": ("gamma",)}


class _Emitter:
    """Writes the update function line by line.

    A fresh temporary is overwritten in place (``torch._foreach_*_``) at its last use, which
    saves an allocation and a pass over memory; ``remaining`` counts the uses still to come.
    """

    def __init__(self, uses: dict[str, int]) -> None:
        self.lines: list[str] = []
        self.values: dict[str, Value] = {}
        self.uses = uses
        self.remaining: dict[str, int] = {}

    def line(self, text: str) -> None:
        self.lines.append(f"    {text}")

    def new(self, var: str, expr: str, *, nonneg: bool = False, uses: int = 1) -> Value:
        """``var = expr`` as a fresh tensor list used ``uses`` times."""
        self.line(f"{var} = {expr}")
        self.remaining[var] = uses
        return Value(var, T, nonneg, True)

    def owned(self, x: Value) -> bool:
        """Consume one use of ``x``; True when that was its last use of a fresh temporary."""
        if not x.fresh:
            return False
        self.remaining[x.code] -= 1
        return self.remaining[x.code] == 0

    def reuse(self, x: Value, uses: int, nonneg: bool = False) -> Value:
        """``x``'s storage now holds a new value used ``uses`` times."""
        self.remaining[x.code] = uses
        return Value(x.code, T, nonneg, True)

    # ------------------------------------------------------------ operands
    def operand(self, op: str) -> Value:
        if op not in self.values:
            self.values[op] = self._define(op, self.uses[op])
        return self.values[op]

    def _define(self, op: str, uses: int) -> Value:
        if op == "g":
            return Value("g", T)
        if op in ("1", "2"):
            return Value(f"{op}.0", S, True)
        if op in DECAY_OPERANDS:
            return Value(f'h["{op}"]', S, True)
        if op == "g^2":
            return self.new("g_2", "torch._foreach_mul(g, g)", nonneg=True, uses=uses)
        if op == "g^3":
            value = self.new("g_3", "torch._foreach_mul(g, g)", uses=uses)
            self.line("torch._foreach_mul_(g_3, g)")
            return value
        averages = {"m": ("m_hat", "m", "bc1"), "v": ("v_hat", "v", "bc2"), "gamma": ("gamma_hat", "gamma", "bc3")}
        if op in averages:
            var, state, correction = averages[op]
            return self.new(var, f'torch._foreach_div(s["{state}"], h["{correction}"])', nonneg=op == "v", uses=uses)
        if op in ("sign(g)", "sign(m)"):
            source = "g" if op == "sign(g)" else 's["m"]'
            return self.new(f"sign_{op[5]}", f"torch._foreach_sign({source})", uses=uses)
        if op in ("eps", "noise"):
            std = "noise_std" if op == "eps" else "anneal_std"
            return self.new(op, f'_gauss(g, h["{std}"], gen)', uses=uses)
        if op.endswith("w"):
            return self.new(f"w_{op[:-1].replace('-', '_')}", f"torch._foreach_mul(w, {op[:-1]})", uses=uses)
        if op in ("adam", "rmsprop"):  # Adam's arithmetic: m̂ / (sqrt(v) / sqrt(1 − β2^t) + δ)
            self.line(f'{op}_denom = torch._foreach_sqrt(s["v"])')
            self.line(f'torch._foreach_div_({op}_denom, h["bc2"] ** 0.5)')
            self.line(f'torch._foreach_add_({op}_denom, h["delta"])')
            if op == "adam":
                value = self.new(op, 'torch._foreach_div(s["m"], adam_denom)', uses=uses)
                self.line('torch._foreach_div_(adam, h["bc1"])')
                return value
            return self.new(op, "torch._foreach_div(g, rmsprop_denom)", uses=uses)
        raise KeyError(op)  # o1, o2, ... are defined when their iteration is emitted

    # ------------------------------------------------------------ functions
    def unary(self, var: str, name: str, x: Value) -> Value:
        if name == "identity":
            return x
        if x.kind == S:
            return self._unary_scalar(var, name, x)
        own = self.owned(x)
        kind, _, level = name.partition("_")
        if kind in ("neg", "exp", "sign"):
            nonneg = kind == "exp" or (kind == "sign" and x.nonneg)
            if own:
                self.line(f"torch._foreach_{kind}_({x.code})")
                return self.reuse(x, 1, nonneg)
            return self.new(var, f"torch._foreach_{kind}({x.code})", nonneg=nonneg)
        if kind in ("log", "sqrt"):  # of |x|
            if own:
                if not x.nonneg:
                    self.line(f"torch._foreach_abs_({x.code})")
                self.line(f"torch._foreach_{kind}_({x.code})")
                return self.reuse(x, 1, kind == "sqrt")
            if x.nonneg:
                return self.new(var, f"torch._foreach_{kind}({x.code})", nonneg=kind == "sqrt")
            self.new(var, f"torch._foreach_abs({x.code})")
            self.line(f"torch._foreach_{kind}_({var})")
            return Value(var, T, kind == "sqrt", True)
        if kind == "clip":
            target = x if own else self.new(var, f"torch._foreach_clamp_min({x.code}, -{level})")
            if own:
                self.line(f"torch._foreach_clamp_min_({x.code}, -{level})")
            self.line(f"torch._foreach_clamp_max_({target.code}, {level})")
            return self.reuse(target, 1, x.nonneg)
        if kind == "drop":
            if own:
                self.line(f"_drop_({x.code}, {level}, gen)")
                return self.reuse(x, 1, x.nonneg)
            return self.new(var, f"_drop({x.code}, {level}, gen)", nonneg=x.nonneg)
        raise KeyError(name)

    def _unary_scalar(self, var: str, name: str, x: Value) -> Value:
        arg = x.code
        kind, _, level = name.partition("_")
        if kind == "drop":
            return self.new(var, f"_drop_scalar({arg}, {level}, w, gen)", nonneg=x.nonneg)
        expr = {
            "neg": f"-{arg}",
            "exp": f"_s1(torch.exp, {arg})",
            "sign": f"_s1(torch.sign, {arg})",
            "log": f"_s1(torch.log, abs({arg}))",
            "sqrt": f"_s1(torch.sqrt, abs({arg}))",
            "clip": f"_s1(lambda a: a.clamp(-{level}, {level}), {arg})",
        }[kind]
        self.line(f"{var} = {expr}")
        return Value(var, S, kind in ("exp", "sqrt") or (kind in ("sign", "clip") and x.nonneg))

    def binary(self, var: str, name: str, a: Value, b: Value, uses: int) -> Value:
        own_a, own_b = self.owned(a), self.owned(b)
        if name == "keep":
            if a.kind == T and a.fresh:  # the output shares a's storage: count its uses there too
                self.remaining[a.code] += uses
                return Value(a.code, T, a.nonneg, True)
            return Value(a.code, a.kind, a.nonneg, False)
        if a.kind == S and b.kind == S:
            expr = {"add": f"{a.code} + {b.code}", "sub": f"{a.code} - {b.code}", "mul": f"{a.code} * {b.code}",
                    "div": f'_s2(torch.div, {a.code}, {b.code} + h["delta"])',
                    "pow": f"_s2(torch.pow, {a.code}, {b.code})"}[name]
            self.line(f"{var} = {expr}")
            return Value(var, S)
        if name == "div":
            if b.kind == S:
                divisor = f'({b.code} + h["delta"])'
            elif own_b and b.code != a.code:  # (b may share a's storage: then a must stay intact)
                self.line(f'torch._foreach_add_({b.code}, h["delta"])')
                divisor = b.code
            else:
                self.line(f'{var}_divisor = torch._foreach_add({b.code}, h["delta"])')
                divisor = f"{var}_divisor"
            if a.kind == S:  # scalar / tensors
                if b.kind == T and divisor == b.code:
                    self.line(f"torch._foreach_reciprocal_({b.code})")
                    self.line(f"torch._foreach_mul_({b.code}, {a.code})")
                    return self.reuse(b, uses)
                value = self.new(var, f"torch._foreach_reciprocal({divisor})", uses=uses)
                self.line(f"torch._foreach_mul_({var}, {a.code})")
                return value
            if own_a:
                self.line(f"torch._foreach_div_({a.code}, {divisor})")
                return self.reuse(a, uses)
            return self.new(var, f"torch._foreach_div({a.code}, {divisor})", uses=uses)
        if a.kind == T and own_a:
            self.line(f"torch._foreach_{name}_({a.code}, {b.code})")
            return self.reuse(a, uses)
        if name in ("add", "mul") and b.kind == T and own_b:
            self.line(f"torch._foreach_{name}_({b.code}, {a.code})")
            return self.reuse(b, uses)
        if a.kind == T:
            return self.new(var, f"torch._foreach_{name}({a.code}, {b.code})", uses=uses)
        # scalar (op) tensors, b not overwritable
        if name in ("add", "mul"):
            return self.new(var, f"torch._foreach_{name}({b.code}, {a.code})", uses=uses)
        if name == "sub":
            if own_b:
                self.line(f"torch._foreach_neg_({b.code})")
                self.line(f"torch._foreach_add_({b.code}, {a.code})")
                return self.reuse(b, uses)
            value = self.new(var, f"torch._foreach_neg({b.code})", uses=uses)
            self.line(f"torch._foreach_add_({var}, {a.code})")
            return value
        return self.new(var, f"torch._foreach_pow({a.code}, {b.code})", uses=uses)


def compile_source(rule: Rule, name: str = "update") -> CompiledSource:
    """The source of the update function of ``rule`` (see the module docstring)."""
    uses = Counter(op for it in rule.iterations for op in (it.op1, it.op2))
    emit = _Emitter(uses)
    out = None
    for k, it in enumerate(rule.iterations, 1):
        a = emit.unary(f"a{k}", it.u1, emit.operand(it.op1))
        b = emit.unary(f"b{k}", it.u2, emit.operand(it.op2))
        out = emit.binary(f"o{k}", it.binary, a, b, uses[f"o{k}"])
        emit.values[f"o{k}"] = out
    assert out is not None
    body = "\n".join(emit.lines)
    result = f"float({out.code})" if out.kind == S else out.code
    source = (f"def {name}(w, g, s, h, gen):\n"
              f"    # {rule}\n"
              f"{body}\n"
              f"    return {result}\n")
    operands = rule.operands()
    return CompiledSource(
        name=name, source=source, rule_text=str(rule),
        state_names=tuple(n for n, readers in STATE_READERS.items() if operands & set(readers)),
        uses_random=bool(operands & RANDOM_OPERANDS) or any(u.startswith("drop") for u in rule.unaries()),
        uses_decay=bool(operands & DECAY_OPERANDS),
    )
