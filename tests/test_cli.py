"""The ``rlnas`` console script, run as a user runs it."""
import csv
import io
import json
import re
import shutil
import signal
import sqlite3
import subprocess
import time

import pytest

from rlnas.spaces import list_spaces


def run(rlnas_bin, *args, check=True):
    result = subprocess.run([rlnas_bin, *args], capture_output=True, text=True, timeout=300)
    if check and result.returncode != 0:
        raise AssertionError(f"rlnas {' '.join(args)} exited {result.returncode}: {result.stderr}")
    return result


def assert_one_line_error(result, message, code=2):
    assert result.returncode == code, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("rlnas: error:"), result.stderr
    assert "Traceback" not in result.stderr and message in lines[0], lines[0]


def completed(rlnas_bin, name, url):
    data = json.loads(run(rlnas_bin, "export", name, "--format", "json", "--storage", url).stdout)
    done = sorted((t for t in data["trials"] if t["state"] == "COMPLETE"), key=lambda t: t["slot"])
    return [(t["slot"], t["key"], t["reward"]) for t in done]


def test_search_prints_the_best_architecture_and_stores_everything(rlnas_bin, sqlite_url):
    out = run(rlnas_bin, "search", "--space", "nb201", "--dataset", "cifar10", "--agent", "evolution",
              "--trials", "120", "--seed", "1", "--storage", sqlite_url, "--name", "demo", "--no-progress").stdout
    assert "Best architecture of study 'demo'" in out and "test_acc" in out and "|" in out
    listing = run(rlnas_bin, "ls", "--storage", sqlite_url).stdout
    assert "demo" in listing and "120" in listing
    shown = run(rlnas_bin, "show", "demo", "--storage", sqlite_url).stdout
    assert "evolution" in shown and "population_size" in shown
    best = run(rlnas_bin, "best", "demo", "--storage", sqlite_url).stdout
    rows = list(csv.DictReader(io.StringIO(run(rlnas_bin, "export", "demo", "--storage", sqlite_url).stdout)))
    assert len(rows) == 120 and {"number", "state", "key", "reward", "test_acc", "valid_acc"} <= set(rows[0])
    top = max(rows, key=lambda r: float(r["reward"]))
    assert top["key"] in best and f"{float(top['test_acc']):.3f}" in best
    data = json.loads(run(rlnas_bin, "export", "demo", "--format", "json", "--storage", sqlite_url).stdout)
    assert data["agent"] == "evolution" and len(data["trials"]) == 120
    assert data["trials"][0]["candidate"]["edge_0_1"] in data["trials"][0]["key"]


def test_export_to_a_file(rlnas_bin, sqlite_url, tmp_path):
    run(rlnas_bin, "search", "--trials", "15", "--storage", sqlite_url, "--name", "f", "--no-progress")
    target = tmp_path / "trials.csv"
    run(rlnas_bin, "export", "f", "--output", str(target), "--storage", sqlite_url)
    assert len(target.read_text().splitlines()) == 16
    assert_one_line_error(run(rlnas_bin, "export", "f", "--onnx", str(tmp_path / "m.onnx"), "--as-searched",
                              "--storage", sqlite_url, check=False), "needs a study of the train evaluator")
    assert_one_line_error(run(rlnas_bin, "export", "f", "--arch", str(tmp_path / "a.json"), "--trial", "99",
                              "--storage", sqlite_url, check=False), "has no trial 99")


def test_budget_seconds_stops_on_simulated_time(rlnas_bin, sqlite_url):
    run(rlnas_bin, "search", "--agent", "random", "--budget-seconds", "20000", "--storage", sqlite_url,
        "--name", "b", "--no-progress")
    rows = list(csv.DictReader(io.StringIO(run(rlnas_bin, "export", "b", "--storage", sqlite_url).stdout)))
    spent = [float(r["cost_seconds"]) for r in rows]
    assert sum(spent) >= 20000 > sum(spent[:-1])


def test_query_looks_up_the_table(rlnas_bin):
    best = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|"
    out = run(rlnas_bin, "query", best).stdout
    assert "6111" in out and "91.607" in out and "94.373" in out


@pytest.mark.parametrize("args, message", [
    (["search", "--space", "nope"], "unknown space 'nope'"),
    (["search", "--agent", "nope"], "unknown agent 'nope'"),
    (["search", "--trials", "-5"], "--trials must be a positive number"),
    (["search", "--trials", "0"], "--trials must be a positive number"),
    (["search", "--dataset", "mnist"], "dataset"),
    (["search", "--agent-config", "{bad"], "not valid JSON"),
    (["search", "--agent", "evolution", "--set", "population_size=0"], "population_size"),
    (["search", "--set", "nope=1"], "unknown option"),
    (["search", "--storage", "not-a-url"], "is not a database URL"),
    (["search", "--storage", "sqlite:////no/such/dir/x.db"], "does not exist"),
    (["search", "--storage", "postgresql+psycopg://u@127.0.0.1:9/x"], "cannot use"),
    (["query", "|none~0|+|none~0|"], "node group"),
    (["query", "|conv~0|+|none~0|none~1|+|none~0|none~1|none~2|"], "unknown operation 'conv'"),
    (["show", "absent"], "no database"),
    (["resume", "absent"], "no database"),
    (["search", "--trials", "100000000000000000000"], "n_trials must be an integer from 0 to 1,000,000,000"),
    (["search", "--evaluator", "train", "--dataset", "digits", "--threads", "100000"],
     "threads must be an integer from 1 to 1024, got 100000"),
    (["search", "--evaluator", "train", "--dataset", "digits", "--epochs", "1e30"], "epochs must be at most 100,000"),
    (["search", "--evaluator", "train", "--dataset", "digits", "--epochs", "inf"],
     "option 'epochs' must be a finite number"),
    (["search", "--space", "enas_micro", "--agent", "enas", "--evaluator", "shared", "--dataset", "digits", "--epochs",
      "1e300"], "epochs must be at most 100,000"),
    (["search", "--space", "optimizer_rules", "--eval-option", "device=bogus"],
     "--eval-option device: evaluations run with --device, a run option (resume may change it); use --device"),
    (["retrain", "absent", "--eval-option", "threads=2"], "--eval-option threads: evaluations run with --threads"),
    (["retrain", "absent", "--epochs", "2", "--eval-option", "epochs=3"],
     "--eval-option epochs: retrain trains for --epochs (default 10)"),
    (["retrain", "absent", "--eval-option", "steps=5"], "--eval-option steps: retrain trains for --epochs"),
    (["search", "--evaluator", "train", "--dataset", "digits", "--epochs", "3", "--eval-option", "steps=2"],
     "--epochs and --eval-option steps both set how long each candidate trains: give one"),
    (["retrain", "absent", "--top", "5"], "--top 5 ranks sampled architectures: it needs --samples of at least 5 "
                                          "(got 0)"),
    (["search", "--cost", "flops", "--trials", "3"], "--cost applies to --reward abs/soft/hard"),
    (["show", "absent", "--watch", "--interval", "inf"], "--interval must be a number of seconds in (0, 86400]"),
    (["ls", "--bogus"], "unrecognized arguments: --bogus (see rlnas ls --help)"),  # pointed at rlnas --help
    (["show", "absent", "--interval", "5"], "--interval applies to --watch"),  # each was silently ignored
    (["show", "absent", "--watch", "--json"], "--watch prints a live view, not JSON: give one of --watch and --json"),
    (["plot", "absent", "--kind", "history", "--window", "5", "-o", "h.svg"],
     "--window applies to --kind choices, not history"),
    (["plot", "absent", "--kind", "regret", "--x", "time", "-o", "r.svg"], "--x applies to --kind history, not regret"),
    (["plot", "absent", "--kind", "pareto", "--optimum", "90", "-o", "p.svg"],
     "--optimum applies to --kind regret, not pareto"),
    (["plot", "absent", "--kind", "history", "--metric", "valid_acc", "-o", "h.svg"],
     "--metric applies to --kind regret / pareto, not history"),
])
def test_bad_input_is_one_line_and_exit_2(rlnas_bin, tmp_path, args, message):
    if "--storage" not in args and args[0] != "query":
        args = [*args, "--storage", f"sqlite:///{tmp_path}/db.sqlite"]
    result = run(rlnas_bin, *args, check=False)
    assert_one_line_error(result, message)
    assert not (tmp_path / "db.sqlite").exists()


def test_errors_do_not_damage_an_existing_database(rlnas_bin, sqlite_url, tmp_path):
    run(rlnas_bin, "search", "--trials", "30", "--storage", sqlite_url, "--name", "keep", "--no-progress")
    before = completed(rlnas_bin, "keep", sqlite_url)
    assert_one_line_error(run(rlnas_bin, "search", "--name", "keep", "--dataset", "cifar100", "--trials", "40",
                              "--storage", sqlite_url, check=False), "exists with evaluator")
    assert_one_line_error(run(rlnas_bin, "search", "--name", "keep", "--agent", "random", "--trials", "40",
                              "--storage", sqlite_url, check=False), "exists with agent")
    other_spaces = [s for s in list_spaces() if s != "nb201"]
    if other_spaces:
        assert_one_line_error(run(rlnas_bin, "search", "--name", "keep", "--space", other_spaces[0], "--evaluator",
                                  "train", "--storage", sqlite_url, check=False), "exists with space 'nb201'")
    assert_one_line_error(run(rlnas_bin, "show", "nope", "--storage", sqlite_url, check=False), "no study named 'nope'")
    assert completed(rlnas_bin, "keep", sqlite_url) == before


def test_a_text_file_given_as_storage_is_untouched(rlnas_bin, tmp_path):
    notes = tmp_path / "notes.db"
    notes.write_text("not a database\n" * 50)
    before = notes.read_bytes()
    for command in (["search", "--trials", "5"], ["ls"]):
        assert_one_line_error(run(rlnas_bin, *command, "--storage", f"sqlite:///{notes}", check=False),
                              "file is not a database")
    assert notes.read_bytes() == before


def test_same_seed_same_trials_through_the_cli(rlnas_bin, tmp_path):
    urls = [f"sqlite:///{tmp_path}/{i}.db" for i in range(2)]
    for url in urls:
        run(rlnas_bin, "search", "--agent", "evolution", "--trials", "80", "--seed", "9", "--name", "s",
            "--storage", url, "--no-progress")
    assert completed(rlnas_bin, "s", urls[0]) == completed(rlnas_bin, "s", urls[1])


def _count_trials(path):
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5) as conn:
            return conn.execute("SELECT count(*) FROM rlnas_trials").fetchone()[0]
    except sqlite3.Error:
        return 0


def _kill_when(process, path, at_least):
    deadline = time.monotonic() + 120
    while _count_trials(path) < at_least and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait()


@pytest.mark.parametrize("agent", ["evolution", pytest.param("reinforce", marks=pytest.mark.slow), "l2nas"])
def test_sigkill_and_resume_end_like_an_uninterrupted_run(rlnas_bin, tmp_path, agent):
    trials = "300"
    common = ["--agent", agent, "--seed", "4", "--name", "run", "--checkpoint-every", "25", "--no-progress"]
    reference = f"sqlite:///{tmp_path}/ref.db"
    run(rlnas_bin, "search", "--trials", trials, *common, "--storage", reference)

    path = tmp_path / "killed.db"
    url = f"sqlite:///{path}"
    first = subprocess.Popen([rlnas_bin, "search", "--trials", trials, *common, "--storage", url],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _kill_when(first, path, 61)
    for stop_at in (140, 223):
        again = subprocess.Popen([rlnas_bin, "resume", "run", "--storage", url, "--no-progress"],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _kill_when(again, path, stop_at)
    run(rlnas_bin, "resume", "run", "--storage", url, "--no-progress")
    assert completed(rlnas_bin, "run", url) == completed(rlnas_bin, "run", reference)
    assert len(completed(rlnas_bin, "run", url)) == int(trials)


def test_init_from_transfers_and_checks(rlnas_bin, sqlite_url):
    run(rlnas_bin, "search", "--agent", "reinforce", "--trials", "60", "--name", "c10", "--storage", sqlite_url,
        "--no-progress")
    run(rlnas_bin, "search", "--agent", "reinforce", "--dataset", "cifar100", "--trials", "20", "--name", "c100",
        "--init-from", "c10", "--storage", sqlite_url, "--no-progress")
    assert '"init_from": "c10"' in run(rlnas_bin, "show", "c100", "--storage", sqlite_url).stdout
    copy = sqlite_url.replace(".db", "-copy.db")  # the same command again goes on without its source
    shutil.copy(sqlite_url.removeprefix("sqlite:///"), copy.removeprefix("sqlite:///"))
    run(rlnas_bin, "rm", "c10", "--storage", copy)
    again = run(rlnas_bin, "search", "--agent", "reinforce", "--dataset", "cifar100", "--trials", "25", "--name",
                "c100", "--init-from", "c10", "--storage", copy, "--no-progress")  # "no study named 'c10'"
    assert again.returncode == 0 and "trials finished │ 25" in " ".join(again.stdout.split())
    assert_one_line_error(run(rlnas_bin, "search", "--agent", "ppo", "--name", "x", "--init-from", "c10",
                              "--storage", sqlite_url, check=False), "used agent 'reinforce'")
    assert_one_line_error(run(rlnas_bin, "search", "--agent", "random", "--name", "y", "--init-from", "c10",
                              "--storage", sqlite_url, check=False), "nothing to transfer")
    assert_one_line_error(run(rlnas_bin, "search", "--agent", "reinforce", "--name", "z", "--init-from", "nope",
                              "--storage", sqlite_url, check=False), "no study named 'nope'")
    misfit = run(rlnas_bin, "search", "--agent", "reinforce", "--controller", "lstm", "--name", "w", "--init-from",
                 "c10", "--storage", sqlite_url, check=False)  # another controller: torch's load_state_dict refuses
    assert_one_line_error(misfit, "cannot start from study 'c10': its reinforce agent's state does not fit")
    assert "LSTMController: Missing key(s) in state_dict" in misfit.stderr  # it ended at "LSTMController:"
    listing = run(rlnas_bin, "ls", "--storage", sqlite_url).stdout
    assert " x " not in listing and " y " not in listing and " z " not in listing and " w " not in listing
    # the default name tells searches apart by their source and their cost-aware reward options
    plain = run(rlnas_bin, "search", "--agent", "reinforce", "--trials", "3", "--storage", sqlite_url, "--no-progress")
    moved = run(rlnas_bin, "search", "--agent", "reinforce", "--trials", "3", "--init-from", "c10", "--storage",
                sqlite_url, "--no-progress")
    abs_10, abs_20 = (run(rlnas_bin, "search", "--agent", "random", "--trials", "2", "--reward", "abs", "--target",
                          target, "--storage", sqlite_url, "--no-progress") for target in ("10", "20"))
    assert all(result.returncode == 0 for result in (plain, moved, abs_10, abs_20))
    assert len(json.loads(run(rlnas_bin, "ls", "--json", "--storage", sqlite_url).stdout)) == 6


def test_run_options_change_between_search_and_resume(rlnas_bin, sqlite_url):
    common = ["--storage", sqlite_url, "--no-progress"]
    run(rlnas_bin, "search", "--space", "nb201", "--evaluator", "train", "--dataset", "digits", "--agent", "random",
        "--eval-option", "steps=5", "--eval-option", "batch_size=16", "--trials", "3", "--threads", "2",
        "--name", "t", *common)
    resumed = run(rlnas_bin, "resume", "t", "--trials", "6", "--threads", "1", "--executor", "processes",
                  "--workers", "2", *common)
    assert re.search(r"trials finished\s*│\s*6\s", resumed.stdout), resumed.stdout
    assert "--threads 1: the study ran with 2; on the CPU the trials from here on may differ" in " ".join(
        resumed.stderr.split())
    shown = run(rlnas_bin, "show", "t", *common[:2]).stdout
    assert "nobody" in shown
    stored = json.loads(run(rlnas_bin, "show", "t", "--json", *common[:2]).stdout)["definition"]
    assert "threads" not in stored["evaluator"]  # a run option, not part of what the study is
    assert stored["settings"]["threads"] == 1  # what the last run used: what resume continues with
    # without --threads, resume takes the last run's (it took torch's default: other results than the run before)
    quiet = run(rlnas_bin, "resume", "t", "--trials", "7", "--executor", "processes", "--workers", "2", *common)
    assert "--threads" not in quiet.stderr
    again = json.loads(run(rlnas_bin, "show", "t", "--json", *common[:2]).stdout)["definition"]
    assert again["settings"]["threads"] == 1
    assert_one_line_error(run(rlnas_bin, "resume", "t", "--workers", "2", *common, check=False),
                          "inline executor runs one trial")
    assert_one_line_error(run(rlnas_bin, "resume", "t", "--ray-address", "x", *common, check=False),
                          "--ray-address is an option of --executor ray, not of inline")  # was named ray_address


def test_nbgraph_search_through_the_cli(rlnas_bin, sqlite_url, tmp_path):
    """The nbgraph spaces get the nbgraph evaluator by default; proteins needs its own space."""
    run(rlnas_bin, "search", "--space", "nbgraph", "--dataset", "citeseer", "--agent", "local", "--trials", "12",
        "--storage", sqlite_url, "--name", "g", "--no-progress")
    data = json.loads(run(rlnas_bin, "export", "g", "--format", "json", "--storage", sqlite_url).stdout)
    done = [t for t in data["trials"] if t["state"] == "COMPLETE"]
    assert len(done) == 12 and all(0 < t["reward"] < 100 and 0 < t["test_perf"] < 1 for t in done)
    run(rlnas_bin, "search", "--space", "nbgraph_proteins", "--agent", "l2nas", "--trials", "5",
        "--storage", sqlite_url, "--name", "p", "--no-progress")
    assert_one_line_error(run(rlnas_bin, "search", "--space", "nbgraph", "--dataset", "proteins",
                              "--storage", f"sqlite:///{tmp_path}/db.sqlite", check=False),
                          "needs --space nbgraph_proteins")


def test_rename_keeps_everything_and_refuses_a_taken_name(rlnas_bin, sqlite_url):
    common = ["--storage", sqlite_url]
    for name in ("a", "b"):
        run(rlnas_bin, "search", "--agent", "random", "--trials", "5", "--name", name, "--no-progress", *common)
    before = completed(rlnas_bin, "a", sqlite_url)
    assert "renamed study 'a' to 'c'" in run(rlnas_bin, "rename", "a", "c", *common).stdout
    assert completed(rlnas_bin, "c", sqlite_url) == before
    assert_one_line_error(run(rlnas_bin, "rename", "c", "b", *common, check=False), "already exists")
    assert_one_line_error(run(rlnas_bin, "show", "a", *common, check=False), "no study named 'a'")


def test_an_ascii_locale_prints_and_writes_without_errors(rlnas_bin, tmp_path):
    import os
    import sys

    ascii_env = dict(os.environ, LANG="C", LC_ALL="C", PYTHONUTF8="0", PYTHONCOERCECLOCALE="0")

    def run_ascii(*argv):
        return subprocess.run(list(argv), capture_output=True, text=True, timeout=300, env=ascii_env, cwd=tmp_path,
                              encoding="utf-8", errors="replace")

    for argv in ([rlnas_bin, "spaces"], [rlnas_bin, "agents", "l2nas"], [sys.executable, "-m", "rlnas", "spaces"],
                 [rlnas_bin, "rule", "powersign", "--output", "found.py"]):
        result = run_ascii(*argv)
        assert result.returncode == 0 and "Traceback" not in result.stderr, (argv, result.stderr)
    assert "nb201" in result.stdout or (tmp_path / "found.py").is_file()
    assert (tmp_path / "found.py").read_text(encoding="utf-8").startswith('"""')
    # a name in bytes this locale cannot decode: one line that says so, nothing stored
    undecodable = run_ascii(rlnas_bin.encode(), "search", "--space", "nb201", "--trials", "3",
                            "--name", "\u00fcn\u00ef".encode())
    assert_one_line_error(undecodable, "is not text in this locale's encoding")
    assert not (tmp_path / "rlnas.db").exists()


PLUGIN = '''
import numpy as np
from rlnas.agents import Agent, Proposal, register_agent


class Sampler(Agent):
    name = "sampler"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.rng = np.random.default_rng(self.seed)

    def ask(self, n=1):
        return [Proposal(self.space.sample(self.rng)) for _ in range(n)]

    def tell(self, results):
        return {}

    def state_dict(self):
        return {"rng": self.rng.bit_generator.state}

    def load_state_dict(self, state):
        self.rng.bit_generator.state = state["rng"]


register_agent("sampler", Sampler)
'''


def test_a_plugin_registers_a_user_s_agent_for_search_and_resume(rlnas_bin, tmp_path):
    import os

    (tmp_path / "my_plugin.py").write_text(PLUGIN)
    env = dict(os.environ, RLNAS_PLUGINS="my_plugin")

    def run_here(*args, environment=env):
        return subprocess.run([rlnas_bin, *args], capture_output=True, text=True, timeout=300, cwd=tmp_path,
                              env=environment)

    assert run_here("search", "--space", "nb201", "--agent", "sampler", "--trials", "5", "--name", "p").returncode == 0
    assert run_here("resume", "p", "--trials", "8").returncode == 0
    assert [study["finished"] for study in json.loads(run_here("ls", "--json").stdout)] == [8]
    without = run_here("resume", "p", "--trials", "9", environment=dict(os.environ, RLNAS_PLUGINS=""))
    assert_one_line_error(without, "unknown agent 'sampler'")
    assert "registered by a plugin: docs/extending.md" in without.stderr
    missing = run_here("ls", environment=dict(os.environ, RLNAS_PLUGINS="not_there"))
    assert_one_line_error(missing, "plugin: RLNAS_PLUGINS names 'not_there', which failed: ModuleNotFoundError")


AGENT_METHODS = '''
    def tell(self, results):
        return {}

    def state_dict(self):
        return {}

    def load_state_dict(self, state):
        pass
'''
"""The rest of an agent in the plugins below: it learns nothing and keeps no state."""

BROKEN_PLUGIN = '''
from rlnas.agents import Agent, Proposal, register_agent
from rlnas.evaluators import register_evaluator


class Broken(Agent):
    def ask(self, n=1):
        if self.config_kind == "bogus":
            return [Proposal({"edge_0_1": "bogus"})]
        raise RuntimeError("ask exploded")
''' + AGENT_METHODS + '''

class Bogus(Broken):
    config_kind = "bogus"


class Exploding(Broken):
    config_kind = "exploding"


class CannotStart:
    def __init__(self):
        raise RuntimeError("cannot start")


register_agent("bogus", Bogus)
register_agent("exploding", Exploding)
register_evaluator("cannot_start", CannotStart)
'''


def test_a_broken_plugin_is_one_line_and_a_search_it_stops_at_once_leaves_nothing(rlnas_bin, tmp_path):
    import os

    (tmp_path / "broken.py").write_text(BROKEN_PLUGIN)
    env = dict(os.environ, RLNAS_PLUGINS="broken")

    def run_here(*args):
        quiet = ["--no-progress"] if args[0] == "search" else []
        return subprocess.run([rlnas_bin, *args, *quiet], capture_output=True, text=True, timeout=300,
                              cwd=tmp_path, env=env)

    # the agent's first proposal is no candidate (exit 2) or its ask raises (exit 1): no study is left
    bogus = run_here("search", "--space", "nb201", "--agent", "bogus", "--trials", "3", "--storage", "sqlite:///a.db")
    assert_one_line_error(bogus, "candidate for space 'nb201' misses decision(s)", code=2)
    exploding = run_here("search", "--space", "nb201", "--agent", "exploding", "--trials", "3",
                         "--storage", "sqlite:///a.db")
    assert_one_line_error(exploding, "plugin 'broken' raised RuntimeError: ask exploded (", code=1)
    assert f"{tmp_path / 'broken.py'}, line 10)" in exploding.stderr
    assert json.loads(run_here("ls", "--json", "--storage", "sqlite:///a.db").stdout) == []
    cannot_start = run_here("search", "--space", "nb201", "--evaluator", "cannot_start", "--storage", "sqlite:///a.db")
    assert_one_line_error(cannot_start, "plugin 'broken' raised RuntimeError: cannot start (", code=1)

    # in a database that holds other studies, only the failed search's own study goes
    assert run_here("search", "--space", "nb201", "--trials", "2", "--name", "kept",
                    "--storage", "sqlite:///b.db").returncode == 0
    bogus = run_here("search", "--space", "nb201", "--agent", "bogus", "--trials", "3", "--name", "gone",
                     "--storage", "sqlite:///b.db")
    assert bogus.returncode == 2
    assert [s["name"] for s in json.loads(run_here("ls", "--json", "--storage", "sqlite:///b.db").stdout)] == ["kept"]
    # a study that existed before the failed command stays, even without trials
    assert run_here("search", "--space", "nb201", "--agent", "bogus", "--trials", "3", "--name", "kept",
                    "--storage", "sqlite:///b.db").returncode == 2
    assert len(json.loads(run_here("ls", "--json", "--storage", "sqlite:///b.db").stdout)) == 1


PACKAGE_AGENTS = '''
import errno

from rlnas.agents import Agent


class Failing(Agent):
    def ask(self, n=1):
        if self.config_kind == "pipe":
            raise BrokenPipeError(errno.EPIPE, "its own socket went away")
        raise RuntimeError("ask failed in another module")
''' + AGENT_METHODS + '''

class Pipe(Failing):
    config_kind = "pipe"


class Other(Failing):
    config_kind = "other"
'''


def test_a_plugin_packages_other_modules_and_its_own_io_errors_are_named(rlnas_bin, tmp_path):
    # an agent of mine/agents.py registered by mine/rlnas_plugin.py gave a traceback; the plugin's own
    # BrokenPipeError ended the command silently, as if the output's reader had gone
    import os

    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "__init__.py").write_text("")
    (tmp_path / "mine" / "agents.py").write_text(PACKAGE_AGENTS)
    (tmp_path / "mine" / "rlnas_plugin.py").write_text(
        "from rlnas.agents import register_agent\nfrom mine.agents import Other, Pipe\n\n"
        "register_agent('other', Other)\nregister_agent('pipe', Pipe)\n")
    env = dict(os.environ, RLNAS_PLUGINS="mine.rlnas_plugin")
    for agent, message in (("other", "RuntimeError: ask failed in another module ("),
                           ("pipe", "BrokenPipeError: [Errno 32] its own socket went away (")):
        result = subprocess.run([rlnas_bin, "search", "--space", "nb201", "--agent", agent, "--trials", "2",
                                 "--no-progress", "--storage", "sqlite:///p.db"], capture_output=True, text=True,
                                timeout=300, cwd=tmp_path, env=env)
        assert_one_line_error(result, f"plugin 'mine.rlnas_plugin' raised {message}", code=1)
        assert f"{tmp_path / 'mine' / 'agents.py'}, line " in result.stderr


def test_retrain_samples_are_bounded():
    from rlnas.errors import ConfigError
    from rlnas.retrain import search_answers

    with pytest.raises(ConfigError, match="samples must be an integer from 0 to 10,000, got 100000000000"):
        search_answers(None, samples=100_000_000_000)  # checked before the study is read


def test_a_data_set_name_in_capitals_is_the_lowercase_one(rlnas_bin, sqlite_url):
    for space, dataset in (("nbgraph_proteins", "PROTEINS"), ("nbgraph", "Cora")):
        run(rlnas_bin, "search", "--space", space, "--dataset", dataset, "--trials", "2", "--name", dataset,
            "--storage", sqlite_url, "--no-progress")


def test_a_plugin_in_a_namespace_package_claims_its_own_package_not_the_namespace(tmp_path, monkeypatch):
    # google.acme.rlnas_plugin claimed all of site-packages/google, so an error in google.protobuf was blamed on it
    import importlib
    import os

    from rlnas.plugins import _code_paths

    (tmp_path / "spacious" / "acme").mkdir(parents=True)  # spacious: a namespace package (no __init__.py)
    (tmp_path / "spacious" / "acme" / "__init__.py").write_text("")
    (tmp_path / "spacious" / "acme" / "rlnas_plugin.py").write_text("")
    monkeypatch.syspath_prepend(str(tmp_path))
    module = importlib.import_module("spacious.acme.rlnas_plugin")
    assert _code_paths(module) == [os.path.realpath(tmp_path / "spacious" / "acme")]
