"""The database on SQLite and PostgreSQL: settings, UTC times, the slot constraint and the due-slot index."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError, StatementError

from shim.store import Store, default_url, queries
from shim.store.models import Cluster, Project, Snapshot

T0 = datetime(2024, 1, 1, 12, tzinfo=UTC)


@pytest.fixture
def store(data_dir: Path, database_url: str | None) -> Store:
    store = Store(database_url or default_url(data_dir))
    store.migrate()
    yield store
    store.close()


def add_cluster(store: Store, cluster_id: str = "c" * 24, due: datetime | None = T0) -> None:
    with store.write() as session:
        if session.get(Project, "p" * 24) is None:
            session.add(Project(id="p" * 24, name="p", created_at=T0))
            session.flush()
        session.add(
            Cluster(
                id=cluster_id,
                project_id="p" * 24,
                name=cluster_id[:8],
                provider_name="AZURE",
                instance_size="M10",
                cluster_type="REPLICASET",
                regions={"eastus2": {"priority": 7, "electableNodes": 1}},
                disk_size_gb=1,
                state="IDLE",
                backup_method="CLOUD_PROVIDER_SNAPSHOTS",
                reference_time=T0 - timedelta(days=1),
                next_due_at=due,
                created_at=T0,
            )
        )


def snapshot(snapshot_id: str, slot: datetime | None, cluster_id: str = "c" * 24) -> Snapshot:
    return Snapshot(
        id=snapshot_id,
        cluster_id=cluster_id,
        project_id="p" * 24,
        snapshot_type="scheduled",
        slot_time=slot,
        status="queued",
        region="eastus2",
        created_at=T0,
    )


@pytest.mark.databases("sqlite")
def test_sqlite_runs_in_wal_mode_with_foreign_keys(store: Store) -> None:
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1


def test_times_are_stored_in_utc_and_read_back_aware(store: Store) -> None:
    elsewhere = datetime(2024, 1, 1, 14, tzinfo=timezone(timedelta(hours=2)))
    add_cluster(store, due=elsewhere)
    with store.read() as session:
        due = session.get(Cluster, "c" * 24).next_due_at  # type: ignore[union-attr]
    assert due == T0 and due.tzinfo is UTC
    with store.engine.connect() as conn:
        assert str(conn.exec_driver_sql("SELECT next_due_at FROM clusters").scalar()).startswith(
            "2024-01-01 12:00:00"
        )


def test_a_naive_time_is_refused(store: Store) -> None:
    with pytest.raises(StatementError, match="time zone"):
        add_cluster(store, due=datetime(2024, 1, 1))


def test_one_slot_of_a_cluster_never_gets_two_snapshots(store: Store) -> None:
    add_cluster(store)
    with store.write() as session:
        session.add(snapshot("a" * 24, T0))
        session.add(snapshot("o" * 24, None))
        session.add(snapshot("n" * 24, None))  # on-demand snapshots have no slot: any number of them
    with pytest.raises(IntegrityError), store.write() as session:
        session.add(snapshot("b" * 24, T0))


@pytest.mark.databases("sqlite")  # EXPLAIN QUERY PLAN; PostgreSQL scans a table this small anyway
def test_due_clusters_are_found_through_the_next_due_index_not_a_scan(store: Store) -> None:
    add_cluster(store)
    add_cluster(store, "d" * 24, due=T0 + timedelta(hours=1))
    add_cluster(store, "e" * 24, due=None)
    with store.read() as session:
        assert [row.id for row in queries.due_clusters(session, T0, 10)] == ["c" * 24]
        statement = (
            select(Cluster.id).where(Cluster.next_due_at <= T0).order_by(Cluster.next_due_at).limit(10)
        )
        compiled = statement.compile(store.engine, compile_kwargs={"literal_binds": True})
        plan = " ".join(str(row[-1]) for row in session.execute(text(f"EXPLAIN QUERY PLAN {compiled}")))
    assert "ix_clusters_next_due_at" in plan and "SCAN clusters" not in plan.replace("USING INDEX", "")


def test_claiming_a_slot_is_a_compare_and_set(store: Store) -> None:
    add_cluster(store)
    with store.write() as session:
        assert queries.claim_slot(session, "c" * 24, T0, T0 + timedelta(days=1))
        assert not queries.claim_slot(session, "c" * 24, T0, T0 + timedelta(days=1))
        assert not queries.claim_slots(session, [{"cid": "c" * 24, "old": T0, "new": T0 + timedelta(days=2)}])
        assert queries.claim_slots(
            session, [{"cid": "c" * 24, "old": T0 + timedelta(days=1), "new": T0 + timedelta(days=2)}]
        )
    with store.read() as session:
        assert session.get(Cluster, "c" * 24).next_due_at == T0 + timedelta(days=2)  # type: ignore[union-attr]


def test_batched_snapshot_updates_set_each_row_its_own_values(store: Store) -> None:
    add_cluster(store)
    with store.write() as session:
        session.add_all([snapshot("a" * 24, T0), snapshot("b" * 24, T0 + timedelta(days=1))])
    with store.write() as session:
        queries.update_snapshots(
            session,
            [
                {"id": "a" * 24, "status": "completed", "handle": "h-a", "finished_at": T0},
                {"id": "b" * 24, "status": "failed", "failure_reason": "X: y", "finished_at": T0},
            ],
        )
    with store.read() as session:
        a, b = session.get(Snapshot, "a" * 24), session.get(Snapshot, "b" * 24)
        assert (a.status, a.handle, a.finished_at) == ("completed", "h-a", T0)  # type: ignore[union-attr]
        assert (b.status, b.failure_reason, b.handle) == ("failed", "X: y", None)  # type: ignore[union-attr]


@pytest.mark.databases("sqlite")  # EXPLAIN QUERY PLAN
def test_a_page_of_snapshots_is_read_off_the_cluster_index_without_a_sort(store: Store) -> None:
    compiled = queries._SNAPSHOT_PAGE.compile(store.engine)
    values = {"cluster_id": "c" * 24, "limit": 10, "offset": 0}
    positional = tuple(values[name] for name in compiled.positiontup or ())
    with store.connect() as conn:
        rows = conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled}", positional)
        plan = " ".join(str(row[-1]) for row in rows)
    assert "ix_snapshots_cluster_created" in plan and "TEMP B-TREE" not in plan, plan
