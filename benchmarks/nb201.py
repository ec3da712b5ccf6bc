"""NAS-Bench-201 benchmark: every agent x each data set x many seeds, on the tabular evaluator.

Two protocols (``--protocols``):

- ``200``: reward = 200-epoch seed-mean validation accuracy, a fixed number of queries
  (``--queries``, default 500); reports the test accuracy of the best-by-validation cell
  after 50, 100, 200, 300 and 500 queries, the share of runs that found the global
  validation optimum, and a test-regret plot.
- ``12``: NATS-Bench's protocol: reward = 12-epoch validation accuracy, search until a
  simulated training-time budget is spent (20,000 s CIFAR-10, 40,000 s CIFAR-100,
  120,000 s ImageNet16-120); reports the 200-epoch test accuracy of the best-by-reward cell
  and the number of queries the budget allowed.

Run from the repository root::

    python benchmarks/nb201.py                          # the full default benchmark
    python benchmarks/nb201.py --agents random,evolution --seeds 10 --queries 200
    python benchmarks/nb201.py --agent-config 'evolution:{"population_size": 20}'

Results go to ``--out`` (default ``benchmarks/results/nb201``): ``results.md``,
``summary.json`` and ``regret.png`` (and ``runs.json.gz`` with ``--save-runs``).
"""
from __future__ import annotations

import argparse
import gzip
import json
import os
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _blas_one_thread  # noqa: F401  (one BLAS thread, before NumPy loads)
import _nb201_report as report

from rlnas.errors import RlnasError
from rlnas.files import folder_problem

ALL_AGENTS: tuple[str, ...] = ("random", "evolution", "local", "reinforce", "ppo", "l2nas", "l2nas_nolearn", "tpe")
VARIANTS: dict[str, tuple[str, dict[str, Any]]] = {
    "l2nas_nolearn": ("l2nas", {"learn": False}),   # the "top-K local search" ablation
    "local_first": ("local", {"move": "first"}),    # local search moving at the first improvement
}
"""Benchmark labels that are a library agent with a fixed config override."""
EXTRA_AGENTS: tuple[str, ...] = ("local_first",)
"""Labels accepted by ``--agents`` beyond the default set."""
DATASETS: tuple[str, ...] = ("cifar10", "cifar100", "imagenet16-120")
NBGRAPH_DATASETS: tuple[str, ...] = ("arxiv", "citeseer", "computers", "cora", "cs", "photo", "physics",
                                     "proteins", "pubmed")
BENCHMARK_DATASETS: dict[str, tuple[str, ...]] = {"nb201": DATASETS, "nbgraph": NBGRAPH_DATASETS}
MAX_TRIALS_FACTOR = 4
"""A run stops after ``queries`` distinct architectures or ``MAX_TRIALS_FACTOR · queries`` trials."""
DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "nb201"


@dataclass(frozen=True)
class Protocol:
    """How runs of one protocol search: reward fidelity and stopping rule."""

    fidelity: int
    """Training epochs behind the reward (200 or 12)."""
    budgets: Mapping[str, float] | None = None
    """Simulated seconds per data set; ``None`` means a fixed number of queries."""


PROTOCOLS: dict[int, Protocol] = {
    200: Protocol(200),
    12: Protocol(12, {"cifar10": 20_000.0, "cifar100": 40_000.0, "imagenet16-120": 120_000.0}),
}


@dataclass(frozen=True)
class Job:
    """One search run."""

    agent: str
    dataset: str
    protocol: int
    seed: int
    n_trials: int | None
    budget_seconds: float | None
    agent_config: dict[str, Any] = field(default_factory=dict)
    noisy: bool = False
    benchmark: str = "nb201"


@dataclass
class RunResult:
    """What one run produced, trial by trial in slot order (JSON-able)."""

    agent: str
    dataset: str
    protocol: int
    seed: int
    rewards: list[float | None]
    """Search reward of each trial (``None`` for a failed trial)."""
    test_acc: list[float]
    """200-epoch test accuracy of each trial (NaN for a failed trial)."""
    cost_seconds: list[float]
    """Simulated training seconds of each trial."""
    found_at: int | None
    """1-based query at which the global reward optimum was first evaluated, if it was."""
    wall_seconds: float
    """Real seconds the run took in its worker."""
    new: list[bool] = field(default_factory=list)
    """Per trial: True when its architecture was not evaluated earlier in the run (False: a repeat)."""


@dataclass
class BenchConfig:
    """Everything one benchmark invocation does."""

    agents: list[str] = field(default_factory=lambda: list(ALL_AGENTS))
    datasets: list[str] = field(default_factory=lambda: list(DATASETS))
    seeds: int = 50
    first_seed: int = 0
    queries: int = 500
    workers: int = 2
    protocols: list[int] = field(default_factory=lambda: [200, 12])
    agent_configs: dict[str, dict[str, Any]] = field(default_factory=dict)
    noisy: bool = False
    out: Path = DEFAULT_OUT
    save_runs: bool = False
    benchmark: str = "nb201"


# ------------------------------------------------------------------- workers
_EVALUATORS: dict[tuple[str, str, int, bool], Any] = {}


def evaluator_for(dataset: str, fidelity: int = 200, noisy: bool = False, benchmark: str = "nb201") -> Any:
    """The process-wide cached tabular evaluator for these options."""
    key = (benchmark, dataset, fidelity, noisy)
    if key not in _EVALUATORS:
        if benchmark == "nbgraph":
            from rlnas.evaluators.nbgraph import NBGraphEvaluator
            _EVALUATORS[key] = NBGraphEvaluator(dataset=dataset)
        else:
            from rlnas.evaluators.tabular import NB201Evaluator
            _EVALUATORS[key] = NB201Evaluator(dataset=dataset, fidelity=fidelity, noisy=noisy)
    return _EVALUATORS[key]


def identity_of(evaluator: Any, candidate: Any) -> Any:
    """What makes two trials the same architecture: the table row (NB201 cell string, NAS-Bench-Graph key)."""
    if hasattr(evaluator, "column_of"):
        return evaluator.column_of(candidate)
    return evaluator.space.key(candidate)


def _init_worker() -> None:
    # One thread per worker; torch itself is imported only by the agents that need it.
    os.environ["OMP_NUM_THREADS"] = "1"
    os.environ["MKL_NUM_THREADS"] = "1"
    _single_thread_torch()


def _single_thread_torch() -> None:
    torch = sys.modules.get("torch")
    if torch is not None and torch.get_num_threads() != 1:
        torch.set_num_threads(1)


def agent_and_config(label: str, overrides: Mapping[str, Any] | None = None) -> tuple[str, dict[str, Any]]:
    """Library agent name and config of a benchmark label (a variant adds its fixed override)."""
    agent, fixed = VARIANTS.get(label, (label, {}))
    return agent, {**fixed, **dict(overrides or {})}


def run_job(job: Job) -> RunResult:
    """Run one search and return its trials: until ``n_trials`` distinct architectures (at most
    ``MAX_TRIALS_FACTOR · n_trials`` trials) or until the simulated budget is spent."""
    start = time.perf_counter()
    evaluator = evaluator_for(job.dataset, PROTOCOLS[job.protocol].fidelity, job.noisy, job.benchmark)
    if job.agent == "tpe":
        trials = _tpe_trials(job, evaluator)
    else:
        trials = _study_trials(job, evaluator)
    rewards, tests, costs, new = [], [], [], []
    seen: set[Any] = set()
    optimum_key = evaluator.optimum("valid_acc")[0]
    found = None
    for q, (candidate, reward, test, cost) in enumerate(trials, 1):
        identity = identity_of(evaluator, candidate) if reward is not None else None
        rewards.append(reward)
        tests.append(test)
        costs.append(cost)
        new.append(identity is not None and identity not in seen)
        seen.add(identity)
        if found is None and reward is not None and _bench_id(evaluator, candidate) == optimum_key:
            found = q
    return RunResult(agent=job.agent, dataset=job.dataset, protocol=job.protocol, seed=job.seed, rewards=rewards,
                     test_acc=tests, cost_seconds=costs, found_at=found,
                     wall_seconds=time.perf_counter() - start, new=new)


def _bench_id(evaluator: Any, candidate: Any) -> Any:
    """The id ``evaluator.optimum`` uses: the NB201 cell string or the NAS-Bench-Graph key."""
    if hasattr(evaluator, "column_of"):
        return int(evaluator.table.key[evaluator.column_of(candidate)])
    return evaluator.space.key(candidate)


class _TrialCap(Exception):
    """Raised by a callback to end a run that spends too many trials on repeats."""


def _study_trials(job: Job, evaluator: Any) -> list[tuple[Any, float | None, float, float]]:
    """(candidate, reward, test accuracy, cost) of every trial of an rlnas study, in slot order.

    The study reuses repeats (``reuse_repeats=True``): a candidate it already evaluated is
    answered from the store, costs no budget and is stored as a repeat, so it still counts as
    a query in the tables by queries and not in those by distinct architectures.
    """
    from rlnas.study import create_study
    from rlnas.trial import TrialState

    agent, config = agent_and_config(job.agent, job.agent_config)
    study = create_study(space=evaluator.space, agent=agent, agent_config=config, evaluator=evaluator,
                         seed=job.seed, storage=None, checkpoint_every=0, reuse_repeats=True)
    _single_thread_torch()  # building the agent may just have imported torch
    target = job.n_trials if job.n_trials is not None else 10 ** 9
    cap = MAX_TRIALS_FACTOR * (job.n_trials if job.n_trials is not None else 1000)
    count = 0

    def stop_at_cap(_study: Any, _trial: Any) -> None:
        nonlocal count
        count += 1
        if count >= cap:
            raise _TrialCap

    try:
        if job.budget_seconds is not None:
            study.optimize(budget_seconds=job.budget_seconds, callbacks=[stop_at_cap])
        else:
            distinct: set[Any] = set()
            while len(distinct) < target:  # equivalent cells (nbgraph) have different keys: loop
                study.optimize(n_trials=study.n_finished + target - len(distinct), callbacks=[stop_at_cap])
                distinct = {identity_of(evaluator, t.candidate) for t in study.trials
                            if t.state is TrialState.COMPLETE and not t.orphaned}
    except _TrialCap:
        pass
    trials = sorted((t for t in study.trials if t.state.finished and not t.orphaned), key=lambda t: t.slot)
    return [(t.candidate, t.reward if t.state is TrialState.COMPLETE else None,
             float(t.metrics.get("test_acc", float("nan"))), float(t.cost_seconds)) for t in trials]


def _tpe_trials(job: Job, evaluator: Any) -> list[tuple[Any, float | None, float, float]]:
    """The same trials from Optuna's TPE sampler (``multivariate=True``, otherwise its defaults),
    one categorical parameter per decision; an Optuna ask/tell loop, outside rlnas."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    space = evaluator.space
    sampler = optuna.samplers.TPESampler(multivariate=True, seed=job.seed)
    study = optuna.create_study(direction="maximize", sampler=sampler)
    trials: list[tuple[Any, float | None, float, float]] = []
    distinct: set[Any] = set()
    spent = 0.0
    while True:
        if job.budget_seconds is not None and spent >= job.budget_seconds:
            break
        if job.budget_seconds is None and (len(distinct) >= job.n_trials
                                           or len(trials) >= MAX_TRIALS_FACTOR * job.n_trials):
            break
        trial = study.ask()
        candidate = space.candidate({d.name: trial.suggest_categorical(d.name, list(d.choices))
                                     for d in space.decisions})
        try:
            m = evaluator.evaluate(candidate)
        except RlnasError:
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
            trials.append((candidate, None, float("nan"), 0.0))
            continue
        reward = float(m.metrics["valid_acc"])
        study.tell(trial, reward)
        trials.append((candidate, reward, float(m.metrics["test_acc"]), float(m.cost_seconds)))
        distinct.add(identity_of(evaluator, candidate))
        spent += float(m.cost_seconds)
    return trials


def run_jobs(jobs: Sequence[Job], workers: int, log: Any = print) -> list[RunResult]:
    """Run ``jobs`` on ``workers`` processes (inline when ``workers <= 1``), in job order."""
    results: list[RunResult | None] = [None] * len(jobs)
    step = max(1, len(jobs) // 10)
    if workers <= 1:
        for i, job in enumerate(jobs):
            results[i] = run_job(job)
            if (i + 1) % step == 0:
                log(f"  {i + 1}/{len(jobs)} runs done")
        return results  # type: ignore[return-value]
    # spawn: workers start clean even when the parent already imported torch.
    with ProcessPoolExecutor(workers, mp_context=get_context("spawn"), initializer=_init_worker) as pool:
        futures = {pool.submit(run_job, job): i for i, job in enumerate(jobs)}
        for done, future in enumerate(as_completed(futures), 1):
            i = futures[future]
            try:
                results[i] = future.result()
            except Exception as exc:
                for other in futures:
                    other.cancel()
                raise RuntimeError(f"run {jobs[i]} failed: {type(exc).__name__}: {exc}") from exc
            if done % step == 0:
                log(f"  {done}/{len(jobs)} runs done")
    return results  # type: ignore[return-value]


# -------------------------------------------------------------- experiments
def available_agents(names: Iterable[str], configs: Mapping[str, Mapping[str, Any]] | None = None,
                     ) -> tuple[list[str], dict[str, str]]:
    """Split ``names`` into agents whose module imports and ``{name: reason}`` for the others.

    Each available agent is built once with its config override, so that a bad config
    fails here with a :class:`~rlnas.errors.ConfigError` instead of in every worker.
    """
    from rlnas.agents import agent_class
    from rlnas.spaces.nb201 import NB201Space

    ok, skipped = [], {}
    for name in names:
        if name == "tpe":
            try:
                import optuna  # noqa: F401
            except ImportError as exc:
                skipped[name] = f"ImportError: {exc} (pip install 'rlnas[bench]')"
            else:
                ok.append(name)
            continue
        agent, config = agent_and_config(name, (configs or {}).get(name))
        try:
            cls = agent_class(agent)
        except (ImportError, AttributeError) as exc:
            skipped[name] = f"{type(exc).__name__}: {exc}"
            continue
        cls(NB201Space(), config, seed=0)
        ok.append(name)
    return ok, skipped


def make_jobs(cfg: BenchConfig, agents: Sequence[str]) -> list[Job]:
    """Every (protocol, data set, agent, seed) run of a search benchmark."""
    jobs = []
    for protocol in cfg.protocols:
        budgets = PROTOCOLS[protocol].budgets
        for dataset in cfg.datasets:
            for agent in agents:
                for seed in range(cfg.first_seed, cfg.first_seed + cfg.seeds):
                    jobs.append(Job(agent, dataset, protocol, seed,
                                    n_trials=None if budgets else cfg.queries,
                                    budget_seconds=budgets[dataset] if budgets else None,
                                    agent_config=dict(cfg.agent_configs.get(agent, {})),
                                    noisy=cfg.noisy and protocol == 200, benchmark=cfg.benchmark))
    return jobs


def optima(datasets: Iterable[str], protocols: Iterable[int], benchmark: str = "nb201") -> dict[str, dict[str, Any]]:
    """Per ``"<protocol>/<dataset>"``: the reward optimum (key, value) and the best test accuracy."""
    out = {}
    for protocol in protocols:
        for dataset in datasets:
            ev = evaluator_for(dataset, PROTOCOLS[protocol].fidelity, benchmark=benchmark)
            key, value = ev.optimum("valid_acc")
            out[f"{protocol}/{dataset}"] = {"reward_optimum_key": key, "reward_optimum": value,
                                            "test_optimum": ev.optimum("test_acc")[1],
                                            "test_of_reward_optimum": ev.test_acc_of_best_valid()}
    return out


def search_benchmark(cfg: BenchConfig, log: Any = print) -> tuple[list[RunResult], dict[str, Any]]:
    """Run the search benchmark; return the runs and the metadata the report needs."""
    agents, skipped = available_agents(cfg.agents, cfg.agent_configs)
    for name, reason in skipped.items():
        log(f"note: skipping agent {name!r}, its module does not import ({reason})")
    jobs = make_jobs(cfg, agents)
    log(f"{len(jobs)} runs: agents {agents}, datasets {cfg.datasets}, protocols {cfg.protocols}, "
        f"{cfg.seeds} seeds, {cfg.workers} worker(s)")
    load_before = os.getloadavg()
    start = time.perf_counter()
    runs = run_jobs(jobs, cfg.workers, log)
    wall = time.perf_counter() - start
    meta = {
        "agents": agents, "skipped": skipped, "datasets": cfg.datasets, "protocols": cfg.protocols,
        "seeds": cfg.seeds, "first_seed": cfg.first_seed, "queries": cfg.queries, "workers": cfg.workers,
        "noisy": cfg.noisy, "agent_configs": cfg.agent_configs, "wall_seconds": wall,
        "cpu_count": os.cpu_count(), "load_before": list(load_before), "load_after": list(os.getloadavg()),
        "budgets": {str(p): dict(PROTOCOLS[p].budgets or {}) for p in cfg.protocols},
        "optima": optima(cfg.datasets, cfg.protocols, cfg.benchmark), "benchmark": cfg.benchmark,
    }
    return runs, meta


# Transfer experiments (policy transfer with --init-from) will get their own function next
# to search_benchmark, with the same (runs, meta) result so the report code is shared.


def write_outputs(runs: Sequence[RunResult], meta: Mapping[str, Any], out: Path, save_runs: bool = False) -> dict:
    """Write results.md, summary.json, regret.png (and runs.json.gz); return the summary."""
    out.mkdir(parents=True, exist_ok=True)
    summary = report.summarize(runs, meta)
    (out / "summary.json").write_text(json.dumps(summary, indent=1, sort_keys=True))
    plot = None
    if 200 in meta["protocols"] and runs:
        plot = report.regret_plot(runs, meta, out / "regret.png")
    (out / "results.md").write_text(report.markdown(summary, meta, plot.name if plot else None))
    if save_runs:
        with gzip.open(out / "runs.json.gz", "wt") as f:
            json.dump({"meta": meta, "runs": [asdict(r) for r in runs]}, f)
    return summary


# ---------------------------------------------------------------------- CLI
def _csv(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def parse_args(argv: Sequence[str] | None = None) -> BenchConfig:
    """Command-line options -> :class:`BenchConfig` (bad values exit with one clear line)."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--benchmark", default="nb201", choices=sorted(BENCHMARK_DATASETS),
                   help="nb201 (NAS-Bench-201) or nbgraph (NAS-Bench-Graph, protocol 200 only)")
    p.add_argument("--agents", default=",".join(ALL_AGENTS),
                   help=f"comma-separated agent names (also: {', '.join(EXTRA_AGENTS)}; tpe needs optuna)")
    p.add_argument("--datasets", default=None, help="comma-separated (default: all of the benchmark's)")
    p.add_argument("--seeds", type=int, default=50, help="runs per agent and data set (seeds first-seed..)")
    p.add_argument("--first-seed", type=int, default=0)
    p.add_argument("--queries", type=int, default=500, help="queries per run under protocol 200")
    p.add_argument("--workers", type=int, default=2, help="worker processes (1 = inline)")
    p.add_argument("--protocols", default=None,
                   help="comma-separated: 200 (fixed queries), 12 (NATS budget; nb201 only); default: all that apply")
    p.add_argument("--agent-config", action="append", default=[], metavar="AGENT:JSON",
                   help="override an agent's config, e.g. 'evolution:{\"sample_size\": 5}' (repeatable)")
    p.add_argument("--noisy", action="store_true", help="protocol 200: reward from one random training seed")
    p.add_argument("--out", type=Path, default=None, help="output folder (default: benchmarks/results/<benchmark>)")
    p.add_argument("--save-runs", action="store_true", help="also write every run's trials to runs.json.gz")
    a = p.parse_args(argv)

    known = ALL_AGENTS + EXTRA_AGENTS
    choices = BENCHMARK_DATASETS[a.benchmark]
    agents = _csv(a.agents)
    datasets = _csv(a.datasets) if a.datasets is not None else list(choices)
    for name in agents:
        if name not in known:
            p.error(f"unknown agent {name!r} (choices: {', '.join(known)})")
    for name in datasets:
        if name not in choices:
            p.error(f"unknown dataset {name!r} for {a.benchmark} (choices: {', '.join(choices)})")
    text = a.protocols if a.protocols is not None else ("200,12" if a.benchmark == "nb201" else "200")
    try:
        protocols = [int(x) for x in _csv(text)]
    except ValueError:
        p.error(f"--protocols must list 200 and/or 12, got {text!r}")
    if not protocols or any(x not in PROTOCOLS for x in protocols) or (a.benchmark != "nb201" and protocols != [200]):
        p.error(f"--protocols must list 200 and/or 12 (nbgraph: 200 only), got {text!r}")
    if a.noisy and a.benchmark != "nb201":
        p.error("--noisy needs --benchmark nb201: NAS-Bench-Graph's table holds one result per cell")
    if a.seeds < 1 or a.queries < 1 or a.workers < 1:
        p.error("--seeds, --queries and --workers must be positive")
    if not agents or not datasets:
        p.error("--agents and --datasets must name at least one each")
    for flag, names in (("--agents", agents), ("--datasets", datasets)):
        if len(set(names)) != len(names):
            p.error(f"{flag} names one twice: {','.join(names)}")
    if not (0 <= a.first_seed and a.first_seed + a.seeds - 1 <= 2**31 - 1):
        p.error(f"--first-seed and --seeds must give seeds from 0 to {2**31 - 1}, got {a.first_seed}.."
                f"{a.first_seed + a.seeds - 1}")
    if a.noisy and 200 not in protocols:
        p.error("--noisy applies to protocol 200 (the 12-epoch protocol reads the seed mean)")
    out = a.out if a.out is not None else DEFAULT_OUT.with_name(a.benchmark)
    problem = folder_problem(out)  # found after hours of runs, when the results are written
    if problem is not None:
        p.error(f"--out {out}: {problem}")
    configs: dict[str, dict[str, Any]] = {}
    for item in a.agent_config:
        name, sep, text = item.partition(":")
        if not sep or name not in known:
            p.error(f"--agent-config needs AGENT:JSON with a known agent, got {item!r}")
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            p.error(f"--agent-config {name}: invalid JSON ({exc.msg})")
        if not isinstance(value, dict):
            p.error(f"--agent-config {name}: JSON must be an object, got {text!r}")
        configs[name] = {**configs.get(name, {}), **value}
    unused = sorted(set(configs) - set(agents))
    if unused:
        p.error(f"--agent-config for {', '.join(unused)}, which --agents does not run")
    return BenchConfig(agents=agents, datasets=datasets, seeds=a.seeds, first_seed=a.first_seed, queries=a.queries,
                       workers=a.workers, protocols=protocols, agent_configs=configs, noisy=a.noisy,
                       out=out,
                       save_runs=a.save_runs, benchmark=a.benchmark)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark from the command line; print the total wall time."""
    cfg = parse_args(argv)
    try:  # the folder first: found missing after hours of runs, the results would be lost
        cfg.out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        print(f"error: cannot make --out {cfg.out}: {exc.strerror}", file=sys.stderr)
        return 2
    start = time.perf_counter()
    try:
        runs, meta = search_benchmark(cfg)
    except RlnasError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    write_outputs(runs, meta, cfg.out, cfg.save_runs)
    total = time.perf_counter() - start
    print(f"wrote {cfg.out / 'results.md'}")
    print(f"total wall time {total:.1f} s ({total / 60:.1f} min) on {cfg.workers} worker(s); "
          f"load average before/after {meta['load_before'][0]:.2f}/{meta['load_after'][0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
