"""The SQLAlchemy store on a real PostgreSQL server started by the tests themselves.

One throwaway server per test session (see :mod:`rlnas.testing.postgres`); every test gets a
database of its own. Skipped, with the reason, where the server binaries or psycopg are missing.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import textwrap
import threading
from pathlib import Path

import pytest

from rlnas import create_study, load_study
from rlnas.errors import StorageError
from rlnas.store import open_store
from rlnas.testing.postgres import fresh_database
from rlnas.testing.store_contract import check_store_contract, sample_record
from rlnas.testing.toy import ToyEvaluator, per_trial_agents
from rlnas.trial import TrialState

ROOT = Path(__file__).resolve().parents[1]
TOY = ToyEvaluator(decisions=4, choices=5)


def history(study):
    return [(t.slot, t.key, t.reward) for t in study.completed_trials]


def new_study(storage, agent="random", seed=0, name="s", checkpoint_every=7):
    return create_study(space=TOY.space, agent=agent, evaluator=TOY, seed=seed, name=name,
                        storage=storage, checkpoint_every=checkpoint_every)


def test_store_contract_on_postgres(pg_url):
    store = open_store(pg_url)
    try:
        check_store_contract(store)
    finally:
        store.close()


def test_one_read_of_the_trials_is_one_snapshot_on_postgres(pg_url):
    from test_store import check_one_snapshot  # tests/ is on sys.path under pytest

    check_one_snapshot(pg_url)


def test_databases_are_separate_and_reopen(pg_url, postgres_server_url):
    store = open_store(pg_url)
    record = store.create_study(sample_record())
    store.add_trial(record.id, 0, "k", {"a": 1}, {"x": [1.5, None]})
    store.save_checkpoint(record.id, 3, b"\x00\xffpayload")
    store.close()
    again = open_store(pg_url, create=False)
    assert again.trials(record.id)[0].info == {"x": [1.5, None]}
    assert again.latest_checkpoint(record.id) == (3, b"\x00\xffpayload")
    again.close()
    other = fresh_database(postgres_server_url)
    with pytest.raises(StorageError, match="holds no rlnas studies"):
        open_store(other, create=False)


@pytest.mark.parametrize("agent", per_trial_agents())
def test_postgres_run_equals_memory_run(agent, pg_url):
    reference = new_study(None, agent=agent, seed=2).optimize(40)
    stored = new_study(pg_url, agent=agent, seed=2).optimize(40)
    assert history(stored) == history(reference) and len(history(stored)) == 40
    stored.store.close()


@pytest.mark.parametrize("agent", per_trial_agents())
def test_crash_and_resume_on_postgres(agent, pg_url):
    reference = new_study(None, agent=agent, seed=1).optimize(60)
    crashed = new_study(pg_url, agent=agent, seed=1)
    crashed.optimize(23)
    crashed.ask()  # left RUNNING, as if the process died during the evaluation
    crashed.close()  # the dead driver's lease is gone (SIGKILL: its pid no longer exists)
    crashed.store.close()
    resumed = load_study("s", pg_url)
    resumed.optimize(60)
    assert history(resumed) == history(reference)
    orphans = [t for t in resumed.trials if t.orphaned]
    assert len(orphans) == 1 and orphans[0].state is TrialState.FAIL and "orphaned" in orphans[0].error
    assert len(resumed.trials) == 61
    resumed.store.close()


def _add_trials(url: str, study_id: int, count: int, tag: str, numbers: list[int]) -> None:
    store = open_store(url, create=False)
    try:
        for i in range(count):
            trial = store.add_trial(study_id, i, f"{tag}{i}", {"i": i}, {"tag": tag})
            store.finish_trial(study_id, trial.number, TrialState.COMPLETE, reward=float(i), metrics={"valid_acc": i})
            numbers.append(trial.number)
    finally:
        store.close()


def _check_distinct_numbers(url: str, study_id: int, per_writer: dict[str, list[int]], count: int) -> None:
    store = open_store(url, create=False)
    stored = store.trials(study_id)
    store.close()
    total = count * len(per_writer)
    assert [t.number for t in stored] == list(range(total))
    assert all(t.state is TrialState.COMPLETE for t in stored)
    for tag, numbers in per_writer.items():
        mine = [t for t in stored if t.info["tag"] == tag]
        assert sorted(t.number for t in mine) == sorted(numbers) and len(numbers) == count
        assert [t.key for t in sorted(mine, key=lambda t: t.number)] == [f"{tag}{i}" for i in range(count)]


def test_threads_with_their_own_stores_get_distinct_numbers(pg_url):
    store = open_store(pg_url)
    study_id = store.create_study(sample_record()).id
    store.close()
    per_writer = {tag: [] for tag in ("a", "b", "c")}
    threads = [threading.Thread(target=_add_trials, args=(pg_url, study_id, 150, tag, numbers))
               for tag, numbers in per_writer.items()]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    _check_distinct_numbers(pg_url, study_id, per_writer, 150)


WRITER = textwrap.dedent("""
    import json, os, sys, time
    sys.path.insert(0, {tests!r})
    from test_postgres import _add_trials
    url, study_id, count, tag, go = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
    while not os.path.exists(go):
        time.sleep(0.005)
    numbers = []
    _add_trials(url, study_id, count, tag, numbers)
    print(json.dumps(numbers))
""")


def test_processes_get_distinct_numbers(pg_url, tmp_path):
    store = open_store(pg_url)
    study_id = store.create_study(sample_record()).id
    store.close()
    go = tmp_path / "go"
    script = WRITER.format(tests=str(Path(__file__).parent))
    procs = {tag: subprocess.Popen([sys.executable, "-c", script, pg_url, str(study_id), "200", tag, str(go)],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for tag in ("p", "q")}
    go.touch()  # both writers start together
    per_writer = {}
    for tag, proc in procs.items():
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        per_writer[tag] = json.loads(out)
    _check_distinct_numbers(pg_url, study_id, per_writer, 200)


def test_cli_search_and_ls_on_postgres(pg_url):
    rlnas = str(Path(sys.executable).parent / "rlnas")
    searched = subprocess.run([rlnas, "search", "--trials", "20", "--storage", pg_url, "--name", "pg",
                               "--no-progress"], capture_output=True, text=True, timeout=300)
    assert searched.returncode == 0, searched.stderr
    assert "Best architecture of study 'pg'" in searched.stdout
    listed = subprocess.run([rlnas, "ls", "--storage", pg_url], capture_output=True, text=True, timeout=120)
    assert listed.returncode == 0, listed.stderr
    assert "pg" in listed.stdout and "20" in listed.stdout and "127.0.0.1" in listed.stdout
    store = open_store(pg_url, create=False)
    record = store.get_study("pg")
    assert len(store.trials(record.id, [TrialState.COMPLETE])) == 20
    store.close()


def test_server_script_starts_and_stops():
    import sqlalchemy as sa

    folder = Path(tempfile.mkdtemp(prefix="rlnas-pg-script-"))
    folder.chmod(0o755)  # as `mkdir` would make it: the server user (under root) must reach it
    script = [sys.executable, str(ROOT / "scripts" / "postgres_server.py")]
    try:
        started = subprocess.run([*script, "start", str(folder)], capture_output=True, text=True, timeout=120)
        if started.returncode == 3:  # no server binaries, driver or server user here
            pytest.skip(started.stderr.strip())
        assert started.returncode == 0, started.stderr
        url = started.stdout.strip()
        assert url.startswith("postgresql+psycopg://postgres@127.0.0.1:") and url.endswith("/postgres")
        engine = sa.create_engine(url)
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT 1 + 1")).scalar() == 2
        engine.dispose()
        again = subprocess.run([*script, "url", str(folder)], capture_output=True, text=True, timeout=60)
        assert again.returncode == 0 and again.stdout.strip() == url
        stopped = subprocess.run([*script, "stop", str(folder)], capture_output=True, text=True, timeout=120)
        assert stopped.returncode == 0, stopped.stderr
        assert not (folder / "data").exists() and folder.exists()
        with pytest.raises(sa.exc.OperationalError):
            sa.create_engine(url, connect_args={"connect_timeout": 3}).connect()
    finally:
        subprocess.run([*script, "stop", str(folder)], capture_output=True, timeout=120)
        shutil.rmtree(folder, ignore_errors=True)


def test_a_server_restarted_while_a_trial_runs_is_reconnected_to(monkeypatch, postgres_server_url):
    """The store's kept connections died with the restart: the finished trial's result could not be stored,
    the search stopped ('the connection is lost') and the trial was stored orphaned."""
    import os

    from rlnas.testing.postgres import PostgresServer

    folder = tempfile.mkdtemp(prefix="rlnas-pg-")  # a server of its own: the session's serves other tests
    os.chmod(folder, 0o711)
    server = PostgresServer(folder)
    url = server.start()

    class RestartsTheServer:
        calls = 0

        def evaluate(self, candidate, *, budget=None, seed=None):
            RestartsTheServer.calls += 1
            if RestartsTheServer.calls == 3:
                server.stop(remove=False)
                server.start()  # on the same port
            return TOY.evaluate(candidate, budget=budget, seed=seed)

    try:
        study = create_study(space=TOY.space, agent="random", evaluator=RestartsTheServer(), seed=0, storage=url,
                             name="r")
        monkeypatch.setattr("rlnas.store.sql.PING_AFTER_SECONDS", 0.0, raising=False)  # every use checks
        study.optimize(6)
        assert [t.state for t in load_study("r", url).trials] == [TrialState.COMPLETE] * 6
    finally:
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)
