"""SQLAlchemy store: SQLite by default, any SQLAlchemy URL (e.g. PostgreSQL) accepted.

Values are JSON text and floats; checkpoints are bytes. Every write is one transaction, so
a process killed between two statements leaves the database consistent.
"""
from __future__ import annotations

import functools
import json
import math
import os
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.schema import CreateIndex, CreateTable

from rlnas.errors import DamagedStudy, DuplicateStudy, StorageError, StudyNotFound
from rlnas.files import OPENED_SQLITE_FILES
from rlnas.store.base import Lease, Store, StudyRecord, encode_json, utcnow
from rlnas.trial import Trial, TrialState

SCHEMA_VERSION = 2
"""1: the first schema. 2: studies.reuse_repeats, trials.repeat_of, the leases table."""

metadata = sa.MetaData()

schema_version = sa.Table(
    "rlnas_schema_version", metadata,
    sa.Column("version", sa.Integer, primary_key=True),
)
studies = sa.Table(
    "rlnas_studies", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(255), nullable=False, unique=True),
    sa.Column("space_name", sa.String(255), nullable=False),
    sa.Column("space_json", sa.Text, nullable=False),
    sa.Column("fingerprint", sa.String(64), nullable=False),
    sa.Column("agent", sa.String(255), nullable=False),
    sa.Column("agent_config", sa.Text, nullable=False),
    sa.Column("evaluator", sa.Text, nullable=False),
    sa.Column("reward", sa.String(255), nullable=False),
    sa.Column("seed", sa.Integer, nullable=False),
    sa.Column("settings", sa.Text, nullable=False),
    sa.Column("version", sa.String(64), nullable=False),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("reuse_repeats", sa.Boolean, nullable=False, server_default=sa.false()),
)
trials = sa.Table(
    "rlnas_trials", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("study_id", sa.Integer, sa.ForeignKey("rlnas_studies.id", ondelete="CASCADE"), nullable=False),
    sa.Column("number", sa.Integer, nullable=False),
    sa.Column("slot", sa.Integer, nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("key", sa.Text, nullable=False),
    sa.Column("candidate", sa.Text, nullable=False),
    sa.Column("info", sa.Text, nullable=False),
    sa.Column("eval_info", sa.Text, nullable=True),
    sa.Column("reward", sa.Float, nullable=True),
    sa.Column("cost_seconds", sa.Float, nullable=False, server_default=sa.text("0")),
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("orphaned", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("started_at", sa.DateTime, nullable=False),
    sa.Column("finished_at", sa.DateTime, nullable=True),
    sa.Column("repeat_of", sa.Integer, nullable=True),
    sa.UniqueConstraint("study_id", "number", name="uq_trial_number"),
)
trial_metrics = sa.Table(
    "rlnas_trial_metrics", metadata,
    sa.Column("trial_id", sa.Integer, sa.ForeignKey("rlnas_trials.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("name", sa.String(255), primary_key=True),
    sa.Column("value", sa.Float, nullable=True),
    sqlite_with_rowid=False,  # one b-tree keyed by (trial_id, name) instead of a table and an index
)
checkpoints = sa.Table(
    "rlnas_checkpoints", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("study_id", sa.Integer, sa.ForeignKey("rlnas_studies.id", ondelete="CASCADE"), nullable=False,
              index=True),
    sa.Column("slot", sa.Integer, nullable=False),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("payload", sa.LargeBinary, nullable=False),
)
diagnostics = sa.Table(
    "rlnas_diagnostics", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("study_id", sa.Integer, sa.ForeignKey("rlnas_studies.id", ondelete="CASCADE"), nullable=False,
              index=True),
    sa.Column("slot", sa.Integer, nullable=False),
    sa.Column("values", sa.Text, nullable=False),
)

leases = sa.Table(
    "rlnas_leases", metadata,
    sa.Column("study_id", sa.Integer, sa.ForeignKey("rlnas_studies.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("holder", sa.String(255), nullable=False),
    sa.Column("host", sa.String(255), nullable=False),
    sa.Column("pid", sa.Integer, nullable=False),
    sa.Column("acquired_at", sa.DateTime, nullable=False),
    sa.Column("renewed_at", sa.DateTime, nullable=False),
)

KEEP_CHECKPOINTS = 3
"""Older checkpoints of a study are deleted once this many newer ones exist."""


_dumps = encode_json  # one encoder: hot path


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # The busy timeout first: switching a fresh file to WAL needs its lock too, and several
    # processes may open the same new file at once.
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")  # readers never block the writer; durable on process kill
    cursor.execute("PRAGMA synchronous=NORMAL")
    # Checkpoint the WAL into the database (and fsync) every ~40 MB instead of every ~4 MB: the
    # fsyncs, not the writes, are what a stream of small transactions waits for.
    cursor.execute("PRAGMA wal_autocheckpoint=10000")
    cursor.close()


class SQLStore(Store):
    """A :class:`Store` on any SQLAlchemy engine (see :func:`rlnas.store.open_store`)."""

    def __init__(self, engine: Engine, *, create: bool = True, url: str | None = None):
        self.engine = engine
        self.url = url or engine.url.render_as_string(hide_password=True)
        """The URL messages name (``url`` where given: the one the user gave)."""
        if engine.dialect.name == "sqlite":
            event.listen(engine, "connect", _sqlite_pragmas)
        self._lock = threading.RLock()
        self._last_used = time.monotonic()  # of the kept connections (see _revive)
        self._conn: sa.Connection | None = None
        self._raw: Any = None  # DBAPI connection for the hot path, taken from the engine's pool
        self._cursor: Any = None  # its one cursor
        self._file = _sqlite_file(engine)
        self.read_only = engine.dialect.name == "sqlite" and engine.url.query.get("immutable") == "1"
        """Opened for reading only: a SQLite file in a folder this process cannot write to."""
        self._identity: tuple[int, int] | None = None  # of the file, once the schema is there
        self._check_schema(create)
        self._identity = _identity(self._file) if self._file else None
        self._counted = self._identity  # in OPENED_SQLITE_FILES until close()
        if self._counted is not None:
            OPENED_SQLITE_FILES[self._counted] += 1
        self._next_number: dict[int, int] = {}
        self._lock_numbers = engine.dialect.name == "postgresql"
        self._shared: set[int] = set()  # studies another writer has added trials to since we cached a number
        self._running: dict[tuple[int, int], tuple[int, Trial]] = {}  # trials this process started
        dialect = engine.dialect
        self._insert_trial = _Prepared(_INSERT_TRIAL, dialect, _TRIAL_COLUMNS)
        self._finish_trial = _Prepared(_FINISH_TRIAL, dialect)
        self._insert_metric = _Prepared(_INSERT_METRIC, dialect, ["trial_id", "name", "value"])
        self._insert_checkpoint = _Prepared(checkpoints.insert(), dialect,
                                            ["study_id", "slot", "created_at", "payload"])
        self._max_number = _Prepared(_MAX_NUMBER, dialect)
        self._delete_checkpoint = _Prepared(checkpoints.delete().where(checkpoints.c.id == sa.bindparam("cid")),
                                            dialect)
        self._insert_diagnostics = _Prepared(diagnostics.insert(), dialect, ["study_id", "slot", "values"])
        self._queued_diagnostics: list[dict[str, Any]] = []  # written by the next _write (one commit less a trial)
        self._checkpoint_ids: dict[int, list[int]] = {}  # per study, oldest first

    @contextmanager
    def _transaction(self) -> Iterator[sa.Connection]:
        """One transaction on the store's own connection (kept open: checkouts cost more than writes)."""
        with self._lock:
            self._check_file()
            self._revive()
            if self._conn is None or self._conn.closed or self._conn.invalidated:
                self._conn = self.engine.connect()
            with self._conn.begin():
                yield self._conn
            self._last_used = time.monotonic()

    @contextmanager
    def _write(self) -> Iterator[Any]:
        """One transaction on the cursor of the store's own write connection (see :class:`_Prepared`)."""
        with self._lock:
            self._check_file()
            self._revive()
            if self._raw is None:
                self._raw = self.engine.raw_connection()
                self._cursor = self._raw.cursor()
            queued = len(self._queued_diagnostics)
            try:
                yield self._cursor
                if queued:
                    self._insert_diagnostics.executemany(self._cursor, self._queued_diagnostics[:queued])
                self._raw.commit()
            except BaseException:
                self._raw.rollback()
                raise
            del self._queued_diagnostics[:queued]
            self._last_used = time.monotonic()

    def _revive(self) -> None:
        """On PostgreSQL, replace the store's kept connections that the server dropped (restarted while a trial
        ran): after a pause of :data:`PING_AFTER_SECONDS`, one round trip each before they are used. A write that
        fails mid-way is still an error (whether the server had committed it cannot be known)."""
        if self.engine.dialect.name != "postgresql" or time.monotonic() - self._last_used < PING_AFTER_SECONDS:
            return
        if self._raw is not None and not _responds(self._raw.driver_connection, self.engine):
            _discard(self._raw)
            self._raw = self._cursor = None
        if self._conn is not None and not (self._conn.closed or self._conn.invalidated):
            if not _responds(self._conn.connection.driver_connection, self.engine):
                _discard(self._conn)
                self._conn = None

    def __repr__(self) -> str:
        return f"SQLStore({self.url!r})"

    def _check_file(self) -> None:
        """On a SQLite file: refuse to go on once the file was deleted or replaced (writes would go
        to a file no one can open again, and the run would seem to succeed)."""
        if self._identity is not None and _identity(self._file) != self._identity:  # type: ignore[arg-type]
            self._merge_wal()
            raise StorageError(f"the database file {self._file} was deleted or replaced while this process was "
                               "using it: nothing more can be stored there")

    def _merge_wal(self) -> None:
        """Write what this process committed into the database file it opened, wherever that file is now: a
        file moved away (``mv runs.db archive.db``) would otherwise lack the trials still in the -wal file,
        which stays under the old name and goes with the next database made there."""
        connection = self._raw.driver_connection if self._raw is not None else None
        try:
            if connection is not None:
                connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except self.engine.dialect.dbapi.Error:  # best effort: the error that follows says what happened
            pass

    # ---------------------------------------------------------------- schema
    def _check_schema(self, create: bool) -> None:
        """Create the tables in an empty database, or check (and migrate) an existing one.

        Processes opening one fresh database at once take turns: on SQLite the check runs in a
        ``BEGIN IMMEDIATE`` transaction (whose DDL, unlike the driver's default, is not
        autocommitted statement by statement), on PostgreSQL under an advisory lock.
        """
        if self.engine.dialect.name == "sqlite" and create:
            try:
                self._create_sqlite_schema_patiently()
            except self.engine.dialect.dbapi.Error as exc:
                raise StorageError(f"cannot use {self.url}: {_reason(exc)}") from None
        with self._transaction() as conn:
            if self.engine.dialect.name == "postgresql":
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(:space, 0)"), {"space": _NUMBER_LOCK_SPACE + 1})
            names = set(sa.inspect(conn).get_table_names())
            if schema_version.name not in names:
                if not create:
                    raise StorageError(f"{self.url} holds no rlnas studies")
                metadata.create_all(conn)
                conn.execute(schema_version.insert().values(version=SCHEMA_VERSION))
                return
            found = conn.execute(sa.select(schema_version.c.version)).scalar()
            if found == 1:
                try:
                    _migrate_1_to_2(conn)
                except sa.exc.OperationalError as exc:
                    if "readonly" not in str(exc):
                        raise
                    raise StorageError(f"{self.url} has rlnas schema version 1, which this rlnas upgrades in place "
                                       f"to version {SCHEMA_VERSION}, and it cannot write there (a read-only file "
                                       "or folder): copy the database to a writable folder") from None
                found = SCHEMA_VERSION
            if found != SCHEMA_VERSION:
                raise StorageError(f"{self.url} has rlnas schema version {found}; "
                                   f"this rlnas reads version {SCHEMA_VERSION}")

    def _create_sqlite_schema_patiently(self, patience: float = 30.0) -> None:
        """:meth:`_create_sqlite_schema`, tried again while SQLite answers "database is locked".

        Processes opening one new file at once race for its first locks (the switch to WAL, the
        first write); SQLite can answer some of those at once instead of waiting out the busy
        timeout. The creation is idempotent, so trying again is safe.
        """
        deadline, pause = time.monotonic() + patience, 0.02
        while True:
            try:
                self._create_sqlite_schema()
                return
            except self.engine.dialect.dbapi.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() + pause > deadline:
                    raise
                time.sleep(pause)
                pause = min(2 * pause, 1.0)

    def _create_sqlite_schema(self) -> None:
        """On SQLite: create every table and the version row in one write transaction, if missing."""
        raw = self.engine.raw_connection()
        driver = raw.driver_connection
        previous = driver.isolation_level
        driver.isolation_level = None  # this connection issues its own BEGIN / COMMIT
        try:
            driver.execute("BEGIN IMMEDIATE")  # the write lock first: a second creator waits here
            try:
                found = driver.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND name = ?",
                                       (schema_version.name,)).fetchone()
                if found is None:
                    for table in metadata.sorted_tables:
                        driver.execute(str(CreateTable(table).compile(dialect=self.engine.dialect)))
                        for index in table.indexes:
                            driver.execute(str(CreateIndex(index).compile(dialect=self.engine.dialect)))
                    driver.execute(f"INSERT INTO {schema_version.name} (version) VALUES (?)", (SCHEMA_VERSION,))
                driver.execute("COMMIT")
            except BaseException:
                if driver.in_transaction:  # (a failed COMMIT, e.g. on a full disk, has rolled back already)
                    driver.execute("ROLLBACK")
                raise
        finally:
            driver.isolation_level = previous
            raw.close()

    # --------------------------------------------------------------- studies
    def _study(self, row: Any) -> StudyRecord:
        try:
            record = StudyRecord(
                id=row.id, name=row.name, space_name=row.space_name, space_json=json.loads(row.space_json),
                fingerprint=row.fingerprint, agent=row.agent, agent_config=json.loads(row.agent_config),
                evaluator=json.loads(row.evaluator), reward=_load_reward(row.reward), seed=row.seed,
                settings=json.loads(row.settings), version=row.version, created_at=row.created_at,
                reuse_repeats=bool(row.reuse_repeats),
            )
        except json.JSONDecodeError as exc:
            raise self._damaged(row.name, row.id, f"not JSON: {exc}") from None
        except (ValueError, TypeError, AttributeError) as exc:  # a value of the wrong kind (e.g. a number)
            raise self._damaged(row.name, row.id, f"not readable: {exc}") from None
        values = {"space": record.space_json, "agent options": record.agent_config,
                  "evaluator": record.evaluator, "settings": record.settings}
        for what, value in values.items():
            if not isinstance(value, dict):
                raise self._damaged(row.name, row.id, f"its {what} are not a JSON object")
        return record

    def _damaged(self, name: str, study_id: int, why: str) -> DamagedStudy:
        """The error of a study whose definition cannot be read: it names the study (the database's other
        studies are not at fault) and the way to delete it."""
        return DamagedStudy(f"{self.url}: the stored definition of study {name!r} is damaged ({why}); "
                            f"`rlnas rm` can still delete it", name, study_id)

    def create_study(self, record: StudyRecord) -> StudyRecord:
        values = dict(
            name=record.name, space_name=record.space_name, space_json=_dumps(record.space_json),
            fingerprint=record.fingerprint, agent=record.agent, agent_config=_dumps(record.agent_config),
            evaluator=_dumps(record.evaluator), reward=_dump_reward(record.reward), seed=record.seed,
            settings=_dumps(record.settings), version=record.version, created_at=record.created_at or utcnow(),
            reuse_repeats=bool(record.reuse_repeats),
        )
        try:
            with self._transaction() as conn:
                conn.execute(studies.insert().values(**values))
        except IntegrityError:
            raise DuplicateStudy(f"a study named {record.name!r} already exists in {self.url}") from None
        return self.get_study(record.name)

    def get_study(self, name: str) -> StudyRecord:
        with self._transaction() as conn:
            try:
                row = conn.execute(sa.select(studies).where(studies.c.name == name)).first()
            except (ValueError, TypeError) as exc:  # a column the driver converts while fetching (a date)
                study_id = conn.execute(sa.select(studies.c.id).where(studies.c.name == name)).scalar()
                raise self._damaged(name, study_id, f"not readable: {exc}") from None
        if row is None:
            raise StudyNotFound(f"no study named {name!r} in {self.url}")
        return self._study(row)

    def list_studies(self) -> list[StudyRecord]:
        with self._transaction() as conn:
            return [self._study(r) for r in conn.execute(sa.select(studies).order_by(studies.c.id))]

    def study_names(self) -> list[str]:
        with self._transaction() as conn:
            return list(conn.execute(sa.select(studies.c.name).order_by(studies.c.id)).scalars())

    def update_settings(self, study_id: int, settings: Mapping[str, Any]) -> None:
        with self._transaction() as conn:
            conn.execute(studies.update().where(studies.c.id == study_id).values(settings=_dumps(dict(settings))))

    def delete_study(self, name: str) -> None:
        self.flush()  # queued rows of this study must not outlive it
        with self._transaction() as conn:  # by id alone: a study whose definition is damaged can be deleted too
            study_id = conn.execute(sa.select(studies.c.id).where(studies.c.name == name)).scalar()
            if study_id is None:
                raise StudyNotFound(f"no study named {name!r} in {self.url}")
            trial_ids = sa.select(trials.c.id).where(trials.c.study_id == study_id).scalar_subquery()
            conn.execute(trial_metrics.delete().where(trial_metrics.c.trial_id.in_(trial_ids)))
            for table in (trials, checkpoints, diagnostics, leases):
                conn.execute(table.delete().where(table.c.study_id == study_id))
            conn.execute(studies.delete().where(studies.c.id == study_id))

    def rename_study(self, name: str, new_name: str) -> None:
        record = self.get_study(name)
        try:
            with self._transaction() as conn:
                conn.execute(studies.update().where(studies.c.id == record.id).values(name=new_name))
        except IntegrityError:
            raise DuplicateStudy(f"a study named {new_name!r} already exists in {self.url}") from None

    # ---------------------------------------------------------------- trials
    def add_trial(self, study_id: int, slot: int, key: str, candidate: Mapping[str, Any],
                  info: Mapping[str, Any], *, repeat_of: int | None = None) -> Trial:
        started = utcnow()
        params = dict(study_id=study_id, slot=slot, state=TrialState.RUNNING.value, key=key,
                      candidate=_dumps(dict(candidate)), info=_dumps(dict(info)), started_at=started,
                      repeat_of=repeat_of)
        for _attempt in range(5):
            try:
                with self._write() as cursor:
                    if self._lock_numbers:
                        # Writers of one study take turns: without this a writer that lost the race for a
                        # number can keep losing to one whose next number is cached, and run out of attempts.
                        cursor.execute(_NUMBER_LOCK, (_NUMBER_LOCK_SPACE, study_id))
                    number = self._next_number.get(study_id)
                    if number is None:
                        found = self._max_number.execute(cursor, {"sid": study_id}).fetchone()[0]
                        number = 0 if found is None else found + 1
                    inserted = self._insert_trial.execute(cursor, params | {"number": number})
                    row_id = self._insert_trial.inserted_id(inserted)
            except (IntegrityError, self.engine.dialect.dbapi.IntegrityError) as exc:
                if not self._number_taken(study_id, number):  # some other constraint: not a race
                    raise StorageError(f"cannot add a trial to {self.url}: {exc}") from None
                self._next_number.pop(study_id, None)
                self._shared.add(study_id)  # other writers: from now on read the number instead of caching it
                continue
            if study_id not in self._shared:
                self._next_number[study_id] = number + 1
            trial = Trial(number=number, slot=slot, state=TrialState.RUNNING, key=key, candidate=dict(candidate),
                          info=dict(info), started_at=started, repeat_of=repeat_of)
            self._running[(study_id, number)] = (row_id, trial)
            return trial
        raise StorageError(f"could not allocate a trial number in {self.url}")

    def _number_taken(self, study_id: int, number: int) -> bool:
        with self._transaction() as conn:
            return conn.execute(_SELECT_TRIAL, {"sid": study_id, "num": number}).first() is not None

    def finish_trial(self, study_id: int, number: int, state: TrialState, *, reward: float | None = None,
                     metrics: Mapping[str, float] | None = None, cost_seconds: float = 0.0,
                     error: str | None = None, eval_info: Mapping[str, Any] | None = None) -> Trial:
        values = {k: float(v) for k, v in (metrics or {}).items()}
        cached = self._running.pop((study_id, number), None)
        if cached is None:
            with self._transaction() as conn:
                row = conn.execute(_SELECT_TRIAL, {"sid": study_id, "num": number}).first()
            if row is None:
                raise StorageError(f"study {study_id} has no trial {number}")
            cached = (row.id, self._trial(row, {}))
        row_id, running = cached
        with self._write() as cursor:
            finished = utcnow()
            updated = self._finish_trial.execute(cursor, {
                "tid": row_id, "new_state": state.value, "reward": reward, "cost": float(cost_seconds),
                "error": error, "eval_info": _dumps(dict(eval_info or {})), "finished_at": finished,
            }).rowcount
            if updated != 1:
                raise StorageError(f"trial {number} of study {study_id} is not RUNNING any more")
            if values:
                self._insert_metric.executemany_plain(cursor, [(row_id, k, v) for k, v in values.items()])
        return replace(running, state=state, reward=reward, metrics=values, cost_seconds=float(cost_seconds),
                       error=error, eval_info=dict(eval_info or {}), finished_at=finished)

    def fail_orphans(self, study_id: int, reason: str, numbers: Iterable[int] | None = None) -> list[int]:
        with self._transaction() as conn:
            running = trials.c.state == TrialState.RUNNING.value
            if numbers is not None:
                running = sa.and_(running, trials.c.number.in_(list(numbers)))
            numbers = [r.number for r in conn.execute(
                sa.select(trials.c.number).where(trials.c.study_id == study_id, running).order_by(trials.c.number))]
            conn.execute(trials.update().where(trials.c.study_id == study_id, running).values(
                state=TrialState.FAIL.value, error=reason, orphaned=True, finished_at=utcnow()))
        return numbers

    @staticmethod
    def _trial(row: Any, values: dict[str, float]) -> Trial:
        return Trial(
            number=row.number, slot=row.slot, state=TrialState(row.state), key=row.key,
            candidate=json.loads(row.candidate), info=json.loads(row.info), reward=row.reward,
            metrics=values, cost_seconds=row.cost_seconds, error=row.error,
            eval_info=json.loads(row.eval_info) if row.eval_info else {}, orphaned=bool(row.orphaned),
            started_at=row.started_at, finished_at=row.finished_at, repeat_of=row.repeat_of,
        )

    def trials(self, study_id: int, states: Iterable[TrialState] | None = None) -> list[Trial]:
        query = sa.select(trials).where(trials.c.study_id == study_id).order_by(trials.c.number)
        if states is not None:
            query = query.where(trials.c.state.in_([s.value for s in states]))
        with self._transaction() as conn:
            self._one_snapshot(conn)
            rows = conn.execute(query).all()
            by_trial: dict[int, dict[str, float]] = {}
            joined = sa.select(trial_metrics.c.trial_id, trial_metrics.c.name, trial_metrics.c.value).join(
                trials, trials.c.id == trial_metrics.c.trial_id).where(trials.c.study_id == study_id)
            for r in conn.execute(joined):  # SQLite stores a NaN as NULL: every stored metric is a float
                by_trial.setdefault(r.trial_id, {})[r.name] = math.nan if r.value is None else r.value
        return [self._trial(r, by_trial.get(r.id, {})) for r in rows]

    def _one_snapshot(self, conn: sa.Connection) -> None:
        """Make the reads of this transaction see one state of the database (a trial finished by another
        process between two of them would come back RUNNING with its metrics): SQLite reads in a transaction
        only once one is begun (its driver begins one before writes only); PostgreSQL's statements see each
        its own snapshot unless the transaction is REPEATABLE READ."""
        if self.engine.dialect.name == "sqlite":
            conn.exec_driver_sql("BEGIN")
        elif self.engine.dialect.name == "postgresql":
            conn.exec_driver_sql("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")

    # ----------------------------------------------------------- checkpoints
    def save_checkpoint(self, study_id: int, slot: int, payload: bytes) -> None:
        if study_id not in self._checkpoint_ids:
            with self._transaction() as conn:
                self._checkpoint_ids[study_id] = [r.id for r in conn.execute(
                    sa.select(checkpoints.c.id).where(checkpoints.c.study_id == study_id).order_by(checkpoints.c.id))]
        kept = list(self._checkpoint_ids[study_id])
        with self._write() as cursor:
            self._insert_checkpoint.execute(cursor, {"study_id": study_id, "slot": slot,
                                                     "created_at": utcnow(), "payload": payload})
            kept.append(self._insert_checkpoint.inserted_id(cursor))
            for old in kept[:-KEEP_CHECKPOINTS]:
                self._delete_checkpoint.execute(cursor, {"cid": old})
        self._checkpoint_ids[study_id] = kept[-KEEP_CHECKPOINTS:]  # only once the transaction committed

    def latest_checkpoint(self, study_id: int) -> tuple[int, bytes] | None:
        with self._transaction() as conn:
            row = conn.execute(sa.select(checkpoints.c.slot, checkpoints.c.payload).where(
                checkpoints.c.study_id == study_id).order_by(checkpoints.c.id.desc()).limit(1)).first()
        return None if row is None else (row.slot, bytes(row.payload))

    def checkpoints(self, study_id: int) -> list[tuple[int, bytes]]:
        with self._transaction() as conn:
            rows = conn.execute(sa.select(checkpoints.c.slot, checkpoints.c.payload).where(
                checkpoints.c.study_id == study_id).order_by(checkpoints.c.id.desc()))
            return [(r.slot, bytes(r.payload)) for r in rows]

    # ----------------------------------------------------------- diagnostics
    def log_diagnostics(self, study_id: int, slot: int, values: Mapping[str, float]) -> None:
        """Queued, and written in the transaction of the next trial write (or at :meth:`flush`)."""
        with self._lock:
            self._queued_diagnostics.append({"study_id": study_id, "slot": slot, "values": _dumps(dict(values))})

    def flush(self) -> None:
        with self._lock:
            if self._queued_diagnostics:
                with self._write():
                    pass

    def discard_queued(self, study_id: int) -> None:
        with self._lock:
            self._queued_diagnostics[:] = [d for d in self._queued_diagnostics if d["study_id"] != study_id]

    def diagnostics(self, study_id: int) -> list[tuple[int, dict[str, float]]]:
        self.flush()
        with self._transaction() as conn:
            rows = conn.execute(sa.select(diagnostics.c.slot, diagnostics.c["values"]).where(
                diagnostics.c.study_id == study_id).order_by(diagnostics.c.id))
            return [(r.slot, json.loads(r[1])) for r in rows]

    # ---------------------------------------------------------------- leases
    def get_lease(self, study_id: int) -> Lease | None:
        with self._transaction() as conn:
            row = conn.execute(sa.select(leases).where(leases.c.study_id == study_id)).first()
        return None if row is None else Lease(row.holder, row.host, row.pid, row.acquired_at, row.renewed_at)

    def insert_lease(self, study_id: int, lease: Lease) -> bool:
        try:
            with self._transaction() as conn:
                conn.execute(leases.insert().values(study_id=study_id, **_lease_values(lease)))
        except IntegrityError:
            return False
        return True

    def replace_lease(self, study_id: int, old: Lease, new: Lease) -> bool:
        with self._transaction() as conn:
            taken = conn.execute(leases.update().where(
                leases.c.study_id == study_id, leases.c.holder == old.holder, leases.c.renewed_at == old.renewed_at,
            ).values(**_lease_values(new))).rowcount
        return taken == 1

    def renew_lease(self, study_id: int, holder: str) -> bool:
        with self._transaction() as conn:
            renewed = conn.execute(leases.update().where(leases.c.study_id == study_id, leases.c.holder == holder)
                                   .values(renewed_at=utcnow())).rowcount
        return renewed == 1

    def release_lease(self, study_id: int, holder: str) -> None:
        with self._transaction() as conn:
            conn.execute(leases.delete().where(leases.c.study_id == study_id, leases.c.holder == holder))

    def close(self) -> None:
        with self._lock:
            try:
                self.flush()
            except StorageError:  # the file is gone: nothing left to write to
                self._queued_diagnostics.clear()
            if self._conn is not None:
                if _broken(self._conn):
                    _discard(self._conn)
                else:
                    self._conn.close()
                self._conn = None
            if self._raw is not None:
                if _broken(self._raw):  # closing would reset it through the lost link: a logged traceback
                    _discard(self._raw)
                else:
                    self._cursor.close()
                    self._raw.close()
                self._raw = None
        self.engine.dispose()
        if self._counted is not None:  # this store holds it no more (another store of this process may)
            OPENED_SQLITE_FILES[self._counted] -= 1
            if OPENED_SQLITE_FILES[self._counted] <= 0:
                del OPENED_SQLITE_FILES[self._counted]
            self._counted = None


def _lease_values(lease: Lease) -> dict[str, Any]:
    return {"holder": lease.holder, "host": lease.host, "pid": lease.pid, "acquired_at": lease.acquired_at,
            "renewed_at": lease.renewed_at}


def _dump_reward(reward: str | Mapping[str, Any]) -> str:
    """A metric name as is, a reward mapping as JSON (metric names never start with ``{``)."""
    return reward if isinstance(reward, str) else _dumps(dict(reward))


def _load_reward(text: str) -> str | dict[str, Any]:
    return json.loads(text) if text.startswith("{") else text


def _sqlite_file(engine: Engine) -> str | None:
    """The absolute path of a file-backed SQLite database, else ``None``."""
    database = engine.url.database if engine.dialect.name == "sqlite" else None
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return os.path.abspath(database)


PING_AFTER_SECONDS = 1.0
"""Pause after which a PostgreSQL store checks that its kept connections still reach the server."""


def _responds(driver_connection: Any, engine: Engine) -> bool:
    """Whether a DBAPI connection answers a round trip (``SELECT 1``, then rolled back: nothing is left open)."""
    try:
        cursor = driver_connection.cursor()
        cursor.execute("SELECT 1")
        cursor.close()
        driver_connection.rollback()
    except engine.dialect.dbapi.Error:
        return False
    return True


def _broken(connection: Any) -> bool:
    """Whether a pooled connection (SQLAlchemy's or a raw one from the pool) lost its server (psycopg's
    ``broken``; SQLite's never does)."""
    if isinstance(connection, sa.Connection):
        if connection.closed or connection.invalidated:
            return False
        connection = connection.connection
    return bool(getattr(connection.driver_connection, "broken", False))


def _discard(connection: Any) -> None:
    """Drop a connection whose server is gone without the pool's reset (which would log a traceback)."""
    try:
        connection.invalidate()
    except Exception:  # noqa: BLE001 - it is gone either way
        pass


def _identity(path: str) -> tuple[int, int] | None:
    """``(device, inode)`` of ``path``, ``None`` when it is gone."""
    try:
        found = os.stat(path)
    except FileNotFoundError:
        return None
    return found.st_dev, found.st_ino


def _reason(exc: BaseException) -> str:
    """The first line of a database error's own message (without SQLAlchemy's statement dump)."""
    if isinstance(exc, json.JSONDecodeError):
        return f"a stored value is damaged (not JSON: {exc})"
    orig = getattr(exc, "orig", None) or exc
    text = str(orig).strip() or type(orig).__name__
    return text.splitlines()[0]


def _reported(method: Any) -> Any:
    """Turn database errors (and undecodable stored JSON) of a store method into one-line StorageErrors."""
    @functools.wraps(method)
    def wrapper(self: SQLStore, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except StorageError:
            raise
        except (sa.exc.SQLAlchemyError, self.engine.dialect.dbapi.Error, json.JSONDecodeError) as exc:
            raise StorageError(f"{self.url}: {_reason(exc)}") from exc
    return wrapper


REPORTED = tuple(sorted({*Store.__abstractmethods__, "checkpoints", "flush"}))
"""The store methods whose database errors are one-line StorageErrors: every method of the interface."""

for _method in REPORTED:
    setattr(SQLStore, _method, _reported(getattr(SQLStore, _method)))


def _migrate_1_to_2(conn: sa.Connection) -> None:
    """Schema 1 -> 2 in place; every step can be run again, so a crash half-way is harmless."""
    inspector = sa.inspect(conn)
    if "reuse_repeats" not in {c["name"] for c in inspector.get_columns(studies.name)}:
        conn.execute(sa.text(f"ALTER TABLE {studies.name} ADD COLUMN reuse_repeats BOOLEAN NOT NULL DEFAULT FALSE"))
    if "repeat_of" not in {c["name"] for c in inspector.get_columns(trials.name)}:
        conn.execute(sa.text(f"ALTER TABLE {trials.name} ADD COLUMN repeat_of INTEGER"))
    leases.create(conn, checkfirst=True)
    conn.execute(schema_version.update().values(version=SCHEMA_VERSION))


_NUMBER_LOCK = "SELECT pg_advisory_xact_lock(%s, %s)"  # PostgreSQL only; released at commit or rollback
_NUMBER_LOCK_SPACE = 0x726C6E73  # "rlns": the first key of the lock, so other advisory-lock users do not collide
_MAX_NUMBER = sa.select(sa.func.max(trials.c.number)).where(trials.c.study_id == sa.bindparam("sid"))
_INSERT_TRIAL = trials.insert()
_SELECT_TRIAL = sa.select(trials).where(trials.c.study_id == sa.bindparam("sid"),
                                        trials.c.number == sa.bindparam("num"))
_FINISH_TRIAL = trials.update().where(
    trials.c.id == sa.bindparam("tid"), trials.c.state == TrialState.RUNNING.value
).values(
    state=sa.bindparam("new_state"), reward=sa.bindparam("reward"), cost_seconds=sa.bindparam("cost"),
    error=sa.bindparam("error"), eval_info=sa.bindparam("eval_info"), finished_at=sa.bindparam("finished_at"),
)
_INSERT_METRIC = trial_metrics.insert()
_TRIAL_COLUMNS = ["study_id", "number", "slot", "state", "key", "candidate", "info", "started_at", "repeat_of"]
"""Columns a new (RUNNING) trial sets; the others start NULL or at their server default."""


def _sqlite_datetime(value: Any) -> str | None:
    """The text SQLAlchemy's SQLite DATETIME stores (always six microsecond digits), in C speed."""
    return None if value is None else value.isoformat(" ", timespec="microseconds")


def _processor(type_: Any, dialect: Any) -> Any:
    """The bind conversion of ``type_`` on ``dialect`` (a faster equivalent for SQLite datetimes)."""
    if dialect.name == "sqlite" and isinstance(type_, sa.DateTime):
        return _sqlite_datetime
    return type_.dialect_impl(dialect).bind_processor(dialect)


class _Prepared:
    """A Core statement compiled once for one dialect and run on the DBAPI cursor.

    Starting and finishing a trial runs thousands of times a second on tabular benchmarks;
    SQLAlchemy's per-execute bookkeeping costs several times the write itself. This keeps
    SQLAlchemy's SQL, parameter style and type conversions and skips only that bookkeeping.
    """

    def __init__(self, statement: Any, dialect: Any, column_keys: list[str] | None = None):
        self.compiled = statement.compile(dialect=dialect, column_keys=column_keys)
        self.sql = self.compiled.string
        names = list(self.compiled.positiontup) if self.compiled.positional else list(self.compiled.bind_names.values())
        binds = {name: bind for bind, name in self.compiled.bind_names.items()}
        self.positional = self.compiled.positional
        # (name, value when not given, type conversion) in the order the driver wants them
        self.plan = [
            (name, None if binds[name].required else binds[name].effective_value, _processor(binds[name].type, dialect))
            for name in names
        ]
        self.returns_id = bool(self.compiled.effective_returning)

    def parameters(self, values: Mapping[str, Any]) -> Any:
        get = values.get
        row = [processor(get(name, default)) if processor else get(name, default)
               for name, default, processor in self.plan]
        return tuple(row) if self.positional else dict(zip((name for name, _, _ in self.plan), row))

    def execute(self, cursor: Any, values: Mapping[str, Any]) -> Any:
        cursor.execute(self.sql, self.parameters(values))
        return cursor

    def executemany(self, cursor: Any, rows: list[Mapping[str, Any]]) -> None:
        cursor.executemany(self.sql, [self.parameters(r) for r in rows])

    def executemany_plain(self, cursor: Any, rows: list[tuple[Any, ...]]) -> None:
        """``executemany`` for rows of plain values in column order (ints, strings, floats) that
        need no type conversion: the metrics of a trial, thousands of times a second."""
        if not self.positional:
            names = [name for name, _, _ in self.plan]
            rows = [dict(zip(names, row)) for row in rows]  # type: ignore[misc]
        cursor.executemany(self.sql, rows)

    def inserted_id(self, cursor: Any) -> int:
        """Primary key of the row the last ``execute`` of this INSERT created."""
        return cursor.fetchone()[0] if self.returns_id else cursor.lastrowid
