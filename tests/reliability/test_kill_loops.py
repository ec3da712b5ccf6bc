"""SIGKILL at random points, again and again, for every agent on SQLite and PostgreSQL (a third of
the runs die as they start a checkpoint write): the finished study equals an unbroken run, and
no finished trial is ever lost. Sized for CI; ``benchmarks/reliability.py`` runs the long version."""
from __future__ import annotations

import pytest

from rlnas.agents import list_agents
from rlnas.testing.campaign import kill_campaign

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("agent", list_agents())
def test_random_sigkills_lose_no_trial(agent, any_url):
    result = kill_campaign(agent, any_url, kills=3, trials=30, seed=11, checkpoint_every=5)
    assert result.kills == 3 and result.final_exit_code == 0
    assert result.trials_lost == 0 and result.trials_differing == 0 and result.identical
    assert result.completed == 30
