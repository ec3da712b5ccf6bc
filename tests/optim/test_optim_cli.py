"""The CLI of optimizer search: search, export --optimizer, rule; bad rules are one line with exit 2."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from rlnas.cli import main

TINY = ["--space", "optimizer_rules", "--evaluator", "optimizer", "--dataset", "digits",
        "--eval-option", "network=mlp", "--eval-option", "steps=10", "--eval-option", "lr_grid=[0.1]",
        "--threads", "1", "--no-progress"]


def rlnas(rlnas_bin: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([rlnas_bin, *args], capture_output=True, text=True, timeout=300, check=False)


@pytest.mark.parametrize("agent", ["ppo", pytest.param("reinforce", marks=pytest.mark.slow)])
def test_search_with_the_lstm_controller_then_export_the_best_rules(rlnas_bin, sqlite_url, tmp_path, agent):
    found = rlnas(rlnas_bin, "search", *TINY, "--agent", agent, "--controller", "lstm", "--set", "batch_size=2",
                  "--trials", "4", "--name", "nos", "--storage", sqlite_url)
    assert found.returncode == 0, found.stderr
    exported = rlnas(rlnas_bin, "export", "nos", "--format", "json", "--storage", sqlite_url)
    trials = json.loads(exported.stdout)["trials"]
    assert len(trials) == 4
    shown = rlnas(rlnas_bin, "show", "nos", "--storage", sqlite_url)
    assert '"fail_reward": 0.0' in shown.stdout  # failed rules are learned as the lowest accuracy
    path = tmp_path / "found.py"
    written = rlnas(rlnas_bin, "export", "nos", "--optimizer", str(path), "--top", "2", "--storage", sqlite_url)
    assert written.returncode == 0, written.stderr
    complete = [t for t in trials if t["state"] == "COMPLETE"]
    best = max(complete, key=lambda t: (t["reward"], -t["number"]))
    code = (f"import sys; sys.modules['rlnas'] = None; sys.path.insert(0, {str(tmp_path)!r}); import found; "
            "print(found.RULES['NOSRule1'], found.NOSRule1.__mro__[2].__name__)")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert loaded.stdout.split()[-1] == "Optimizer"
    assert loaded.stdout.rsplit(" ", 1)[0] == best["key"]
    distinct = len({t["key"] for t in complete})
    more = rlnas(rlnas_bin, "export", "nos", "--optimizer", str(path), "--top", "50", "--force",
                 "--storage", sqlite_url)
    said = " ".join((more.stdout + more.stderr).split())
    assert f"the study has {distinct} distinct complete rule(s), fewer than --top 50" in said


@pytest.mark.parametrize("text, message", [
    ("exp(g) * foo", "unknown operand (operands: g, g^2"),
    ("g * g; o2 + g", "iteration 2: operand out of range (earlier outputs: o1) at 'o2'"),
    ("adamw", "unknown rule name 'adamw' (choices: sgd, momentum"),
    ("clip(g, 0.5) * g", "clip(x, ...) takes one of 1e-5, 1e-4, 1e-3 at '0.5'"),
])
def test_bad_rules_are_one_line_errors_with_exit_2(capsys, tmp_path, text, message):
    out = tmp_path / "rule.py"
    assert main(["rule", text, "--output", str(out)]) == 2
    stderr = capsys.readouterr().err
    assert stderr.startswith("rlnas: error: ") and message in stderr
    assert stderr.count("\n") == 1 and "Traceback" not in stderr
    assert not out.exists()


def test_rule_command_shows_code_trains_and_writes(capsys, tmp_path):
    out = tmp_path / "adam_rule.py"
    assert main(["rule", "adam", "--code", "--evaluate", "--eval-option", "dataset=digits", "--eval-option",
                 "network=mlp", "--eval-option", "steps=20", "--eval-option", "lr_grid=[0.01]", "--threads", "1",
                 "--output", str(out)]) == 0
    shown = capsys.readouterr().out
    assert "m / sqrt(v)" in shown and '\n    _into_("sqrt", b1, s["v"])\n' in shown  # the code, line by line
    assert "\ndef fused_update(w, g, s, d, h, table):\n" in shown  # and the element-wise function
    assert "valid_acc at lr 0.01" in shown
    assert "lr: float = 0.01" in out.read_text()  # the evaluated best lr became the class default


def test_a_rule_diverging_at_every_rate_fails_with_exit_1_and_writes_nothing(capsys, tmp_path):
    out = tmp_path / "rule.py"
    assert main(["rule", "1 / 1e-4w", "--evaluate", "--eval-option", "dataset=digits", "--eval-option", "network=mlp",
                 "--eval-option", "steps=5", "--eval-option", "lr_grid=[0.01]", "--threads", "1",
                 "--output", str(out)]) == 1  # the command ran; the rule failed (2 is for a mistake in the command)
    stderr = capsys.readouterr().err
    assert stderr.startswith("rlnas: error: rule '1 / 1e-4w' diverged at every learning rate") and not out.exists()


def test_export_optimizer_refuses_other_studies_and_other_files(capsys, sqlite_url, tmp_path):
    assert main(["search", "--trials", "2", "--name", "cells", "--no-progress", "--storage", sqlite_url]) == 0
    assert main(["export", "cells", "--optimizer", str(tmp_path / "x.py"), "--storage", sqlite_url]) == 2
    assert "needs a study of the optimizer_rules space" in capsys.readouterr().err
    assert not (tmp_path / "x.py").exists()
    assert main(["search", *TINY, "--agent", "random", "--trials", "1", "--name", "nos", "--no-progress",
                 "--storage", sqlite_url]) == 0
    capsys.readouterr()
    assert main(["export", "nos", "--optimizer", str(tmp_path / "torch.py"), "--storage", sqlite_url]) == 2
    assert "torch.py would hide the installed module 'torch'" in capsys.readouterr().err
    assert not (tmp_path / "torch.py").exists()


@pytest.mark.parametrize("option, message", [
    ("network=resnet", "unknown child network 'resnet' (choices: convnet, mlp)"),
    ('network_options={"hidden": [0]}', "child network 'mlp': hidden must be integers >= 1, got [0]"),
])
def test_a_search_with_a_bad_child_network_stores_nothing(capsys, tmp_path, option, message):
    database = tmp_path / "nos.db"
    args = ["search", *TINY, "--eval-option", option, "--agent", "ppo", "--trials", "2",
            "--storage", f"sqlite:///{database}"]
    assert main(args) == 2
    stderr = capsys.readouterr().err
    assert stderr.startswith("rlnas: error: ") and message in stderr and stderr.count("\n") == 1
    assert not database.exists()


def test_network_commands_on_a_rule_study_say_what_applies_instead(capsys, sqlite_url, tmp_path):
    assert main(["search", *TINY, "--agent", "ppo", "--trials", "2", "--name", "nos", "--storage", sqlite_url]) == 0
    capsys.readouterr()
    assert main(["retrain", "nos", "--storage", sqlite_url]) == 2
    assert "retrain trains networks; study 'nos' searched update rules" in capsys.readouterr().err
    assert main(["export", "nos", "--onnx", str(tmp_path / "x.onnx"), "--storage", sqlite_url]) == 2
    assert "rlnas export nos --optimizer FILE.py" in capsys.readouterr().err
    assert not (tmp_path / "x.onnx").exists()
    assert main(["plot", "nos", "--kind", "diagnostics", "--output", str(tmp_path / "d.png"),
                 "--storage", sqlite_url]) == 2  # PPO's batch is larger than 2 results: no update yet
    assert "the study has no diagnostics" in capsys.readouterr().err


def test_rule_options_that_would_be_ignored_are_refused(capsys, tmp_path):
    for argv, message in ((["--lr", "5", "--seed", "2"], "--seed needs --evaluate; --lr needs --output"),
                          (["--eval-option", "steps=5"], "--eval-option needs --evaluate"),
                          (["--seed", "0"], "--seed needs --evaluate"),  # the default's value was let through
                          (["--output", ".py"], "--output must name a .py file, got '.py'"),  # a nameless hidden file
                          (["--evaluate", "--eval-option", "schedule=[[0, 5]]"], "one evaluation takes steps=N"),
                          (["--evaluate", "--eval-option", "seed=7"], "the child's seed is --seed"),
                          (["--evaluate", "--seed", "18446744073709551616"], "--seed must be an integer in [0, 2**63)"),
                          (["--evaluate", "--seed", "-5"], "--seed must be an integer in [0, 2**63), got -5")):
        assert main(["rule", "adam", *argv]) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1


@pytest.mark.parametrize("options, message", [
    (["seed=7"], "the evaluator's own seed would change nothing; use --seed"),
    (["steps=50", "schedule=[[0, 5]]"], "the schedule sets every trial's steps from trial 0"),
])
def test_a_search_refuses_evaluator_options_it_would_override(capsys, tmp_path, options, message):
    database = tmp_path / "nos.db"
    args = ["search", *TINY, *[x for o in options for x in ("--eval-option", o)], "--agent", "ppo", "--trials", "2",
            "--storage", f"sqlite:///{database}"]
    assert main(args) == 2
    stderr = capsys.readouterr().err
    assert stderr.startswith("rlnas: error: ") and message in stderr and stderr.count("\n") == 1
    assert not database.exists()
