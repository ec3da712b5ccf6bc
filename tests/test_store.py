import os

import pytest

from rlnas.errors import StorageError
from rlnas.store import InMemoryStore, open_store
from rlnas.testing.store_contract import check_store_contract, sample_record


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
def test_store_contract(kind, sqlite_url):
    store = InMemoryStore() if kind == "memory" else open_store(sqlite_url)
    check_store_contract(store)


def test_sqlite_store_persists_across_connections(sqlite_url):
    store = open_store(sqlite_url)
    record = store.create_study(sample_record())
    store.add_trial(record.id, 0, "k", {"a": 1}, {"x": 1})
    store.close()
    again = open_store(sqlite_url, create=False)
    assert again.get_study("contract").agent_config == {"x": [1, 2.5, "a"]}
    assert again.trials(record.id)[0].info == {"x": 1}


@pytest.mark.parametrize("url, message", [
    ("not a url", "is not a database URL"),
    ("sqlite:////no/such/folder/x.db", "does not exist"),
    ("nosuchdialect://x", "cannot use nosuchdialect://x: unknown kind of database 'nosuchdialect'; rlnas stores in "),
    ("sqlit:///x.db", "unknown kind of database 'sqlit'"),  # each said "missing database driver"
    ("postgres://u@h/db", r"unknown kind of database 'postgres' \(postgresql://...\)"),
    ("postgresql+nodriver://u@h/db", "unknown driver 'nodriver' of postgresql"),
    ("postgresql+psycopg2://u@h/db", r"No module named 'psycopg2'; rlnas installs psycopg 3: write "
                                     r"postgresql\+psycopg://"),  # its hint was to install what is installed
    ("mysql://u@h/db", "rlnas does not store in mysql databases"),  # was "missing database driver"
    ("sqlite:///", "names no database file, so nothing would be kept"),  # sqlite:///$DB with DB unset
    ("sqlite://", "names no database file"),
    ("sqlite:///:memory:", "names no database file"),
])
def test_bad_urls_are_clear(url, message):
    with pytest.raises(StorageError, match=message):
        open_store(url)


@pytest.mark.parametrize("url, shown", [
    ("postgresql+psycopg://u@127.0.0.1:abc/r1?password=secret", "postgresql+psycopg://u@127.0.0.1:abc/r1?password=***"),
    ("postgresql+psycopg://u:secret@[::1/r1", "postgresql+psycopg://u:***@[::1/r1"),
])
def test_a_url_with_a_bad_port_or_host_is_not_a_url_and_hides_its_password(url, shown):
    with pytest.raises(StorageError, match="is not a database URL") as err:
        open_store(url)  # int('abc') used to end in a traceback
    assert shown in str(err.value) and "secret" not in str(err.value)


def test_a_password_given_as_a_url_parameter_is_never_shown():
    pytest.importorskip("psycopg")
    with pytest.raises(StorageError, match="cannot use") as err:  # nothing listens on port 1
        open_store("postgresql+psycopg://u@127.0.0.1:1/r1?sslmode=disable&password=secret", create=False)
    assert "password=***" in str(err.value) and "secret" not in str(err.value)


def test_a_sqlite_file_without_rlnas_tables_is_left_as_it_was_by_readers(tmp_path):
    import sqlite3

    path = tmp_path / "other.db"
    with sqlite3.connect(path) as db:  # someone else's database, in SQLite's default rollback-journal mode
        db.execute("CREATE TABLE x (a)")
    db.close()
    before = path.read_bytes()
    with pytest.raises(StorageError, match="holds no rlnas studies"):
        open_store(f"sqlite:///{path}", create=False)
    assert path.read_bytes() == before and sorted(os.listdir(tmp_path)) == ["other.db"]  # not switched to WAL
    with pytest.raises(StorageError, match="no database at"):
        open_store(f"sqlite:///{tmp_path}/file:x.db", create=False)  # a plain name that starts with file:
    assert sorted(os.listdir(tmp_path)) == ["other.db"]


def test_missing_file_is_not_created_by_readers(tmp_path):
    path = tmp_path / "absent.db"
    with pytest.raises(StorageError, match="no database"):
        open_store(f"sqlite:///{path}", create=False)
    assert not path.exists()


def test_non_database_file_is_left_untouched(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_bytes(b"these are my notes, not a database\n" * 20)
    before = path.read_bytes()
    with pytest.raises(StorageError, match="not a database"):
        open_store(f"sqlite:///{path}")
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["notes.txt"]


def test_foreign_schema_version_is_refused(sqlite_url):
    import sqlalchemy as sa

    open_store(sqlite_url).close()
    engine = sa.create_engine(sqlite_url)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE rlnas_schema_version SET version = 99"))
    with pytest.raises(StorageError, match="schema version 99"):
        open_store(sqlite_url)


def test_diagnostics_ride_on_the_next_trial_write_and_are_all_there_after_a_search(sqlite_url):
    from rlnas import create_study
    from rlnas.evaluators.tabular import NB201Evaluator

    writer, reader = open_store(sqlite_url), open_store(sqlite_url)
    record = writer.create_study(sample_record())
    writer.log_diagnostics(record.id, 1, {"loss": 0.5})
    assert reader.diagnostics(record.id) == []  # queued: no transaction of its own
    writer.add_trial(record.id, 0, "k", {"a": 1}, {})
    assert reader.diagnostics(record.id) == [(1, {"loss": 0.5})]  # written with the trial
    writer.log_diagnostics(record.id, 2, {"loss": 0.25})
    assert writer.diagnostics(record.id)[-1] == (2, {"loss": 0.25})  # a reader in the writing process flushes
    writer.log_diagnostics(record.id, 3, {"loss": 0.125})
    writer.close()
    assert [slot for slot, _ in reader.diagnostics(record.id)] == [1, 2, 3]

    study = create_study(space="nb201", agent="evolution", evaluator=NB201Evaluator("cifar10"), seed=0,
                         storage=sqlite_url, name="diagnosed")
    study.optimize(30)
    told = [slot for slot, _ in reader.diagnostics(study.record.id)]
    assert told and told[-1] == 30  # the last tell's diagnostics too, without closing the store


def test_deleting_a_study_with_queued_diagnostics_leaves_the_store_writable(sqlite_url):
    store = open_store(sqlite_url)
    doomed = store.create_study(sample_record())
    store.log_diagnostics(doomed.id, 1, {"loss": 0.5})
    store.delete_study(doomed.name)
    kept = store.create_study(sample_record())
    store.add_trial(kept.id, 0, "k", {"a": 1}, {})
    assert [t.key for t in store.trials(kept.id)] == ["k"] and store.diagnostics(kept.id) == []


def test_a_database_in_a_folder_that_is_not_writable_is_read_as_is(tmp_path, monkeypatch):
    import subprocess
    import sys

    import rlnas.store as stores

    url = f"sqlite:///{tmp_path / 'archive.db'}"
    subprocess.run([sys.executable, "-m", "rlnas", "search", "--space", "nb201", "--trials", "4", "--name", "done",
                    "--storage", url], check=True, capture_output=True)
    assert not (tmp_path / "archive.db-wal").exists()  # the last connection merged it
    real_access = os.access
    monkeypatch.setattr(stores.os, "access", lambda path, mode: False if str(path) == str(tmp_path) else
                        real_access(path, mode))
    store = open_store(url, create=False)  # SQLite could not make its -shm file here: immutable reading
    assert store.url == url and len(store.trials(store.get_study("done").id)) == 4
    assert sorted(os.listdir(tmp_path)) == ["archive.db"]
    with pytest.raises(StorageError, match=r"folder .* is not writable"):
        open_store(url)
    (tmp_path / "archive.db-wal").write_bytes(b"changes not merged")
    with pytest.raises(StorageError, match=r"holds changes not yet in the database"):
        open_store(url, create=False)


def test_commands_read_a_database_on_a_read_only_mount(tmp_path):
    import shutil
    import subprocess
    import sys

    if os.geteuid() != 0 or shutil.which("unshare") is None or shutil.which("mount") is None:
        pytest.skip("needs root, unshare and mount (a private read-only bind mount)")
    source, mount = tmp_path / "source", tmp_path / "mount"
    source.mkdir()
    mount.mkdir()
    rlnas = os.path.join(os.path.dirname(sys.executable), "rlnas")
    subprocess.run([rlnas, "search", "--space", "nb201", "--agent", "random", "--trials", "5", "--name", "a"],
                   cwd=source, check=True, capture_output=True)
    script = (f"mount --bind {source} {mount} && mount -o remount,bind,ro {mount} || exit 77; cd {mount}; "
              f"{rlnas} best a --json && {rlnas} search --space nb201 --trials 3 --name b; echo search $?; "
              f"{rlnas} resume a --trials 8 --no-progress; echo resume $?")
    result = subprocess.run(["unshare", "-m", "bash", "-c", script], capture_output=True, text=True)
    if result.returncode == 77:
        pytest.skip(f"no private mounts here: {result.stderr.strip()}")
    assert '"number": ' in result.stdout, result.stderr
    assert "search 2" in result.stdout and "resume 2" in result.stdout, result.stdout  # (resume said 1: a failed run)
    errors = result.stderr.strip().splitlines()
    assert errors[0].endswith(f"folder {mount} is not writable")
    assert errors[1] == ("rlnas: error: cannot resume 'a': sqlite:///rlnas.db is in a folder this process cannot "
                         "write to (it can be read, not driven)")


def _schema_1_copy(tmp_path, name):
    """A database as rlnas wrote it before schema 2 (no repeats, no leases), holding study 'old' of 3 trials."""
    import sqlite3
    import subprocess
    import sys

    path = tmp_path / name
    subprocess.run([sys.executable, "-m", "rlnas", "search", "--space", "nb201", "--trials", "3", "--name", "old",
                    "--storage", f"sqlite:///{path}"], check=True, capture_output=True)
    with sqlite3.connect(path) as db:
        db.executescript("ALTER TABLE rlnas_studies DROP COLUMN reuse_repeats; ALTER TABLE rlnas_trials DROP COLUMN "
                         "repeat_of; DROP TABLE rlnas_leases; UPDATE rlnas_schema_version SET version = 1;")
    db.close()
    return path


def test_a_schema_1_database_is_upgraded_in_place_or_says_it_cannot_be(tmp_path, monkeypatch):
    import rlnas.store as stores

    path = _schema_1_copy(tmp_path, "v1.db")
    store = open_store(f"sqlite:///{path}", create=False)
    assert len(store.trials(store.get_study("old").id)) == 3 and store.get_lease(store.get_study("old").id) is None
    store.close()
    (tmp_path / "archive").mkdir()
    path = _schema_1_copy(tmp_path / "archive", "v1.db")
    real_access = os.access
    monkeypatch.setattr(stores.os, "access", lambda p, mode: False if str(p) == str(path.parent) else
                        real_access(p, mode))  # a read-only folder: the file is read as immutable
    before = path.read_bytes()
    with pytest.raises(StorageError, match="has rlnas schema version 1, which this rlnas upgrades in place to "
                                           "version 2, and it cannot write there"):
        open_store(f"sqlite:///{path}", create=False)  # it said: attempt to write a readonly database
    assert path.read_bytes() == before


def test_a_database_moved_away_during_a_run_keeps_every_trial_committed_before(tmp_path):
    from rlnas import create_study
    from rlnas.testing.toy import ToyEvaluator

    path = tmp_path / "runs.db"
    study = create_study(space=ToyEvaluator().space, evaluator=ToyEvaluator(), name="s", storage=f"sqlite:///{path}")
    study.optimize(20)  # committed, still in runs.db-wal (a checkpoint comes every ~40 MB)
    os.rename(path, tmp_path / "archive.db")  # the -wal file keeps the old name
    with pytest.raises(StorageError, match="was deleted or replaced"):
        study.optimize(25)
    study.store.close()
    for suffix in ("-wal", "-shm"):  # what SQLite left under the old name; the next database made there drops it
        (tmp_path / f"runs.db{suffix}").unlink(missing_ok=True)
    archive = open_store(f"sqlite:///{tmp_path / 'archive.db'}", create=False)
    assert len(archive.trials(archive.get_study("s").id)) == 20


def test_one_read_of_the_trials_is_one_snapshot_while_another_process_writes(sqlite_url):
    check_one_snapshot(sqlite_url)


def check_one_snapshot(url: str) -> None:
    """The trials and their metrics were two reads: a trial finished between them came back RUNNING with metrics."""
    import sqlalchemy as sa

    from rlnas.trial import TrialState

    writer, reader = open_store(url), open_store(url)
    record = writer.create_study(sample_record())
    writer.add_trial(record.id, 0, "k", {"a": 1}, {})
    reads = []

    @sa.event.listens_for(reader.engine, "after_cursor_execute")
    def finish_between_the_reads(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().upper().startswith("SELECT") and "rlnas_trials" in statement and not reads:
            reads.append(statement)
            writer.finish_trial(record.id, 0, TrialState.COMPLETE, reward=1.0, metrics={"valid_acc": 1.0})

    (trial,) = reader.trials(record.id)
    assert reads and (trial.state, trial.metrics) == (TrialState.RUNNING, {})  # as it was when the read began
    (trial,) = reader.trials(record.id)
    assert (trial.state, trial.metrics) == (TrialState.COMPLETE, {"valid_acc": 1.0})


@pytest.mark.parametrize("written", ["t.db/", "missing/../t.db", "./t.db"])
def test_a_sqlite_path_is_one_file_for_writers_and_readers(tmp_path, monkeypatch, written):
    """SQLite opens 't.db/' and 'missing/../t.db' as ./t.db: the readers' checks (create=False) found no
    database there, so a search could not be resumed with the URL it was started with."""
    monkeypatch.chdir(tmp_path)
    record = open_store(f"sqlite:///{written}").create_study(sample_record())
    assert [name for name in os.listdir(tmp_path) if name.endswith(".db")] == ["t.db"]
    for url in (f"sqlite:///{written}", "sqlite:///t.db"):
        assert open_store(url, create=False).get_study("contract").id == record.id


def test_reopening_a_database_this_process_holds_keeps_its_locks(tmp_path, rlnas_bin):
    """open_store read a database's header with open()/close(), which drops every POSIX lock the process
    holds on the file, SQLite's too: another process that then closed its last connection deleted the
    -wal and -shm files under this one's, and the next connection here read a sound database as malformed."""
    import subprocess

    from rlnas.study import load_study

    url = f"sqlite:///{tmp_path / 'runs.db'}"
    held = []
    for name in ("a", "b", "c", "d", "e"):  # the fourth was "malformed"
        subprocess.run([rlnas_bin, "search", "--agent", "random", "--trials", "3", "--name", name, "--no-progress",
                        "--storage", url], check=True, capture_output=True)
        held.append(load_study(name, url))  # kept open, as a notebook keeps its studies
        assert len(held[-1].trials) == 3
    assert [len(study.trials) for study in held] == [3] * 5


def test_a_closed_store_lets_its_file_identity_go(tmp_path):
    """A file that got the inode of a deleted store was taken for a database for the rest of the process."""
    from rlnas.files import OPENED_SQLITE_FILES, opened_as_store

    path = tmp_path / "gone.db"
    store = open_store(f"sqlite:///{path}")
    assert opened_as_store(path)
    store.close()
    assert not opened_as_store(path) and (os.stat(path).st_dev, os.stat(path).st_ino) not in OPENED_SQLITE_FILES
