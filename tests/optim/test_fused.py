"""fused=True: the element-wise function of a rule (rlnas.optim.fused), run through torch.compile,
against the multi-tensor code."""
from __future__ import annotations

import copy
import functools
import os
import shutil

import numpy as np
import pytest
import torch
from torch import nn

from rlnas.errors import ConfigError
from rlnas.optim import RuleOptimizer, runtime
from rlnas.optim.fused import fused_source
from rlnas.optim.rule import as_rule
from rlnas.spaces.optimizer_rules import OptimizerRulesSpace


@functools.cache
def compiling_works() -> bool:
    """Whether torch.compile works here (on the CPU it needs a C++ compiler and headers)."""
    if shutil.which(os.environ.get("CXX", "g++")) is None:
        return False
    try:
        return bool(torch.compile(lambda x: x + 1, fullgraph=True)(torch.zeros(3)).eq(1).all())
    except Exception:  # noqa: BLE001 - any failure of the toolchain means: cannot test compiled steps here
        return False


@pytest.fixture
def compiled_steps():
    if not compiling_works():
        pytest.skip("torch.compile does not work on this machine (no C++ compiler or headers)")


def model(hidden: int = 40, dtype: torch.dtype = torch.float32) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(30, hidden), nn.Tanh(), nn.Linear(hidden, 5)).to(dtype)


def train(net: nn.Module, optimizer: torch.optim.Optimizer, steps: int) -> torch.Tensor:
    """Steps on fixed random gradients; the weights after them, flat."""
    gen = torch.Generator().manual_seed(1)
    for _ in range(steps):
        for p in net.parameters():
            p.grad = torch.randn(p.shape, generator=gen, dtype=p.dtype)
        optimizer.step()
    return torch.cat([p.detach().view(-1) for p in net.parameters()])


def mismatches(a: torch.Tensor, b: torch.Tensor) -> int:
    """Elements that differ beyond float32 rounding (relative to the largest weight: a weight that went
    up to 1000 and back keeps 1000's rounding), or are NaN or inf in one only."""
    special = (a.isnan() != b.isnan()) | (a.isinf() != b.isinf())
    finite = a.isfinite() & b.isfinite()
    scale = max(1.0, a[finite].abs().max().item()) if finite.any() else 1.0
    apart = finite & ~torch.isclose(a, b, rtol=1e-4, atol=1e-6 * scale)
    return int((special | apart).sum())


def same(a: torch.Tensor, b: torch.Tensor) -> bool:
    return mismatches(a, b) == 0


@pytest.fixture
def uncompiled(monkeypatch):
    """The fused functions run as plain torch code (what torch.compile compiles), on every tensor."""
    monkeypatch.setattr(runtime, "_compiled", lambda function: function)
    monkeypatch.setattr(runtime, "FUSED_MIN_ELEMENTS", 0)


def test_the_fused_function_computes_what_the_multi_tensor_code_computes(uncompiled):
    # 300 random rules of up to 3 iterations, random operands included: the fused function draws
    # the same numbers (the same seed, the same order), so the weights agree after 3 steps. In
    # float64: in float32, rounding decides jumps both ways (adam at step 1 is ±1 within float32's
    # rounding: log(adam) is 0 or a hair off, and pow of a negative base to it 1 or NaN)
    space = OptimizerRulesSpace(3)
    rng = np.random.default_rng(7)
    for i in range(300):
        rule = space.rule_of(space.sample(rng))
        exact = bool(i % 2)
        runs = []
        for fused in (False, True):
            net = model(hidden=8, dtype=torch.float64)
            optimizer = RuleOptimizer(net.parameters(), rule, lr=0.01, seed=i, fused=fused, exact_random=exact,
                                      total_steps=5)
            runs.append(train(net, optimizer, 3))
        assert same(*runs), f"{rule} (exact_random={exact})"


def test_fast_draws_of_a_fused_step_are_the_multi_tensor_codes_draws(uncompiled):
    # a bucket of 4,000+ elements takes the fast draws (16-bit words): as words in the fused loop
    def run(text: str, fused: bool, seed: int) -> torch.Tensor:
        net = model(hidden=200)
        return train(net, RuleOptimizer(net.parameters(), text, lr=0.01, seed=seed, fused=fused), 4)

    for text in ("drop(adam, 0.3) + eps", "sign(g) * noise; drop(o1, 0.5) - 1e-2w"):
        assert same(run(text, False, 3), run(text, True, 3)), text
        assert not same(run(text, True, 3), run(text, True, 4)), text  # the draws do matter


def test_small_tensors_of_a_fused_step_get_the_draws_the_multi_tensor_code_gives_them(monkeypatch):
    # a real model mixes large tensors (the compiled loop) and small ones (biases: the multi-tensor code):
    # the whole bucket is drawn once, in the multi-tensor code's order, so both kinds get the same numbers
    monkeypatch.setattr(runtime, "_compiled", lambda function: function)
    monkeypatch.setattr(runtime, "FUSED_MIN_ELEMENTS", 250)  # weights (6,000 and 1,000) fused, biases not

    def run(text: str, fused: bool, seed: int, exact: bool) -> torch.Tensor:
        net = model(hidden=200)
        return train(net, RuleOptimizer(net.parameters(), text, lr=0.01, seed=seed, fused=fused,
                                        exact_random=exact), 4)

    for text in ("drop(adam, 0.3) + eps", "sign(g) * noise; drop(o1, 0.5) - 1e-2w", "drop(1, 0.3) * eps"):
        for exact in (False, True):
            assert same(run(text, False, 3, exact), run(text, True, 3, exact)), (text, exact)
        assert not same(run(text, True, 3, False), run(text, True, 4, False)), text


def test_fused_source_reads_only_what_the_update_depends_on():
    source = fused_source(as_rule("keep(rmsprop, log(sign(g)))"))
    body = source.source.split("\n", 2)[2]  # without the signature and the comment quoting the rule
    assert "log" not in body and "sign" not in body and "(v,) = s" in body and source.draws == ()
    noisy = fused_source(as_rule("drop(adam, 0.1) + eps"))
    assert noisy.draws == (("mask", "0.1"), ("gauss", "noise_std"))


@pytest.mark.parametrize("text", ["adam", "drop(rmsprop, 0.1) - sqrt(g^3)", "drop(adam, 0.1) + eps"])
def test_compiled_fused_steps_train_like_the_multi_tensor_code(text, compiled_steps):
    # hidden=600: the first layer (18,000 weights) goes through the compiled loop, the others not
    runs = []
    for fused in (False, True):
        net = model(hidden=600)
        runs.append(train(net, RuleOptimizer(net.parameters(), text, lr=0.01, seed=5, fused=fused), 5))
    if text == "adam":  # deterministic: the same weights
        assert same(*runs), text
    else:  # random: the large tensor draws apart from the small ones, so other numbers, alike in size
        assert runs[1].isfinite().all() and not torch.equal(*runs)
        moved = [(run - torch.cat([p.detach().view(-1) for p in model(hidden=600).parameters()])).abs().mean()
                 for run in runs]
        assert 0.8 < float(moved[1] / moved[0]) < 1.25


def test_bad_fused_option_is_a_config_error():
    with pytest.raises(ConfigError, match="fused must be True or False"):
        RuleOptimizer(model().parameters(), "adam", fused="yes")


def test_a_failing_compilation_is_a_one_line_error(monkeypatch):
    def broken(function):
        def call(*args):
            raise torch._dynamo.exc.TorchDynamoException("InvalidCxxCompiler: No working C++ compiler found")
        return call

    monkeypatch.setattr(runtime, "_compiled", broken)
    net = model(hidden=600)
    before = [p.detach().clone() for p in net.parameters()]
    optimizer = RuleOptimizer(net.parameters(), "adam", fused=True)
    with pytest.raises(RuntimeError, match=r"^fused=True: torch.compile could not compile the step of rule 'm / "
                                           r"sqrt\(v\)' \(InvalidCxxCompiler: No working C\+\+ compiler found\); "
                                           r"use fused=False$"):
        train(net, optimizer, 1)
    assert all(torch.equal(p.detach(), q) for p, q in zip(net.parameters(), before))  # nothing was updated
    assert all(state["step"] == 0 for state in optimizer.state.values())  # nor counted


def test_a_failing_compilation_takes_back_its_draws_and_steps(monkeypatch):
    # falling back to fused=False from the failed optimizer's state continues as a run that never fused
    def broken(function):
        def call(*args):
            raise torch._dynamo.exc.TorchDynamoException("InvalidCxxCompiler: No working C++ compiler found")
        return call

    text = "drop(adam, 0.1) + eps"
    straight, failed = model(hidden=600), model(hidden=600)
    reference = RuleOptimizer(straight.parameters(), text, seed=3)
    train(straight, reference, 2)
    monkeypatch.setattr(runtime, "_compiled", broken)
    optimizer = RuleOptimizer(failed.parameters(), text, seed=3, fused=True)
    with pytest.raises(RuntimeError, match="use fused=False"):
        train(failed, optimizer, 1)
    fallback = RuleOptimizer(failed.parameters(), text, seed=3)
    fallback.load_state_dict(optimizer.state_dict())
    train(failed, fallback, 2)
    assert all(torch.equal(p, q) for p, q in zip(straight.parameters(), failed.parameters()))


def test_a_group_added_later_that_fails_to_compile_takes_its_whole_step_back(monkeypatch):
    # only the optimizer's first fused step could be taken back: the first group moved, then the error came
    def float64_fails(function):
        def call(weights, *args):
            if weights.dtype == torch.float64:
                raise torch._dynamo.exc.TorchDynamoException("no float64 loop")
            return function(weights, *args)
        return call

    monkeypatch.setattr(runtime, "_compiled", float64_fails)  # runs the element-wise function uncompiled
    first, later = model(hidden=600), model(hidden=600, dtype=torch.float64)
    optimizer = RuleOptimizer(first.parameters(), "adam", fused=True)
    train(first, optimizer, 2)
    optimizer.add_param_group({"params": list(later.parameters())})
    before = [p.detach().clone() for p in [*first.parameters(), *later.parameters()]]
    with pytest.raises(RuntimeError, match=r"could not compile the step of rule .* \(no float64 loop\)"):
        train(nn.ModuleList([first, later]), optimizer, 1)
    assert all(torch.equal(p.detach(), q) for p, q in zip([*first.parameters(), *later.parameters()], before))
    assert [optimizer.state[p]["step"] for p in first.parameters()] == [2] * 4


@pytest.mark.parametrize("text", ["adam", "drop(adam, 0.1) + eps"])
def test_a_failing_compilation_takes_back_every_bucket_of_the_step(monkeypatch, text):
    # the small group is stepped before the large tensor's compilation fails: it must not move either
    def broken(function):
        def call(*args):
            raise torch._dynamo.exc.TorchDynamoException("InvalidCxxCompiler: No working C++ compiler found")
        return call

    monkeypatch.setattr(runtime, "_compiled", broken)
    small, double, big = (nn.Parameter(torch.zeros(10)), nn.Parameter(torch.zeros(5, dtype=torch.float64)),
                          nn.Parameter(torch.zeros(200, 100)))
    optimizer = RuleOptimizer([{"params": [small, double]}, {"params": [big]}], text, lr=0.1, seed=1, fused=True)
    before = torch.get_rng_state()
    for _ in range(3):
        for p in (small, double, big):
            p.grad = torch.ones_like(p)
        with pytest.raises(RuntimeError, match="use fused=False"):
            optimizer.step()
    assert all(not p.any() for p in (small, double, big))
    assert not optimizer.state and optimizer.state_dict()["state"] == {}
    assert torch.equal(torch.get_rng_state(), before)
    # falling back to the plain step, the run is one that never tried to fuse
    plain = RuleOptimizer([{"params": [small, double]}, {"params": [big]}], text, lr=0.1, seed=1)
    plain.load_state_dict(optimizer.state_dict())
    plain.step()
    twins = [nn.Parameter(torch.zeros_like(p)) for p in (small, double, big)]
    for twin in twins:
        twin.grad = torch.ones_like(twin)
    reference = RuleOptimizer([{"params": twins[:2]}, {"params": twins[2:]}], text, lr=0.1, seed=1)
    reference.step()
    assert all(torch.equal(p, q) for p, q in zip((small, double, big), twins))


def test_fused_state_dict_round_trip_continues_identically(compiled_steps):
    # a resumed fused run (fast draws of a drop rule included) goes on exactly as an uninterrupted one
    text = "drop(rmsprop, 0.3) - sqrt(g^3)"
    net = model(hidden=600)
    optimizer = RuleOptimizer(net.parameters(), text, lr=0.01, seed=2, fused=True)
    train(net, optimizer, 3)
    saved_weights, saved_state = copy.deepcopy(net.state_dict()), copy.deepcopy(optimizer.state_dict())
    uninterrupted = train(net, optimizer, 3)
    resumed_net = model(hidden=600)
    resumed_net.load_state_dict(saved_weights)
    resumed = RuleOptimizer(resumed_net.parameters(), text, lr=0.01, seed=2, fused=True)
    resumed.load_state_dict(saved_state)
    assert torch.equal(train(resumed_net, resumed, 3), uninterrupted)


def test_a_model_without_a_large_tensor_steps_as_without_fused_and_copies_nothing(monkeypatch):
    # the undo point (a copy of every weight and state) was taken at every step: nothing ever compiled
    copies = []
    monkeypatch.setattr(runtime.CompiledRuleOptimizer, "_undo_point",
                        lambda self: copies.append(1) or pytest.fail("copied the weights and state"))
    plain, fused = model(), model()
    train(plain, RuleOptimizer(plain.parameters(), "drop(rmsprop, 0.1) - sqrt(g^3)", seed=1), 3)
    train(fused, RuleOptimizer(fused.parameters(), "drop(rmsprop, 0.1) - sqrt(g^3)", seed=1, fused=True), 3)
    assert not copies
    assert all(torch.equal(p, q) for p, q in zip(plain.parameters(), fused.parameters()))
