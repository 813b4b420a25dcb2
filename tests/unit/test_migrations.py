"""Alembic migrations on SQLite and PostgreSQL: `cloudbackup db`, serve's refusals, replicas migrating."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from pgserver import PostgresServer
from sqlalchemy import inspect, text

from cloudbackup import cli
from shim.app import create_app, shutdown
from shim.config import Config
from shim.store import Store, default_url, migrate
from shim.store.models import Base

TABLES = {"projects", "clusters", "volumes", "snapshots", "restore_jobs", "api_keys", "settings", "replicas"}


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_url(request: pytest.FixtureRequest, data_dir: Path) -> Iterator[str]:
    """A database with no table at all."""
    if request.param == "sqlite":
        yield default_url(data_dir)
        return
    server: PostgresServer = request.getfixturevalue("postgres")
    name = server.create_database(migrated=False)
    yield server.url(name)
    server.drop_database(name)


def set_revision(url: str, revision: str) -> None:
    store = Store(url, pool_size=1)
    with store.engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = :r"), {"r": revision})
    store.close()


def test_db_upgrade_creates_every_table_at_the_head_revision_and_db_current_says_so(
    empty_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["db", "current", "--database", empty_url]) == 1
    assert "empty" in capsys.readouterr().out
    assert cli.main(["db", "upgrade", "--database", empty_url]) == 0
    assert cli.main(["db", "current", "--database", empty_url]) == 0
    assert capsys.readouterr().out.splitlines()[-1].startswith(f"{migrate.head()} (current")
    store = Store(empty_url, pool_size=1)
    with store.connect() as conn:
        assert set(inspect(conn).get_table_names()) >= TABLES
    store.close()


def test_the_head_revision_creates_exactly_the_tables_of_the_models(empty_url: str) -> None:
    store = Store(empty_url, pool_size=1)
    store.migrate()
    with store.connect() as conn:
        found = inspect(conn)
        for table in Base.metadata.sorted_tables:
            assert {c["name"] for c in found.get_columns(table.name)} == set(table.columns.keys()), table.name
    store.close()


def test_upgrading_a_current_database_keeps_its_data(empty_url: str) -> None:
    store = Store(empty_url, pool_size=1)
    store.migrate()
    with store.engine.begin() as conn:
        conn.execute(text("INSERT INTO settings (key, value) VALUES ('kept', 'yes')"))
    assert store.migrate().status == "current"
    with store.connect() as conn:
        assert conn.execute(text("SELECT value FROM settings WHERE key = 'kept'")).scalar() == "yes"
    store.close()


def test_serve_refuses_a_database_a_newer_cloudbackup_migrated_with_one_line_saying_why(
    empty_url: str, data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["db", "upgrade", "--database", empty_url]) == 0
    set_revision(empty_url, "9999")
    with pytest.raises(migrate.SchemaError, match=r"revision 9999, which this cloudbackup does not know"):
        create_app(Config(data_dir=data_dir, database_url=empty_url, manual_clock=True))
    assert cli.main(["db", "upgrade", "--database", empty_url]) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and "newer version" in error


def test_db_sql_prints_the_upgrade_for_a_dba_without_connecting(capsys: pytest.CaptureFixture[str]) -> None:
    # No server listens on that socket: offline mode only needs the dialect.
    url = "postgresql+psycopg://nobody@/cloudbackup?host=/nonexistent"
    assert cli.main(["db", "sql", "--database", url]) == 0
    sql = capsys.readouterr().out
    assert "CREATE TABLE snapshots" in sql and "TIMESTAMP WITHOUT TIME ZONE" in sql
    assert "INSERT INTO alembic_version (version_num) VALUES ('0001')" in sql
    assert f"UPDATE alembic_version SET version_num='{migrate.head()}'" in sql


@pytest.mark.parametrize("replicas", [6])
def test_replicas_starting_at_once_migrate_an_empty_database_once(empty_url: str, replicas: int) -> None:
    stores = [Store(empty_url, pool_size=1) for _ in range(replicas)]
    barrier = threading.Barrier(replicas)
    results: list[object] = []

    def start(store: Store) -> None:
        barrier.wait()
        try:
            results.append(store.migrate().status)
        except Exception as error:  # reported below, with the others'
            results.append(error)

    threads = [threading.Thread(target=start, args=(store,)) for store in stores]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == ["current"] * replicas
    with stores[0].connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM alembic_version")).scalar() == 1
    for store in stores:
        store.close()


def test_readyz_answers_503_until_the_database_is_at_this_versions_schema(
    empty_url: str, data_dir: Path
) -> None:
    app = create_app(Config(data_dir=data_dir, database_url=empty_url, manual_clock=True))
    try:
        client = app.test_client()
        ready = client.get("/readyz")
        assert ready.status_code == 200
        assert ready.get_json() == {"status": "ready", "schemaRevision": migrate.head()}
        # Another replica of a newer version migrated the shared database meanwhile.
        set_revision(empty_url, "9999")
        refused = client.get("/readyz")
        assert refused.status_code == 503
        body = refused.get_json()
        assert body["errorCode"] == "NOT_READY" and "9999" in body["detail"]
        assert client.get("/healthz").status_code == 200
    finally:
        shutdown(app)
