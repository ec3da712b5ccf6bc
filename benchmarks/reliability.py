"""The figures of ``docs/reliability.md``: SIGKILL campaigns for every agent on SQLite and
PostgreSQL, and the faults and bad inputs the reliability suite tries.

    python benchmarks/reliability.py                 # campaigns (about 10 min on 2 busy cores) + page
    python benchmarks/reliability.py --kills 3       # shorter campaigns
    python benchmarks/reliability.py --render        # only rebuild the page from the last results

Each campaign (``rlnas.testing.campaign.kill_campaign``) runs ``rlnas search`` once unbroken,
then reruns the same search under another name until it has been killed ``--kills`` times (after
a random delay, as a random trial's result is being stored, as a checkpoint write starts), lets
it finish, and compares the two studies trial by trial. The suite's cases are counted from
``pytest --collect-only`` of ``tests/reliability``. Results go to
``benchmarks/results/reliability/summary.json``; the page is written from that file alone, so
no number on it is typed by hand.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from collections import Counter
from contextlib import ExitStack
from pathlib import Path
from tempfile import TemporaryDirectory

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "reliability" / "summary.json"
PAGE = ROOT / "docs" / "reliability.md"

SUITE_FILES = {
    "test_cifar_pickle.py": ("CIFAR batches from a crafted file (item 1)",
                             "parsed by an opcode walker that builds only plain data and numeric arrays; "
                             "anything else is refused with one line, in a child process so a crash would show"),
    "test_store_faults.py": ("schema race, damaged / full / read-only / deleted database, limits (items 2, 8, 9)",
                             "schema created under BEGIN IMMEDIATE or an advisory lock; database errors become one "
                             "line (exit 2, or 1 mid-run); a deleted file stops the run; seeds and names checked "
                             "before any backend sees them"),
    "test_study_faults.py": ("kills at chosen points, damaged checkpoints, odd results, API input (items 3-7, 10, 13)",
                             "replayed tells log missing diagnostics; stop conditions stored with the study; the "
                             "newest readable checkpoint is used, with a warning; unstorable results FAIL with the "
                             "reason; a non-Measurement stops the search; bad arguments are one-line ConfigErrors"),
    "test_cli_faults.py": ("export overwrite, strict JSON, terminal injection, failed starts (items 11-13, 15)",
                           "a database is never overwritten, other files only with --force; NaN/inf exported as "
                           "null; names and errors printed literally with control characters escaped; a study is "
                           "created only after every check (evaluator.prepare() included) passed"),
    "test_option_types.py": ("options of the wrong type or range (item 14)",
                             "every agent config field, seed, evaluator option and model option checked against its "
                             "declared type and range before anything is built or stored"),
    "test_darts_auxiliary.py": ("DARTS auxiliary head in the train evaluator (item 10)",
                                "the auxiliary loss is added with its weight; a head that does not fit the images "
                                "is a ConfigError before the study is created"),
    "test_nb201_corrections.py": ("the shipped NB201 table (item 16)",
                                  "closed-form params for the cells whose source params were off; outlier training "
                                  "times replaced by the median of cells with the same operations, marked estimated"),
    "test_json_values.py": ("values JSON cannot hold (items 6, 13)",
                            "the first non-JSON part is named; strict JSON written with NaN/inf as null"),
    "test_run_faults.py": ("hanging evaluator, worker dying mid-trial",
                           "--trial-timeout stores the trial FAIL (timeout) and the search goes on; a dead worker "
                           "is replaced and its trial run again"),
    "test_fault_helpers.py": ("the fault injectors; SIGKILL during a checkpoint write",
                              "a kill at the checkpoint insert loses nothing: resume equals the unbroken run"),
    "test_kill_loops.py": ("SIGKILLs of all three kinds for every agent on SQLite and PostgreSQL (slow)",
                           "every finished trial and diagnostics row is kept; the resumed study equals the "
                           "unbroken one"),
}


def campaign_agents() -> list[str]:
    """Agents the CLI can drive on NB201 with the table evaluator (weight-sharing ones have their own driver)."""
    from rlnas.agents import agent_class, list_agents
    from rlnas.agents.base import WeightSharingAgent

    return [a for a in list_agents() if not issubclass(agent_class(a), WeightSharingAgent)]


def run_campaigns(kills: int, trials: int, seed: int) -> list[dict]:
    """One kill campaign per agent and backend."""
    from rlnas.testing.campaign import kill_campaign
    from rlnas.testing.postgres import PostgresUnavailable, fresh_database, postgres_server

    results = []
    with ExitStack() as stack, TemporaryDirectory() as folder:
        backends = {"sqlite": lambda agent: f"sqlite:///{folder}/{agent}.db"}
        try:
            server = stack.enter_context(postgres_server())
            backends["postgresql"] = lambda _agent: fresh_database(server)
        except PostgresUnavailable as exc:
            print(f"no PostgreSQL: {exc}", file=sys.stderr)
        for backend, url_of in backends.items():
            for agent in campaign_agents():
                start = time.perf_counter()
                result = kill_campaign(agent, url_of(agent), kills=kills, trials=trials, seed=seed,
                                       checkpoint_every=10, backend=backend).to_dict()
                result["campaign_seconds"] = round(time.perf_counter() - start, 1)
                print(json.dumps(result), flush=True)
                results.append(result)
    return results


def suite_cases() -> dict[str, int]:
    """Test cases per file of ``tests/reliability`` (parametrisations counted), from pytest itself."""
    listing = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
                              "tests/reliability"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    ids = [line for line in listing.splitlines() if "::" in line]
    return dict(Counter(Path(i.split("::")[0]).name for i in ids))


def render(summary: dict) -> str:
    """The page, from the summary alone."""
    runs = summary["campaigns"]
    kills = sum(r["kills"] for r in runs)
    lines = [
        "# Reliability: what the fault suite tries, and the figures",
        "",
        "rlnas promises that a search never loses a finished trial, resumes after a crash to exactly the",
        "run it would have been, never crashes on bad input, and never lets bad input through. The fault",
        "suite (`tests/reliability/`, run by CI; the long kill loops carry the `slow` marker and run with",
        "`pytest -m slow`) tests each promise, and `benchmarks/reliability.py` measures the figures below.",
        "This page is written by that script from `benchmarks/results/reliability/summary.json`.",
        "",
        "## SIGKILL at random points",
        "",
        f"Each campaign runs `rlnas search` for {runs[0]['trials'] if runs else '-'} trials once unbroken, then "
        "the same search under another name again and again until it has been killed with SIGKILL the given "
        "number of times, and finally lets it finish. The kills cycle through three kinds: *timed*, after a "
        "random delay between 0 and four fifths of the run's start-up time (measured with a one-trial search) "
        "plus half the unbroken run's remaining share, so that a run never ends before its kill on a machine "
        "that got less busy (anywhere: importing, replaying, evaluating, writing); *at a result*, as the "
        "process starts storing the result of a random one of the trials still to run; *at a checkpoint*, as "
        "it starts writing its next checkpoint (the last two through "
        "`python -m rlnas.testing.kill`). *Mid-run* kills ended a run after it had stored new trials; *lost* "
        "counts trials of the unbroken run missing from the killed one; *differing* counts trials of the killed "
        "run that the unbroken one does not have; *diagnostics lost* counts the agent's logged updates missing. "
        "A tabular search spends most of its wall time starting up and replaying, so timed kills mostly land "
        "there; the kills at a result or a checkpoint always land mid-run.",
        "",
        "| backend | agent | kills (timed / at a result / at a checkpoint) | mid-run | trials completed | "
        "trials lost | trials differing | diagnostics lost | identical to unbroken |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in runs:
        kinds = f"{r['timed_kills']} / {r['result_kills']} / {r['checkpoint_kills']}"
        lines.append(f"| {r['backend']} | {r['agent']} | {r['kills']} ({kinds}) | {r['mid_run_kills']} "
                     f"| {r['completed']} | {r['trials_lost']} | {r['trials_differing']} | "
                     f"{r['diagnostics_lost']} of {r['diagnostics_expected']} | {'yes' if r['identical'] else 'NO'} |")
    lost = sum(r["trials_lost"] for r in runs)
    lines += [
        "",
        f"In all: **{kills} kills survived, {lost} trials lost**, "
        f"{sum(r['identical'] for r in runs)} of {len(runs)} killed studies identical to their unbroken run.",
        "",
        "## Faults and bad inputs tried by the suite",
        "",
        "| test file | what is tried | cases | how it is handled |",
        "|---|---|---|---|",
    ]
    cases = summary["suite_cases"]
    for name, (what, how) in SUITE_FILES.items():
        lines.append(f"| `{name}` | {what} | {cases.get(name, 0)} | {how} |")
    lines += [
        "",
        f"In all: **{sum(cases.values())} test cases** in `tests/reliability/`. How to inject the same faults "
        "yourself: `rlnas.testing.failing_store.FailingStore` (writes fail after N), "
        "`rlnas.testing.failing_store.read_only_file`, `rlnas.testing.faults` (slow, hanging, dying evaluators and "
        "odd results), `python -m rlnas.testing.kill --kill-on REGEX --after N -- ARGS` (SIGKILL as the N-th "
        "matching SQL statement starts) and `rlnas.testing.campaign.kill_campaign`.",
        "",
        "## How it was measured",
        "",
        f"`{summary['command']}` on {summary['machine']}, load average {summary['load']} at the start; "
        f"{summary['wall_seconds']} s in all.",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0].replace("\n", " "))
    parser.add_argument("--kills", type=int, default=8, help="SIGKILLs per campaign (default 8)")
    parser.add_argument("--trials", type=int, default=60, help="trials per search (default 60)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--render", action="store_true", help="only rebuild the page from the saved results")
    args = parser.parse_args(argv)
    if not args.render:
        load = round(os.getloadavg()[0], 2)
        start = time.perf_counter()
        campaigns = run_campaigns(args.kills, args.trials, args.seed)
        summary = {"command": "python benchmarks/reliability.py " + " ".join(argv or sys.argv[1:]),
                   "machine": f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs", "load": load,
                   "campaigns": campaigns, "suite_cases": suite_cases(),
                   "wall_seconds": round(time.perf_counter() - start)}
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(summary, indent=2) + "\n")
    summary = json.loads(RESULTS.read_text())
    PAGE.write_text(render(summary))
    print(f"wrote {PAGE}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
