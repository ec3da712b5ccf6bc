"""What the output commands hand out: the study asked for, whole files with the usual permissions,
valid JSON, one kind of output per export, and a quiet end when the reader of a pipe goes away."""
from __future__ import annotations

import csv
import io
import json
import os
import stat
import subprocess
import sys
import warnings

import pytest

from rlnas.cli import main
from rlnas.evaluators.base import Measurement
from rlnas.export import export_onnx
from rlnas.study import create_study
from rlnas.testing.toy import ToyEvaluator


def rlnas(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


class CollidingMetrics(ToyEvaluator):
    """Metrics named like the export's own columns, and an infinite one."""

    def evaluate(self, candidate, *, budget=None, seed=None) -> Measurement:
        value = self.reward_of(candidate)
        return Measurement({"valid_acc": value, "error": 5.0, "number": 99.0, "key": 7.0, "test_acc": float("inf")},
                           cost_seconds=1.0)


@pytest.fixture()
def url(tmp_path, capsys) -> str:
    url = f"sqlite:///{tmp_path / 'runs.db'}"
    for name, trials in (("run[1]", 3), ("run1", 4)):
        assert main(["search", "--agent", "random", "--trials", str(trials), "--name", name, "--storage", url,
                     "--no-progress"]) == 0
    capsys.readouterr()
    return url


def test_a_name_with_glob_characters_is_that_study_first(capsys, url) -> None:
    code, stdout, _ = rlnas(capsys, "compare", "run[1]", "--json", "--storage", url)
    assert code == 0 and json.loads(stdout)[0]["studies"] == ["run[1]"]
    code, stdout, _ = rlnas(capsys, "rm", "run[1]", "--storage", url)
    assert code == 0 and "'run[1]'" in stdout
    names = [s["name"] for s in json.loads(rlnas(capsys, "ls", "--json", "--storage", url)[1])]
    assert names == ["run1"]  # the glob reading of 'run[1]' would have deleted this one


def test_one_export_writes_one_kind_of_output_and_nothing_on_failure(capsys, url, tmp_path) -> None:
    out = tmp_path / "out"
    cases = [(["--output", str(out / "t.csv"), "--arch", str(out / "a.json")], "one export writes one kind of output"),
             (["--arch", str(out / "same"), "--onnx", str(out / "same")], "--arch and --onnx name the same file"),
             (["--top", "2"], "--top applies to --optimizer"),
             (["--trial", "0"], "--trial applies to --arch and --onnx"),
             (["--arch", str(out / "a.json"), "--untrained"], "--untrained applies to --onnx"),
             (["--arch", str(out / "a.json"), "--onnx", str(out / "n.onnx"), "--model-option", "bogus=1"], "bogus")]
    for extra, message in cases:
        code, _, err = rlnas(capsys, "export", "run1", *extra, "--storage", url)
        assert code == 2 and message in err and err.count("\n") == 1, err
    assert not out.exists()  # not even the architecture of the network that could not be made
    code, _, _ = rlnas(capsys, "export", "run1", "--trial", "0", "--arch", str(out / "a.json"), "--storage", url)
    assert code == 0 and json.loads((out / "a.json").read_text())["trial"] == 0


def test_output_files_get_the_permissions_of_the_umask_or_of_the_file_they_replace(capsys, url, tmp_path) -> None:
    old = os.umask(0o022)
    try:
        for flag, name in (("--output", "t.csv"), ("--arch", "a.json")):
            assert rlnas(capsys, "export", "run1", flag, str(tmp_path / name), "--storage", url)[0] == 0
            assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o644
        (tmp_path / "t.csv").chmod(0o600)
        assert rlnas(capsys, "export", "run1", "--output", str(tmp_path / "t.csv"), "--force", "--storage", url)[0] == 0
        assert stat.S_IMODE((tmp_path / "t.csv").stat().st_mode) == 0o600
    finally:
        os.umask(old)


def test_a_failing_onnx_export_keeps_the_old_file_and_leaves_no_other(tmp_path, monkeypatch) -> None:
    import torch

    target = tmp_path / "net.onnx"
    export_onnx(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 2)), target, (3, 2, 2))
    good = target.read_bytes()

    def half_written(model, args, f, **kwargs):
        with open(f, "wb") as handle:
            handle.write(b"half an onnx file")
        raise OSError(27, "File too large")

    monkeypatch.setattr(torch.onnx, "export", half_written)
    with pytest.raises(OSError, match="File too large"):
        export_onnx(torch.nn.Linear(12, 2), target, (3, 2, 2))
    assert target.read_bytes() == good and os.listdir(tmp_path) == ["net.onnx"]


def test_onnx_export_without_the_onnx_package_is_one_line_and_writes_nothing(capsys, tmp_path, monkeypatch) -> None:
    url = f"sqlite:///{tmp_path / 'o.db'}"
    assert main(["search", "--space", "nb201", "--agent", "random", "--trials", "3", "--name", "o",
                 "--storage", url]) == 0
    capsys.readouterr()
    monkeypatch.setitem(sys.modules, "onnx", None)  # as where the onnx extra is not installed
    code, _, err = rlnas(capsys, "export", "o", "--onnx", str(tmp_path / "net.onnx"), "--arch",
                         str(tmp_path / "arch.json"), "--storage", url)
    assert code == 2 and err == "rlnas: error: ONNX export needs the onnx package: pip install 'rlnas[onnx]'\n"
    assert [name for name in os.listdir(tmp_path) if not name.startswith("o.db")] == []


def test_metrics_named_like_columns_and_infinite_values(capsys, tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'c.db'}"
    study = create_study(space=ToyEvaluator().space, evaluator=CollidingMetrics(), name="collide", storage=url)
    study.optimize(3)
    study.close()
    code, stdout, _ = rlnas(capsys, "export", "collide", "--storage", url)
    rows = list(csv.DictReader(io.StringIO(stdout)))
    header = stdout.splitlines()[0].split(",")
    assert code == 0 and len(header) == len(set(header))
    assert [r["number"] for r in rows] == ["0", "1", "2"] and rows[0]["metric_number"] == "99.0"
    assert rows[0]["metric_error"] == "5.0" and rows[0]["error"] == "" and rows[0]["metric_key"] == "7.0"
    exported = json.loads(rlnas(capsys, "export", "collide", "--format", "json", "--storage", url)[1])
    assert exported["trials"][1]["number"] == 1 and exported["trials"][1]["metric_number"] == 99.0
    for command in (["best", "collide", "--json"], ["show", "collide", "--json"], ["ls", "--json"],
                    ["compare", "collide", "--json"]):
        code, stdout, _ = rlnas(capsys, *command, "--storage", url)
        assert code == 0 and "Infinity" not in stdout and "NaN" not in stdout, command
        json.loads(stdout)


def test_a_history_of_no_trials_is_a_one_line_error(capsys, tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'e.db'}"
    create_study(space="nb201", name="empty", storage=url).close()
    for axis in ("trials", "time", "wall"):
        code, _, err = rlnas(capsys, "plot", "empty", "--kind", "history", "--x", axis, "-o", str(tmp_path / "h.svg"),
                             "--storage", url)
        assert code == 2 and "no completed trial to draw: empty has none" in err and err.count("\n") == 1
    assert not (tmp_path / "h.svg").exists()


def test_an_empty_file_is_not_made_a_database_by_a_command_that_reads(capsys, tmp_path) -> None:
    empty = tmp_path / "empty.db"
    empty.touch()
    code, _, err = rlnas(capsys, "ls", "--storage", f"sqlite:///{empty}")
    assert code == 2 and "is an empty file" in err
    assert empty.stat().st_size == 0 and os.listdir(tmp_path) == ["empty.db"]


def test_a_closed_pipe_ends_the_command_quietly(url) -> None:
    script = os.path.join(os.path.dirname(sys.executable), "rlnas")
    process = subprocess.Popen([script, "export", "run1", "--format", "json", "--storage", url],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    process.stdout.close()  # the reader is gone before the first line is written
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 1 and stderr == b""


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_a_full_disk_behind_the_standard_output_is_one_line(url) -> None:
    script = os.path.join(os.path.dirname(sys.executable), "rlnas")
    for command in (["export", "run1", "--format", "csv"], ["best", "run1", "--json"], ["ls"]):
        with open("/dev/full", "w") as full:
            result = subprocess.run([script, *command, "--storage", url], stdout=full, stderr=subprocess.PIPE,
                                    text=True, timeout=120)
        assert (result.returncode, result.stderr) == (1, "rlnas: error: cannot write the output: No space left on "
                                                         "device\n"), command


def test_only_a_regular_file_is_written_and_a_link_is_written_through(capsys, url, tmp_path) -> None:
    for suffix in ("csv", "json", "png", "html"):
        os.mkfifo(tmp_path / f"pipe.{suffix}")  # opening it would block for ever; a device replaced would break
    for argv in (["export", "run1", "--output", "pipe.csv"], ["export", "run1", "--output", "pipe.csv", "--force"],
                 ["export", "run1", "--arch", "pipe.json"], ["plot", "run1", "--kind", "history", "-o", "pipe.png"],
                 ["report", "run1", "-o", "pipe.html"]):
        fifo = tmp_path / argv[-1 if argv[-1] != "--force" else -2]
        argv = [str(fifo) if a == fifo.name else a for a in argv]
        code, _, err = rlnas(capsys, *argv, "--storage", url)
        assert code == 2 and err.endswith("it is not a regular file (a device, a pipe or a socket), so nothing is "
                                          "written there\n") and stat.S_ISFIFO(os.lstat(fifo).st_mode), argv
    code, _, err = rlnas(capsys, "export", "run1", "--output", "", "--storage", url)
    assert code == 2 and err == "rlnas: error: cannot write '': the path is empty\n"
    (tmp_path / "real.csv").write_text("old\n")
    (tmp_path / "link.csv").symlink_to("real.csv")
    assert rlnas(capsys, "export", "run1", "--output", str(tmp_path / "link.csv"), "--force", "--storage", url)[0] == 0
    assert (tmp_path / "link.csv").is_symlink() and (tmp_path / "real.csv").read_text().startswith("number,")


def test_ctrl_c_outside_a_search_loop_is_one_line_and_exit_130(capsys, monkeypatch) -> None:
    from rlnas.cli import ls as ls_command

    def interrupted(args, console):
        raise KeyboardInterrupt

    monkeypatch.setattr(ls_command, "run", interrupted)
    code, _, err = rlnas(capsys, "ls")
    assert code == 130 and err == "rlnas: interrupted\n"


def test_spaces_list_every_evaluator_that_measures_them(capsys) -> None:
    spaces = {s["name"]: s["evaluators"] for s in json.loads(rlnas(capsys, "spaces", "--json")[1])}
    assert spaces["enas_micro"] == ["train", "shared"] and spaces["tunas_mbv3"] == ["train", "supernet"]
    assert spaces["optimizer_rules"] == ["optimizer"] and spaces["darts"] == ["train"]


def test_spaces_lists_without_importing_torch() -> None:
    from rlnas.models import MODELS
    from rlnas.spaces import BUILT_IN_MODEL_SPACES

    assert set(BUILT_IN_MODEL_SPACES) == set(MODELS.list())  # the torch-free list names every built-in builder
    code = "import sys; from rlnas.cli import main; main(['spaces', '--json']); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    rows = json.loads(out[:out.rindex("]") + 1])
    assert out.split()[-1] == "False" and {r["name"] for r in rows if "train" in r["evaluators"]} \
        == set(BUILT_IN_MODEL_SPACES)


def test_searches_that_cannot_run_store_nothing(capsys, tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'x.db'}"
    cases = [(["--agent", "tunas"], "agent 'tunas' shares weights and needs a weight-sharing evaluator"),
             (["--agent", "tunas", "--trials", "5"], "NB201Evaluator lacks steps_per_epoch"),
             (["--space", "nbgraph", "--budget-seconds", "100"], "evaluator 'nbgraph' reports no evaluation time"),
             (["--agent", "fixed", "--set", "key=bogus"], "fixed: NB201 arch string 'bogus'"),
             # one setting given twice: refused, not one of them silently kept
             (["--agent", "ppo", "--controller", "lstm", "--set", "controller=factorized"],
              "--controller and controller in --set / --agent-config both set the agent's controller"),
             (["--dataset", "cifar10", "--eval-option", "dataset=cifar100"],
              "--dataset and --eval-option dataset both set the evaluator's dataset: give one"),
             (["--evaluator", "train", "--epochs", "1", "--eval-option", "epochs=2"],
              "--epochs and --eval-option epochs both set the evaluator's epochs")]
    for extra, message in cases:
        code, _, err = rlnas(capsys, "search", *extra, "--storage", url, "--no-progress")
        assert code == 2 and message in err and err.count("\n") == 1, err
    assert os.listdir(tmp_path) == []  # not even an empty database
    assert main(["search", "--space", "nbgraph", "--trials", "3", "--name", "g", "--storage", url,
                 "--no-progress"]) == 0
    capsys.readouterr()
    code, _, err = rlnas(capsys, "resume", "g", "--budget-seconds", "100", "--storage", url)
    assert code == 2 and "reports no evaluation time" in err  # it would never stop: it used to run for ever


def test_compare_that_cannot_draw_its_regret_prints_nothing(capsys, tmp_path) -> None:
    from rlnas.trial import TrialState

    url = f"sqlite:///{tmp_path / 'c.db'}"
    create_study(space=ToyEvaluator().space, evaluator=ToyEvaluator(), name="ok", storage=url).optimize(3)
    with create_study(space=ToyEvaluator().space, evaluator=ToyEvaluator(), name="bad", storage=url) as bad:
        bad.tell(bad.ask(), state=TrialState.FAIL, error="boom")
    for extra in ([], ["--json"]):
        code, stdout, err = rlnas(capsys, "compare", "ok", "bad", "-o", str(tmp_path / "r.png"), *extra,
                                  "--storage", url)
        assert code == 2 and stdout == "" and "study group 'bad' has no COMPLETE trial" in err
    code, stdout, _ = rlnas(capsys, "compare", "ok", "b*", "--json", "--storage", url)
    assert code == 0 and [row["studies_without_completed_trial"] for row in json.loads(stdout)] == [0, 1]
    assert not (tmp_path / "r.png").exists()
    (tmp_path / "taken").write_text("")  # a file where the output's folder would be: the figure cannot be written
    code, stdout, err = rlnas(capsys, "compare", "ok", "-o", str(tmp_path / "taken" / "r.png"), "--storage", url)
    assert code == 2 and stdout == "" and "is a file, not a folder" in err


def test_compare_shows_a_dash_for_a_default_metric_a_study_lacks_and_refuses_a_typo(capsys, tmp_path) -> None:
    class ValidOnly(ToyEvaluator):  # no test_acc, like a weight-sharing study's shared_acc
        def evaluate(self, candidate, *, budget=None, seed=None):
            return Measurement({"valid_acc": self.reward_of(candidate)})

    url = f"sqlite:///{tmp_path / 'm.db'}"
    create_study(space=ToyEvaluator().space, evaluator=ValidOnly(), name="toy", storage=url).optimize(3)
    code, stdout, _ = rlnas(capsys, "compare", "toy", "--json", "--storage", url)
    assert code == 0 and json.loads(stdout)[0]["best_test_acc"] == {"mean": None, "std": None}
    code, _, err = rlnas(capsys, "compare", "toy", "--metric", "vlaid_acc", "--storage", url)
    assert code == 2 and "no metric 'vlaid_acc' in the trials (stored: valid_acc)" in err


def test_an_output_under_a_file_says_which_path_is_a_file(capsys, tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'f.db'}"
    create_study(space=ToyEvaluator().space, evaluator=ToyEvaluator(), name="s", storage=url).optimize(2)
    (tmp_path / "afile").write_text("")
    code, _, err = rlnas(capsys, "report", "s", "-o", str(tmp_path / "afile" / "sub" / "r.html"), "--storage", url)
    assert code == 2 and err.strip().endswith(f"{tmp_path / 'afile'} is a file, not a folder")


def test_the_interrupted_line_says_how_to_resume_this_study_in_its_database(capsys, tmp_path, monkeypatch) -> None:
    from rlnas.study import Study

    def interrupted(self, *args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(Study, "optimize", interrupted)
    url = f"sqlite:///{tmp_path / 'r.db'}"
    code, stdout, err = rlnas(capsys, "search", "--space", "nb201", "--trials", "3", "--name", "my run",
                              "--storage", url)
    assert code == 130 and stdout == ""  # a diagnostic, on standard error like the errors
    assert err == f"rlnas: interrupted: 0 trials are stored; continue with `rlnas resume 'my run' --storage {url}`\n"


def test_standard_output_holds_only_the_results_the_bar_and_warnings_go_to_stderr(capsys, tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'runs.db'}"
    code, out, err = rlnas(capsys, "search", "--space", "nb201", "--agent", "random", "--trials", "5", "--name", "p",
                           "--storage", url)
    assert code == 0 and "5/5" in err and "━" in err  # the bar's last state (it began `> out.txt`)
    assert "━" not in out and "Best architecture of study 'p'" in out
    code, out, err = rlnas(capsys, "search", "--space", "proxyless", "--evaluator", "train", "--dataset", "digits",
                           "--epochs", "0.05", "--trials", "1", "--threads", "1", "--no-progress", "--storage", url)
    assert code == 0 and "warning" not in out  # (printed on stdout, before)
    assert err.startswith("rlnas: warning: on 8×8 images the proxyless networks shrink the feature map to 1×1")
    assert len(err.splitlines()) == 1


def test_a_report_without_matplotlib_says_it_has_no_plots(capsys, url, tmp_path, monkeypatch) -> None:
    for loaded in [m for m in sys.modules if m.startswith("matplotlib.")]:  # (imported by earlier tests)
        monkeypatch.delitem(sys.modules, loaded)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # as where the plot extra is not installed
    monkeypatch.setattr("warnings.showwarning", warnings.showwarning)  # (main sets its own; put it back after)
    code, out, err = rlnas(capsys, "report", "run1", "-o", str(tmp_path / "r.html"), "--storage", url)
    assert code == 0 and "wrote the report of 'run1'" in out  # (exit 0 with no word about the missing plots)
    assert err == "rlnas: warning: the report has no plots: they need matplotlib (pip install 'rlnas[plot]')\n"
    assert "Not drawn: plots need matplotlib" in (tmp_path / "r.html").read_text()


def test_output_dash_is_standard_output_for_the_trials_only(capsys, url, tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    code, out, _ = rlnas(capsys, "export", "run1", "--output", "-", "--storage", url)
    assert code == 0 and out.startswith("number,slot,state,key") and not (tmp_path / "-").exists()  # (a file "-")
    code, out, _ = rlnas(capsys, "export", "run1", "-o", "t.json", "--format", "json", "--storage", url)
    assert code == 0 and len(json.loads((tmp_path / "t.json").read_text())["trials"]) == 4  # -o as in plot, report
    code, _, err = rlnas(capsys, "export", "run1", "--arch", "-", "--storage", url)
    assert code == 2 and "cannot write '-': name a file" in err and not (tmp_path / "-").exists()


def test_standard_output_on_a_full_disk_is_an_error_not_a_cut_file(tmp_path) -> None:
    # one large write that the disk took only in part ended with exit 0 and a cut JSON file
    disk = tmp_path / "small"
    disk.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(disk)], capture_output=True).returncode:
        pytest.skip("needs to mount a small tmpfs (root)")
    try:
        url = f"sqlite:///{tmp_path / 'runs.db'}"
        rlnas_bin = os.path.join(os.path.dirname(sys.executable), "rlnas")
        subprocess.run([rlnas_bin, "search", "--trials", "800", "--agent", "random", "--name", "s", "--storage", url,
                        "--no-progress"], check=True, capture_output=True)
        for command in (["export", "s", "--format", "json"], ["show", "s", "--last", "800"]):  # JSON, a rich table
            with open(disk / "out", "w") as target:
                result = subprocess.run([rlnas_bin, *command, "--storage", url], stdout=target,
                                        stderr=subprocess.PIPE, text=True)
            assert result.returncode == 1, command
            assert result.stderr == "rlnas: error: cannot write the output: No space left on device\n"
    finally:
        subprocess.run(["umount", str(disk)], check=True)
