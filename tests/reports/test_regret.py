"""Regret plot data: incumbents, regret, padding and confidence bands from closed forms."""
from __future__ import annotations

import math

import numpy as np
import pytest

from rlnas.reports.regret import incumbent_values, mean_band, pad_last, regret_curve
from rlnas.reports.render import plot_bands


def test_incumbent_follows_the_best_reward_keeping_the_earliest_on_ties() -> None:
    rewards = [None, 5.0, 3.0, 7.0, 7.0, float("nan"), 6.0]
    values = [99.0, 50.0, 30.0, 70.0, 71.0, 98.0, 60.0]
    out = incumbent_values(rewards, values)
    assert math.isnan(out[0])
    assert out[1:].tolist() == [50.0, 50.0, 70.0, 70.0, 70.0, 70.0]


def test_regret_is_optimum_minus_incumbent_test_value() -> None:
    assert regret_curve([1.0, 3.0, 2.0], [90.0, 92.5, 99.0], 94.0).tolist() == [4.0, 1.5, 1.5]
    with pytest.raises(ValueError, match="differ in length"):
        regret_curve([1.0], [1.0, 2.0], 3.0)


def test_pad_last_repeats_the_final_value() -> None:
    assert pad_last([[3.0, 1.0], [2.0, 2.0, 0.5]]).tolist() == [[3.0, 1.0, 1.0], [2.0, 2.0, 0.5]]
    assert pad_last([[1.0, 2.0, 3.0]], length=2).tolist() == [[1.0, 2.0]]


def test_mean_band_matches_the_normal_approximation() -> None:
    band = mean_band("a", [[1.0, 4.0], [3.0, 8.0]])
    assert band.mean.tolist() == [2.0, 6.0] and band.x.tolist() == [1.0, 2.0] and band.runs == 2
    # std (ddof=1) of (1, 3) is sqrt(2); half width = 1.959964 * sqrt(2) / sqrt(2)
    assert band.high[0] - band.mean[0] == pytest.approx(1.959964, abs=1e-6)
    assert band.mean[1] - band.low[1] == pytest.approx(1.959964 * 2.0, abs=1e-6)
    single = mean_band("one", [[1.0, 2.0]])
    assert np.array_equal(single.low, single.high)
    with pytest.raises(ValueError, match="level"):
        mean_band("a", [[1.0]], level=1.0)


def test_plot_bands_writes_a_png(tmp_path) -> None:
    pytest.importorskip("matplotlib")
    bands = [mean_band("x", [[3.0, 1.0, 0.0], [2.0, 0.5, 0.5]])]
    path = plot_bands({"panel A": bands, "panel B": bands}, tmp_path / "sub" / "r.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_old_import_path_still_works() -> None:
    from rlnas.plots import regret

    assert regret.mean_band is mean_band and regret.plot_bands is plot_bands
