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
    ("nosuchdialect://x", "cannot use"),
])
def test_bad_urls_are_clear(url, message):
    with pytest.raises(StorageError, match=message):
        open_store(url)


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
