"""SIGKILL campaigns: kill an ``rlnas search`` again and again, then compare with an unbroken run.

:func:`kill_campaign` first runs the search uninterrupted (under another name) to learn its
wall time ``W`` (and once with one trial, for its start-up time ``S``), then reruns the same
command under the study's own name until it has been killed ``kills`` times, cycling through
three kinds of kill: SIGKILL after a random delay between 0 and the run's expected length
``S + (W - S) * remaining / trials`` (anywhere: importing, replaying, evaluating, writing; a
run that finishes first ends the campaign early), death as
the process starts storing the result of a random one of the remaining trials, and death as it
starts writing its next checkpoint (both through the kill hook of :mod:`rlnas.testing.kill`).
Then it lets the search finish and compares it with the unbroken one: trials lost, trials that
differ, diagnostics rows lost. A kill is *mid-run* when the run it ended had stored new trials.
"""
from __future__ import annotations

import random
import signal
import subprocess
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from rlnas.errors import StudyNotFound
from rlnas.testing.kill import cli_command, run_cli, stored_run

CHECKPOINT_INSERT = r"insert\s+into\s+rlnas_checkpoints"
"""The statement that starts a checkpoint write."""
RESULT_UPDATE = r"update\s+rlnas_trials\s+set\s+state=.*eval_info"
"""The statement that stores a trial's result (not the one that marks orphans)."""


@dataclass
class CampaignResult:
    """The figures of one campaign (one agent on one backend)."""

    agent: str
    backend: str
    trials: int
    kills: int
    timed_kills: int
    result_kills: int
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
    """Kill ``rlnas search --agent AGENT`` ``kills`` times; compare with an unbroken run."""
    base = ["search", "--agent", agent, "--seed", str(seed), "--checkpoint-every", str(checkpoint_every),
            "--no-progress", "--storage", url, *extra]
    start = time.perf_counter()
    unbroken = run_cli([*base, "--trials", str(trials), "--name", f"unbroken-{agent}-{seed}"])
    wall = time.perf_counter() - start
    if unbroken.returncode != 0:
        raise RuntimeError(f"the unbroken {agent} run failed: {unbroken.stderr[-500:]}")
    start = time.perf_counter()
    run_cli([*base, "--trials", "1", "--name", f"startup-{agent}-{seed}"])  # one trial: the start-up time
    startup = min(time.perf_counter() - start, wall)
    name = f"killed-{agent}-{seed}"
    args = [*base, "--trials", str(trials), "--name", name]
    rng = random.Random(seed)
    counts = [0]  # COMPLETE trials stored before the first run and after each kill
    landed = {"timed": 0, "result": 0, "checkpoint": 0, "mid_run": 0}
    finished_early = 0
    while len(counts) - 1 < kills:
        remaining = trials - counts[-1]
        kind = ("timed", "result", "checkpoint")[(len(counts) - 1) % 3]
        if kind == "checkpoint" and remaining <= checkpoint_every:
            kind = "result"
        if kind == "result" and remaining <= 1:
            kind = "timed"
        if kind == "timed":
            # anywhere up to four fifths of the start-up and half-way through the rest, as the unbroken runs timed
            # them: a machine that got less busy since then cannot end the run before the kill (result kills:
            # likewise; a tabular run's trials take a fraction of a second after seconds of start-up)
            code = _run(cli_command(args), rng.uniform(0.0, 0.8 * startup + (wall - startup) * remaining / trials / 2))
        elif kind == "result":
            # at most half of what is left, so that later kills still find a run to interrupt
            after = rng.randint(1, max(1, (remaining - 1) // 2))
            code = _run(cli_command(args, kill_on=RESULT_UPDATE, after=after), None)
        else:
            code = _run(cli_command(args, kill_on=CHECKPOINT_INSERT, after=1), None)
        if code != -signal.SIGKILL:
            finished_early += 1
            break
        counts.append(_count(name, url))
        landed[kind] += 1
        landed["mid_run"] += counts[-1] > counts[-2]
    killed_runs = len(counts) - 1
    final = run_cli(args)
    killed, whole = stored_run(name, url), stored_run(f"unbroken-{agent}-{seed}", url)
    lost = [t for t in whole["complete"] if t not in killed["complete"]]
    differing = [t for t in killed["complete"] if t not in whole["complete"]]
    return CampaignResult(
        agent=agent, backend=backend, trials=trials, kills=killed_runs, timed_kills=landed["timed"],
        result_kills=landed["result"], checkpoint_kills=landed["checkpoint"],
        mid_run_kills=landed["mid_run"], runs_finished_early=finished_early, completed=len(killed["complete"]),
        trials_lost=len(lost), trials_differing=len(differing), diagnostics_expected=len(whole["diagnostics"]),
        diagnostics_lost=len([s for s in whole["diagnostics"] if s not in killed["diagnostics"]]),
        identical=killed["complete"] == whole["complete"], final_exit_code=final.returncode,
        wall_seconds_unbroken=round(wall, 2))


def _run(argv: Sequence[str], delay: float | None) -> int:
    """Run ``argv``; SIGKILL it after ``delay`` seconds unless it ended; return its exit code."""
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        return process.wait(timeout=delay if delay is not None else 600)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGKILL)
        return process.wait()
