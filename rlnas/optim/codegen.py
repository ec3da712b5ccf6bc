"""Compile a rule into the source of a multi-tensor (``torch._foreach_*``) update function.

The function has the signature and meaning described in :mod:`rlnas.optim.runtime` and runs in
that module's namespace (``torch``, ``_drop``, ``_gauss``, ``_s1``, ...). Every value of the rule
is known, before running it, to be either a list of tensors (anything reading ``g``, ``w``, the
running averages or noise) or one float (constants and decays), so the generated code is
straight-line: one ``torch._foreach_*`` call (or a float expression) per function of the rule,
and nothing is computed that the rule does not read.
"""
from __future__ import annotations

from dataclasses import dataclass

from rlnas.optim.rule import DECAY_OPERANDS, RANDOM_OPERANDS, Rule

T, S = "tensors", "scalar"


@dataclass(frozen=True)
class Value:
    """A value of the generated code: a variable or expression, its kind, and whether it is >= 0."""

    code: str
    kind: str
    nonneg: bool = False


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
    def __init__(self) -> None:
        self.lines: list[str] = []
        self.values: dict[str, Value] = {}

    def let(self, var: str, expr: str, kind: str = T, nonneg: bool = False) -> Value:
        self.lines.append(f"    {var} = {expr}")
        return Value(var, kind, nonneg)

    # ------------------------------------------------------------ operands
    def operand(self, op: str) -> Value:
        if op not in self.values:
            self.values[op] = self._define(op)
        return self.values[op]

    def _define(self, op: str) -> Value:
        sqrt_v = 'torch._foreach_add(torch._foreach_sqrt({v}), h["delta"])'
        if op == "g":
            return Value("g", T)
        if op == "g^2":
            return self.let("g_2", "torch._foreach_mul(g, g)", nonneg=True)
        if op == "g^3":
            return self.let("g_3", f"torch._foreach_mul({self.operand('g^2').code}, g)")
        if op == "m":
            return self.let("m_hat", 'torch._foreach_div(s["m"], h["bc1"])')
        if op == "v":
            return self.let("v_hat", 'torch._foreach_div(s["v"], h["bc2"])', nonneg=True)
        if op == "gamma":
            return self.let("gamma_hat", 'torch._foreach_div(s["gamma"], h["bc3"])')
        if op == "sign(g)":
            return self.let("sign_g", "torch._foreach_sign(g)")
        if op == "sign(m)":
            return self.let("sign_m", 'torch._foreach_sign(s["m"])')
        if op in ("1", "2"):
            return Value(f"{op}.0", S, True)
        if op == "eps":
            return self.let("eps", '_gauss(g, h["noise_std"], gen)')
        if op == "noise":
            return self.let("noise", '_gauss(g, h["anneal_std"], gen)')
        if op.endswith("w"):
            return self.let(f"w_{op[:-1].replace('-', '_')}", f"torch._foreach_mul(w, {op[:-1]})")
        if op == "adam":
            m, v = self.operand("m").code, self.operand("v").code
            return self.let("adam", f"torch._foreach_div({m}, {sqrt_v.format(v=v)})")
        if op == "rmsprop":
            v = self.operand("v").code
            return self.let("rmsprop", f"torch._foreach_div(g, {sqrt_v.format(v=v)})")
        if op in DECAY_OPERANDS:
            return Value(f'h["{op}"]', S, True)
        raise KeyError(op)  # o1, o2, ... are defined when their iteration is emitted

    # ------------------------------------------------------------ functions
    def unary(self, var: str, name: str, x: Value) -> Value:
        if name == "identity":
            return x
        if x.kind == S:
            return self._unary_scalar(var, name, x)
        arg = x.code
        if name == "neg":
            return self.let(var, f"torch._foreach_neg({arg})")
        if name == "exp":
            return self.let(var, f"torch._foreach_exp({arg})", nonneg=True)
        if name in ("log", "sqrt"):
            inner = arg if x.nonneg else f"torch._foreach_abs({arg})"
            return self.let(var, f"torch._foreach_{name}({inner})", nonneg=name == "sqrt")
        if name == "sign":
            return self.let(var, f"torch._foreach_sign({arg})", nonneg=x.nonneg)
        kind, _, level = name.partition("_")
        if kind == "clip":
            return self.let(var, f"torch._foreach_clamp_max(torch._foreach_clamp_min({arg}, -{level}), {level})",
                            nonneg=x.nonneg)
        if kind == "drop":
            return self.let(var, f"_drop({arg}, {level}, gen)", nonneg=x.nonneg)
        raise KeyError(name)

    def _unary_scalar(self, var: str, name: str, x: Value) -> Value:
        arg = x.code
        if name == "neg":
            return self.let(var, f"-{arg}", S)
        if name in ("exp", "sign"):
            return self.let(var, f"_s1(torch.{name}, {arg})", S, name == "exp" or x.nonneg)
        if name in ("log", "sqrt"):
            return self.let(var, f"_s1(torch.{name}, abs({arg}))", S, name == "sqrt")
        kind, _, level = name.partition("_")
        if kind == "clip":
            return self.let(var, f"_s1(lambda a: a.clamp(-{level}, {level}), {arg})", S, x.nonneg)
        if kind == "drop":
            return self.let(var, f"_drop_scalar({arg}, {level}, w, gen)", T, x.nonneg)
        raise KeyError(name)

    def binary(self, var: str, name: str, a: Value, b: Value) -> Value:
        if name == "keep":
            return self.let(var, a.code, a.kind, a.nonneg)
        if a.kind == S and b.kind == S:
            expr = {"add": f"{a.code} + {b.code}", "sub": f"{a.code} - {b.code}", "mul": f"{a.code} * {b.code}",
                    "div": f'_s2(torch.div, {a.code}, {b.code} + h["delta"])',
                    "pow": f"_s2(torch.pow, {a.code}, {b.code})"}[name]
            return self.let(var, expr, S)
        if a.kind == T and b.kind == T:
            if name == "div":
                return self.let(var, f'torch._foreach_div({a.code}, torch._foreach_add({b.code}, h["delta"]))')
            return self.let(var, f"torch._foreach_{name}({a.code}, {b.code})")
        if a.kind == T:  # tensors (op) scalar
            if name == "div":
                return self.let(var, f'torch._foreach_div({a.code}, {b.code} + h["delta"])')
            return self.let(var, f"torch._foreach_{name}({a.code}, {b.code})")
        # scalar (op) tensors
        expr = {
            "add": f"torch._foreach_add({b.code}, {a.code})",
            "sub": f"torch._foreach_add(torch._foreach_neg({b.code}), {a.code})",
            "mul": f"torch._foreach_mul({b.code}, {a.code})",
            "div": f'torch._foreach_mul(torch._foreach_reciprocal(torch._foreach_add({b.code}, h["delta"])), {a.code})',
            "pow": f"torch._foreach_pow({a.code}, {b.code})",
        }[name]
        return self.let(var, expr)


def compile_source(rule: Rule, name: str = "update") -> CompiledSource:
    """The source of the update function of ``rule`` (see the module docstring)."""
    emit = _Emitter()
    out = None
    for k, it in enumerate(rule.iterations, 1):
        a = emit.unary(f"a{k}", it.u1, emit.operand(it.op1))
        b = emit.unary(f"b{k}", it.u2, emit.operand(it.op2))
        out = emit.binary(f"o{k}", it.binary, a, b)
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
