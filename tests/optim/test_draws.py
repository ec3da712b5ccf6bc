"""The random operands' draws: the fast CPU draws (16-bit words of a lagged-Fibonacci generator)
follow their recurrence, are uniform, seeded and resumable; the exact mode keeps torch's own
``uniform_`` / ``normal_`` draws."""
from __future__ import annotations

import copy
import itertools
import math

import numpy as np
import pytest
import torch
from torch import nn

from rlnas.errors import ConfigError
from rlnas.optim import RuleOptimizer
from rlnas.optim.runtime import BULK_MIN_ELEMENTS, GAUSS_LEVELS, Draws, WordStream, gaussian_table


def tensors(dtype: torch.dtype = torch.float32) -> list[torch.Tensor]:
    """Two tensors of odd sizes (the 64-bit words do not line up with them): 2^21 + 3 elements."""
    return [torch.ones(2 ** 20 + 1, dtype=dtype), torch.ones(1023, 1025, dtype=dtype)]


N = sum(x.numel() for x in tensors())


def fast(seed: int) -> Draws:
    return Draws(torch.Generator().manual_seed(seed), False, {})


def gauss(draws: Draws, xs: list[torch.Tensor], std: float) -> list[torch.Tensor]:
    draws.gauss_(xs, std)
    return xs


def draw_words(stream: WordStream, sizes: list[int]) -> torch.Tensor:
    """The words of successive draws of ``sizes`` words, as int64 in 0 … 65535."""
    out = []
    for n in sizes:
        pieces = [(offset, words.view(torch.uint16).to(torch.int64)) for offset, words in stream.chunks(n)]
        assert [offset for offset, _ in pieces] == list(itertools.accumulate([0] + [len(w) for _, w in pieces[:-1]]))
        out.append(torch.cat([w for _, w in pieces]))
        assert out[-1].numel() == n
    return torch.cat(out)


def test_word_stream_follows_the_lagged_fibonacci_recurrence_across_chunks_and_wraps():
    stream = WordStream(torch.Generator().manual_seed(0))
    sizes = [1, 999, 215_747, 300_001, 756_839, 2 ** 20 + 7]  # odd sizes: pieces split at the ring's ends
    got = draw_words(stream, sizes)
    long, short = WordStream.LONG_LAG, WordStream.SHORT_LAG
    seed = torch.empty(long, dtype=torch.int16).random_(-(2 ** 15), 2 ** 15, generator=torch.Generator().manual_seed(0))
    x = np.zeros(long + got.numel(), dtype=np.int64)  # the sequence written out, no ring
    x[:long] = seed.view(torch.uint16).to(torch.int64).numpy()
    x[0] |= 1
    for n in range(long, x.size, short):  # blocks of at most the short lag depend only on earlier words
        stop = min(n + short, x.size)
        x[n:stop] = (x[n - long:stop - long] + x[n - short:stop - short]) % 65536
    assert np.array_equal(got.numpy(), x[long:])


def test_words_are_uniform_in_high_and_low_bits_and_pairs():
    words = draw_words(WordStream(torch.Generator().manual_seed(1)), [2 ** 22])
    n = words.numel()

    def chi2(cells: torch.Tensor, k: int) -> float:
        counts = torch.bincount(cells, minlength=k).double()
        return ((counts - cells.numel() / k) ** 2 / (cells.numel() / k)).sum().item()

    limit = 255 + 6 * math.sqrt(2 * 255)  # 255 degrees of freedom: mean 255, sd 22.6
    assert chi2(words >> 8, 256) < limit  # high byte
    assert chi2(words & 255, 256) < limit  # low byte: the weakest bits of an additive generator
    high = words >> 12
    assert chi2(high[:-1] * 16 + high[1:], 256) < limit  # neighbours (in one step: neighbouring weights)
    lag = WordStream.SHORT_LAG  # pairs at the short lag are independent too (only triples are related)
    assert chi2(high[:-lag] * 16 + high[lag:], 256) < limit
    assert n == 2 ** 22


def test_word_stream_state_round_trips():
    stream = WordStream(torch.Generator().manual_seed(2))
    assert stream.state() is None
    draw_words(stream, [300_000])
    copy_of = WordStream(None)
    copy_of.load(copy.deepcopy(stream.state()))
    assert torch.equal(draw_words(stream, [500_000]), draw_words(copy_of, [500_000]))


@pytest.mark.parametrize("p", [0.1, 0.3, 0.5])
def test_fast_drop_drops_at_the_quantised_rate(p):
    xs = tensors()
    fast(1).drop_(xs, p)
    rate = round(p * GAUSS_LEVELS) / GAUSS_LEVELS
    se = math.sqrt(rate * (1 - rate) / N)
    dropped = torch.cat([x.reshape(-1) for x in xs]) == 0
    assert abs(dropped.double().mean().item() - rate) < 5 * se
    for part in dropped.chunk(4):  # each quarter (the pieces of several additions)
        share = part.double().mean().item()
        assert abs(share - rate) < 5 * se * 2, share
    assert set(torch.cat([x.reshape(-1) for x in xs]).unique().tolist()) == {0.0, 1.0}  # kept as they were


def test_gaussian_table_levels_variance_and_distance_to_the_normal():
    table = gaussian_table()
    assert table.numel() == GAUSS_LEVELS and bool((table[1:] > table[:-1]).all())
    assert torch.equal(table, -table.flip(0))
    assert table.square().mean().item() == pytest.approx(1.0, abs=1e-12)
    assert table.max().item() == pytest.approx(4.325, abs=1e-3)
    cdf = torch.special.ndtr(table)
    k = torch.arange(GAUSS_LEVELS, dtype=torch.float64)
    distance = torch.maximum(cdf - k / GAUSS_LEVELS, (k + 1) / GAUSS_LEVELS - cdf).max().item()
    assert distance < 1 / GAUSS_LEVELS


def test_fast_gaussian_draws_moments_and_kolmogorov_distance():
    draws = torch.cat([x.reshape(-1).double() for x in gauss(fast(2), tensors(torch.float64), 1.0)])
    assert abs(draws.mean().item()) < 5 / math.sqrt(N)
    assert abs(draws.var().item() - 1.0) < 5 * math.sqrt(2 / N)
    assert bool(torch.isin(draws, gaussian_table()).all())  # every draw is a level of the table
    ordered = draws.sort().values
    cdf = torch.special.ndtr(ordered)
    ranks = torch.arange(N, dtype=torch.float64)
    ks = torch.maximum((ranks + 1) / N - cdf, cdf - ranks / N).max().item()
    # the table's own distance (1 / 65536 at most) + the DKW bound at 99.9 %
    assert ks < 1 / GAUSS_LEVELS + math.sqrt(math.log(2 / 0.001) / (2 * N))


def test_gaussian_draws_are_the_table_at_the_streams_words_in_order():
    # tensors longer than a lookup chunk, one not contiguous, draws across the stream's pieces and
    # its ring's end: every element is the table's level at its word, and each draw goes on from
    # the word after the last one of the draw before
    draws, stream = fast(8), WordStream(torch.Generator().manual_seed(8))
    xs = [torch.empty(70_001), torch.empty(300, 700).t(), torch.empty(5)]
    n = sum(x.numel() for x in xs)
    for _ in range(3):
        draws.gauss_(xs, 1.0)
        expected = gaussian_table(torch.float32)[draw_words(stream, [n])]
        assert torch.equal(torch.cat([x.reshape(-1) for x in xs]), expected)


def test_fast_draws_are_seeded_and_scale_with_std():
    a, b, c = (gauss(fast(s), tensors(), 0.25) for s in (3, 3, 4))
    assert all(torch.equal(x, y) for x, y in zip(a, b)) and not torch.equal(a[0], c[0])
    unit = gauss(fast(3), tensors(), 1.0)
    assert all(torch.equal(x, 0.25 * u) for x, u in zip(a, unit))
    masks = []
    for s in (5, 5, 6):
        xs = tensors()
        fast(s).drop_(xs, 0.3)
        masks.append(xs)
    assert torch.equal(masks[0][1], masks[1][1]) and not torch.equal(masks[0][1], masks[2][1])


def test_without_a_generator_the_fast_draws_follow_the_global_rng():
    def draw() -> torch.Tensor:
        torch.manual_seed(9)
        return gauss(Draws(None, False, {}), [torch.empty(5000)], 1.0)[0]

    assert torch.equal(draw(), draw())


def run_rule(text: str, n: int, seed: int, exact: bool) -> torch.Tensor:
    """The first update of rule ``text`` on ``n`` weights at 0 with gradient 1 (lr 1): −rule."""
    p = nn.Parameter(torch.zeros(n))
    p.grad = torch.ones(n)
    RuleOptimizer([p], text, lr=1.0, seed=seed, exact_random=exact).step()
    return -p.detach()


@pytest.mark.parametrize("n", [BULK_MIN_ELEMENTS - 1, 20_000])
def test_exact_mode_and_small_buckets_draw_with_torchs_uniform_and_normal(n):
    gen = torch.Generator().manual_seed(11)
    noise = torch.empty(n).normal_(0.0, 0.1, generator=gen)
    gen = torch.Generator().manual_seed(11)
    kept = torch.empty(n).uniform_(generator=gen).ge(0.3).float()
    exact = n < BULK_MIN_ELEMENTS  # below the threshold the default mode draws exactly too
    for mode in (True, False):
        same = mode or exact
        assert torch.equal(run_rule("keep(eps, 1)", n, 11, mode), noise) == same
        assert torch.equal(run_rule("drop(g, 0.3) * 1", n, 11, mode), kept) == same


def linear(inputs: int) -> nn.Module:
    """A linear layer to 60 outputs, its weights from torch's global RNG seeded with 0."""
    torch.manual_seed(0)
    return nn.Linear(inputs, 60)


def steps(net: nn.Module, optimizer: torch.optim.Optimizer, k: int) -> None:
    """``k`` steps with every gradient 1."""
    for _ in range(k):
        for q in net.parameters():
            q.grad = torch.ones_like(q)
        optimizer.step()


def test_exact_random_round_trips_through_state_dict_and_is_checked():
    def model() -> nn.Module:
        return linear(100)  # 6,060 weights

    straight = model()
    steps(straight, RuleOptimizer(straight.parameters(), "drop(adam, 0.1) + eps", seed=1, exact_random=True), 6)
    first = model()
    first_opt = RuleOptimizer(first.parameters(), "drop(adam, 0.1) + eps", seed=1, exact_random=True)
    steps(first, first_opt, 3)
    resumed = model()
    resumed.load_state_dict(first.state_dict())
    resumed_opt = RuleOptimizer(resumed.parameters(), "drop(adam, 0.1) + eps", seed=1)  # default: fast
    resumed_opt.load_state_dict(copy.deepcopy(first_opt.state_dict()))
    assert resumed_opt.param_groups[0]["exact_random"] is True
    steps(resumed, resumed_opt, 3)
    assert all(torch.equal(a, b) for a, b in zip(straight.parameters(), resumed.parameters()))
    with pytest.raises(ConfigError, match="exact_random must be True or False"):
        RuleOptimizer(straight.parameters(), "adam + eps", exact_random="yes")


def test_fast_draws_resume_bit_for_bit_from_state_dict():
    def model() -> nn.Module:
        return linear(200)  # 12,060 weights: the fast draws

    straight = model()
    steps(straight, RuleOptimizer(straight.parameters(), "drop(adam, 0.3) + eps"), 6)
    first = model()  # seed None: the stream is seeded from the global RNG, set alike by model()
    first_opt = RuleOptimizer(first.parameters(), "drop(adam, 0.3) + eps")
    steps(first, first_opt, 3)
    saved = copy.deepcopy(first_opt.state_dict())
    assert saved["word_stream"]["ring"].numel() == WordStream.LONG_LAG
    resumed = model()
    resumed.load_state_dict(first.state_dict())
    torch.manual_seed(123)  # the global RNG elsewhere: the stream comes from the state
    resumed_opt = RuleOptimizer(resumed.parameters(), "drop(adam, 0.3) + eps")
    resumed_opt.load_state_dict(saved)
    steps(resumed, resumed_opt, 3)
    assert all(torch.equal(a, b) for a, b in zip(straight.parameters(), resumed.parameters()))
    assert "word_stream" not in RuleOptimizer(model().parameters(), "adam").state_dict()


@pytest.mark.parametrize("exact", [False, True])
def test_a_dropout_mask_joining_the_final_update_drops_at_its_rate(exact):
    # drop(g, 0.3) - g = -(1 - mask)·g: with g = 1 and lr 1 from w = 0, w ends at 1 - mask
    n = 200_000
    moved = -run_rule("drop(g, 0.3) - g", n, 7, exact)
    assert set(moved.unique().tolist()) <= {0.0, 1.0}
    rate = round(0.3 * GAUSS_LEVELS) / GAUSS_LEVELS if not exact else 0.3
    assert abs(moved.mean().item() - rate) < 5 * math.sqrt(rate * (1 - rate) / n)


@pytest.mark.parametrize("exact_random", [True, False])
def test_gaussian_draws_do_not_depend_on_the_memory_layout(exact_random):
    # exact draws (and every draw of a small bucket) filled a channels_last tensor in memory order
    moved = []
    for layout in (torch.channels_last, torch.contiguous_format):
        p = torch.nn.Parameter(torch.zeros(4, 3, 3, 3, dtype=torch.float64).to(memory_format=layout))
        optimizer = RuleOptimizer([p], "adam + eps", lr=1.0, seed=5, exact_random=exact_random)
        p.grad = torch.linspace(-1, 1, p.numel(), dtype=torch.float64).view(p.shape)
        optimizer.step()
        moved.append(p.detach().contiguous())
    assert torch.equal(moved[0], moved[1]) and moved[0].abs().sum() > 0
