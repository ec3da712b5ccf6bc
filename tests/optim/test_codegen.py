"""The generated multi-tensor code against a plain element-wise reading of the rule."""
from __future__ import annotations

import re

import numpy as np
import pytest
import torch

from rlnas.optim import BINARY, UNARY, Iteration, Rule, RuleOptimizer, runtime
from rlnas.optim.codegen import compile_source, live_reads
from rlnas.optim.rule import RANDOM_OPERANDS
from rlnas.optim.runtime import decays
from rlnas.spaces.optimizer_rules import OptimizerRulesSpace

DELTA = 1e-8


def clipper(level: float):
    return lambda x: x.clamp(-level, level)


def reference_update(rule: Rule, w: torch.Tensor, grads: list[torch.Tensor], total: int) -> torch.Tensor:
    """The rule's update at step len(grads), computed from the definitions one value at a time."""
    b1, b2, b3 = 0.9, 0.999, 0.999
    m = v = y = torch.zeros_like(w)
    for g in grads:
        m, v, y = b1 * m + (1 - b1) * g, b2 * v + (1 - b2) * g * g, b3 * y + (1 - b3) * g ** 3
    t = len(grads)
    m_hat, v_hat, y_hat = m / (1 - b1 ** t), v / (1 - b2 ** t), y / (1 - b3 ** t)
    decay = decays(t, total, 0.5, 3)
    g = grads[-1]
    values = {
        "g": g, "g^2": g * g, "g^3": g ** 3, "m": m_hat, "v": v_hat, "gamma": y_hat, "sign(g)": torch.sign(g),
        "sign(m)": torch.sign(m), "1": torch.tensor(1.0, dtype=w.dtype), "2": torch.tensor(2.0, dtype=w.dtype),
        "1e-4w": 1e-4 * w, "1e-3w": 1e-3 * w, "1e-2w": 1e-2 * w, "1e-1w": 1e-1 * w,
        "adam": m_hat / (torch.sqrt(v_hat) + DELTA), "rmsprop": g / (torch.sqrt(v_hat) + DELTA),
        **{k: torch.tensor(x, dtype=w.dtype) for k, x in decay.items()},
    }
    unary = {
        "identity": lambda x: x, "neg": lambda x: -x, "exp": torch.exp, "log": lambda x: torch.log(x.abs()),
        "sqrt": lambda x: torch.sqrt(x.abs()), "sign": torch.sign,
        **{f"clip_{c}": clipper(float(c)) for c in ("1e-5", "1e-4", "1e-3")},
    }
    binary = {"add": torch.add, "sub": torch.sub, "mul": torch.mul, "div": lambda a, b: a / (b + DELTA),
              "pow": torch.pow, "keep": lambda a, b: a}
    out = None
    for k, it in enumerate(rule.iterations, 1):
        out = binary[it.binary](unary[it.u1](values[it.op1]), unary[it.u2](values[it.op2]))
        values[f"o{k}"] = out
    return out.expand_as(w)


def deterministic(rule: Rule) -> bool:
    return not (rule.operands() & RANDOM_OPERANDS) and not any(u.startswith("drop") for u in rule.unaries())


def close(a: torch.Tensor, b: torch.Tensor) -> bool:
    same_special = torch.equal(torch.isnan(a), torch.isnan(b)) and torch.equal(torch.isinf(a), torch.isinf(b))
    finite = torch.isfinite(a) & torch.isfinite(b)
    scale = b[finite].abs().max().item() if finite.any() else 1.0
    return same_special and bool(torch.allclose(a[finite], b[finite], rtol=1e-6, atol=1e-9 * max(1.0, scale)))


def check_rules(rules, gen: torch.Generator) -> None:
    for rule in rules:
        w0 = torch.randn(2, 5, generator=gen, dtype=torch.float64)
        grads = [torch.randn(2, 5, generator=gen, dtype=torch.float64) for _ in range(3)]
        p = torch.nn.Parameter(w0.clone())
        optimizer = RuleOptimizer([p], rule, lr=1.0, total_steps=6)
        for g in grads:
            before = p.detach().clone()
            p.grad = g.clone()
            optimizer.step()
        ours = before - p.detach()
        # w before the last step is what the weights operands read
        expected = reference_update(rule, before, grads, 6)
        expected = before - (before - expected)  # the same rounding as applying and measuring the step
        assert close(ours, expected), f"{rule}: {ours} vs {expected}"


@pytest.fixture(params=["multi-tensor", "tensor by tensor"])
def into_mode(request, monkeypatch):
    """Both ways ``_into_`` writes a function of a list into a scratch list: these tests' tensors
    are small (the multi-tensor way), and with the threshold at 0 every list goes tensor by tensor."""
    if request.param == "tensor by tensor":
        monkeypatch.setattr(runtime, "INTO_MIN_MEAN_ELEMENTS", 0)
    return request.param


def test_generated_code_computes_what_the_rule_says(into_mode):
    space = OptimizerRulesSpace(3)
    rng = np.random.default_rng(0)
    rules = (space.rule_of(space.sample(rng)) for _ in range(2000))
    check_rules([r for r in rules if deterministic(r)][:400], torch.Generator().manual_seed(0))


def test_scaled_running_averages_in_every_function(into_mode):
    # m, v, gamma, adam and rmsprop carry their bias correction as a factor: combine them with
    # every deterministic function and with each other, a plain list and a scalar, on both sides
    rng = np.random.default_rng(1)
    scaled, partners = ("m", "v", "gamma", "adam", "rmsprop"), ("m", "v", "adam", "g", "2", "ld")
    unary = [u for u in UNARY if not u.startswith("drop")]

    def pick(choices) -> str:
        return str(rng.choice(choices))

    rules = []
    for _ in range(300):
        first = Iteration(pick(scaled), pick(partners), pick(unary), pick(unary), pick(BINARY))
        second = Iteration(pick(("o1", *scaled)), pick(("o1", *partners)), pick(unary), pick(unary), pick(BINARY))
        rules.append(Rule((first, second)) if rng.random() < 0.5 else Rule((first,)))
    check_rules(rules, torch.Generator().manual_seed(1))


def test_shared_storage_is_never_overwritten_while_still_needed(into_mode):
    # keep() makes o1 share m's storage; m is used again later, o1 too: nothing may be overwritten early
    for text in ("keep(m, 1); exp(m) * o1", "keep(m, 1); o1 / m", "keep(sign(g), 1); o1 - sign(g); o2 + o1",
                 "m * m; keep(o1, o1); o2 / o1"):
        rule = OptimizerRulesSpace(len(text.split(";"))).rule_of(
            OptimizerRulesSpace(len(text.split(";"))).from_key(text))
        w = torch.nn.Parameter(torch.tensor([0.5, -1.0, 2.0], dtype=torch.float64))
        g = torch.tensor([0.3, -0.2, 0.1], dtype=torch.float64)
        before = w.detach().clone()
        w.grad = g.clone()
        RuleOptimizer([w], rule, lr=1.0).step()
        assert close(before - w.detach(), reference_update(rule, before, [g], 10)), text


@pytest.mark.parametrize("text", ["g^2 / g^2", "sign(g) / sign(g)", "g^3 / g^3", "sign(m) / sign(m)",
                                  "exp(g) * 1; o1 / o1", "keep(sign(g), 1); o1 / sign(g)", "pow(adam, adam)",
                                  "pow(rmsprop, rmsprop)", "v + v; pow(o1, o1)", "1e-1w + g; pow(o1, o1)",
                                  "keep(adam, 1); pow(o1, adam)", "pow(1e-3w, 1e-2w)", "pow(1e-2w, 1e-1w)"])
def test_a_value_divided_by_or_raised_to_itself(into_mode, text):
    # x / x is x / (x + delta): 0 where x is 0, not 1 (the divisor once took the numerator's scratch list);
    # pow(x, x) of a scaled x multiplied the scale in twice
    space = OptimizerRulesSpace(len(text.split(";")))
    rule = space.rule_of(space.from_key(text))
    w = torch.nn.Parameter(torch.tensor([0.5, -1.0, 2.0, 0.25], dtype=torch.float64))
    g = torch.tensor([0.0, 1e-5, 0.5, -0.3], dtype=torch.float64)
    before = w.detach().clone()
    w.grad = g.clone()
    RuleOptimizer([w], rule, lr=1.0).step()
    assert close(before - w.detach(), reference_update(rule, before, [g], 10)), text


def test_nothing_the_update_does_not_depend_on_is_computed():
    space = OptimizerRulesSpace(2)

    def compiled(text: str):
        return compile_source(space.rule_of(space.from_key(text)))

    def body(source: str) -> str:  # without the signature and the comment that quotes the rule
        return source.split("\n", 2)[2]

    # keep's second argument: neither sign nor log is computed, and only v is kept up to date
    best_found = compiled("keep(rmsprop, log(sign(g))); keep(o1, 1)")
    assert "sign" not in body(best_found.source) and "log" not in body(best_found.source)
    assert best_found.state_names == ("v",)
    # an iteration whose output nothing reads: no draws, no running averages
    dead = compiled("g + eps; keep(g, o1)")
    assert not dead.uses_random and dead.state_names == () and "rng." not in body(dead.source)
    assert compiled("drop(m, 0.5) * v; keep(sign(g), o1)").state_names == ()


def test_the_final_quotient_product_or_float_factor_goes_into_the_weights_update():
    space = OptimizerRulesSpace(2)
    texts = ("m / sqrt(v); keep(o1, 1)", "sign(g) * m; keep(o1, 1)", "sign(g) * ld; keep(o1, 1)",
             "adam * 2; keep(o1, 1)", "exp(g) / v; o1 * 2")
    for text in texts:
        source = compile_source(space.rule_of(space.from_key(text))).source.split("\n", 2)[2]
        for op in ("div", "mul"):
            assert f"_foreach_{op}_" not in source and f'_into_("{op}"' not in source, (text, source)
    # and each computes what the rule says (the first is Adam's direction)
    check_rules([space.rule_of(space.from_key(text)) for text in texts], torch.Generator().manual_seed(2))


def test_a_final_quotient_or_product_plus_a_list_updates_the_weights_twice_without_forming_either(into_mode):
    space = OptimizerRulesSpace(2)

    def rule(text: str) -> Rule:
        return space.rule_of(space.from_key(text if ";" in text else f"{text}; keep(o1, 1)"))

    fused = ("m / sqrt(v); o1 + g", "m / sqrt(v); o1 - g", "m / sqrt(v); g + o1", "m / v; o1 + sign(g)",
             "sign(g) * m; o1 - exp(g)", "g / sqrt(v); o1 + 1e-3w")
    for text in fused:
        source = compile_source(rule(text)).source
        assert '_into_("div"' not in source and '_into_("mul"' not in source, source
        assert 'return ("div"' in source or 'return ("mul"' in source, source
    # formed as written when the quotient's input changes before the sum (exp in place on
    # sign(g)), the list is the quotient itself, or the quotient is dropped first
    # ... and not when the quotient reads the weights (they change with the first update)
    drop = compile_source(rule("drop(adam, 0.1) + g")).source  # a dropout mask is a product too
    assert 'return ("mul", adam, a1_mask, g' in drop, drop
    unfused = ("sign(g) / v; o1 + exp(sign(g))", "adam + adam", "1e-2w / v; o1 + g")
    for text in unfused:
        assert "return (" not in compile_source(rule(text)).source, text
    check_rules([rule(text) for text in fused + unfused[:3]], torch.Generator().manual_seed(3))


def reference_with_drops(rule: Rule, w: torch.Tensor, g: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """The first step's update (of 6) of a rule with ``drop`` and no noise: the definitions one value at a
    time, each ``drop`` a fresh ``uniform_ >= p`` mask from ``gen``, drawn in the order the compiled
    code draws them (iteration by iteration, first argument first; none for what the update does
    not depend on)."""
    values = {}
    binary = {"add": torch.add, "sub": torch.sub, "mul": torch.mul, "div": lambda a, b: a / (b + DELTA),
              "pow": torch.pow, "keep": lambda a, b: a}
    plain = {"identity": lambda x: x, "neg": lambda x: -x, "exp": torch.exp, "log": lambda x: torch.log(x.abs()),
             "sqrt": lambda x: torch.sqrt(x.abs()), "sign": torch.sign,
             **{f"clip_{c}": clipper(float(c)) for c in ("1e-5", "1e-4", "1e-3")}}
    out = None
    for k, reads in live_reads(rule).items():
        it = rule.iterations[k - 1]
        args = []
        for op, unary in reads:
            if op.startswith("o"):
                x = values[op]
            else:  # the operand's value, from the reference of the rule keep(op, 1)
                x = reference_update(Rule((Iteration(op, "1", "identity", "identity", "keep"),)), w, [g], 6)
            if unary.startswith("drop"):
                x = x * torch.empty_like(w).uniform_(generator=gen).ge_(float(unary.split("_")[1]))
            else:
                x = plain[unary](x)
            args.append(x)
        out = args[0] if it.binary == "keep" else binary[it.binary](*args)
        values[f"o{k}"] = out
    return out.expand_as(w)


def test_a_temporary_no_longer_read_gives_its_scratch_list_to_a_later_one():
    space = OptimizerRulesSpace(2)

    def slots(text: str) -> set[str]:
        source = compile_source(space.rule_of(space.from_key(text))).source
        return set(re.findall(r"ws\((\d+)\)", source))

    # rmsprop's quotient overwrites its denominator; g^3 needs a second list, not a third
    assert slots("drop(rmsprop, 0.1) - sqrt(g^3); keep(o1, 1)") == {"0", "1"}
    # o1 = exp(g) · v is still read by the second iteration: exp(m) may not take its list
    assert slots("exp(g) * v; o1 - exp(m)") == {"0", "1"}
    # sign(g) is read twice: the second read comes after o1 is formed, in place on exp(g)'s list
    assert len(slots("exp(g) - sign(g); o1 * sign(g)")) == 2


@pytest.mark.parametrize("op", ["div", "sub", "pow"])
def test_into_may_overwrite_the_list_it_reads(into_mode, op):
    gen = torch.Generator().manual_seed(5)
    first = [torch.rand(3, generator=gen) + 0.5, torch.rand(2, 2, generator=gen) + 0.5]
    second = [torch.rand_like(x) + 0.5 for x in first]
    expected = [getattr(torch, op)(a, b) for a, b in zip(first, second)]
    runtime._into_(op, second, first, second)
    assert all(torch.equal(x, y) for x, y in zip(second, expected))


def test_rules_with_drops_compute_what_they_say_with_the_same_masks(into_mode):
    # exact draws from a seeded generator: the masks of the compiled code (products, fused into the
    # weights' update or not) are the reference's own, so the updates must agree element by element
    space = OptimizerRulesSpace(2)
    rng = np.random.default_rng(4)
    rules = []
    while len(rules) < 150:
        rule = space.rule_of(space.sample(rng))
        if any(u.startswith("drop") for u in rule.unaries()) and not rule.operands() & {"eps", "noise"}:
            rules.append(rule)
    for i, rule in enumerate(rules):
        gen = torch.Generator().manual_seed(i)
        w0 = torch.randn(2, 5, generator=gen, dtype=torch.float64)
        g = torch.randn(2, 5, generator=gen, dtype=torch.float64)
        p = torch.nn.Parameter(w0.clone())
        p.grad = g.clone()
        RuleOptimizer([p], rule, lr=1.0, seed=100 + i, exact_random=True, total_steps=6).step()
        ours = w0 - p.detach()
        expected = reference_with_drops(rule, w0, g, torch.Generator().manual_seed(100 + i))
        expected = w0 - (w0 - expected)
        assert close(ours, expected), f"{rule}: {ours} vs {expected}"
