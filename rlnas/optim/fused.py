"""Compile a rule into one element-wise function for ``torch.compile``: a whole step in one kernel.

The multi-tensor code of :mod:`rlnas.optim.codegen` makes one pass over memory per function of
the rule; ``torch.compile`` (inductor) fuses the element-wise function written here into one loop
per tensor: the running averages' update, every function of the rule and the weights' update
read each input once and write each output once. It is what ``fused=True`` runs
(:class:`~rlnas.optim.runtime.CompiledRuleOptimizer`); compiling takes seconds per rule (cached on
disk by torch), so it pays for long training runs, not for the short ones of a search.

The function ``<name>(w, g, s, d, h, table)`` updates one tensor: ``w`` the weights and ``g`` their
gradient, ``s`` the running averages of ``state_names`` (updated in place), ``d`` the random draws
of ``draws`` (drawn before, in the order the multi-tensor code draws them, so the same seed draws
the same numbers in both: the fast draws' 16-bit words, turned into a mask or looked up in the
Gaussian ``table`` inside the loop, or the exact draws' values), ``h`` the step's scalars in the
order of :data:`~rlnas.optim.runtime.FUSED_SCALARS`. The rule reads
exactly what the multi-tensor code reads; only the rounding may differ.
"""
from __future__ import annotations

from dataclasses import dataclass

from rlnas.optim.codegen import averages_read, live_reads
from rlnas.optim.rule import RANDOM_OPERANDS, Rule
from rlnas.optim.runtime import FUSED_SCALARS

OPERANDS = {
    "g": "g", "g^2": "g * g", "g^3": "g * g * g", "m": "m * inv_bc1", "v": "v * inv_bc2", "gamma": "gamma * inv_bc3",
    "sign(g)": "torch.sign(g)", "sign(m)": "torch.sign(m)", "1": "torch.ones_like(lr)",
    "2": "torch.full_like(lr, 2.0)", "1e-4w": "1e-4 * w", "1e-3w": "1e-3 * w", "1e-2w": "1e-2 * w",
    "1e-1w": "1e-1 * w", "adam": "(m * inv_bc1) / (torch.sqrt(v * inv_bc2) + delta)",
    "rmsprop": "g / (torch.sqrt(v * inv_bc2) + delta)", "ld": "ld", "cd": "cd", "rd": "rd",
}
"""Bias corrections are multiplications by ``1 / bc`` (a scalar of the step): a division per element
costs as much as a square root on the CPU."""
UNARY = {
    "identity": "{}", "neg": "(-{})", "exp": "torch.exp({})", "log": "torch.log(torch.abs({}))",
    "sqrt": "torch.sqrt(torch.abs({}))", "sign": "torch.sign({})", "clip_1e-5": "torch.clamp({}, -1e-5, 1e-5)",
    "clip_1e-4": "torch.clamp({}, -1e-4, 1e-4)", "clip_1e-3": "torch.clamp({}, -1e-3, 1e-3)",
}
BINARY = {"add": "{} + {}", "sub": "{} - {}", "mul": "{} * {}", "div": "{} / ({} + delta)",
          "pow": "torch.pow({}, {})", "keep": "{}"}
STATE_UPDATES = {
    "m": "m.lerp_(g, one_minus_beta1)",
    "v": "v.mul_(beta2).add_(g * g * one_minus_beta2)",
    "gamma": "gamma.mul_(beta3).add_(g * g * g * one_minus_beta3)",
}


@dataclass(frozen=True)
class FusedSource:
    """The source of ``def <name>(w, g, s, d, h, table)`` and the draws it needs, in order.

    ``draws``: ``("mask", p)`` (keep with probability ``1 − p``) or ``("gauss", scalar)`` (Gaussian
    noise of standard deviation ``noise_std`` or ``anneal_std``), as ``Draws.for_fused`` draws them.
    """

    name: str
    source: str
    draws: tuple[tuple[str, str], ...]


def fused_source(rule: Rule, name: str = "fused_update") -> FusedSource:
    """The element-wise function of ``rule`` (see the module docstring)."""
    reads = live_reads(rule)
    averages = averages_read({op for pairs in reads.values() for op, _ in pairs})
    lines = [f"{', '.join(FUSED_SCALARS)} = h.unbind(0)"]
    if averages:
        lines.append(f"({', '.join(averages)}{',' if len(averages) == 1 else ''}) = s")
        lines += [STATE_UPDATES[n] for n in averages]
    draws: list[tuple[str, str]] = []
    values: dict[str, str] = {}

    def operand(op: str) -> str:
        if op not in values:
            if op in RANDOM_OPERANDS:  # drawn where the multi-tensor code draws it: at its first read
                std = "noise_std" if op == "eps" else "anneal_std"
                draws.append(("gauss", std))
                values[op] = f"_gauss(d[{len(draws) - 1}], {std}, table)"
            else:
                values[op] = f"({OPERANDS[op]})"
        return values[op]

    def unary(token: str, x: str) -> str:
        if token.startswith("drop"):
            draws.append(("mask", token.partition("_")[2]))
            return f"({x} * _mask(d[{len(draws) - 1}], {draws[-1][1]}))"
        return UNARY[token].format(x)

    for k, pairs in reads.items():
        binary = rule.iterations[k - 1].binary
        args = [unary(u, operand(op)) for op, u in pairs]
        lines.append(f"o{k} = {BINARY[binary].format(*args)}")
        values[f"o{k}"] = f"o{k}"
    lines.append(f"w.sub_(lr * o{max(reads)})")
    body = "".join(f"    {line}\n" for line in lines)
    return FusedSource(name, f"def {name}(w, g, s, d, h, table):\n    # {rule}\n{body}", tuple(draws))
