"""The result commands of the CLI (plot, compare, report, --json, show --watch, rm, agents, spaces) in-process."""
from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

import pytest

from rlnas.cli import main
from rlnas.reports.compare import compare_groups
from rlnas.reports.snapshot import take_groups
from rlnas.store import open_store

pytest.importorskip("matplotlib")


def rlnas(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture(scope="module")
def url(tmp_path_factory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('cli') / 'runs.db'}"
    for seed in (0, 1):
        assert main(["search", "--agent", "reinforce", "--set", "batch_size=5", "--trials", "40", "--seed", str(seed),
                     "--name", f"c10-rf-{seed}", "--storage", url, "--no-progress"]) == 0
    assert main(["search", "--agent", "random", "--trials", "20", "--name", "c10-random", "--storage", url,
                 "--no-progress"]) == 0
    return url


@pytest.mark.parametrize("kind", ["history", "regret", "diagnostics", "heatmap", "choices", "pareto"])
def test_plot_writes_every_kind(capsys, url, tmp_path, kind) -> None:
    out = tmp_path / "sub" / f"{kind}.png"
    names = ["c10-rf-*"] if kind in ("history", "regret") else ["c10-rf-0"]
    code, stdout, _ = rlnas(capsys, "plot", *names, "--kind", kind, "-o", str(out), "--storage", url)
    assert code == 0 and out.read_bytes()[:4] == b"\x89PNG" and f"wrote {kind}" in stdout


def test_plot_refuses_bad_requests_with_one_line_and_writes_nothing(capsys, url, tmp_path) -> None:
    cases = [(["c10-rf-0", "--kind", "history", "-o", str(tmp_path / "x.jpg")], "must end in .png or .svg"),
             (["c10-rf-*", "--kind", "pareto", "-o", str(tmp_path / "x.png")], "draws one study; 2 match"),
             (["nope-*", "--kind", "history", "-o", str(tmp_path / "x.png")], "no study matches 'nope-*'"),
             (["c10-random", "--kind", "heatmap", "-o", str(tmp_path / "x.png")], "--kind choices")]
    for argv, message in cases:
        code, _, err = rlnas(capsys, "plot", *argv, "--storage", url)
        assert code == 2 and err.count("\n") == 1 and message in err, err
    assert list(tmp_path.iterdir()) == []


def test_compare_aggregates_globs_and_prints_json(capsys, url, tmp_path) -> None:
    code, stdout, _ = rlnas(capsys, "compare", "c10-rf-*", "c10-random", "--json", "-o", str(tmp_path / "c.svg"),
                            "--storage", url)
    rows = json.loads(stdout)
    expected = compare_groups(take_groups(open_store(url, create=False), ["c10-rf-*", "c10-random"]))
    assert code == 0 and [r["name"] for r in rows] == ["c10-rf-*", "c10-random"]
    assert rows[0]["studies"] == ["c10-rf-0", "c10-rf-1"]
    assert rows[0]["best_reward"]["mean"] == expected[0].best_reward[0]
    assert rows[1]["distinct_architectures"] == {"mean": 20.0, "std": 0.0}
    assert (tmp_path / "c.svg").read_text().count("<svg") == 1
    code, stdout, _ = rlnas(capsys, "compare", "c10-rf-*", "--storage", url)
    assert code == 0 and "c10-rf-*" in stdout and "±" in stdout


def test_report_writes_one_self_contained_page(capsys, url, tmp_path) -> None:
    page = tmp_path / "r" / "report.html"
    code, _, _ = rlnas(capsys, "report", "c10-rf-0", "-o", str(page), "--top", "5", "--storage", url)
    html = page.read_text()
    assert code == 0 and html.count('<figure class="plot') == 5 and html.count('<td class="num" data-value') >= 5
    assert '<span class="muted">status</span><b>finished (target 40 trials)</b>' in html  # as rlnas ls says
    code, _, err = rlnas(capsys, "report", "c10-rf-0", "-o", str(tmp_path / "report.pdf"), "--storage", url)
    assert code == 2 and "name it FILE.html" in err and not (tmp_path / "report.pdf").exists()


def test_json_of_ls_show_and_best(capsys, url) -> None:
    code, stdout, _ = rlnas(capsys, "ls", "--json", "--storage", url)
    studies = {s["name"]: s for s in json.loads(stdout)}
    assert code == 0 and set(studies) == {"c10-rf-0", "c10-rf-1", "c10-random"}
    assert studies["c10-random"]["status"] == "finished" and studies["c10-random"]["target"]["n_trials"] == 20
    code, stdout, _ = rlnas(capsys, "show", "c10-rf-0", "--json", "--last", "3", "--storage", url)
    shown = json.loads(stdout)
    assert shown["definition"]["agent_config"]["batch_size"] == 5 and len(shown["last_trials"]) == 3
    code, stdout, _ = rlnas(capsys, "best", "c10-rf-0", "--json", "--storage", url)
    best = json.loads(stdout)
    listed = studies["c10-rf-0"]["best"]
    assert best["number"] == listed["trial"] and best["reward"] == listed["reward"]


def test_status_and_watch_follow_the_driver(capsys, url, tmp_path) -> None:
    from rlnas.study import load_study

    study = load_study("c10-rf-1", url)
    study.optimize(45)
    study = load_study("c10-rf-1", url)
    study.claim()
    try:
        code, stdout, _ = rlnas(capsys, "ls", "--json", "--storage", url)
        status = {s["name"]: s for s in json.loads(stdout)}["c10-rf-1"]
        assert status["status"] == "running" and status["driver"].startswith("pid ")
        threading.Timer(1.5, study.close).start()
        start = time.monotonic()
        code, stdout, _ = rlnas(capsys, "show", "c10-rf-1", "--watch", "--interval", "0.3", "--storage", url)
    finally:
        study.close()
    assert code == 0 and 1.0 < time.monotonic() - start < 30
    lines = stdout.strip().splitlines()
    assert "running by pid" in lines[0] and "trials 45/45" in lines[0] and "finished" in lines[-1]
    assert len(lines) == 2


def test_rm_deletes_checks_first_and_takes_the_weights_along(capsys, tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'w.db'}"
    assert main(["search", "--space", "nb201", "--evaluator", "train", "--epochs", "0.2", "--agent", "random",
                 "--trials", "2", "--keep-weights", "1", "--name", "tw", "--storage", url, "--no-progress"]) == 0
    folder = tmp_path / "w.db-weights" / "tw"
    assert len(list(folder.glob("*.pt"))) == 1
    code, _, err = rlnas(capsys, "export", "tw", "--onnx", str(tmp_path / "o" / "tw.onnx"), "--storage", url)
    assert code == 0 and "with the weights it was trained with" in err and (tmp_path / "o" / "tw.onnx").is_file()
    code, _, err = rlnas(capsys, "rm", "tw", "missing", "--storage", url)
    assert code == 2 and "no study named 'missing'" in err and folder.is_dir()  # nothing deleted
    code, stdout, _ = rlnas(capsys, "rm", "tw", "--storage", url)
    assert code == 0 and "weights folder" in stdout and not folder.exists()
    assert json.loads(rlnas(capsys, "ls", "--json", "--storage", url)[1]) == []


def test_default_names_differ_exactly_when_the_definition_does(capsys, tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'n.db'}"
    base = ["search", "--agent", "ppo", "--trials", "10", "--storage", url, "--no-progress"]
    for extra in ([], ["--controller", "lstm"], ["--agent-config", '{"batch_size": 5, "baseline": "value"}'],
                  ["--fidelity", "12"], ["--controller", "factorized"], []):
        assert main(base + extra) == 0
    capsys.readouterr()
    names = [s["name"] for s in json.loads(rlnas(capsys, "ls", "--json", "--storage", url)[1])]
    assert names[0] == "nb201-ppo-cifar10-0" and len(names) == 4
    assert all(n.startswith("nb201-ppo-cifar10-0-") and len(n) == len("nb201-ppo-cifar10-0-") + 6 for n in names[1:])


def test_ls_shows_whole_names_in_a_narrow_terminal(capsys, tmp_path, monkeypatch) -> None:
    url = f"sqlite:///{tmp_path / 'w.db'}"
    name = "nb201-evolution-imagenet16-120-0-abcdef"
    assert main(["search", "--agent", "evolution", "--trials", "2", "--name", name, "--storage", url,
                 "--no-progress"]) == 0
    capsys.readouterr()
    monkeypatch.setenv("COLUMNS", "100")
    code, stdout, _ = rlnas(capsys, "ls", "--storage", url)
    assert code == 0 and name in stdout  # it was cut to 'nb201-evolution-…', which no command accepts


def test_agents_and_spaces_list_every_option_with_its_meaning(capsys) -> None:
    from rlnas.agents import agent_class, list_agents

    code, stdout, _ = rlnas(capsys, "agents", "--json")
    listing = json.loads(stdout)
    assert code == 0 and sorted(listing) == list_agents()
    for name, about in listing.items():
        defaults = agent_class(name).Config.from_dict({}).to_dict()
        assert [o["name"] for o in about["options"]] == list(defaults) and about["summary"]
        assert all(o["meaning"] for o in about["options"]), name  # every Config field documents itself
        assert {o["name"]: o["default"] for o in about["options"]} == json.loads(json.dumps(defaults))
    code, stdout, _ = rlnas(capsys, "spaces", "--json")
    spaces = {s["name"]: s for s in json.loads(stdout)}
    assert spaces["nb201"]["candidates"] == 15625 and spaces["nb201"]["evaluators"] == ["nb201", "train"]


def test_search_checks_space_evaluator_and_data_before_storing_anything(capsys, tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'x.db'}"
    code, _, err = rlnas(capsys, "search", "--space", "darts", "--evaluator", "nb201", "--storage", url)
    assert code == 2 and "evaluator 'nb201' measures space 'nb201', not 'darts'" in err
    code, _, err = rlnas(capsys, "search", "--space", "nb201", "--evaluator", "train", "--dataset", "cifar10",
                         "--data-root", str(tmp_path / "none"), "--storage", url)
    assert code == 2 and f"CIFAR-10 data_root {tmp_path / 'none'} does not exist" in err and err.count("\n") == 1
    assert list(tmp_path.iterdir()) == []  # not even an empty database
    code, _, err = rlnas(capsys, "search", "--name", "", "--storage", url)  # an unset variable, not the default
    assert code == 2 and "a study name must be a non-empty string, got ''" in err
    for name in (" ", "a "):  # a blank cell in ls; a name that looks like another
        code, _, err = rlnas(capsys, "search", "--name", name, "--storage", url)
        assert code == 2 and f"a study name must not begin or end with white space, got {name!r}" in err
    assert list(tmp_path.iterdir()) == []


def test_summary_points_to_reuse_repeats_when_most_trials_repeat(capsys, tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'r.db'}"
    code, stdout, _ = rlnas(capsys, "search", "--agent", "reinforce", "--set", "lr=0.5", "--trials", "100",
                            "--storage", url, "--no-progress")
    status = json.loads(rlnas(capsys, "ls", "--json", "--storage", url)[1])[0]
    assert code == 0 and status["distinct_architectures"] <= 50  # a greedy controller converges at once
    assert "--reuse-repeats" in stdout and f"{100 - status['distinct_architectures']} of 100 trials" in stdout


def test_untrained_onnx_follows_the_study_data_set_and_says_so(capsys, tmp_path) -> None:
    onnx = pytest.importorskip("onnx")
    url = f"sqlite:///{tmp_path / 'c.db'}"
    for dataset, classes, side in (("cifar100", 100, 32), ("imagenet16-120", 120, 16)):
        assert main(["search", "--agent", "random", "--dataset", dataset, "--trials", "3", "--name", dataset,
                     "--storage", url, "--no-progress"]) == 0
        out = tmp_path / "new" / f"{dataset}.onnx"
        code, _, err = rlnas(capsys, "export", dataset, "--onnx", str(out), "--storage", url)
        graph = onnx.load(str(out)).graph
        dims = [[d.dim_value or d.dim_param for d in v.type.tensor_type.shape.dim]
                for v in (graph.input[0], graph.output[0])]
        assert code == 0 and dims == [["batch", 3, side, side], ["batch", classes]]
        assert "UNTRAINED (seed 0) weights" in err and "the 'nb201' evaluator of this study kept none" in err
    # other channels at the data set's image size (the input was 3-channel: the export crashed)
    out = tmp_path / "one.onnx"
    assert rlnas(capsys, "export", "cifar100", "--onnx", str(out), "--model-option", "in_channels=1",
                 "--storage", url)[0] == 0
    assert [d.dim_value or d.dim_param for d in onnx.load(str(out)).graph.input[0].type.tensor_type.shape.dim] == \
        ["batch", 1, 32, 32]


@pytest.mark.parametrize("evaluator, space", [("shared", "enas_micro"), ("supernet", "proxyless")])
def test_the_untrained_network_of_a_weight_sharing_study_fits_its_data_set(evaluator, space) -> None:
    from rlnas.export import study_model_options

    spec = {"name": evaluator, "space": space, "dataset": "digits"}  # 10 classes of 1x8x8 images
    assert study_model_options(spec) == ({"num_classes": 10, "in_channels": 1}, (1, 8, 8))


class _EndsWhileRead:
    """A store whose search stores its last trials and lets go of its lease just after the trials are read
    (once): what ``ls`` or ``show --watch`` sees when a search ends between its reads."""

    def __init__(self, store, record_id, lease, cut):
        self.store, self.record_id, self.lease, self.cut, self.ended = store, record_id, lease, cut, False

    def get_lease(self, study_id):
        return None if self.ended else self.lease

    def trials(self, study_id):
        trials = self.store.trials(study_id)
        if self.ended:
            return trials
        self.ended = True
        return trials[:self.cut]


@pytest.mark.parametrize("given", [False, True])
def test_a_search_ending_between_the_reads_of_its_status_is_never_shown_interrupted(url, given) -> None:
    from rlnas.cli._status import study_status
    from rlnas.store.base import Lease, utcnow
    from rlnas.study.lease import this_host

    store = open_store(url)
    record = store.get_study("c10-random")  # 20 of 20 trials: finished
    lease = Lease("h", this_host(), os.getpid(), utcnow(), utcnow())
    ending = _EndsWhileRead(store, record.id, lease, cut=15)
    trials = ending.trials(record.id) if given else None  # show reads the trials first, ls lets study_status read
    assert study_status(ending, record, trials)["status"] in (("finished",) if given else ("running", "finished"))


def test_rename_refuses_a_running_study_but_not_one_whose_driver_was_killed(capsys, tmp_path) -> None:
    from rlnas.store.base import Lease, utcnow
    from rlnas.study.lease import this_host

    db = f"sqlite:///{tmp_path / 'k.db'}"
    for name in ("live", "killed"):
        assert main(["search", "--agent", "random", "--trials", "3", "--name", name, "--storage", db,
                     "--no-progress"]) == 0
    store = open_store(db)
    dead = os.fork()
    if dead == 0:
        os._exit(0)
    os.waitpid(dead, 0)  # a pid that was a process of this host and is gone (kill -9 leaves its lease behind)
    for name, pid in (("live", os.getpid()), ("killed", dead)):
        assert store.insert_lease(store.get_study(name).id, Lease("h", this_host(), pid, utcnow(), utcnow()))
    code, _, err = rlnas(capsys, "rename", "live", "other", "--storage", db)
    assert code == 2 and "is being driven by pid" in err
    code, stdout, _ = rlnas(capsys, "rename", "killed", "other", "--storage", db)
    assert code == 0 and "renamed study 'killed' to 'other'" in stdout


def test_a_new_study_never_takes_the_weights_folder_of_another(capsys, tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'w.db'}"
    search = ["search", "--space", "nb201", "--evaluator", "train", "--epochs", "0.2", "--agent", "random",
              "--storage", url, "--no-progress"]
    assert main([*search, "--trials", "2", "--name", "t"]) == 0
    folder = tmp_path / "w.db-weights" / "t"
    old_files = sorted(folder.glob("*.pt"))
    assert len(old_files) == 2
    assert rlnas(capsys, "rename", "t", "t_old", "--storage", url)[0] == 0
    assert main([*search, "--trials", "2", "--seed", "1", "--keep-weights", "1", "--name", "t"]) == 0
    store = open_store(url)
    assert store.get_study("t_old").evaluator["weights_dir"] == str(folder)
    assert store.get_study("t").evaluator["weights_dir"] == f"{folder}-2"
    assert sorted(folder.glob("*.pt")) == old_files and len(list(Path(f"{folder}-2").glob("*.pt"))) == 1
    # resumed through search, a study keeps the folder it stored
    assert main([*search, "--trials", "3", "--seed", "1", "--keep-weights", "1", "--name", "t"]) == 0
    assert len(store.trials(store.get_study("t").id)) == 3
    # files left by a database that is gone are not a new study's either
    elsewhere = f"sqlite:///{tmp_path / 'other.db'}"
    (tmp_path / "other.db-weights" / "u").mkdir(parents=True)
    (tmp_path / "other.db-weights" / "u" / old_files[0].name).write_bytes(b"")
    assert main([*search[:-3], "--storage", elsewhere, "--no-progress", "--trials", "1", "--name", "u"]) == 0
    assert open_store(elsewhere).get_study("u").evaluator["weights_dir"] == str(tmp_path / "other.db-weights" / "u-2")


def test_the_summary_says_evaluation_time_is_simulated_only_for_a_table(tmp_path):
    from rlnas.testing.kill import run_cli

    url = f"sqlite:///{tmp_path / 'r.db'}"
    for argv, label in ((["--space", "nb201"], "evaluation time (simulated by the table)"),
                        (["--space", "nbgraph"], "evaluation time "),  # its table has no training times
                        (["--space", "toy", "--evaluator", "odd_toy", "--eval-option", "kind=numpy_int_info"],
                         "evaluation time ")):
        result = run_cli(["search", *argv, "--agent", "random", "--trials", "2", "--no-progress", "--storage", url,
                          "--name", argv[1]])
        assert result.returncode == 0, result.stderr
        assert label in result.stdout and ("simulated" in result.stdout) == (argv[1] == "nb201")


def test_a_running_trial_without_a_driver_is_shown_as_abandoned(capsys, tmp_path):
    # after kill -9, ls --json said "running": 1 next to "status": "interrupted", and show gave the trial no note
    from rlnas.study import create_study
    from rlnas.testing.toy import ToyEvaluator

    url = f"sqlite:///{tmp_path / 'r.db'}"
    evaluator = ToyEvaluator()
    study = create_study(space=evaluator.space, evaluator=evaluator, name="k", storage=url, n_trials=5)
    study.tell(study.ask(), 1.0)
    study.ask()
    study.close()  # as a killed driver leaves it: the lease gone, the trial RUNNING
    assert main(["ls", "--json", "--storage", url]) == 0
    (status,) = json.loads(capsys.readouterr().out)
    assert (status["status"], status["running"], status["abandoned"]) == ("interrupted", 0, 1)
    assert main(["show", "k", "--storage", url]) == 0
    assert "its driver is gone: resume evaluates this slot again" in " ".join(capsys.readouterr().out.split())


def test_ctrl_c_while_the_database_is_gone_still_ends_as_interrupted(capsys, tmp_path):
    # the fallback count read the failing store again: a StorageError came out instead of exit 130
    from rich.console import Console

    from rlnas.cli.summary import run_and_report
    from rlnas.study import create_study
    from rlnas.study.spec import RunOptions
    from rlnas.testing.toy import ToyEvaluator

    path = tmp_path / "c.db"
    study = create_study(space=ToyEvaluator().space, evaluator=ToyEvaluator(), name="c", storage=f"sqlite:///{path}")

    def interrupt(study, trial):
        if trial.number == 3:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
            raise KeyboardInterrupt

    assert run_and_report(study, 10, None, RunOptions(callbacks=(interrupt,)), Console()) == 130
    assert capsys.readouterr().err == f"rlnas: interrupted: continue with `rlnas resume c --storage sqlite:///{path}`\n"
