"""Run the benchmarks and write ``docs/benchmarks.md`` from their verbatim output.

    python benchmarks/write_docs.py --run all           # run every benchmark (about 4 hours on 2 cores)
    python benchmarks/write_docs.py --run overhead,onnx # rerun some, keep the others' last output
    python benchmarks/write_docs.py                     # only rebuild the page
    python benchmarks/write_docs.py --run nb201 --workers 1  # a pooled benchmark on one process

Each benchmark's command and its output (or the results file it writes) are kept in
``benchmarks/results/<name>/output.md``; the page is those files in a fixed order, so no
number on it is typed by hand.
"""
from __future__ import annotations

import argparse
import os
import platform
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
PAGE = ROOT / "docs" / "benchmarks.md"


@dataclass(frozen=True)
class Benchmark:
    """One section of the page."""

    name: str
    title: str
    about: str
    command: tuple[str, ...]
    results_file: str | None = None
    """A markdown file the command writes (relative to the repository); otherwise its stdout is shown."""
    pool: bool = False
    """The command runs a worker pool and takes ``--workers N`` (``write_docs.py --workers`` sets it)."""
    gpu: bool = False
    """It runs on a GPU machine, not here: ``--run`` refuses it (``all`` leaves it out); its command writes
    the ``output.md`` to copy into ``benchmarks/results/<name>/``."""


BENCHMARKS = (
    Benchmark("overhead", "Store overhead (issues: foundation; study/run)",
              "Random, evolution and l2nas on the NB201 tabular evaluator through `Study.optimize`, without a "
              "store (in-memory) and with the SQLite store (trials, per-tell diagnostics, checkpoints). Goals: "
              "at least 500 stored trials/s; the store costing no more than 3x the bare loop, for evolution too. "
              "The SQLite store writes two transactions per trial (start; result with its metrics); an agent's "
              "per-tell diagnostics ride on the next one. This machine's speed swings by tens of percent within "
              "seconds, so the runs are long (a bare run of 5,000 random trials lasts a third of a second; "
              "these last seconds) and taken in turn.",
              ("benchmarks/overhead.py", "--agents", "random,evolution,l2nas:3000", "--trials", "30000",
               "--repeats", "5")),
    Benchmark("executors", "Executors: inline, 2 processes, 2 Ray workers (issue: study/run)",
              "The same 20 trained candidates on each executor, 5 runs each (goal: 2 workers >= 1.7x faster than "
              "inline on 2 cores), and each executor's own cost per trial on the tabular evaluator.",
              ("benchmarks/executors.py", "--trials", "20", "--epochs", "8", "--repeats", "5",
               "--tabular-trials", "400")),
    Benchmark("main_command", "CPU time of the README's main command (issue: study/run)",
              "Today's code against the commit before the study/run rework (9f0fb67), run in turn, each from a "
              "byte-compiled tree (every run after a user's first) and from sources only (the first run, or every "
              "run where PYTHONDONTWRITEBYTECODE is set); goal: at most half the CPU time. What changed: tabular "
              "searches with NumPy agents import no torch, the per-trial writes go through one fast path, the "
              "command uses one BLAS thread (a threaded OpenBLAS spins on the agents' small matrices). This "
              "machine's speed drifts by tens of percent from minute to minute, so the ratios of runs made next "
              "to each other are the measure.",
              ("benchmarks/main_command.py", "--baseline", "9f0fb67", "--repeats", "15")),
    Benchmark("nb201", "NAS-Bench-201: every agent, three data sets, 50 seeds from 100 (issue 12 acceptance)",
              "Test accuracy of the best-by-validation cell, 200-epoch validation reward, seeds 100-149 (never "
              "used for tuning). Peers: regularized evolution, local search (best and first improvement), "
              "Optuna's TPE (multivariate), and L2NAS's no-learning ablation `l2nas_nolearn` (top-K local "
              "search). Runs go on until 200 distinct architectures; results by queries and by distinct "
              "architectures; l2nas minus each peer by test accuracy and by the search reward (validation "
              "accuracy: on ImageNet16-120 the validation optimum is not the best test cell, so the two "
              "disagree). (REINFORCE and PPO are left out of this run to fit the machine's time.)",
              ("benchmarks/nb201.py", "--first-seed", "100", "--queries", "200", "--protocols", "200",
               "--agents", "random,evolution,local,local_first,l2nas,l2nas_nolearn,tpe"),
              "benchmarks/results/nb201/results.md", pool=True),
    Benchmark("nb201_untuned", "NAS-Bench-201 on seeds 50-99 (another range not used for tuning)",
              "The same protocol on seeds 50-99, for the agents of the issue-12 goals.",
              ("benchmarks/nb201.py", "--first-seed", "50", "--queries", "200", "--protocols", "200",
               "--agents", "evolution,local,l2nas,l2nas_nolearn,tpe", "--out", "benchmarks/results/nb201_untuned"),
              "benchmarks/results/nb201_untuned/results.md", pool=True),
    Benchmark("nb201_fresh", "NAS-Bench-201 on seeds 150-199 (fresh seeds, issue 12 round 3)",
              "The same protocol on seeds 150-199, run once after the round-3 tuning on seeds 0-49 (defaults "
              "unchanged), for the agents of the issue-12 goals.",
              ("benchmarks/nb201.py", "--first-seed", "150", "--queries", "200", "--protocols", "200",
               "--agents", "evolution,local,l2nas,l2nas_nolearn,tpe", "--out", "benchmarks/results/nb201_fresh"),
              "benchmarks/results/nb201_fresh/results.md", pool=True),
    Benchmark("nbgraph", "NAS-Bench-Graph: nine graph data sets (issue 12)",
              "Test performance of the best-by-validation cell, 50 seeds from 100 as the issue asks (never used "
              "for tuning: the L2NAS variants screened on this benchmark ran on seeds 0-9).",
              ("benchmarks/nb201.py", "--benchmark", "nbgraph", "--first-seed", "100", "--seeds", "50",
               "--queries", "200", "--agents", "evolution,local,l2nas,l2nas_nolearn,tpe"),
              "benchmarks/results/nbgraph/results.md", pool=True),
    Benchmark("l2nas_ablation", "L2NAS ablation: which part does what (issue 12)",
              "Each variant removes one part of the full agent; seeds 50-99 (not used for tuning).",
              ("benchmarks/l2nas_ablation.py", "--seeds", "50", "--first-seed", "50"), pool=True),
    Benchmark("l2nas_ranking", "L2NAS: how well the critic ranks its candidates (issue 12)",
              "With learning, each proposal is the critic's pick from a pool of 32 new candidates around the "
              "actor's action. Where that pick stands in its pool by true validation accuracy, next to other "
              "pickers on the same pools (the nearest new candidate, which learn=false takes; a random one; two "
              "classical surrogates fitted on the critic's targets), and the same agent with an oracle ranking "
              "(the true validation accuracy): the headroom of a better critic. Seeds 100-129.",
              ("benchmarks/l2nas_ranking.py", "--seeds", "30", "--first-seed", "100"), pool=True),
    Benchmark("l2nas_cost", "L2NAS cost as the search grows (issue 12)",
              "Agent time per trial (ask + tell) and checkpoint size at the start and after 1,000 / 2,000 "
              "trials; the replay ring (1,000 entries) fills by trial 1,000, after which nothing grows.",
              ("benchmarks/l2nas_cost.py", "--trials", "2000", "--seeds", "2")),
    Benchmark("controllers_distinct", "Policy-gradient controllers: distinct architectures per 300 queries (issue 12)",
              "Whether the LSTM controllers collapse onto a few architectures, with ENAS's logit shaping "
              "(the default) and without.",
              ("benchmarks/controllers_distinct.py", "--seeds", "5")),
    Benchmark("nb201_transfer", "NAS-Bench-201 policy transfer (issue 12: honest transfer)",
              "Queries to reach a target accuracy on CIFAR-100 and ImageNet16-120, from scratch and with "
              "`--init-from` a CIFAR-10 search; L2NAS in its three transfer modes.",
              ("benchmarks/nb201_transfer.py", "--agents", "evolution,l2nas", "--seeds", "5", "--source-queries", "200",
               "--queries", "200"), "benchmarks/results/nb201_transfer/results.md"),
    Benchmark("train_search", "Search with the train evaluator on digits (issue: real networks)",
              "An L2NAS search that trains every candidate on the 8x8 digits, against the median random "
              "architecture of the same space trained the same way.",
              ("benchmarks/train_search.py",), "benchmarks/results/train_search/nb201.md"),
    Benchmark("enas", "ENAS: PPO vs REINFORCE on MNIST-5k (issue: ENAS-PPO)",
              "ENAS searches of `enas_micro` with shared weights on MNIST-5k, the controller trained with PPO, "
              "with ENAS's REINFORCE update, and with REINFORCE on PPO's standardised advantages (ablation); their "
              "answers retrained from scratch against the best of as many random children trained the same way; "
              "controller entropy during the search and wall time.",
              ("benchmarks/enas.py", "--workers", "2"), "benchmarks/results/enas/results.md"),
    Benchmark("train_throughput", "Train evaluator throughput (issue: real networks)",
              "Images per second of training on digits, per space, at the train evaluator's default widths.",
              ("benchmarks/train_throughput.py", "--steps", "30", "--candidates", "3")),
    Benchmark("latency_table", "Latency lookup table vs measured latency (issue: real networks)",
              "Spearman correlation of the per-op latency table's prediction with the measured latency of "
              "50 random candidates per mobile space (goal >= 0.9). Timed with thread CPU time and the "
              "minimum of repeats, which is robust to other processes on the machine.",
              ("benchmarks/latency_table.py", "--candidates", "50", "--clock", "cpu", "--statistic", "min",
               "--warmup", "2", "--repeats", "5")),
    Benchmark("onnx", "ONNX Runtime vs PyTorch CPU latency (issue: real networks)",
              "Batch 1, one thread, minimum of 30 repeats.",
              ("benchmarks/onnx_latency.py", "--threads", "1", "--repeats", "30", "--statistic", "min")),
    Benchmark("nos_step_cost", "Neural Optimizer Search: step cost of compiled rules (issue: NOS)",
              "`optimizer.step()` of `RuleOptimizer` against `torch.optim.Adam` on the same model, fixed gradients, "
              "thread CPU time, one thread. Goal: no more than 2x Adam's step. The three rules after addsign-ld "
              "are the best found rules of the three PPO searches below (seeds 0, 1, 2). A rule with random operands "
              "(drop, eps) draws one 16-bit word per weight and operand from an additive lagged-Fibonacci "
              "generator (lags 756839 and 215747, one in-place add per 215,747 words): `drop` keeps a weight "
              "whose word is at least round(p * 65536), a Gaussian is a level of a 65,536-quantile table of "
              "N(0, 1) (variance 1, tails cut at +-4.325). The `exact_random` rows are the ablation: torch's "
              "`uniform_` (compared with p) and `normal_`, one float each per weight, as before. The two rows "
              "`random draws only` time the draws alone, the floor of such a rule in each mode. The `fused` rows "
              "run `RuleOptimizer(..., fused=True)`: each tensor of at least 16,384 elements through one "
              "torch.compile-d element-wise loop (the MLP's two large ones; none of the ConvNet's, where the "
              "rows equal the plain ones); the wall seconds of their first step (the compilation) follow the "
              "tables. This machine's timings swing by tens of percent from run to run, so each row also gives "
              "the median of its paired ratios (each repeat's time over the faster Adam's of the same repeat). "
              "A rule's `adam` or `rmsprop` operand comes, with the update of the running averages it reads, "
              "from one pass of torch's fused Adam kernel (since 2026-12-01): four passes fewer than the "
              "multi-tensor code, and the processor's square root instead of torch's `sqrt`, which goes through "
              "MKL's vsSqrt: on this machine's AMD EPYC (AVX2, no AVX-512) 358 us per 0.67 M float32 elements "
              "against 102 us for a division and 274 us for numpy's sqrt (one thread), and not correctly rounded "
              "(17% of the results one ulp off). The found rule `drop(rmsprop, 0.1) - sqrt(g^3)` takes two square "
              "roots per weight where Adam takes one; with the kernel its step took 1.39x, 1.85x, 1.70x and 1.95x "
              "Adam's on the MLP in four runs on this machine, min to min (the median of paired ratios, in the "
              "last two: 1.70x, the run below, and 1.60x), 2.05x-2.33x before it (1.90x on an earlier machine "
              "with AVX-512).",
              ("benchmarks/nos_step_cost.py", "--steps", "200", "--repeats", "7")),
    Benchmark("lfg_trinomial", "Neural Optimizer Search: the period of the fast random words (issue: NOS)",
              "The fast draws' lagged-Fibonacci generator has period 2^15 * (2^756839 - 1) if z^756839 + "
              "z^215747 + 1 is primitive over GF(2); with 2^756839 - 1 a Mersenne prime, irreducible suffices, "
              "checked as z^(2^r) = z mod the trinomial (r squarings, one coefficient per byte).",
              ("benchmarks/lfg_trinomial.py",)),
    Benchmark("nos_search", "Neural Optimizer Search on MNIST-5k (issue: NOS)",
              "A PPO search with the LSTM controller over one-iteration rules, each rule training the small "
              "ConvNet child over a learning-rate grid; its best rules re-trained on unseen seeds against SGD "
              "with momentum, Adam, PowerSign and AddSign at their best grid lr. Goal: found rules beat "
              "SGD-momentum on the child task. Seed 0 is the command below; the other sections come from "
              "`python benchmarks/nos_search.py --seed N --exact-random` (untuned seeds) and `--agent random` "
              "(the same budget of uniformly drawn rules: the no-learning ablation), one JSON each, same "
              "settings. These searches predate the fast random draws: `--exact-random` trains with torch's "
              "own draws, as they did (without it, a new search runs with the fast draws). They also predate "
              "the fused Adam kernel of the `adam` and `rmsprop` operands (the same values up to rounding).",
              ("benchmarks/nos_search.py", "--seed", "0", "--exact-random"),
              "benchmarks/results/nos_search/results.md"),
    Benchmark("nos_transfer", "Neural Optimizer Search: the best found rule on another task (issue: NOS)",
              "The seed-0 search's best rule trains an MLP on the 8x8 digits (another network and data set), "
              "against Adam, SGD-momentum, PowerSign and AddSign, each at its best lr of the same grid, 3 seeds.",
              ("benchmarks/nos_transfer.py",), "benchmarks/results/nos_transfer/results.md"),
    Benchmark("nos_throughput", "Neural Optimizer Search: rules per minute with 1 and 2 workers (issue: NOS)",
              "The same search through `Study.optimize`, inline and with the processes executor (2 workers).",
              ("benchmarks/nos_throughput.py", "--trials", "40", "--steps", "200")),
    Benchmark("tunas_search", "TuNAS: three latency targets, one search each (issue 9)",
              "A `tunas` search per latency target on `proxyless` with the `supernet` evaluator on MNIST-5k; "
              "goal: the final argmax within +-5 % of its target (lookup-table latency at 224 px). Seed 0, "
              "the seed the settings were chosen on. The plot shows the controller's entropy and the latency of "
              "its argmax over each search.",
              ("benchmarks/tunas_search.py", "--seeds", "0", "--name", "targets"),
              "benchmarks/results/tunas_search/targets.md"),
    Benchmark("tunas_search_untuned", "TuNAS: the same targets on seeds not tuned on (issue 9)",
              "As above with seeds 1 and 2, never used while choosing the settings.",
              ("benchmarks/tunas_search.py", "--seeds", "1", "2", "--name", "untuned"),
              "benchmarks/results/tunas_search/untuned.md"),
    Benchmark("tunas_search_more", "TuNAS: the middle target on two more untuned seeds (issue 9)",
              "As above, the middle target only, seeds 3 and 4 (never used while choosing any setting): more "
              "searches for the retraining comparison below.",
              ("benchmarks/tunas_search.py", "--seeds", "3", "4", "--targets", "0.5", "--name", "more"),
              "benchmarks/results/tunas_search/more.md"),
    Benchmark("tunas_ranking", "TuNAS: does the supernet rank one latency band, and how noisy is retraining? (issue 9)",
              "After the seed-0 middle-target search: 12 random architectures of the answer's +-5 % latency band and "
              "the answer, scored by the final supernet (inherited weights) and trained from scratch as in the "
              "retraining comparison below with 3 training seeds each: rank correlations, the noise of one "
              "retraining against the spread of the band, and where the answer ranks. These measurements chose "
              "the protocol of the comparison below.",
              ("benchmarks/tunas_ranking.py", "--seed", "0"), "benchmarks/results/tunas_ranking/seed0.md"),
    Benchmark("tunas_ranking_untuned", "TuNAS: the same ranking measurement on search seed 1 (issue 9)",
              "As above after the seed-1 search (a seed not used to choose any setting or the protocol).",
              ("benchmarks/tunas_ranking.py", "--seed", "1"), "benchmarks/results/tunas_ranking/seed1.md"),
    Benchmark("tunas_retrain", "TuNAS: retrained answer vs random architectures of its latency band (issue 9)",
              "The middle-target answers of the five seeds above (seed 0 tuned on, 1-4 not) and 3 random "
              "architectures from the same +-5 % latency band per seed, all trained from scratch the same way with "
              "3 training seeds, accuracies averaged; goal: the answer beats the random pick (best mean validation "
              "accuracy) on test accuracy. The last column is the one-training-seed protocol, as an ablation.",
              ("benchmarks/tunas_retrain.py", "--searches", "benchmarks/results/tunas_search/targets.json",
               "benchmarks/results/tunas_search/untuned.json", "benchmarks/results/tunas_search/more.json"),
              "benchmarks/results/tunas_retrain/results.md"),
    Benchmark("tunas_warmup", "TuNAS: ablation of op and filter warm-up (issue 9)",
              "Accuracy of random paths through a supernet trained on uniformly sampled paths, with and without "
              "op / filter warm-up over the first quarter of the steps.",
              ("benchmarks/tunas_warmup.py", "--space", "proxyless", "--epochs", "10")),
    Benchmark("tunas_costs", "TuNAS: memory with and without rematerialization, cost of a supernet step (issue 9)",
              "Peak memory of a supernet training step with and without `remat`, and CPU time of a supernet step "
              "relative to one training step of the space's largest candidate.",
              ("benchmarks/tunas_costs.py", "--spaces", "proxyless", "tunas_mbv3")),
    Benchmark("gpu_checks", "On a GPU: CUDA tests, the step cost of compiled rules, ENAS",
              "What needs a GPU, run on one (an NVIDIA H200 lent for a session): `tests/test_cuda.py` (skipped "
              "where there is no CUDA device: the compiled Adam rule against torch's Adam in float64 and float32, "
              "random operands at their rates, reproducible for a seed and moved to the CPU with their state, "
              "`fused=True` (Triton) against the multi-tensor step, the ENAS supernets' exact sharing, and a "
              "search of each kind — train, TuNAS supernet, ENAS shared weights, optimizer rules — run with "
              "`--device cuda`, resumed with `--device cpu` and exported there); the step cost of "
              "`benchmarks/nos_step_cost.py` with the models on the GPU, in synchronized wall time, against "
              "torch's three Adams (its fused one is one kernel for all tensors); and a short ENAS search. On "
              "the GPU these models' steps are bound by kernel launches (tens of microseconds for 0.67 M "
              "weights), so a rule costs about its number of multi-tensor calls: the found rule "
              "`drop(rmsprop, 0.1) - sqrt(g^3)` is within 2x of torch's default (foreach) Adam (1.3x and 1.6x), "
              "3.5-3.9x its fused Adam. Off the CPU a rule's random draws are one `uniform_` / `normal_` call "
              "over all of a bucket's tensors (it was one per tensor: the draws-only row of the ConvNet went "
              "from 179 to 63 µs, the found rule from 318 to 214 µs, on two machines whose Adam rows agree). "
              "`fused=True` is for the CPU: on the GPU each compiled tensor pays torch.compile's call overhead, "
              "several times the plain step.",
              ("bash", "benchmarks/gpu_checks.sh"), gpu=True),
)


def run(bench: Benchmark, workers: int | None = None) -> None:
    """Run one benchmark and store its command and output (``workers``: the pool size of a pooled one)."""
    folder = RESULTS / bench.name
    folder.mkdir(parents=True, exist_ok=True)
    command = bench.command + (("--workers", str(workers)) if workers and bench.pool else ())
    load = os.getloadavg()[0]
    start = time.perf_counter()
    done = subprocess.run([sys.executable, *command], cwd=ROOT, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    body = (ROOT / bench.results_file).read_text() if bench.results_file else f"```\n{done.stdout.strip()}\n```\n"
    shown = "python " + " ".join(command)
    (folder / "output.md").write_text(
        f"`{shown}`\n\n(ran {time.strftime('%Y-%m-%d %H:%M')} UTC in {wall:.0f} s; load average at start "
        f"{load:.2f} on {os.cpu_count()} cores)\n\n{body}")


AGENT_PAGES = ROOT / "docs" / "agents"
START, END = "<!-- benchmark:start -->", "<!-- benchmark:end -->"


def agent_rows(results: str, agent: str) -> str:
    """The rows of ``agent`` from every table of the NB201 results, each under its heading and header."""
    out, heading, header = [], "", ""
    for line in results.splitlines():
        if line.startswith("#"):
            heading = line.lstrip("#").strip()
        elif line.startswith("| agent |"):
            header = line
        elif line.startswith("| vs |"):  # a comparison table (l2nas minus each agent): not this agent's row
            header = ""
        elif line.startswith(f"| {agent} |") and header:
            separator = "|" + "---|" * (header.count("|") - 1)
            out.append(f"**{heading}**\n\n{header}\n{separator}\n{line}\n")
    return "\n".join(out)


def update_agent_pages() -> None:
    """Put each agent's NB201 rows between the benchmark markers of its page in docs/agents/."""
    output = RESULTS / "nb201" / "output.md"
    if not output.exists():
        return
    results = output.read_text()
    for page in sorted(AGENT_PAGES.glob("*.md")):
        text = page.read_text()
        if START not in text or END not in text:
            continue
        rows = agent_rows(results, page.stem) or "_no results for this agent yet_"
        before, rest = text.split(START, 1)
        _, after = rest.split(END, 1)
        page.write_text(f"{before}{START}\n{rows}\n{END}{after}")


ABLATION_START, ABLATION_END = "<!-- ablation:start -->", "<!-- ablation:end -->"


def update_ablation() -> None:
    """Put the L2NAS ablation output between its markers in docs/agents/l2nas.md."""
    output, page = RESULTS / "l2nas_ablation" / "output.md", AGENT_PAGES / "l2nas.md"
    if not output.exists() or not page.exists():
        return
    text = page.read_text()
    if ABLATION_START in text and ABLATION_END in text:
        before, rest = text.split(ABLATION_START, 1)
        _, after = rest.split(ABLATION_END, 1)
        page.write_text(f"{before}{ABLATION_START}\n{output.read_text()}\n{ABLATION_END}{after}")


def _link_images(text: str, bench: Benchmark) -> str:
    """Point relative image links of a results file (e.g. ``regret.png``) at it from docs/."""
    if not bench.results_file:
        return text
    folder = Path(bench.results_file).parent.as_posix()
    return re.sub(r"\]\((?!https?:|/|\.\./)([^)]+\.png)\)", lambda m: f"](../{folder}/{m.group(1)})", text)


def write_page() -> None:
    """Assemble ``docs/benchmarks.md`` from the stored outputs."""
    parts = ["# Benchmarks\n",
             ("Every number below was produced by the command shown above it and pasted by "
             "`python benchmarks/write_docs.py`; the machine is the project's CPU machine "
             f"({platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, no GPU), except "
             "in the last section, which names its GPU machine.\n")]
    for bench in BENCHMARKS:
        output = RESULTS / bench.name / "output.md"
        parts.append(f"## {bench.title}\n\n{bench.about}\n")
        parts.append(_link_images(output.read_text(), bench) if output.exists() else "_not run yet_\n")
    PAGE.write_text("\n".join(parts))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", default="", help="comma-separated benchmark names, or 'all'")
    parser.add_argument("--workers", type=int, default=None,
                        help="worker processes for the benchmarks that run a pool (default: each one's own)")
    names = [b.name for b in BENCHMARKS]
    args = parser.parse_args()
    chosen = args.run
    wanted = names if chosen == "all" else [n for n in chosen.split(",") if n]
    if chosen == "all":
        wanted = [b.name for b in BENCHMARKS if not b.gpu]
    for name in wanted:
        if name not in names:
            parser.error(f"unknown benchmark {name!r} (choices: {', '.join(names)})")
        if next(b for b in BENCHMARKS if b.name == name).gpu:
            parser.error(f"{name} runs on a GPU machine: run `bash benchmarks/gpu_checks.sh` there and copy its "
                         f"output.md into benchmarks/results/{name}/")
    for bench in BENCHMARKS:
        if bench.name in wanted:
            print(f"running {bench.name} ...", flush=True)
            run(bench, args.workers)
    write_page()
    update_agent_pages()
    update_ablation()
    print(f"wrote {PAGE} and the benchmark sections of {AGENT_PAGES.relative_to(ROOT)}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
