"""Controllers: closed-form entropies and log-probabilities, sampling frequencies, reproducibility."""
from __future__ import annotations

import itertools
import math

import pytest
import torch
from scipy.stats import chisquare

from rlnas.agents.controllers import FactorizedController, LSTMController, build_controller, make_generator
from rlnas.errors import ConfigError

torch.set_num_threads(1)

SIZES = (2, 3, 5, 1, 4)
UNIFORM_LOG_PROB = -sum(math.log(k) for k in SIZES)


def chi2_pvalue(observed: torch.Tensor, probs: torch.Tensor) -> float:
    """Chi-square goodness of fit of counts ``observed`` against probabilities ``probs``."""
    p = probs.detach().double()
    expected = p / p.sum() * observed.sum().item()
    return float(chisquare(observed.double().numpy(), expected.numpy()).pvalue)


def zero_heads(controller: LSTMController) -> LSTMController:
    with torch.no_grad():
        for head in controller.heads:
            head.weight.zero_()
            head.bias.zero_()
    return controller


def all_candidates(sizes: tuple[int, ...]) -> torch.Tensor:
    return torch.tensor(list(itertools.product(*(range(k) for k in sizes))), dtype=torch.long)


def test_uniform_factorized_entropy_and_log_prob_are_closed_form() -> None:
    controller = FactorizedController(SIZES)
    indices, log_prob, entropy = controller.sample(50, make_generator(0))
    assert indices.shape == (50, len(SIZES)) and indices.dtype == torch.long
    assert torch.allclose(log_prob, torch.full((50,), UNIFORM_LOG_PROB))
    assert torch.allclose(entropy, torch.full((50,), -UNIFORM_LOG_PROB))
    every = all_candidates(SIZES)
    lp, ent = controller.log_prob_and_entropy(every)
    assert torch.allclose(lp, torch.full((len(every),), UNIFORM_LOG_PROB))
    assert torch.allclose(ent, torch.full((len(every),), -UNIFORM_LOG_PROB))


@pytest.mark.parametrize("shaping", [{}, {"temperature": 5.0, "tanh_constant": 2.5}])
def test_lstm_with_zero_heads_is_uniform(shaping: dict) -> None:
    controller = zero_heads(LSTMController(SIZES, hidden=16, generator=make_generator(0), **shaping))
    _, log_prob, entropy = controller.sample(40, make_generator(1))
    assert torch.allclose(log_prob, torch.full((40,), UNIFORM_LOG_PROB), atol=1e-5)
    assert torch.allclose(entropy, torch.full((40,), -UNIFORM_LOG_PROB), atol=1e-5)
    lp, _ = controller.log_prob_and_entropy(all_candidates(SIZES))
    assert torch.allclose(lp, torch.full_like(lp, UNIFORM_LOG_PROB), atol=1e-5)


def test_factorized_sampling_frequencies_match_softmax() -> None:
    controller = FactorizedController((3, 4))
    with torch.no_grad():
        controller.logits[0, :3] = torch.tensor([0.0, 1.0, -1.0])
        controller.logits[1, :4] = torch.tensor([2.0, 0.5, 0.0, -0.5])
    n = 20000
    with torch.no_grad():
        indices, _, _ = controller.sample(n, make_generator(7))
    for d, k in enumerate((3, 4)):
        probs = torch.softmax(controller.logits[d, :k], 0)
        observed = torch.bincount(indices[:, d], minlength=k)
        assert observed.numel() == k, "padding entries must never be sampled"
        assert chi2_pvalue(observed, probs) > 1e-3


def test_lstm_probabilities_sum_to_one_and_match_sampling_frequencies() -> None:
    sizes = (2, 3)
    controller = LSTMController(sizes, hidden=8, init_range=1.0, generator=make_generator(3))
    every = all_candidates(sizes)
    with torch.no_grad():
        lp, path_entropy = controller.log_prob_and_entropy(every)
        probs = lp.exp()
        assert probs.sum().item() == pytest.approx(1.0, abs=1e-5)
        # Chain rule: the expected sum of conditional entropies is the joint entropy.
        assert (probs * path_entropy).sum().item() == pytest.approx(-(probs * lp).sum().item(), abs=1e-5)
        n = 20000
        indices, _, _ = controller.sample(n, make_generator(4))
    observed = torch.bincount(indices[:, 0] * 3 + indices[:, 1], minlength=6)
    assert chi2_pvalue(observed, probs) > 1e-3


@pytest.mark.parametrize("kind", ["factorized", "lstm"])
def test_log_prob_of_samples_equals_recomputed(kind: str) -> None:
    controller = build_controller(kind, SIZES, hidden=16, generator=make_generator(0))
    if kind == "factorized":
        with torch.no_grad():
            controller.logits.normal_(generator=make_generator(5))
    indices, log_prob, entropy = controller.sample(64, make_generator(2))
    again, entropy_again = controller.log_prob_and_entropy(indices)
    assert torch.allclose(log_prob, again, atol=1e-5)
    assert torch.allclose(entropy, entropy_again, atol=1e-5)
    for d, k in enumerate(SIZES):
        assert 0 <= indices[:, d].min() and indices[:, d].max() < k


@pytest.mark.parametrize("kind", ["factorized", "lstm"])
def test_sampling_uses_only_the_given_generator(kind: str) -> None:
    global_state = torch.get_rng_state()
    first = build_controller(kind, SIZES, hidden=16, generator=make_generator(11))
    second = build_controller(kind, SIZES, hidden=16, generator=make_generator(11))
    a = first.sample(30, make_generator(12))[0]
    b = second.sample(30, make_generator(12))[0]
    assert torch.equal(a, b)
    assert torch.equal(torch.get_rng_state(), global_state), "the global RNG must not be touched"
    assert not torch.equal(a, first.sample(30, make_generator(13))[0])


def test_factorized_gradient_never_reaches_padding_and_mode_is_argmax() -> None:
    controller = FactorizedController((2, 4))
    log_prob, entropy = controller.log_prob_and_entropy(torch.tensor([[1, 3], [0, 2]]))
    (log_prob.sum() + entropy.sum()).backward()
    assert torch.all(controller.logits.grad[0, 2:] == 0)
    assert torch.all(torch.isfinite(controller.logits.grad))
    with torch.no_grad():
        controller.logits[0, :2] = torch.tensor([0.0, 3.0])
        controller.logits[1, :4] = torch.tensor([0.0, 0.0, 5.0, 1.0])
    assert controller.mode().tolist() == [1, 2]


def test_lstm_mode_follows_the_greedy_path() -> None:
    controller = zero_heads(LSTMController((3, 3), hidden=8, generator=make_generator(0)))
    with torch.no_grad():
        controller.heads[0].bias[2] = 4.0
        controller.heads[1].bias[1] = 4.0
    assert controller.mode().tolist() == [2, 1]


def test_unknown_controller_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="unknown controller 'gru'"):
        build_controller("gru", SIZES)
