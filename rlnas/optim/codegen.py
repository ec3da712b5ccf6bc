"""Compile a rule into the source of a multi-tensor (``torch._foreach_*``) update function.

The function has the signature and meaning described in :mod:`rlnas.optim.runtime` and runs in
that module's namespace (``torch``, ``_fill_``, ``_s1``, ...; random operands through its ``rng``
argument, a :class:`~rlnas.optim.runtime.Draws`). Every value of the rule
is known, before running it, to be either a list of tensors (anything reading ``g``, ``w``, the
running averages or noise) or one float (constants and decays), so the generated code is
straight-line: about one ``torch._foreach_*`` call (or a float expression) per function of the
rule, and nothing is computed that the update does not depend on (the second argument of
``keep``, iterations whose output nothing reads, and the running averages and random draws only
they would need: :func:`live_reads`). Five things keep memory traffic down, as in torch's own Adam:

* a fresh temporary is overwritten in place (``torch._foreach_*_``) at its last use;
* a function of a list that must stay intact (``g``, ``m``, ``v``, ...) is written into its
  scratch list in one pass, tensor by tensor, where the tensors are large (``_into_``);
* a final quotient or product of two lists is not formed: the optimizer applies it to the
  weights with one ``addcdiv_`` / ``addcmul_`` (and a list added to it last, with one ``add_``);
* a final float factor is not multiplied in: it joins the learning rate;
* a positive scalar factor of a list (the bias corrections of ``m``, ``v``, ``gamma``, ``adam``,
  ``rmsprop``, the factor of ``1e-4w`` ... ``1e-1w``) is carried along as a float expression
  instead of being multiplied in, and is applied where a function needs it, at the latest by the
  learning rate of the final update.
"""
from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, replace

from rlnas.optim.rule import DECAY_OPERANDS, RANDOM_OPERANDS, Rule

T, S = "tensors", "scalar"


@dataclass(frozen=True)
class Value:
    """A value of the generated code.

    ``code`` is a variable (or a float expression for a scalar); for tensors the value is
    ``code × scale`` with ``scale`` a positive float expression (``None``: 1). ``nonneg``: known
    to be >= 0; ``fresh``: a temporary list the function owns and may overwrite.
    """

    code: str
    kind: str
    nonneg: bool = False
    fresh: bool = False
    scale: str | None = None


@dataclass(frozen=True)
class CompiledSource:
    """The source of ``def <name>(w, g, s, h, rng, ws)`` and what the optimizer must provide for it."""

    name: str
    source: str
    rule_text: str
    state_names: tuple[str, ...]
    uses_random: bool
    uses_decay: bool
    updated_by_rule: tuple[str, ...] = ()
    """Running averages the function updates itself (``_adam_operand_``); the optimizer, the others."""


STATE_READERS = {"m": ("m", "sign(m)", "adam"), "v": ("v", "adam", "rmsprop"), "gamma": ("gamma",)}


def averages_read(operands: set[str]) -> tuple[str, ...]:
    """The running averages (of ``m v gamma``, in that order) that code reading ``operands`` needs."""
    return tuple(n for n, readers in STATE_READERS.items() if operands & set(readers))


def _times(a: str | None, b: str | None) -> str | None:
    """The product of two scale expressions (``None`` is 1)."""
    if a is None or b is None:
        return a or b
    return f"({a} * {b})"


def _ratio(a: str | None, b: str | None) -> str:
    """``a / b`` of two scale expressions (``None`` is 1), as a float expression."""
    return f"(({a or '1.0'}) / ({b or '1.0'}))"


class _Emitter:
    """Writes the update function line by line; ``remaining`` counts each temporary's uses to come."""

    def __init__(self, uses: dict[str, int]) -> None:
        self.lines: list[str] = []
        self.values: dict[str, Value] = {}
        self.uses = uses
        self.remaining: dict[str, int] = {}
        self.holders: dict[int, str] = {}
        """Scratch slot ``k`` (``ws(k)``) -> the temporary it holds now."""
        self.dying: set[str] = set()
        """Temporaries read for the last time by the function being emitted."""
        self.drops = 0
        self.kernel_operand: str | None = None
        """``adam`` or ``rmsprop``: the operand computed (with the running averages) by ``_adam_operand_``."""
        self.fusable: tuple[str, str, str, str, int, int] | None = None
        """The last quotient / product of two lists: (result, "div" | "mul", a, b, first and end line of its code)."""
        self.scaled: tuple[str, str, str, int, int] | None = None
        """The last list times a float: (result, list, float expression, first and end line of its code)."""
        self.summed: tuple[str, str, str, int] | None = None
        """The last sum of two lists in place, ``result += factor · other``: (result, other, factor, line)."""

    def line(self, text: str) -> None:
        self.lines.append(f"    {text}")

    def new(self, var: str, op: str, first: str, rest: str = "", *, nonneg: bool = False, uses: int = 1,
            scale: str | None = None, keep: tuple[str, ...] = ()) -> Value:
        """A fresh tensor list ``var`` used ``uses`` times: ``op(first, rest)`` in a scratch list.

        Scratch lists (``ws(k)``, shaped like the weights) are kept by the optimizer from step to
        step, so no step allocates memory (fresh allocations of large tensors cost page faults
        once freed memory goes back to the system). ``op`` is a torch function applied to ``first``
        (by :func:`~rlnas.optim.runtime._into_`: in one pass where the tensors are large), or
        ``gauss`` (noise of std ``first``), ``full`` (the float ``first``) or ``rpow`` (``first``
        to the power of the list ``rest``). ``keep``: temporaries a later line still reads, whose slots
        must not be taken even where this call reads them.
        """
        slot = self._free_slot(f"{first}{rest}", keep)
        self.holders[slot] = var
        self.line(f"{var} = ws({slot})")
        if op == "gauss":
            self.line(f"rng.gauss_({var}, {first})")
        elif op == "full":
            self.line(f"_fill_({var}, {first})")
        elif op == "rpow":
            self.line(f"_rpow_({var}, {first}, {rest})")
        else:
            self.line(f'_into_("{op}", {var}, {first}{rest})')
        self.remaining[var] = uses
        return Value(var, T, nonneg, True, scale)

    def _free_slot(self, reads: str, keep: tuple[str, ...] = ()) -> int:
        """A scratch slot whose temporary nobody reads any more (the lowest), else a new slot.

        A temporary that the function being emitted reads for the last time gives its slot only
        to a call that reads it (``reads``): that call's output overwrites it element by element
        (``_into_``), which is exact; a later line of the function may still need it. Kept: the
        operands and result of the last product of two lists (the final update may still take
        them: :func:`compile_source`).
        """
        pinned = (set(self.fusable[0:1] + self.fusable[2:4]) if self.fusable else set()) | set(keep)
        for slot, holder in sorted(self.holders.items()):
            if (self.remaining.get(holder, 0) == 0 and holder not in pinned
                    and (holder not in self.dying or _mentions(reads, holder))):
                return slot
        return len(self.holders)

    def product(self, var: str, op: str, a: Value, b: Value, own_a: bool, uses: int, scale: str | None,
                b_code: str | None = None, nonneg: bool = False) -> Value:
        """``a op b`` (``op``: mul or div) of two lists, noted as fusable into the final update."""
        b_code = b_code or b.code
        start = len(self.lines)
        if own_a:
            self.line(f"torch._foreach_{op}_({a.code}, {b_code})")
            result = self.reuse(a, uses, nonneg, scale=scale)
        else:
            result = self.new(var, op, a.code, f", {b_code}", nonneg=nonneg, uses=uses, scale=scale)
        self.fusable = (result.code, op, a.code, b_code, start, len(self.lines))
        return result

    def owned(self, x: Value) -> bool:
        """Consume one use of ``x``; True when that was its last use of a fresh temporary."""
        if not x.fresh:
            return False
        self.remaining[x.code] -= 1
        if self.remaining[x.code] == 0:
            self.dying.add(x.code)
        return self.remaining[x.code] == 0

    def reuse(self, x: Value, uses: int, nonneg: bool = False, scale: str | None = None) -> Value:
        """``x``'s storage now holds a new value used ``uses`` times."""
        self.remaining[x.code] = uses
        return Value(x.code, T, nonneg, True, scale)

    def plain(self, var: str, x: Value, own: bool) -> Value:
        """``x`` (which has a scale) with its scale multiplied in, in a list this operation owns."""
        if own:
            self.line(f"torch._foreach_mul_({x.code}, {x.scale})")
            return self.reuse(x, 1, x.nonneg)
        return self.new(var, "mul", x.code, f", {x.scale}", nonneg=x.nonneg)

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
        averages = {"m": "bc1", "v": "bc2", "gamma": "bc3"}
        if op in averages:  # the running average read in place, its bias correction carried as a scale
            return Value(f's["{op}"]', T, op == "v", False, f'(1.0 / h["{averages[op]}"])')
        if op in ("g^2", "g^3"):  # torch's pow by 2 or 3 is a product, in one pass
            return self.new(f"g_{op[-1]}", "pow", "g", f", {op[-1]}", nonneg=op == "g^2", uses=uses)
        if op in ("sign(g)", "sign(m)"):
            source = "g" if op == "sign(g)" else 's["m"]'
            return self.new(f"sign_{op[5]}", "sign", source, uses=uses)
        if op in ("eps", "noise"):
            std = "noise_std" if op == "eps" else "anneal_std"
            return self.new(op, "gauss", f'h["{std}"]', uses=uses)
        if op.endswith("w"):  # 1e-4w ... 1e-1w: the weights with a positive scale
            return Value("w", T, False, False, op[:-1])
        if op == self.kernel_operand:  # the first line of the function: it updates the running averages
            slot = self._free_slot("")
            self.holders[slot], self.remaining[op] = op, uses
            self.line(f"{op} = ws({slot})")
            dummy = "None"
            if op == "rmsprop":  # scratch for the kernel's running average of g (β1 = 0), free again after
                dummy_slot = self._free_slot("")
                self.holders[dummy_slot], self.remaining[f"{op}_m"] = f"{op}_m", 0
                dummy = f"ws({dummy_slot})"
            self.line(f'_adam_operand_({op}, "{op}", g, s, h, {dummy})')
            return Value(op, T, False, True)
        if op in ("adam", "rmsprop"):  # m̂ / (sqrt(v̂) + δ) = m / (sqrt(v) + δ·sqrt(bc2)) · sqrt(bc2) / bc1
            self.new(f"{op}_denom", "sqrt", 's["v"]', uses=0)
            self.line(f'torch._foreach_add_({op}_denom, h["delta"] * h["bc2"] ** 0.5)')
            numerator, scale = (('s["m"]', '(h["bc2"] ** 0.5 / h["bc1"])') if op == "adam"
                                else ("g", '(h["bc2"] ** 0.5)'))
            return self.product(op, "div", Value(numerator, T), Value(f"{op}_denom", T), False, uses, scale)
        raise KeyError(op)  # o1, o2, ... are defined when their iteration is emitted

    # ------------------------------------------------------------ functions
    def unary(self, var: str, name: str, x: Value) -> Value:
        self.dying.clear()
        if name == "identity":
            return x
        if x.kind == S:
            return self._unary_scalar(var, name, x)
        own = self.owned(x)
        kind, _, level = name.partition("_")
        # sqrt, sign and drop commute with a positive scale: sqrt(|x·s|) = sqrt(|x|)·sqrt(s)
        if kind == "sqrt":
            scale = None if x.scale is None else f"(({x.scale}) ** 0.5)"
            return self._in_place(var, x, own, [] if x.nonneg else ["abs"], "sqrt", True, scale)
        if kind == "sign":
            return self._in_place(var, x, own, [], "sign", x.nonneg, None)
        if kind == "drop":  # x times a fresh 0/1 mask: as a product, it can join the final update
            self.drops += 1
            mask = f"{var}_mask"
            self.line(f"{mask} = rng.mask(w, {level}, {self.drops})")
            return self.product(var, "mul", x, Value(mask, T, True), own, 1, x.scale, nonneg=x.nonneg)
        if x.scale is not None:  # neg, exp, log, clip need the value itself
            x, own = self.plain(var, x, own), True
        if kind in ("neg", "exp"):
            return self._in_place(var, x, own, [], kind, kind == "exp", None)
        if kind == "log":
            return self._in_place(var, x, own, [] if x.nonneg else ["abs"], "log", False, None)
        if own:
            self.line(f"torch._foreach_clamp_min_({x.code}, -{level})")
            target = self.reuse(x, 1, x.nonneg)
        else:
            target = self.new(var, "clamp_min", x.code, f", -{level}", nonneg=x.nonneg)
        self.line(f"torch._foreach_clamp_max_({target.code}, {level})")
        return target

    def _in_place(self, var: str, x: Value, own: bool, first: list[str], op: str, nonneg: bool,
                  scale: str | None) -> Value:
        """``op`` (after the element-wise ``first`` ones) on x's storage if owned, else on a new list."""
        ops = [*first, op]
        if own:
            for name in ops:
                self.line(f"torch._foreach_{name}_({x.code})")
            return self.reuse(x, 1, nonneg, scale)
        value = self.new(var, ops[0], x.code, nonneg=nonneg, scale=scale)
        for name in ops[1:]:
            self.line(f"torch._foreach_{name}_({var})")
        return value

    def _unary_scalar(self, var: str, name: str, x: Value) -> Value:
        arg = x.code
        kind, _, level = name.partition("_")
        if kind == "drop":
            value = self.new(var, "full", arg, nonneg=x.nonneg)
            self.line(f"rng.drop_({var}, {level})")
            return value
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

    def keep(self, a: Value, uses: int) -> Value:
        """``keep(a, b)`` = ``a`` (``b`` is never computed)."""
        self.dying.clear()
        self.owned(a)
        if a.kind == T and a.fresh:  # the output shares a's storage: count its uses there too
            self.remaining[a.code] += uses
            return replace(a, fresh=True)
        return replace(a, fresh=False)

    def binary(self, var: str, name: str, a: Value, b: Value, uses: int) -> Value:
        self.dying.clear()
        own_a, own_b = self.owned(a), self.owned(b)
        if a.kind == S and b.kind == S:
            expr = {"add": f"{a.code} + {b.code}", "sub": f"{a.code} - {b.code}", "mul": f"{a.code} * {b.code}",
                    "div": f'_s2(torch.div, {a.code}, {b.code} + h["delta"])',
                    "pow": f"_s2(torch.pow, {a.code}, {b.code})"}[name]
            self.line(f"{var} = {expr}")
            return Value(var, S)
        return {"add": self._add_sub, "sub": self._add_sub, "mul": self._mul, "div": self._div,
                "pow": self._pow}[name](var, name, a, b, own_a, own_b, uses)

    def _add_sub(self, var: str, name: str, a: Value, b: Value, own_a: bool, own_b: bool, uses: int) -> Value:
        if a.kind == T and b.kind == T:  # a·sa ± b·sb = sa·(a ± (sb/sa)·b)
            factor = "1.0" if a.scale == b.scale else _ratio(b.scale, a.scale)
            alpha = "" if a.scale == b.scale else f", alpha={factor}"
            if own_a:
                self.line(f"torch._foreach_{name}_({a.code}, {b.code}{alpha})")
                self.summed = (a.code, b.code, factor if name == "add" else f"-{factor}", len(self.lines) - 1)
                return self.reuse(a, uses, scale=a.scale)
            if name == "add" and own_b:
                factor = "1.0" if a.scale == b.scale else _ratio(a.scale, b.scale)
                alpha = "" if a.scale == b.scale else f", alpha={factor}"
                self.line(f"torch._foreach_add_({b.code}, {a.code}{alpha})")
                self.summed = (b.code, a.code, factor, len(self.lines) - 1)
                return self.reuse(b, uses, scale=b.scale)
            return self.new(var, name, a.code, f", {b.code}{alpha}", uses=uses, scale=a.scale)
        if a.kind == T:  # a·sa ± c = sa·(a ± c/sa)
            if own_a:
                self.line(f"torch._foreach_{name}_({a.code}, {_ratio(b.code, a.scale)})")
                return self.reuse(a, uses, scale=a.scale)
            return self.new(var, name, a.code, f", {_ratio(b.code, a.scale)}", uses=uses, scale=a.scale)
        if name == "add":  # c + b·sb = sb·(b + c/sb)
            if own_b:
                self.line(f"torch._foreach_add_({b.code}, {_ratio(a.code, b.scale)})")
                return self.reuse(b, uses, scale=b.scale)
            return self.new(var, "add", b.code, f", {_ratio(a.code, b.scale)}", uses=uses, scale=b.scale)
        negated = f"-({b.scale})" if b.scale else "-1.0"  # c − b·sb = (−sb)·b + c
        if own_b:
            self.line(f"torch._foreach_mul_({b.code}, {negated})")
            target = self.reuse(b, uses)
        else:
            target = self.new(var, "mul", b.code, f", {negated}", uses=uses)
        self.line(f"torch._foreach_add_({target.code}, {a.code})")
        return target

    def _mul(self, var: str, name: str, a: Value, b: Value, own_a: bool, own_b: bool, uses: int) -> Value:
        if a.kind == T and b.kind == T:
            scale = _times(a.scale, b.scale)
            if own_b and not own_a:
                a, b, own_a = b, a, True
            return self.product(var, "mul", a, b, own_a, uses, scale)
        tensors, own, factor = (a, own_a, b.code) if a.kind == T else (b, own_b, a.code)
        factor = factor if tensors.scale is None else f"{factor} * ({tensors.scale})"
        start = len(self.lines)
        if own:
            self.line(f"torch._foreach_mul_({tensors.code}, {factor})")
            result = self.reuse(tensors, uses)
        else:
            result = self.new(var, "mul", tensors.code, f", {factor}", uses=uses)
        self.scaled = (result.code, tensors.code, factor, start, len(self.lines))
        return result

    def _div(self, var: str, name: str, a: Value, b: Value, own_a: bool, own_b: bool, uses: int) -> Value:
        if b.kind == S:  # a·sa / (c + δ)
            divisor = f'(({b.code} + h["delta"]) / ({a.scale}))' if a.scale else f'({b.code} + h["delta"])'
            if own_a:
                self.line(f"torch._foreach_div_({a.code}, {divisor})")
                return self.reuse(a, uses)
            return self.new(var, "div", a.code, f", {divisor}", uses=uses)
        # b·sb + δ = sb·(b + δ/sb)
        delta = 'h["delta"]' if b.scale is None else f'h["delta"] / ({b.scale})'
        if own_b and b.code != a.code:  # (b may share a's storage: then a must stay intact)
            self.line(f"torch._foreach_add_({b.code}, {delta})")
            divisor = b.code
        else:
            # the quotient still reads a after this line: a (b's storage too, in x / x) keeps its slot
            divisor = self.new(f"{var}_divisor", "add", b.code, f", {delta}", uses=0, keep=(a.code,)).code
        if a.kind == S:  # c / (sb·d) = (c/sb) / d
            factor = _ratio(a.code, b.scale)
            if divisor == b.code:
                self.line(f"torch._foreach_reciprocal_({b.code})")
                self.line(f"torch._foreach_mul_({b.code}, {factor})")
                return self.reuse(b, uses)
            self.line(f"torch._foreach_reciprocal_({divisor})")
            self.line(f"torch._foreach_mul_({divisor}, {factor})")
            self.remaining[divisor] = uses
            return Value(divisor, T, False, True)
        scale = _ratio(a.scale, b.scale) if (a.scale or b.scale) else None
        return self.product(var, "div", a, b, own_a, uses, scale, divisor)

    def _pow(self, var: str, name: str, a: Value, b: Value, own_a: bool, own_b: bool, uses: int) -> Value:
        # pow(x, x): one value in one storage (1e-3w and 1e-2w share w's storage, with different scales)
        shared = a.kind == T and b.kind == T and a.code == b.code and a.scale == b.scale
        if b.kind == T and b.scale:
            b = self.plain(f"{var}_exponent", b, own_b)
            if shared:  # the base is that value too, its scale now multiplied in (maybe in x's own storage)
                a, own_a = b, True
        if a.kind == S:
            return self.new(var, "rpow", a.code, b.code, uses=uses)
        if a.scale:
            a, own_a = self.plain(var, a, own_a), True
        if own_a:
            self.line(f"torch._foreach_pow_({a.code}, {b.code})")
            return self.reuse(a, uses)
        return self.new(var, "pow", a.code, f", {b.code}", uses=uses)


def _mentions(line: str, code: str) -> bool:
    """Whether a line of generated code reads or writes the list ``code`` (a name or ``s["m"]``)."""
    return re.search(rf'(?<![\w"]){re.escape(code)}(?![\w"])', line) is not None


def _fusable_sum(emit: _Emitter, code: str) -> bool:
    """Whether the update ``code`` is a quotient / product of two lists plus (or minus) another list,
    added last, with nothing in between touching the three lists: then the weights take the
    other list through one ``add_`` and then the quotient / product through one ``addcdiv_`` /
    ``addcmul_``, and neither the quotient nor the sum is formed. (The other list may be the
    weights, read before they change; the quotient's may not.)"""
    if not (emit.fusable and emit.summed and emit.fusable[0] == code and emit.summed[0] == code):
        return False
    _, _, a, b, _, end = emit.fusable
    other, line = emit.summed[1], emit.summed[3]
    return (line == len(emit.lines) - 1 and other not in (code, a, b) and "w" not in (a, b)
            and not any(_mentions(text, name) for text in emit.lines[end:line] for name in (code, a, b)))


def live_reads(rule: Rule) -> dict[int, tuple[tuple[str, str], ...]]:
    """The (operand, unary) pairs that each iteration the update depends on reads, by iteration (from 1).

    ``keep(a, b)`` does not read ``b``, and an iteration whose output nothing reads is left out
    (only the last one's output is the update): their code would compute values nobody uses.
    """
    reads: dict[int, tuple[tuple[str, str], ...]] = {}
    wanted = {len(rule)}
    for k in range(len(rule), 0, -1):
        if k not in wanted:
            continue
        it = rule.iterations[k - 1]
        reads[k] = ((it.op1, it.u1),) if it.binary == "keep" else ((it.op1, it.u1), (it.op2, it.u2))
        wanted |= {int(op[1:]) for op, _ in reads[k] if op.startswith("o") and op[1:].isdigit()}
    return dict(sorted(reads.items()))


def compile_source(rule: Rule, name: str = "update") -> CompiledSource:
    """The source of the update function of ``rule`` (see the module docstring)."""
    reads = live_reads(rule)
    uses = Counter(op for pairs in reads.values() for op, _ in pairs)
    emit = _Emitter(uses)
    operands = {op for pairs in reads.values() for op, _ in pairs}
    # the adam (else rmsprop) operand comes first, with the update of the running averages it reads
    emit.kernel_operand = next((op for op in ("adam", "rmsprop") if op in operands), None)
    if emit.kernel_operand:
        emit.operand(emit.kernel_operand)
    out = None
    for k in reads:
        it = rule.iterations[k - 1]
        a = emit.unary(f"a{k}", it.u1, emit.operand(it.op1))
        if it.binary == "keep":
            out = emit.keep(a, uses[f"o{k}"])
        else:
            b = emit.unary(f"b{k}", it.u2, emit.operand(it.op2))
            out = emit.binary(f"o{k}", it.binary, a, b, uses[f"o{k}"])
        emit.values[f"o{k}"] = out
    assert out is not None
    code, scale = out.code, out.scale or "1.0"
    # A final float factor is not multiplied in: it joins the learning rate of the update.
    if out.kind == T and emit.scaled and emit.scaled[0] == code and emit.scaled[4] == len(emit.lines):
        del emit.lines[emit.scaled[3]:]
        code, scale = emit.scaled[1], emit.scaled[2]
    if out.kind == S:
        result = f"float({out.code}), 1.0"
    elif emit.fusable and emit.fusable[0] == code and emit.fusable[5] == len(emit.lines):
        del emit.lines[emit.fusable[4]:]  # the final quotient / product goes into the update of the weights
        result = f'("{emit.fusable[1]}", {emit.fusable[2]}, {emit.fusable[3]}), {scale}'
    elif _fusable_sum(emit, code):
        assert emit.fusable is not None and emit.summed is not None
        _, op, a, b, start, end = emit.fusable
        _, other, factor, line = emit.summed
        del emit.lines[line]  # the final quotient / product plus another list: two updates of the weights
        del emit.lines[start:end]
        result = f'("{op}", {a}, {b}, {other}, {factor}), {scale}'
    else:
        result = f"{code}, {scale}"
    body = "".join(f"{line}\n" for line in emit.lines)
    source = (f"def {name}(w, g, s, h, rng, ws):\n"
              f"    # {rule}\n"
              f"{body}"
              f"    return {result}\n")
    unaries = {u for pairs in reads.values() for _, u in pairs}
    return CompiledSource(
        name=name, source=source, rule_text=str(rule),
        state_names=averages_read(operands),
        uses_random=bool(operands & RANDOM_OPERANDS) or any(u.startswith("drop") for u in unaries),
        uses_decay=bool(operands & DECAY_OPERANDS),
        updated_by_rule={"adam": ("m", "v"), "rmsprop": ("v",), None: ()}[emit.kernel_operand],
    )
