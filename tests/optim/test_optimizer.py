"""RuleOptimizer: equal to torch's optimizers where a rule is one, closed forms for the others."""
from __future__ import annotations

import copy
import io
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from rlnas.errors import ConfigError
from rlnas.optim import (
    BASE_OPERANDS,
    BINARY,
    UNARY,
    Iteration,
    Rule,
    RuleOptimizer,
    rule,
)
from rlnas.optim.runtime import decays


def small_model(dtype: torch.dtype = torch.float32) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 16), nn.Tanh(), nn.Linear(16, 3)).to(dtype)


def train_together(models_and_optimizers, steps: int, dtype: torch.dtype = torch.float32) -> None:
    """Train every (model, optimizer) pair on the same fixed batches."""
    gen = torch.Generator().manual_seed(1)
    for _ in range(steps):
        x = torch.randn(32, 6, generator=gen, dtype=dtype)
        y = torch.randint(0, 3, (32,), generator=gen)
        for model, optimizer in models_and_optimizers:
            optimizer.zero_grad()
            F.cross_entropy(model(x), y).backward()
            optimizer.step()


def max_difference(a: nn.Module, b: nn.Module) -> float:
    return max((p - q).abs().max().item() for p, q in zip(a.parameters(), b.parameters()))


def one_param(values, grad_values=None):
    p = nn.Parameter(torch.tensor(values, dtype=torch.float64))
    if grad_values is not None:
        p.grad = torch.tensor(grad_values, dtype=torch.float64)
    return p


@pytest.mark.parametrize("dtype, tolerance", [(torch.float64, 1e-12), (torch.float32, 2e-5)])
def test_adam_rule_matches_torch_adam_over_200_steps(dtype, tolerance):
    reference, ours = small_model(dtype), small_model(dtype)
    pairs = [(reference, torch.optim.Adam(reference.parameters(), lr=0.01)),
             (ours, RuleOptimizer(ours.parameters(), "adam", lr=0.01))]
    train_together(pairs, 200, dtype)
    assert max_difference(reference, ours) < tolerance
    assert max_difference(reference, small_model(dtype)) > 0.1  # the weights did move


def test_adam_operand_is_adams_update_too():
    reference, ours = small_model(torch.float64), small_model(torch.float64)
    pairs = [(reference, torch.optim.Adam(reference.parameters(), lr=0.003, betas=(0.8, 0.99))),
             (ours, RuleOptimizer(ours.parameters(), "keep(adam, 1)", lr=0.003, beta1=0.8, beta2=0.99))]
    train_together(pairs, 50, torch.float64)
    assert max_difference(reference, ours) < 1e-12


def test_sgd_rule_matches_torch_sgd():
    reference, ours = small_model(), small_model()
    train_together([(reference, torch.optim.SGD(reference.parameters(), lr=0.1)),
                    (ours, RuleOptimizer(ours.parameters(), "sgd", lr=0.1))], 50)
    assert max_difference(reference, ours) < 1e-6


def test_momentum_rule_is_the_bias_corrected_average_of_gradients():
    beta, lr, grads = 0.9, 0.5, [1.0, -2.0, 4.0, 0.5]
    p = one_param([0.0])
    optimizer = RuleOptimizer([p], "momentum", lr=lr)
    expected_w, m = 0.0, 0.0
    for t, gt in enumerate(grads, 1):
        p.grad = torch.tensor([gt], dtype=torch.float64)
        optimizer.step()
        m = beta * m + (1 - beta) * gt
        expected_w -= lr * m / (1 - beta ** t)
        assert p.item() == pytest.approx(expected_w, abs=1e-12)


def test_rmsprop_rule_closed_form():
    p = one_param([1.0, -1.0])
    optimizer = RuleOptimizer([p], "rmsprop", lr=0.1)
    p.grad = torch.tensor([2.0, -0.5], dtype=torch.float64)
    optimizer.step()
    # after one step v̂ = g², so the update is g / (|g| + δ) = sign(g)
    assert p.tolist() == pytest.approx([0.9, -0.9], abs=1e-8)


def test_powersign_and_addsign_scale_the_gradient_by_sign_agreement():
    grads = [[1.0, 1.0], [1.0, -1.0]]  # step 2: element 0 agrees with m, element 1 disagrees
    for name, agree, disagree in (("powersign", math.e, 1 / math.e), ("addsign", 2.0, 0.0)):
        p = one_param([0.0, 0.0])
        optimizer = RuleOptimizer([p], name, lr=1.0)
        p.grad = torch.tensor(grads[0], dtype=torch.float64)
        optimizer.step()
        before = p.detach().clone()
        p.grad = torch.tensor(grads[1], dtype=torch.float64)
        optimizer.step()
        # m after step 2 = 0.9·0.1·g1 + 0.1·g2 -> (0.19, -0.01): sign(m) = (+, −)
        # element 0: g = 1, sign agreement +1; element 1: g = −1, sign(m) = −1: agreement +1 too
        assert (before - p).tolist() == pytest.approx([agree * 1.0, agree * -1.0])
        p.grad = torch.tensor([-1.0, 1.0], dtype=torch.float64)
        before = p.detach().clone()
        optimizer.step()
        # m after step 3 = 0.9·(0.19, −0.01) + 0.1·(−1, 1) = (0.071, 0.091): element 0 disagrees, 1 agrees
        assert (before - p).tolist() == pytest.approx([disagree * -1.0, agree * 1.0])


def test_decay_operands_at_known_steps():
    total = 7
    assert decays(0, total, 0.5, 3) == pytest.approx({"ld": 1.0, "cd": 1.0, "rd": 1.0})
    at = {t: decays(t, total, 0.5, 3) for t in range(8)}
    assert [at[t]["ld"] for t in range(8)] == pytest.approx([1 - t / 7 for t in range(8)])
    assert at[7]["cd"] == pytest.approx(0.0) and at[3]["cd"] == pytest.approx(0.5 * (1 + math.cos(math.pi * 3 / 7)))
    assert decays(2, 4, 1.0, 3)["cd"] == pytest.approx(0.0)  # one full cosine cycle: bottom half way
    assert decays(20, total, 0.5, 3) == decays(7, total, 0.5, 3)  # clamped after total_steps
    # rd, NOS's restart decay: 3 equal periods of 4 steps over 12, each a half cosine from 1 towards 0,
    # (1 + cos(π/4)) / 2 = 0.8536 a quarter of the way in, 1/2 half way, (1 − cos(π/4)) / 2 = 0.1464
    rd = [decays(t, 12, 0.5, 3)["rd"] for t in range(13)]
    quarter, three_quarters = (1 + math.sqrt(0.5)) / 2, (1 - math.sqrt(0.5)) / 2
    assert rd == pytest.approx([1.0, quarter, 0.5, three_quarters] * 3 + [1.0], abs=1e-12)
    assert [decays(t, 4, 0.5, 1)["rd"] for t in (0, 2, 4)] == pytest.approx([1.0, 0.5, 1.0])  # one period
    # through the optimizer: keep(ld, 1) moves every weight by lr·ld(t)
    p = one_param([0.0, 0.0], [5.0, -5.0])
    optimizer = RuleOptimizer([p], "keep(ld, 1)", lr=1.0, total_steps=4)
    moved = []
    for _ in range(4):
        before = p[0].item()
        optimizer.step()
        moved.append(before - p[0].item())
    assert moved == pytest.approx([0.75, 0.5, 0.25, 0.0])
    assert p[0].item() == p[1].item()


def test_annealed_noise_has_the_documented_variance():
    p = nn.Parameter(torch.zeros(200_000, dtype=torch.float64))
    p.grad = torch.zeros_like(p)
    optimizer = RuleOptimizer([p], "keep(noise, 1)", lr=1.0, seed=0)
    for _ in range(3):
        before = p.detach().clone()
        optimizer.step()
    t = 3
    assert (p - before).var().item() == pytest.approx(1 / (1 + t) ** 0.55, rel=0.02)


def test_drop_is_seeded_reproducible_and_drops_at_its_rate():
    def run(seed):
        p = one_param([0.0] * 20_000, [1.0] * 20_000)
        optimizer = RuleOptimizer([p], "drop(g, 0.3) * 1", lr=1.0, seed=seed)
        optimizer.step()
        return p.detach().clone()

    a, b, c = run(3), run(3), run(4)
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    assert set(a.unique().tolist()) == {-1.0, 0.0}
    assert (a == 0).double().mean().item() == pytest.approx(0.3, abs=0.015)


def test_random_rules_follow_the_global_rng_without_a_seed():
    def run():
        torch.manual_seed(5)
        p = one_param([0.0] * 100, [1.0] * 100)
        RuleOptimizer([p], "eps * g", lr=1.0).step()
        return p.detach().clone()

    assert torch.equal(run(), run())


def test_state_dict_round_trip_continues_identically():
    text = "drop(adam, 0.1) + eps; o1 * gamma; keep(o2, cd)"

    def fresh():
        model = small_model(torch.float64)
        return model, RuleOptimizer(model.parameters(), text, lr=1e-3, seed=7, total_steps=30)

    straight, straight_opt = fresh()
    train_together([(straight, straight_opt)], 20, torch.float64)

    first, first_opt = fresh()
    train_together([(first, first_opt)], 10, torch.float64)
    saved_model, saved_state = copy.deepcopy(first.state_dict()), copy.deepcopy(first_opt.state_dict())
    assert set(saved_state["state"][0]) == {"step", "m", "v", "gamma"}
    resumed, resumed_opt = fresh()
    resumed.load_state_dict(saved_model)
    resumed_opt.load_state_dict(saved_state)
    # the second half sees the batches the straight run saw in steps 11-20
    gen = torch.Generator().manual_seed(1)
    for step in range(20):
        x = torch.randn(32, 6, generator=gen, dtype=torch.float64)
        y = torch.randint(0, 3, (32,), generator=gen)
        if step >= 10:
            resumed_opt.zero_grad()
            F.cross_entropy(resumed(x), y).backward()
            resumed_opt.step()
    assert max_difference(straight, resumed) == 0.0


@pytest.mark.parametrize("width", [8, 3000])  # torch's draws; the fast draws (a word stream)
def test_a_deep_copy_or_pickled_optimizer_continues_like_the_original(width):
    text = "drop(adam, 0.1) + eps; o1 * gamma; keep(o2, cd)"
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, width), nn.ReLU(), nn.Linear(width, 3))
    optimizer = RuleOptimizer(model.parameters(), text, lr=1e-3, seed=7, total_steps=30, fused=False)
    train_together([(model, optimizer)], 5, torch.float32)
    copied = copy.deepcopy((model, optimizer))
    buffer = io.BytesIO()
    torch.save((model, optimizer), buffer)
    buffer.seek(0)
    pickled = torch.load(buffer, weights_only=False)
    assert repr(copied[1]) == repr(optimizer) and copied[1].defaults == optimizer.defaults
    train_together([(model, optimizer), copied, pickled], 5, torch.float32)
    assert max_difference(model, copied[0]) == 0.0 and max_difference(model, pickled[0]) == 0.0


def test_state_of_another_rule_is_refused():
    p = one_param([1.0], [1.0])
    adam = RuleOptimizer([p], "adam")
    adam.step()
    with pytest.raises(ValueError, match="state of rule 'm / sqrt\\(v\\)' cannot be loaded"):
        RuleOptimizer([p], "momentum").load_state_dict(adam.state_dict())


def test_only_the_state_a_rule_reads_is_kept():
    p = one_param([1.0], [1.0])
    cases = (("sgd", set()), ("sign(m) * 1", {"m"}), ("rmsprop * 1", {"v"}), ("gamma * adam", {"gamma", "m", "v"}))
    for text, names in cases:
        optimizer = RuleOptimizer([p], text)
        optimizer.step()
        assert set(optimizer.state[p]) - {"step"} == names, text


def test_parameter_groups_parameters_without_gradients_and_closure():
    a, b, frozen = one_param([1.0], [1.0]), one_param([1.0], [1.0]), one_param([1.0])
    optimizer = RuleOptimizer([{"params": [a]}, {"params": [b, frozen], "lr": 0.5}], "sgd", lr=0.1)
    assert optimizer.step(lambda: 3.0) == 3.0
    assert (a.item(), b.item(), frozen.item()) == pytest.approx((0.9, 0.5, 1.0))
    assert frozen not in optimizer.state


@pytest.mark.parametrize("text", ["adam", "drop(rmsprop, 0.1) - sqrt(g^3)"])
def test_complex_weights_update_as_their_real_and_imaginary_parts(text):
    """As torch's optimizers do: a complex tensor is stepped as its ``view_as_real``; the state stays complex."""
    gen = torch.Generator().manual_seed(3)
    start = torch.randn(40, 30, dtype=torch.complex128, generator=gen)
    complex_w, real_w = nn.Parameter(start.clone()), nn.Parameter(torch.view_as_real(start).clone())
    on_complex = RuleOptimizer([complex_w], text, lr=0.01, seed=5)
    on_real = RuleOptimizer([real_w], text, lr=0.01, seed=5)
    for _ in range(5):
        grad = torch.randn(40, 30, dtype=torch.complex128, generator=gen)
        complex_w.grad, real_w.grad = grad, torch.view_as_real(grad).clone()
        on_complex.step()
        on_real.step()
    assert torch.equal(torch.view_as_real(complex_w.detach()), real_w.detach())
    assert not torch.equal(complex_w.detach(), start)
    assert all(v.is_complex() for k, v in on_complex.state[complex_w].items() if k != "step")
    if text == "adam":
        reference = nn.Parameter(start.clone())
        torch_adam = torch.optim.Adam([reference], lr=0.01)
        gen = torch.Generator().manual_seed(3)
        torch.randn(40, 30, dtype=torch.complex128, generator=gen)
        for _ in range(5):
            reference.grad = torch.randn(40, 30, dtype=torch.complex128, generator=gen)
            torch_adam.step()
        assert (reference - complex_w).abs().max().item() < 1e-12


def test_scalar_only_rules_move_every_weight_by_the_same_amount():
    p = one_param([0.0, 1.0], [3.0, -7.0])
    RuleOptimizer([p], "2 + 1", lr=0.1).step()
    assert p.tolist() == pytest.approx([-0.3, 0.7])
    p.grad = torch.tensor([1.0, 1.0], dtype=torch.float64)
    RuleOptimizer([p], "log(ld) * 1", lr=0.1, total_steps=1).step()  # log|ld(T)| = log 0: weights become −inf
    assert not torch.isfinite(p).any()


def test_every_token_compiles_on_tensors_and_on_scalars():
    torch.manual_seed(0)
    ran = 0
    for operand in BASE_OPERANDS:
        for unary in UNARY:
            for binary in BINARY:
                for other in ("g", "1"):  # a tensor and a scalar partner, on either side
                    for it in (Iteration(operand, other, unary, "identity", binary),
                               Iteration(other, operand, "identity", unary, binary)):
                        p = nn.Parameter(torch.randn(3, 2))
                        optimizer = RuleOptimizer([p], Rule((it,)), lr=0.01, total_steps=5, seed=0)
                        p.grad = torch.randn_like(p)
                        optimizer.step()
                        ran += 1
    assert ran == len(BASE_OPERANDS) * len(UNARY) * len(BINARY) * 4


def test_padded_rules_update_like_the_original():
    a, b = small_model(torch.float64), small_model(torch.float64)
    long = rule("powersign").padded(4)
    train_together([(a, RuleOptimizer(a.parameters(), "powersign", lr=0.01)),
                    (b, RuleOptimizer(b.parameters(), long, lr=0.01))], 20, torch.float64)
    assert max_difference(a, b) == 0.0


def test_bad_options_are_one_line_config_errors():
    p = one_param([1.0])
    with pytest.raises(ConfigError, match=r"rule 'sign\(g\) \* sign\(m\); o1 \* ld; exp\(o2\) \* g' uses a decay"):
        RuleOptimizer([p], "powersign-ld")
    with pytest.raises(ConfigError, match="unknown hyperparameter\\(s\\) \\['beta'\\]"):
        RuleOptimizer([p], "adam", beta=0.9)
    with pytest.raises(ConfigError, match="beta1 must be in \\[0, 1\\)"):
        RuleOptimizer([p], "adam", beta1=1.0)
    with pytest.raises(ConfigError, match="lr must be a finite number"):
        RuleOptimizer([p], "adam", lr=float("nan"))
    with pytest.raises(ConfigError, match="unknown rule name|unknown operand"):
        RuleOptimizer([p], "adamw")
    for options, message in (({"seed": "7"}, r"seed must be None or an integer in \[0, 2\*\*63\), got '7'"),
                             ({"seed": -1}, "seed must be None or an integer"),
                             ({"beta2": "0.9"}, r"beta2 must be in \[0, 1\), got '0.9'"),
                             ({"delta": float("inf")}, "delta must be a finite number >= 0, got inf"),
                             ({"noise_std": -0.1}, "noise_std must be a finite number >= 0"),
                             ({"lr": 10 ** 400}, f"lr must be a finite number >= 0, got 1{'0' * 59}$"),  # shortened
                             ({"beta1": 10 ** 400}, r"beta1 must be in \[0, 1\), got 10000")):
        with pytest.raises(ConfigError, match=message):
            RuleOptimizer([p], "drop(adam, 0.1) + eps", **options)


def test_a_refused_parameter_group_is_not_added():
    w, p = one_param([1.0], [1.0]), one_param([1.0], [1.0])
    optimizer = RuleOptimizer([w], "sgd", lr=0.1)
    for group, message in (({"params": [p], "lr": -5.0}, "lr must be a finite number >= 0, got -5.0"),
                           ({"params": [p], "weight_decay": 0.1}, r"unknown hyperparameter\(s\) \['weight_decay'\] "
                                                                  "in a parameter group"),
                           ({"params": [p], "beta_1": 0.5}, r"unknown hyperparameter\(s\) \['beta_1'\]")):
        with pytest.raises(ConfigError, match=f"^RuleOptimizer: {message}"):
            optimizer.add_param_group(group)
    assert len(optimizer.param_groups) == 1
    optimizer.step()
    assert (w.item(), p.item()) == pytest.approx((0.9, 1.0))
    optimizer.add_param_group({"params": [p], "lr": 0.5, "initial_lr": 0.5})  # what schedulers put there is fine
    optimizer.step()
    assert p.item() == pytest.approx(0.5)


def test_a_bad_group_at_construction_is_said_once():
    with pytest.raises(ConfigError, match="^RuleOptimizer: lr must be") as err:
        RuleOptimizer([{"params": [one_param([1.0])], "lr": -1.0}], "adam")
    assert str(err.value).count("RuleOptimizer") == 1


def test_decay_hyperparameters_are_checked_when_made():
    p = one_param([1.0], [1.0])
    for options, message in (({"cycles": "x"}, "cycles must be a finite number > 0, got 'x'"),
                             ({"cycles": float("nan")}, "cycles must be a finite number > 0, got nan"),
                             ({"cycles": 0}, "cycles must be"),
                             ({"restarts": 1100}, r"restarts must be an integer in \[1, 64\], got 1100")):
        with pytest.raises(ConfigError, match=message):
            RuleOptimizer([p], "powersign-cd", total_steps=5, **options)
    optimizer = RuleOptimizer([p], "powersign-rd", total_steps=10, restarts=64)
    for _ in range(10):
        optimizer.step()
    assert math.isfinite(p.item())


def test_total_steps_of_a_decay_rule_may_come_with_each_group():
    a, b = one_param([1.0], [1.0]), one_param([1.0], [1.0])
    optimizer = RuleOptimizer([{"params": [a], "total_steps": 2}, {"params": [b], "total_steps": 4}], "g * ld",
                              lr=0.1)
    optimizer.step()
    optimizer.step()  # each group decays over its own total_steps
    assert [group["total_steps"] for group in optimizer.param_groups] == [2, 4]
    alone = [one_param([1.0], [1.0]) for _ in range(2)]
    for p, total in zip(alone, (2, 4)):
        single = RuleOptimizer([p], "g * ld", lr=0.1, total_steps=total)
        single.step()
        single.step()
    assert (a.item(), b.item()) == (alone[0].item(), alone[1].item()) and a.item() != b.item()
    with pytest.raises(ConfigError, match="uses a decay operand .*: give total_steps"):
        RuleOptimizer([{"params": [a], "total_steps": 2}, {"params": [b]}], "powersign-ld")


def test_a_numpy_integer_seed_is_a_seed():
    np = pytest.importorskip("numpy")
    p, q = one_param([0.0] * 8, [1.0] * 8), one_param([0.0] * 8, [1.0] * 8)
    RuleOptimizer([p], "g + eps", seed=np.int64(3)).step()
    RuleOptimizer([q], "g + eps", seed=3).step()
    assert torch.equal(p, q)


@pytest.mark.parametrize("step", [-5, "x", None, 2.5, True, torch.tensor(3)])
def test_a_saved_step_that_is_not_a_count_is_refused_before_loading(step):
    p = one_param([1.0, 2.0], [1.0, 1.0])
    saved = RuleOptimizer([p], "adam")
    saved.step()
    state = copy.deepcopy(saved.state_dict())
    state["state"][0]["step"] = step  # it failed at the next step (a complex cast, a str + int) or counted 3.5
    optimizer = RuleOptimizer([p], "adam")
    with pytest.raises(ConfigError, match="the saved step of parameter 0 must be an integer >= 0"):
        optimizer.load_state_dict(state)
    assert not optimizer.state


def test_a_step_that_fails_counts_for_nothing():
    dense, sparse = one_param([1.0, 2.0], [1.0, 1.0]), one_param([1.0, 2.0])
    sparse.grad = torch.tensor([1.0, 0.0], dtype=torch.float64).to_sparse()
    optimizer = RuleOptimizer([{"params": [dense]}, {"params": [sparse]}], "adam")
    with pytest.raises(RuntimeError, match="does not support sparse gradients"):
        optimizer.step()
    assert dense.tolist() == [1.0, 2.0] and not optimizer.state  # the first group was not stepped either


def test_the_state_of_another_optimizer_or_other_shapes_is_refused_before_loading():
    p = one_param([1.0, 2.0], [1.0, 1.0])
    adam = torch.optim.Adam([p])
    adam.step()
    optimizer = RuleOptimizer([p], "adam")
    with pytest.raises(ConfigError, match="not the state of a rule optimizer: it has no 'rule' entry"):
        optimizer.load_state_dict(adam.state_dict())
    other = one_param([1.0, 2.0, 3.0], [1.0, 1.0, 1.0])
    saved = RuleOptimizer([other], "adam")
    saved.step()
    with pytest.raises(ConfigError, match=r"the saved 'm' of parameter 0 has shape \(3,\), the parameter \(2,\)"):
        optimizer.load_state_dict(saved.state_dict())
    state = saved.state_dict()
    del state["param_groups"][0]["beta2"]
    with pytest.raises(ConfigError, match=r"the saved parameter group 0 lacks the hyperparameter\(s\) \['beta2'\]"):
        RuleOptimizer([other], "adam").load_state_dict(state)
    for name, value, message in (("lr", "0.01", "lr must be a finite number >= 0, got '0.01'"),
                                 ("beta1", 1.0, r"beta1 must be in \[0, 1\), got 1.0"),
                                 ("delta", float("nan"), "delta must be a finite number >= 0, got nan"),
                                 ("exact_random", "yes", "exact_random must be True or False"),
                                 ("total_steps", -3, "total_steps must be a positive integer or None")):
        state = saved.state_dict()
        state["param_groups"][0][name] = value  # an edited or damaged state: it failed at the next step, or ran
        with pytest.raises(ConfigError, match=f"the saved parameter group 0: {message}"):
            RuleOptimizer([other], "adam").load_state_dict(state)
    optimizer.step()  # nothing was loaded: the optimizer goes on from its own state
    assert optimizer.state[p]["step"] == 1


def test_scratch_memory_stays_bounded_when_the_parameters_with_gradients_change():
    # mixture of experts / layer drop: another subset of the parameters has gradients at every step
    params = [one_param([0.0] * 64) for _ in range(12)]
    optimizer = RuleOptimizer(params, "drop(adam, 0.1) + eps", seed=0)
    gen = torch.Generator().manual_seed(0)
    for _ in range(200):
        for p in params:
            p.grad = torch.ones_like(p) if torch.rand(1, generator=gen).item() < 0.5 else None
        optimizer.step()
    temporaries = {id(t) for lists in optimizer._scratch.values() for ts in lists for t in ts}
    assert len(optimizer._scratch) <= 8 and len(optimizer._draw_buffers) <= 8  # one group: 8 sets
    assert len(temporaries) <= len(params) * max(len(ts) for ts in optimizer._param_scratch.values())


def test_many_parameter_groups_keep_their_buffers_from_step_to_step():
    # layer-wise learning rates: one group per tensor; each group's buffers are made once, not every step
    params = [one_param([0.0] * 64, [1.0] * 64) for _ in range(12)]
    optimizer = RuleOptimizer([{"params": [p], "lr": 0.1 / (i + 1)} for i, p in enumerate(params)],
                              "drop(adam, 0.1) + eps", seed=0)
    optimizer.step()
    kept = {key: id(value) for key, value in optimizer._draw_buffers.items()}
    optimizer.step()
    assert len(kept) == 12 and {key: id(value) for key, value in optimizer._draw_buffers.items()} == kept


@pytest.mark.parametrize("kind", ["adam", "rmsprop"])
def test_the_adam_and_rmsprop_operands_from_torchs_fused_kernel_equal_the_multi_tensor_code(kind, monkeypatch):
    from rlnas.optim import runtime

    def run(kernel: bool) -> tuple[list[torch.Tensor], torch.Tensor, torch.Tensor]:
        monkeypatch.setattr(runtime, "ADAM_KERNEL_DTYPES", runtime.ADAM_KERNEL_DTYPES if kernel else ())
        gen = torch.Generator().manual_seed(0)
        m, v = torch.zeros(2, 3, 4, 5, dtype=torch.float64), torch.zeros(2, 3, 4, 5, dtype=torch.float64)
        m, v = (x.to(memory_format=torch.channels_last) for x in (m, v))  # laid out as channels_last weights
        values = []
        for t in range(1, 6):
            g = torch.randn(2, 3, 4, 5, generator=gen, dtype=torch.float64)  # contiguous: another layout
            out = [torch.empty_like(m)]
            h = {"t": float(t), "beta1": 0.9, "beta2": 0.99, "delta": 1e-3, "bc1": 1 - 0.9 ** t, "bc2": 1 - 0.99 ** t}
            runtime._adam_operand_(out, kind, [g], {"m": [m], "v": [v]}, h, [torch.empty_like(m)])
            values.append(out[0].clone())
        return values, m, v

    (kernel, m, v), (plain, m_plain, v_plain) = run(True), run(False)
    for a, b in zip(kernel, plain):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=0)
    torch.testing.assert_close(v, v_plain, rtol=1e-12, atol=0)
    if kind == "adam":
        torch.testing.assert_close(m, m_plain, rtol=1e-12, atol=0)
    else:
        assert not m.any()  # rmsprop reads no m: the kernel's running average of g went to scratch
    # and the closed form at the last step
    gen = torch.Generator().manual_seed(0)
    grads = [torch.randn(2, 3, 4, 5, generator=gen, dtype=torch.float64) for _ in range(5)]
    m_ref = sum(0.1 * 0.9 ** (5 - t) * g for t, g in enumerate(grads, 1))
    v_ref = sum(0.01 * 0.99 ** (5 - t) * g * g for t, g in enumerate(grads, 1))
    top = m_ref / (1 - 0.9 ** 5) if kind == "adam" else grads[-1]
    torch.testing.assert_close(kernel[-1], top / ((v_ref / (1 - 0.99 ** 5)).sqrt() + 1e-3), rtol=1e-10, atol=0)


@pytest.mark.parametrize("text", ["adam * sign(m)", "rmsprop - v; o1 * m"])
def test_a_state_loaded_into_weights_of_another_memory_format_steps_as_it_would_have(text):
    # torch's load_state_dict keeps the saved layout: the kernel, which walks memory, paired other elements
    gen = torch.Generator().manual_seed(0)
    grads = [torch.randn(2, 3, 4, 5, generator=gen, dtype=torch.float64) for _ in range(4)]
    a = nn.Parameter(torch.randn(2, 3, 4, 5, generator=gen, dtype=torch.float64))
    first = RuleOptimizer([a], text, lr=0.01)
    for g in grads[:2]:
        a.grad = g.clone()
        first.step()
    saved = copy.deepcopy(first.state_dict())
    b = nn.Parameter(a.detach().clone().to(memory_format=torch.channels_last))
    second = RuleOptimizer([b], text, lr=0.01)
    second.load_state_dict(saved)
    for g in grads[2:]:
        a.grad, b.grad = g.clone(), g.clone().to(memory_format=torch.channels_last)
        first.step()
        second.step()
    torch.testing.assert_close(b.detach(), a.detach(), rtol=1e-12, atol=1e-15)
    for name in first.state[a]:
        if name != "step":
            torch.testing.assert_close(second.state[b][name], first.state[a][name], rtol=1e-12, atol=1e-15)


def test_a_torch_without_the_kernel_on_the_cpu_gets_the_multi_tensor_code(monkeypatch):
    from rlnas.optim import runtime

    def step_twice() -> torch.Tensor:
        p = one_param([1.0, -2.0, 3.0], [0.5, 0.25, -1.0])
        optimizer = RuleOptimizer([p], "drop(rmsprop, 0.1) - adam", seed=0)
        optimizer.step()
        optimizer.step()
        return p.detach().clone()

    kernel = step_twice()
    monkeypatch.setattr(runtime, "_adam_kernel_on_cpu", True)

    def refused(*args, **kwargs):
        raise NotImplementedError("Could not run 'aten::_fused_adam_' with arguments from the 'CPU' backend")

    monkeypatch.setattr(torch, "_fused_adam_", refused)
    torch.testing.assert_close(step_twice(), kernel, rtol=1e-12, atol=0)
    assert runtime._adam_kernel_on_cpu is False  # asked once, then not again
