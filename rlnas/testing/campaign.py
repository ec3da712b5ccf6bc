"""SIGKILL campaigns: kill an ``rlnas search`` again and again, then compare with an unbroken run.

:func:`kill_campaign` first runs the search uninterrupted (under another name) to learn its
wall time ``W``, then reruns the same command under the study's own name, SIGKILLing it after
random delays in ``[0.2 W, W]`` (every third run instead dies by itself as it starts writing a
checkpoint, through the kill hook of :mod:`rlnas.testing.kill`), until it has died ``kills``
times, and lets the last run finish. It reports how many kills landed, how many of them
landed mid-run (the run they ended had stored new trials), and compares the finished study
with the unbroken one: trials lost, trials that differ, diagnostics rows lost.
"""
from __future__ import annotations

import itertools
import random
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from rlnas.errors import StudyNotFound
from rlnas.testing.kill import cli_command, kill_at_random_points, run_cli, stored_run

CHECKPOINT_INSERT = r"insert\s+into\s+rlnas_checkpoints"


@dataclass
class CampaignResult:
    """The figures of one campaign (one agent on one backend)."""

    agent: str
    backend: str
    trials: int
    kills: int
    checkpoint_kills: int
    mid_run_kills: int
    runs_finished_early: int
    completed: int
    trials_lost: int
    trials_differing: int
    diagnostics_expected: int
    diagnostics_lost: int
    identical: bool
    final_exit_code: int
    wall_seconds_unbroken: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-able figures."""
        return asdict(self)


def _count(name: str, url: str) -> int:
    try:
        return len(stored_run(name, url)["complete"])
    except StudyNotFound:
        return 0


def kill_campaign(agent: str, url: str, *, kills: int, trials: int, seed: int, checkpoint_every: int = 10,
                  extra: Sequence[str] = (), backend: str = "") -> CampaignResult:
    """Kill ``rlnas search --agent AGENT`` ``kills`` times at random points; compare with an unbroken run."""
    base = ["search", "--agent", agent, "--trials", str(trials), "--seed", str(seed), "--checkpoint-every",
            str(checkpoint_every), "--no-progress", "--storage", url, *extra]
    start = time.perf_counter()
    unbroken = run_cli([*base, "--name", f"unbroken-{agent}-{seed}"])
    wall = time.perf_counter() - start
    if unbroken.returncode != 0:
        raise RuntimeError(f"the unbroken {agent} run failed: {unbroken.stderr[-500:]}")
    name = f"killed-{agent}-{seed}"
    args = [*base, "--name", name]
    rng = random.Random(seed)

    def command(run: int) -> list[str]:
        if run >= 0 and run % 3 == 2:
            return cli_command(args, kill_on=CHECKPOINT_INSERT, after=rng.randint(1, 3))
        return cli_command(args)

    counts = [0]  # COMPLETE trials stored after each kill

    def between(_kill: int) -> None:
        counts.append(_count(name, url))

    report = kill_at_random_points(command, kills=kills, seed=seed, min_delay=0.2 * wall, max_delay=wall,
                                   between=between)
    # a kill landed mid-run when the run it ended had stored new trials
    mid_run = sum(after > before for before, after in itertools.pairwise(counts))
    killed, whole = stored_run(name, url), stored_run(f"unbroken-{agent}-{seed}", url)
    lost = [t for t in whole["complete"] if t not in killed["complete"]]
    differing = [t for t in killed["complete"] if t not in whole["complete"]]
    return CampaignResult(
        agent=agent, backend=backend, trials=trials, kills=report.kills, checkpoint_kills=report.hook_kills,
        mid_run_kills=mid_run, runs_finished_early=report.finished_early, completed=len(killed["complete"]),
        trials_lost=len(lost), trials_differing=len(differing), diagnostics_expected=len(whole["diagnostics"]),
        diagnostics_lost=len([s for s in whole["diagnostics"] if s not in killed["diagnostics"]]),
        identical=killed["complete"] == whole["complete"], final_exit_code=report.final.returncode,  # type: ignore[union-attr]
        wall_seconds_unbroken=round(wall, 2))
