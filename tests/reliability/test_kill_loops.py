"""SIGKILL at random points, again and again, for every agent on SQLite and PostgreSQL (after a
random delay, as a random trial's result is stored, as a checkpoint write starts): the finished
study equals an unbroken run, no finished trial and no diagnostics row is lost. Sized for CI;
``benchmarks/reliability.py`` runs the long version."""
from __future__ import annotations

import pytest

from rlnas.testing.campaign import kill_campaign
from rlnas.testing.toy import per_trial_agents

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("agent", per_trial_agents())
def test_random_sigkills_lose_no_trial(agent, any_url):
    result = kill_campaign(agent, any_url, kills=3, trials=30, seed=11, checkpoint_every=5)
    assert result.kills == 3 and result.checkpoint_kills == 1 and result.mid_run_kills >= 2
    assert result.final_exit_code == 0 and result.completed == 30
    assert result.trials_lost == 0 and result.trials_differing == 0 and result.identical
    assert result.diagnostics_lost == 0
