"""Items 2, 8, 9 and the suite's storage faults: processes racing to create a fresh database,
damaged, full, read-only and deleted databases, and the same limits on every backend. Every
failure reaches the user as one line; what was stored before it is kept."""
from __future__ import annotations

import json
import multiprocessing
import os
import resource
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rlnas import create_study
from rlnas.checks import SEED_MAX
from rlnas.errors import ConfigError, StorageError
from rlnas.testing.failing_store import read_only_file
from rlnas.testing.kill import cli_command, run_cli, stored_run
from rlnas.testing.toy import ToyEvaluator

TOY = ToyEvaluator()


def _one_line(result: subprocess.CompletedProcess[str], code: int, *words: str) -> str:
    lines = result.stderr.strip().splitlines()
    assert result.returncode == code, (result.returncode, result.stderr[-1500:])
    assert len(lines) == 1 and lines[0].startswith("rlnas: error: "), result.stderr[-1500:]
    assert all(w in lines[0] for w in words), lines[0]
    return lines[0]


# ------------------------------------------------------------------ item 2: schema creation race
def _create_in_race(url: str, index: int, barrier: multiprocessing.synchronize.Barrier, results) -> None:
    barrier.wait()
    try:
        create_study(space=TOY.space, agent="random", evaluator=TOY, storage=url, name=f"s{index}",
                     seed=index).optimize(2)
        results.put("ok")
    except Exception as exc:  # noqa: BLE001  (the test reports whatever went wrong)
        results.put(f"{type(exc).__name__}: {exc}")


def _race(url: str) -> list[str]:
    context = multiprocessing.get_context("fork")
    barrier, results = context.Barrier(4), context.Queue()
    workers = [context.Process(target=_create_in_race, args=(url, i, barrier, results)) for i in range(4)]
    for w in workers:
        w.start()
    outcomes = [results.get(timeout=120) for _ in workers]
    for w in workers:
        w.join()
    return outcomes


def test_four_processes_create_studies_in_one_fresh_sqlite_file(tmp_path):
    for attempt in range(8):  # on main 8 of 10 such races failed
        url = f"sqlite:///{tmp_path / f'fresh{attempt}.db'}"
        assert _race(url) == ["ok"] * 4
        assert sorted(stored_run(f"s{i}", url)["states"] == ["COMPLETE"] * 2 for i in range(4)) == [True] * 4


def test_four_processes_create_studies_in_one_fresh_postgres_database(pg_url):
    assert _race(pg_url) == ["ok"] * 4


# ---------------------------------------------------------------- item 8: damaged databases
@pytest.fixture(scope="module")
def stored(tmp_path_factory) -> Path:
    """A database holding one finished study ``s`` (30 trials, checkpoints every 5)."""
    path = tmp_path_factory.mktemp("stored") / "base.db"
    result = run_cli(["search", "--agent", "random", "--trials", "30", "--name", "s", "--checkpoint-every", "5",
                      "--no-progress", "--storage", f"sqlite:///{path}"])
    assert result.returncode == 0, result.stderr
    return path


def _copy(stored: Path, tmp_path: Path, name: str) -> tuple[Path, str]:
    path = tmp_path / name
    shutil.copy(stored, path)
    return path, f"sqlite:///{path}"


@pytest.mark.parametrize("where", ["header", "first page", "schema page", "middle", "last page"])
def test_random_bytes_inside_the_file_are_one_line_for_every_command(stored, tmp_path, where):
    path, url = _copy(stored, tmp_path, "damaged.db")
    size = path.stat().st_size
    offset = {"header": 0, "first page": 100, "schema page": 4096, "middle": size // 2, "last page": size - 4096}[where]
    with open(path, "r+b") as handle:
        handle.seek(offset)
        handle.write(os.urandom(1024))
    for command in (["ls"], ["show", "s"], ["best", "s"], ["export", "s", "--format", "json"],
                    ["resume", "s", "--trials", "40", "--no-progress"]):
        result = run_cli([*command, "--storage", url])
        if result.returncode == 0:  # the damage missed what this command reads
            continue
        assert result.returncode in (1, 2) and "Traceback" not in result.stderr, (command, result.stderr[-1500:])
        assert len(result.stderr.strip().splitlines()) == 1, (command, result.stderr[-1500:])


def test_a_missing_column_and_damaged_json_are_one_line(stored, tmp_path):
    path, url = _copy(stored, tmp_path, "column.db")
    with sqlite3.connect(path) as db:
        db.execute("ALTER TABLE rlnas_trials DROP COLUMN eval_info")
    _one_line(run_cli(["show", "s", "--storage", url]), 2, "no such column: rlnas_trials.eval_info")
    path, url = _copy(stored, tmp_path, "json.db")
    with sqlite3.connect(path) as db:
        db.execute("UPDATE rlnas_studies SET settings = '{bad'")
    _one_line(run_cli(["resume", "s", "--no-progress", "--storage", url]), 2,
              "the stored definition of study 's' is damaged (not JSON: ")


@pytest.mark.parametrize(("column", "value", "why"), [("agent_config", "{bad", "not JSON: "),
                                                     ("settings", "[1]", "its settings are not a JSON object")])
def test_one_damaged_study_is_listed_as_such_and_rm_deletes_it(stored, tmp_path, column, value, why):
    path, url = _copy(stored, tmp_path, "one.db")
    assert run_cli(["search", "--agent", "random", "--trials", "3", "--name", "t", "--no-progress",
                    "--storage", url]).returncode == 0
    with sqlite3.connect(path) as db:
        db.execute(f"UPDATE rlnas_studies SET {column} = ? WHERE name = 's'", (value,))
    listed = run_cli(["ls", "--json", "--storage", url])
    assert listed.returncode == 0, listed.stderr
    rows = {row["name"]: row for row in json.loads(listed.stdout)}
    assert rows["t"]["status"] == "finished" and rows["t"]["finished"] == 3  # the other study is not hidden
    assert rows["s"]["status"] == "damaged" and why in rows["s"]["error"]
    table = run_cli(["ls", "--storage", url])
    assert table.returncode == 0 and "damaged" in table.stdout
    assert table.stderr.strip().startswith("rlnas: ") and "`rlnas rm` can still delete it" in table.stderr
    _one_line(run_cli(["show", "s", "--storage", url]), 2, "study 's' is damaged", why)
    assert run_cli(["search", "--agent", "random", "--trials", "2", "--name", "u", "--no-progress",
                    "--storage", url]).returncode == 0  # a new study beside it
    removed = run_cli(["rm", "s*", "--storage", url])
    assert removed.returncode == 0 and "deleted damaged study 's'" in removed.stdout, removed.stderr
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT count(*) FROM rlnas_trials t JOIN rlnas_studies s ON t.study_id = s.id "
                          "WHERE s.name = 's'").fetchone() == (0,)
        assert db.execute("SELECT count(*) FROM rlnas_trials").fetchone() == (5,)  # t's 3 and u's 2 are kept
    assert [row["name"] for row in json.loads(run_cli(["ls", "--json", "--storage", url]).stdout)] == ["t", "u"]


def test_a_running_study_whose_definition_gets_damaged_is_not_deleted(tmp_path):
    url = f"sqlite:///{tmp_path / 'run.db'}"
    driver = create_study(space=TOY.space, agent="random", evaluator=TOY, storage=url, name="s")
    driver.claim()  # a live driver holds the lease (stored by the study's id)
    with sqlite3.connect(tmp_path / "run.db") as db:
        db.execute("UPDATE rlnas_studies SET agent_config = '{bad'")
    refused = run_cli(["rm", "s", "--storage", url])
    _one_line(refused, 2, "study 's' is running (pid")  # (it deleted the study under its driver)
    assert json.loads(run_cli(["ls", "--json", "--storage", url]).stdout)[0]["status"] == "damaged"
    driver.close()
    assert run_cli(["rm", "s", "--storage", url]).returncode == 0


def test_a_study_whose_date_cannot_be_read_is_damaged_not_a_traceback(stored, tmp_path):
    path, url = _copy(stored, tmp_path, "date.db")
    with sqlite3.connect(path) as db:
        db.execute("UPDATE rlnas_studies SET created_at = 'garbage'")
    _one_line(run_cli(["show", "s", "--storage", url]), 2, "study 's' is damaged (not readable: ")
    assert json.loads(run_cli(["ls", "--json", "--storage", url]).stdout)[0]["status"] == "damaged"
    assert run_cli(["rm", "s", "--storage", url]).returncode == 0


# --------------------------------------------------------- full disk, read-only, deleted file
def _file_size_limit(limit: int):
    def apply() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes past the limit fail with EFBIG instead
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return apply


def test_a_full_disk_mid_run_is_one_line_exit_1_and_keeps_what_was_stored(stored, tmp_path):
    path, url = _copy(stored, tmp_path, "full.db")
    before = stored_run("s", url)["complete"]
    result = subprocess.run(cli_command(["resume", "s", "--trials", "100000", "--no-progress", "--storage", url]),
                            check=False, capture_output=True, text=True, timeout=600,
                            preexec_fn=_file_size_limit(path.stat().st_size + 64 * 1024))
    _one_line(result, 1, "the search stopped, storage failed", "(what was stored before is kept)")
    after = stored_run("s", url)["complete"]
    assert after[:len(before)] == before and len(after) > len(before)  # it ran, then the disk filled up
    resumed = run_cli(["resume", "s", "--trials", str(len(after) + 5), "--no-progress", "--storage", url])
    assert resumed.returncode == 0, resumed.stderr
    assert stored_run("s", url)["complete"][:len(after)] == after


def test_a_full_disk_before_the_database_exists_leaves_no_file(tmp_path):
    path = tmp_path / "new.db"
    result = subprocess.run(cli_command(["search", "--agent", "random", "--trials", "5", "--name", "n", "--no-progress",
                                         "--storage", f"sqlite:///{path}"]), check=False, capture_output=True,
                            text=True, timeout=600, preexec_fn=_file_size_limit(1024),
                            env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
    line = _one_line(result, 2, f"cannot use sqlite:///{path}")
    assert "rollback" not in line  # the write that failed is named (it said "cannot rollback - no transaction")
    assert sorted(os.listdir(tmp_path)) == []  # (an empty new.db was left, which ls then called "an empty file")
    (tmp_path / "real").mkdir()  # through a link to a file not made yet: the link stays, no empty file is made
    (tmp_path / "link.db").symlink_to(tmp_path / "real" / "target.db")
    result = subprocess.run(cli_command(["search", "--agent", "random", "--trials", "5", "--name", "n", "--no-progress",
                                         "--storage", f"sqlite:///{tmp_path / 'link.db'}"]), check=False,
                            capture_output=True, text=True, timeout=600, preexec_fn=_file_size_limit(1024),
                            env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
    assert result.returncode == 2 and (tmp_path / "link.db").is_symlink() and os.listdir(tmp_path / "real") == []


def test_a_read_only_database_file_is_one_line(stored, tmp_path):
    path, url = _copy(stored, tmp_path, "read-only.db")
    with read_only_file(path):
        _one_line(run_cli(["resume", "s", "--trials", "40", "--no-progress", "--storage", url]), 1,
                  "attempt to write a readonly database")
        assert run_cli(["show", "s", "--storage", url]).returncode == 0  # reading still works
    assert len(stored_run("s", url)["complete"]) == 30


def test_a_database_deleted_mid_run_stops_the_run_with_an_error(tmp_path):
    path = tmp_path / "deleted.db"
    run = subprocess.Popen(cli_command(["search", "--space", "toy", "--evaluator", "slow_toy", "--eval-option",
                                        "delay=0.05", "--agent", "random", "--trials", "2000", "--name", "d",
                                        "--no-progress", "--storage", f"sqlite:///{path}"]),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while _stored_trials(path, "d") < 5:
        assert time.monotonic() < deadline and run.poll() is None, "the search did not start"
        time.sleep(0.5)
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    out, err = run.communicate(timeout=300)
    result = subprocess.CompletedProcess(run.args, run.returncode, out, err)
    _one_line(result, 1, f"the database file {path} was deleted or replaced")
    assert "trials finished" not in out


def _stored_trials(path: Path, name: str) -> int:
    try:
        return len(stored_run(name, f"sqlite:///{path}")["states"]) if path.exists() else 0
    except StorageError:  # not created yet
        return 0


# --------------------------------------------------------------- the same limits everywhere
def test_seed_and_name_limits_are_the_same_on_every_backend(any_url):
    def study(**options):
        return create_study(space=TOY.space, agent="random", evaluator=TOY, storage=any_url, **options)

    study(name="n" * 255, seed=SEED_MAX).optimize(1)
    for options, message in [({"name": "n" * 256}, "at most 255 characters"),
                             ({"name": "nul\x00name"}, "must be printable"),
                             ({"name": "x", "seed": SEED_MAX + 1}, f"between 0 and {SEED_MAX}"),
                             ({"name": "x", "seed": 3_000_000_000}, f"between 0 and {SEED_MAX}")]:
        with pytest.raises(ConfigError, match=message):
            study(**options)
    result = run_cli(["search", "--agent", "random", "--trials", "1", "--seed", "3000000000", "--no-progress",
                      "--storage", any_url])
    _one_line(result, 2, f"seed must be between 0 and {SEED_MAX}")
    assert [s for s in _names(any_url) if s != "n" * 255] == []


def _names(url: str) -> list[str]:
    from rlnas.store import open_store

    store = open_store(url, create=False)
    try:
        return [r.name for r in store.list_studies()]
    finally:
        store.close()


if sys.platform != "linux":  # pragma: no cover
    pytestmark = pytest.mark.skip(reason="the storage faults are simulated with Linux facilities")
