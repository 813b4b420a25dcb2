"""The database engine and its sessions: SQLite in WAL mode by default, PostgreSQL by URL."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

from shim.store import migrate

DATABASE_FILE = "cloudbackup.db"
# How long a SQLite writer waits for another's write lock before "database is locked".
BUSY_TIMEOUT_SECONDS = 10


def default_url(data_dir: Path) -> str:
    """The SQLite database in the data directory."""
    return f"sqlite:///{(data_dir / DATABASE_FILE).resolve()}"


def _set_wal(cursor: Any) -> None:
    """Put the database in WAL mode (a no-op once it is; the mode is kept in the file).

    Switching a new database's mode needs its exclusive lock, and SQLite answers "database is locked" at
    once, without its busy timeout, while another connection holds a write lock: replicas starting at once
    on a new file meet that, so the switch is tried again until the busy timeout would have passed.
    """
    deadline = time.monotonic() + BUSY_TIMEOUT_SECONDS
    delay = 0.005
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() >= deadline:
                raise
        time.sleep(delay)
        delay = min(delay * 2, 0.2)


def _configure_sqlite(engine: Engine) -> None:
    # pysqlite's own transaction handling starts transactions lazily and cannot take the write lock
    # up front; with it off, every transaction is begun here: writers with BEGIN IMMEDIATE so that two
    # writers queue on the busy timeout instead of failing when one upgrades a read lock.
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        _set_wal(cursor)
        # NORMAL in WAL mode survives a crash of the process (kill -9); only a power loss can lose
        # the last commits.
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_SECONDS * 1000}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        options = conn.get_execution_options()
        if options.get("cloudbackup_statements", False):
            # Store.statements(): each statement reads a consistent snapshot on its own (SQLite's
            # autocommit), so there is no BEGIN, and closing has no ROLLBACK to send either.
            return
        conn.exec_driver_sql("BEGIN IMMEDIATE" if options.get("cloudbackup_write", False) else "BEGIN")


class Store:
    """The engine plus two kinds of session: reads, and writes that commit on success."""

    def __init__(self, url: str, *, pool_size: int = 10) -> None:
        self.url = url
        kwargs: dict[str, Any] = {}
        if url.startswith("sqlite"):
            kwargs["connect_args"] = {"check_same_thread": False, "timeout": BUSY_TIMEOUT_SECONDS}
        if not url.endswith(":memory:"):
            kwargs.update(pool_size=pool_size, max_overflow=2 * pool_size, pool_pre_ping=False)
        self.engine = create_engine(url, **kwargs)
        self.is_sqlite = self.engine.dialect.name == "sqlite"
        if self.is_sqlite:
            _configure_sqlite(self.engine)
        else:
            # A batch of rows is one multi-row INSERT (pages of 1,000), not one statement per row: fewer
            # round trips, and the snapshot count trigger then runs once per batch and takes its counters
            # in cluster order, which keeps two replicas' batches from deadlocking (revision 0003).
            self.engine.dialect.use_insertmanyvalues_wo_returning = True
        # PostgreSQL: autocommit, so that a one-statement read sends no BEGIN and no ROLLBACK either.
        self._statements = self.engine.execution_options(
            **({"cloudbackup_statements": True} if self.is_sqlite else {"isolation_level": "AUTOCOMMIT"})
        )
        self._reader = sessionmaker(self.engine, expire_on_commit=False, autoflush=False)
        self._writer = sessionmaker(
            self.engine.execution_options(cloudbackup_write=True), expire_on_commit=False, autoflush=False
        )

    def migrate(self) -> migrate.SchemaState:
        """Create the tables or bring them to the head revision (Alembic, under a lock)."""
        return migrate.upgrade(self)

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A session for reading; it never commits. Objects read stay usable after the block (closing,
        unlike a rollback, does not expire them)."""
        with self._reader() as session:
            yield session

    @contextmanager
    def connect(self) -> Iterator[Connection]:
        """A plain connection for the hot read paths: Core queries, no ORM bookkeeping."""
        with self.engine.connect() as conn:
            yield conn

    @contextmanager
    def statements(self) -> Iterator[Connection]:
        """A plain connection for statements that stand alone (each its own transaction): hot reads, and a
        one-row write that needs no other.

        For the hottest reads (an idle tick, a page of snapshots): on SQLite a BEGIN and a ROLLBACK per
        use cost as much as the query itself. Statements run through it see no common snapshot.
        """
        with self._statements.connect() as conn:
            yield conn

    @contextmanager
    def write(self) -> Iterator[Session]:
        """One transaction: committed when the block ends, rolled back when it raises."""
        with self._writer() as session, session.begin():
            yield session

    def close(self) -> None:
        self.engine.dispose()
