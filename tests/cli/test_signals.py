"""Stopping the command: SIGTERM and SIGHUP as Ctrl-C, a Ctrl-C while it loads, a closed standard output."""
import shlex
import signal
import subprocess
import sys
from types import SimpleNamespace

import pytest

import rlnas.cli
from rlnas.store import open_store
from rlnas.testing.kill import cli_command, run_cli, wait_for_complete
from rlnas.trial import TrialState


def slow_search(url, *extra):
    return ["search", "--space", "toy", "--evaluator", "slow_toy", "--eval-option", "delay=0.05", "--agent",
            "random", "--trials", "2000", "--name", "s", "--no-progress", "--storage", url, *extra]


def trials_of(url):
    store = open_store(url, create=False)
    try:
        return store.trials(store.get_study("s").id)
    finally:
        store.close()


@pytest.mark.parametrize("name", ["SIGTERM", "SIGHUP"])
@pytest.mark.parametrize("extra", [(), ("--executor", "processes", "--workers", "2")], ids=["inline", "processes"])
def test_sigterm_and_sighup_stop_a_search_as_ctrl_c_does(tmp_path, name, extra):
    url = f"sqlite:///{tmp_path / 'runs.db'}"
    # as from a terminal: SIGHUP at its default even where the tests run under nohup (which the child would inherit)
    driver = subprocess.Popen(cli_command(slow_search(url, *extra)), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, preexec_fn=lambda: signal.signal(signal.SIGHUP, signal.SIG_DFL))
    wait_for_complete(url, 3)
    number = getattr(signal, name)
    driver.send_signal(number)
    _, stderr = driver.communicate(timeout=60)
    assert driver.returncode == 128 + number, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("rlnas: interrupted: ") and "rlnas resume s" in lines[0], stderr
    stopped = trials_of(url)
    assert not [t for t in stopped if t.state is TrialState.RUNNING]  # marked orphaned, as on Ctrl-C
    resumed = run_cli(["resume", "s", "--trials", str(len(stopped) + 3), "--no-progress", "--storage", url])
    assert resumed.returncode == 0, resumed.stderr


def test_a_ctrl_c_while_the_command_loads_is_one_line(monkeypatch, capsys):
    class InterruptedImport:
        def find_spec(self, name, path=None, target=None):
            if name == "rlnas.cli._main":
                raise KeyboardInterrupt
            return None

    monkeypatch.delitem(sys.modules, "rlnas.cli._main", raising=False)
    monkeypatch.setattr(sys, "meta_path", [InterruptedImport(), *sys.meta_path])
    assert rlnas.cli.main(["ls"]) == 130
    assert capsys.readouterr().err == "rlnas: interrupted\n"


def test_the_command_puts_back_the_signal_handlers_it_found(tmp_path):
    before = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGHUP), sys.unraisablehook
    assert rlnas.cli.main(["ls", "--storage", f"sqlite:///{tmp_path / 'none.db'}"]) == 2
    assert (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGHUP), sys.unraisablehook) == before


def test_an_interrupt_in_a_finalizer_is_not_reported_other_errors_are(monkeypatch):
    reported = []
    monkeypatch.setattr(sys, "__unraisablehook__", reported.append)
    rlnas.cli._quiet_about_interrupts(SimpleNamespace(exc_value=rlnas.cli.Terminated(signal.SIGTERM)))
    rlnas.cli._quiet_about_interrupts(SimpleNamespace(exc_value=KeyboardInterrupt()))
    error = SimpleNamespace(exc_value=ValueError("x"))
    rlnas.cli._quiet_about_interrupts(error)
    assert reported == [error]


def test_a_closed_standard_output_is_one_line_before_any_work(tmp_path):
    database = tmp_path / "runs.db"
    command = " ".join(shlex.quote(arg) for arg in cli_command(["search", "--space", "toy", "--evaluator", "toy",
                                                          "--trials", "3", "--storage", f"sqlite:///{database}"]))
    result = subprocess.run(["bash", "-c", f"exec {command} >&-"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert result.stderr == "rlnas: error: standard output is closed; redirect it to a file or /dev/null\n"
    assert not database.exists()


def test_a_sighup_ignored_where_the_search_started_stays_ignored(tmp_path):
    # under nohup a closed terminal must not stop a long search (the handler replaced the inherited SIG_IGN)
    url = f"sqlite:///{tmp_path / 'runs.db'}"
    command = cli_command(["search", "--space", "toy", "--evaluator", "slow_toy", "--eval-option", "delay=0.05",
                           "--agent", "random", "--trials", "40", "--name", "s", "--no-progress", "--storage", url])
    driver = subprocess.Popen(["nohup", *command], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for_complete(url, 3)
    driver.send_signal(signal.SIGHUP)
    _, stderr = driver.communicate(timeout=120)
    assert driver.returncode == 0, stderr
    assert sum(t.state is TrialState.COMPLETE for t in trials_of(url)) == 40
