"""Items 11, 12, 13 and 15 on the command line: export never overwrites a database (nor any file
without --force) and writes strict JSON; names and errors are printed literally; a start that
fails stores nothing."""
from __future__ import annotations

import json
import sqlite3

import pytest

from rlnas.testing.kill import run_cli, stored_run


@pytest.fixture
def url(tmp_path) -> str:
    """A database holding study ``s`` (5 NB201 trials)."""
    url = f"sqlite:///{tmp_path / 'runs.db'}"
    assert run_cli(["search", "--agent", "random", "--trials", "5", "--name", "s", "--no-progress",
                    "--storage", url]).returncode == 0
    return url


def _error(result) -> str:
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1 and "Traceback" not in result.stderr, result.stderr[-1500:]
    return lines[0]


# ---------------------------------------------------------------------- item 11: overwriting
def test_export_never_overwrites_a_database_even_with_force(url, tmp_path):
    database = tmp_path / "runs.db"
    before = database.read_bytes()
    for extra in ([], ["--force"]):
        error = _error(run_cli(["export", "s", "--output", str(database), *extra, "--storage", url]))
        assert f"refusing to overwrite {database}: it is a database" in error
    assert database.read_bytes() == before and len(stored_run("s", url)["complete"]) == 5


def test_no_output_replaces_a_database_through_a_link_under_its_own_name_or_as_its_journal(url, tmp_path):
    # report, plot and compare -o wrote over the database (a link named page.html, a database named runs.png):
    # every study in it was gone; a CSV written as runs.db-wal was deleted by SQLite when the store closed
    database = tmp_path / "runs.db"
    (tmp_path / "page.html").symlink_to(database)
    (tmp_path / "plot.png").symlink_to(database)
    for command in (["report", "s", "-o", str(tmp_path / "page.html")],
                    ["plot", "s", "--kind", "history", "-o", str(tmp_path / "plot.png")],
                    ["compare", "s", "-o", str(tmp_path / "plot.png")],
                    ["export", "s", "--format", "csv", "-o", str(tmp_path / "runs.db-wal"), "--force"]):
        error = _error(run_cli([*command, "--storage", url]))
        wal = command[-2].endswith("-wal")
        assert (f"SQLite keeps the journal of database {database} there" if wal else "is a database") in error, error
    assert len(stored_run("s", url)["complete"]) == 5 and not (tmp_path / "runs.db-wal").exists()
    png = tmp_path / "runs.png"
    database.rename(png)
    error = _error(run_cli(["plot", "s", "--kind", "history", "-o", str(png), "--storage", f"sqlite:///{png}"]))
    assert f"cannot write {png}: it is a database" in error
    assert len(stored_run("s", f"sqlite:///{png}")["complete"]) == 5


@pytest.mark.parametrize("flag", ["--output", "--arch"])
def test_export_overwrites_another_file_only_with_force(url, tmp_path, flag):
    target = tmp_path / "notes.txt"
    target.write_text("keep me")
    assert "it exists (use --force to replace it)" in _error(run_cli(["export", "s", flag, str(target),
                                                                      "--storage", url]))
    assert target.read_text() == "keep me"
    assert run_cli(["export", "s", flag, str(target), "--force", "--storage", url]).returncode == 0
    assert target.read_text() != "keep me"


# ------------------------------------------------------------------- item 13: strict JSON out
def test_json_export_is_strict_json_with_infinite_and_nan_metrics_as_null(tmp_path):
    url = f"sqlite:///{tmp_path / 'runs.db'}"
    for kind in ("inf_metric", "nan_metric"):
        assert run_cli(["search", "--space", "toy", "--evaluator", "odd_toy", "--eval-option", f"kind={kind}",
                        "--agent", "random", "--trials", "2", "--name", kind, "--no-progress",
                        "--storage", url]).returncode == 0
        exported = run_cli(["export", kind, "--format", "json", "--storage", url])

        def refuse(constant: str):
            raise AssertionError(f"{constant} in the export")

        data = json.loads(exported.stdout, parse_constant=refuse)
        assert [t["test_acc"] for t in data["trials"]] == [None, None]
        assert all(t["valid_acc"] > 0 for t in data["trials"])


# ------------------------------------------------------------- item 12: terminal injection
MARKUP_NAMES = ["[/]", "[link=https://example.com]click[/link]", "[bold red]alarm[/bold red]", "a[b]c"]


def test_names_that_look_like_markup_are_printed_literally_everywhere(tmp_path):
    url = f"sqlite:///{tmp_path / 'runs.db'}"
    for name in MARKUP_NAMES:
        assert run_cli(["search", "--agent", "random", "--trials", "2", "--name", name, "--no-progress",
                        "--storage", url]).returncode == 0
    listing = run_cli(["ls", "--storage", url])
    assert listing.returncode == 0 and all(name in listing.stdout for name in MARKUP_NAMES), listing.stdout
    for name in MARKUP_NAMES:
        for command in (["show", name], ["best", name]):
            result = run_cli([*command, "--storage", url])
            assert result.returncode == 0 and name in result.stdout, (command, result.stdout, result.stderr)


def test_escape_sequences_never_reach_the_terminal(url, tmp_path):
    sneaky = "evil\x1b]8;;https://example.com\x07link\x1b[2J"
    assert "must be printable" in _error(run_cli(["search", "--agent", "random", "--trials", "1", "--name", sneaky,
                                                  "--no-progress", "--storage", url]))
    database = tmp_path / "runs.db"
    with sqlite3.connect(database) as db:  # an error text written by an evaluator, say
        db.execute("UPDATE rlnas_trials SET state = 'FAIL', reward = NULL, error = ? WHERE number = 0",
                   (f"boom {sneaky}",))
    for command in (["show", "s"], ["ls"], ["best", "s"]):
        result = run_cli([*command, "--storage", url])
        assert result.returncode == 0 and "\x1b" not in result.stdout + result.stderr, command
    assert "boom evil\\x1b]8;;" in run_cli(["show", "s", "--storage", url]).stdout


# --------------------------------------------------------------- item 15: failed starts
FAILED_STARTS = {
    "train evaluator without data": ["--evaluator", "train", "--dataset", "cifar10", "--data-root", "/nonexistent"],
    "auxiliary head on 8x8 digits": ["--space", "darts", "--evaluator", "train", "--epochs", "0.05", "--eval-option",
                                     'model_kwargs={"auxiliary": true, "channels": 4, "layers": 5}'],
    "init-from of another agent": ["--agent", "l2nas", "--init-from", "s"],
    "init-from a missing study": ["--init-from", "nowhere"],
    "agent option of the wrong type": ["--set", "actor_lr=fast"],
    "unknown evaluator option": ["--eval-option", "foo=1"],
}


@pytest.mark.parametrize("case", sorted(FAILED_STARTS))
def test_a_start_that_fails_stores_nothing_and_does_not_block_the_name(url, case):
    args = FAILED_STARTS[case]
    result = run_cli(["search", "--trials", "2", "--name", "new", "--no-progress", "--storage", url,
                      *(args if "--agent" in args else ["--agent", "random", *args])])
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1, result.stderr[-1500:]
    listing = run_cli(["ls", "--storage", url]).stdout
    assert "new" not in listing
    again = run_cli(["search", "--agent", "random", "--trials", "2", "--name", "new", "--no-progress",
                     "--storage", url])
    assert again.returncode == 0, again.stderr
