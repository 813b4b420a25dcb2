"""Alembic migrations on SQLite and PostgreSQL: `cloudbackup db`, serve's refusals, replicas migrating."""

from __future__ import annotations

import re
import sqlite3
import subprocess
import threading
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
import requests
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from pgserver import PostgresServer
from serveprocess import Serve, cloudbackup
from shimkit import BASE
from sqlalchemy import Connection, MetaData, inspect, make_url, select, text

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
    # The script ends with the database at this version's head revision.
    stamped = re.findall(r"alembic_version.*?(?:VALUES \('|SET version_num=')(\w+)'", sql)
    assert stamped and stamped[-1] == migrate.head()


def migrate_at_once(url: str, replicas: int) -> list[object]:
    """Each replica's schema status (or error) after all of them migrated `url` at the same instant."""
    stores = [Store(url, pool_size=1) for _ in range(replicas)]
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
    for store in stores:
        store.close()
    return results


def alembic_version_rows(url: str) -> int:
    store = Store(url, pool_size=1)
    with store.connect() as conn:
        found = conn.execute(text("SELECT count(*) FROM alembic_version")).scalar()
    store.close()
    return int(found or 0)


@pytest.mark.parametrize("replicas", [6])
def test_replicas_starting_at_once_migrate_an_empty_database_once(empty_url: str, replicas: int) -> None:
    assert migrate_at_once(empty_url, replicas) == ["current"] * replicas
    assert alembic_version_rows(empty_url) == 1


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
        # Someone put back a 0.1.0 schema_version table the 0.1.0 code never wrote: not ready, saying why.
        store = Store(empty_url, pool_size=1)
        with store.engine.begin() as conn:
            conn.execute(text("DROP TABLE alembic_version"))
            conn.execute(text("CREATE TABLE schema_version (version INTEGER NOT NULL)"))
            conn.execute(text("INSERT INTO schema_version (version) VALUES (2)"))
        store.close()
        unknown = client.get("/readyz")
        assert unknown.status_code == 503, unknown.get_data(as_text=True)
        assert unknown.get_json()["errorCode"] == "NOT_READY"
        assert "schema_version table says 2" in unknown.get_json()["detail"]
    finally:
        shutdown(app)


# --- databases made by cloudbackup 0.1.0 (a schema_version table, no Alembic) ------------------------

LEGACY_DUMPS = Path(__file__).parents[1] / "data"
# The organization key whose row the 0.1.0 dumps hold (its HA1s only): the client side of that row.
LEGACY_KEY = ("jjgcvpai", "7c462fea-c8e7-4970-900b-5580ac082174")
LEGACY_PROJECT = "6b0e3988fd5473ad1b720622"


def load_0_1_0_database(url: str) -> None:
    """Fill an empty database with the one cloudbackup 0.1.0 made, from its frozen dump."""
    kind = "sqlite" if url.startswith("sqlite") else "postgresql"
    dump = (LEGACY_DUMPS / f"cloudbackup-0.1.0.{kind}.sql").read_text()
    if kind == "sqlite":
        # Plain sqlite3, as the dump was written: its rows come table by table, before the foreign keys hold.
        with closing(sqlite3.connect(str(make_url(url).database))) as conn:
            conn.executescript(dump)
        return
    store = Store(url, pool_size=1)
    raw = store.engine.raw_connection()
    try:
        # psycopg runs a script of many statements when it is given no parameters.
        raw.driver_connection.execute(dump)  # type: ignore[union-attr]
        raw.commit()
    finally:
        raw.close()
        store.close()


def every_row(conn: Connection, tables: MetaData) -> dict[str, list[tuple[Any, ...]]]:
    """The rows of each table, in their 0.1.0 columns, in a stable order."""
    return {
        name: sorted(tuple(row) for row in conn.execute(select(*table.columns)))
        for name, table in tables.tables.items()
    }


def schema_of(conn: Connection) -> dict[str, dict[str, Any]]:
    """Every table as the database describes it: columns in order, keys, indexes, server defaults."""
    found = inspect(conn)
    return {
        table: {
            "columns": [
                (c["name"], str(c["type"]), c["nullable"], c.get("default")) for c in found.get_columns(table)
            ],
            "primary key": found.get_pk_constraint(table)["constrained_columns"],
            "foreign keys": sorted(
                (tuple(f["constrained_columns"]), f["referred_table"], tuple(f["referred_columns"]))
                for f in found.get_foreign_keys(table)
            ),
            "unique": sorted(
                (u["name"], tuple(u["column_names"])) for u in found.get_unique_constraints(table)
            ),
            "indexes": sorted(
                (i["name"], tuple(i["column_names"]), bool(i["unique"])) for i in found.get_indexes(table)
            ),
        }
        for table in found.get_table_names()
    }


def fresh_head_schema(url: str, data_dir: Path, request: pytest.FixtureRequest) -> dict[str, dict[str, Any]]:
    """The schema of a database of `url`'s kind that this version created from nothing."""
    if url.startswith("sqlite"):
        fresh_url = default_url(data_dir / "fresh")
        (data_dir / "fresh").mkdir()
        store = Store(fresh_url, pool_size=1)
        store.migrate()
    else:
        server: PostgresServer = request.getfixturevalue("postgres")
        name = server.create_database(migrated=False)
        request.addfinalizer(lambda: server.drop_database(name))
        store = Store(server.url(name), pool_size=1)
        store.migrate()
    try:
        with store.connect() as conn:
            return schema_of(conn)
    finally:
        store.close()


def test_a_0_1_0_database_is_behind_and_serve_refuses_it_with_one_line_naming_db_upgrade(
    empty_url: str, data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    load_0_1_0_database(empty_url)
    assert cli.main(["db", "current", "--database", empty_url]) == 1
    assert capsys.readouterr().out.strip() == (
        f"made by cloudbackup 0.1.0 (behind; this cloudbackup's head is {migrate.head()})"
    )
    refused = subprocess.run(
        [*cloudbackup(), "serve", "--port", "0", "--data-dir", str(data_dir), "--database", empty_url],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert refused.returncode == 2 and refused.stdout == ""
    error = refused.stderr.strip()
    assert len(error.splitlines()) == 1, error
    assert "made by cloudbackup 0.1.0" in error and "`cloudbackup db upgrade`" in error
    # Refusing changed nothing: the database is still 0.1.0's.
    store = Store(empty_url, pool_size=1)
    with store.connect() as conn:
        assert "alembic_version" not in inspect(conn).get_table_names()
        assert conn.execute(text("SELECT version FROM schema_version")).scalar() == 1
    store.close()


def test_db_upgrade_adopts_a_0_1_0_database_keeping_every_row_with_the_schema_of_a_fresh_one(
    empty_url: str, data_dir: Path, request: pytest.FixtureRequest, capsys: pytest.CaptureFixture[str]
) -> None:
    load_0_1_0_database(empty_url)
    store = Store(empty_url, pool_size=1)
    legacy = MetaData()
    with store.connect() as conn:
        legacy.reflect(conn)
        legacy.remove(legacy.tables["schema_version"])
        rows = every_row(conn, legacy)
    assert rows["snapshots"] and rows["restore_jobs"] and rows["api_keys"] and rows["volumes"]

    assert cli.main(["db", "upgrade", "--database", empty_url]) == 0
    assert capsys.readouterr().out.splitlines()[-1].startswith(f"{migrate.head()} (current")
    with store.connect() as conn:
        assert every_row(conn, legacy) == rows
        assert "schema_version" not in inspect(conn).get_table_names()
        assert conn.execute(text("SELECT count(*) FROM clusters WHERE deletion_protection")).scalar() == 0
        context = MigrationContext.configure(
            conn, opts={"compare_type": True, "compare_server_default": True}
        )
        assert compare_metadata(context, Base.metadata) == []
        assert schema_of(conn) == fresh_head_schema(empty_url, data_dir, request)
        # The volume ids go on from 0.1.0's: a new volume row does not collide with the adopted ones.
        conn.execute(
            text("INSERT INTO volumes (cluster_id, region, member) SELECT id, 'westus2', 0 FROM clusters")
        )
    store.close()


def test_a_0_1_0_database_stamped_with_an_unknown_schema_version_is_refused_saying_why(
    empty_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    load_0_1_0_database(empty_url)
    store = Store(empty_url, pool_size=1)
    with store.engine.begin() as conn:
        conn.execute(text("UPDATE schema_version SET version = 2"))
    store.close()
    with pytest.raises(migrate.SchemaError, match=r"schema_version table says 2"):
        migrate.state(Store(empty_url, pool_size=1))
    assert cli.main(["db", "upgrade", "--database", empty_url]) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and "cloudbackup 0.1.0 wrote 1" in error


def test_serve_upgrade_db_adopts_a_0_1_0_database_and_its_api_key_still_authenticates(
    empty_url: str, data_dir: Path
) -> None:
    load_0_1_0_database(empty_url)
    shim = Serve(data_dir, "--database", empty_url, "--upgrade-db")
    try:
        session = requests.Session()
        session.auth = requests.auth.HTTPDigestAuth(*LEGACY_KEY)
        response = session.get(f"{shim.url}{BASE}/groups/{LEGACY_PROJECT}/clusters", timeout=60)
        assert response.status_code == 200, response.text
        assert sorted(c["name"] for c in response.json()["results"]) == ["dst", "rs1"]
        wrong = requests.get(
            f"{shim.url}{BASE}/groups",
            auth=requests.auth.HTTPDigestAuth(LEGACY_KEY[0], "not-the-key"),
            timeout=60,
        )
        assert wrong.status_code == 401
    finally:
        shim.stop()


@pytest.mark.parametrize("replicas", [6])
def test_replicas_starting_at_once_adopt_a_0_1_0_database_once(empty_url: str, replicas: int) -> None:
    load_0_1_0_database(empty_url)
    assert migrate_at_once(empty_url, replicas) == ["current"] * replicas
    assert alembic_version_rows(empty_url) == 1
