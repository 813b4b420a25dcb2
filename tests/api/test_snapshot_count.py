"""A listing's totalCount comes from a counter the database keeps: exact however snapshots come and go."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic import command
from flask import Flask
from shimkit import ApiClient, advance, create_cluster, create_project, enable_backup, settle
from sqlalchemy import Connection, func, select, text

from shim.store import Store, default_url, migrate
from shim.store.models import Snapshot, SnapshotCount

DAY = 24 * 3600
SNAPSHOTS = "/groups/{}/clusters/{}/backup/snapshots"


def listed(client: ApiClient, project_id: str, name: str) -> tuple[int, int]:
    """(totalCount of a one-item page, items found by walking every page)."""
    base = SNAPSHOTS.format(project_id, name)
    first = client.get(base + "?itemsPerPage=1")
    assert first.status_code == 200, first.get_json()
    total = first.get_json()["totalCount"]
    seen = 0
    page = 1
    while True:
        body = client.get(base + f"?itemsPerPage=2&pageNum={page}").get_json()
        seen += len(body["results"])
        if len(body["results"]) < 2:
            return total, seen
        page += 1


def rows(app: Flask, project_id: str, name: str) -> int:
    """The cluster's snapshot rows, counted one by one."""
    with app.extensions["cloudbackup"].service.store.read() as session:
        return session.execute(
            text(
                "SELECT count(*) FROM snapshots JOIN clusters ON clusters.id = snapshots.cluster_id "
                "WHERE clusters.project_id = :p AND clusters.name = :n"
            ),
            {"p": project_id, "n": name},
        ).scalar_one()


def assert_exact(client: ApiClient, app: Flask, project_id: str, name: str, expected: int) -> None:
    assert listed(client, project_id, name) == (expected, expected)
    assert rows(app, project_id, name) == expected


def insert_clusters(conn: Connection, names: list[str]) -> None:
    """Project p1 and clusters of these names in it, written as rows (no API: a database of revision 0001)."""
    conn.execute(text("INSERT INTO projects (id, name, created_at) VALUES ('p1', 'p', '2024-01-01')"))
    for name in names:
        conn.execute(
            text(
                "INSERT INTO clusters (id, project_id, name, provider_name, instance_size, cluster_type,"
                " regions, disk_size_gb, state, created_at) VALUES (:c, 'p1', :c, 'AZURE', 'M10',"
                " 'REPLICASET', '{}', 1, 'IDLE', '2024-01-01')"
            ),
            {"c": name},
        )


def test_total_count_is_exact_through_schedule_retention_on_demand_expiry_deletion_and_purge(
    client: ApiClient, app: Flask
) -> None:
    project_id = create_project(client)
    create_cluster(client, project_id, "one")
    create_cluster(client, project_id, "two")
    enable_backup(client, project_id, "one")
    enable_backup(client, project_id, "two")
    settle(client)
    assert_exact(client, app, project_id, "one", 1)  # the first snapshot, at once
    base = SNAPSHOTS.format(project_id, "one")
    kept = client.post(base, {"description": "kept"}).get_json()["id"]
    client.post(base, {"description": "expires", "retentionInDays": 1})
    doomed = client.post(base, {"description": "deleted"}).get_json()["id"]
    settle(client)
    assert_exact(client, app, project_id, "one", 4)
    assert client.delete(f"{base}/{doomed}").status_code == 204
    assert_exact(client, app, project_id, "one", 3)
    # Five days: five scheduled snapshots, retention keeps three of them; the one-day on-demand expires.
    advance(client, 5 * DAY)
    assert_exact(client, app, project_id, "one", 3 + 1)
    assert [s["id"] for s in client.get(base).get_json()["results"] if s["snapshotType"] == "onDemand"] == [
        kept
    ]
    assert_exact(client, app, project_id, "two", 3)
    # Disabling backup deletes every snapshot of the cluster (R9): the count goes with them.
    assert client.delete(f"/groups/{project_id}/clusters/one/backup").status_code == 204
    settle(client)
    assert_exact(client, app, project_id, "one", 0)
    assert_exact(client, app, project_id, "two", 3)


def test_a_terminated_cluster_leaves_no_count_behind_and_a_new_one_of_its_name_starts_at_zero(
    client: ApiClient, app: Flask
) -> None:
    project_id = create_project(client)
    create_cluster(client, project_id, "rs1")
    enable_backup(client, project_id, "rs1")
    advance(client, 2 * DAY)
    assert_exact(client, app, project_id, "rs1", 3)
    assert client.delete(f"/groups/{project_id}/clusters/rs1").status_code in (202, 204)
    settle(client)
    assert client.get(f"/groups/{project_id}/clusters/rs1").status_code == 404
    with app.extensions["cloudbackup"].service.store.read() as session:
        assert session.execute(select(func.count()).select_from(SnapshotCount)).scalar_one() == 0
    create_cluster(client, project_id, "rs1")
    assert_exact(client, app, project_id, "rs1", 0)


def test_upgrading_a_database_with_snapshots_counts_them(data_dir: Path, database_url: str | None) -> None:
    # A database at the first revision, whose snapshots predate the counters.
    store = Store(database_url or default_url(data_dir), pool_size=1)
    store.migrate()
    with store.engine.execution_options(cloudbackup_write=True).connect() as conn, conn.begin():
        config = migrate.alembic_config()
        config.attributes["connection"] = conn
        command.downgrade(config, "0001")
    store.close()
    with Store(database_url or default_url(data_dir), pool_size=1).engine.begin() as conn:
        counts = {"c1": 4, "c2": 1, "c3": 0}
        insert_clusters(conn, list(counts))
        for cluster, count in counts.items():
            for index in range(count):
                conn.execute(
                    text(
                        "INSERT INTO snapshots (id, cluster_id, project_id, snapshot_type, status, region,"
                        " created_at) VALUES (:s, :c, 'p1', 'onDemand', 'completed', 'eastus2', '2024-01-01')"
                    ),
                    {"s": f"{cluster}-{index}", "c": cluster},
                )
    store = Store(database_url or default_url(data_dir), pool_size=1)
    try:
        assert store.migrate().status == "current"
        with store.connect() as conn:
            counted = dict(conn.execute(select(SnapshotCount.cluster_id, SnapshotCount.total)).all())
            assert counted == {"c1": 4, "c2": 1}
            conn.execute(Snapshot.__table__.delete().where(Snapshot.id == "c1-0"))
            conn.commit()
            assert (
                conn.execute(select(SnapshotCount.total).where(SnapshotCount.cluster_id == "c1")).scalar()
                == 3
            )
    finally:
        store.close()


@pytest.mark.databases("postgresql")
def test_writers_changing_the_same_clusters_in_opposite_orders_keep_the_counts_exact_without_deadlock(
    database_url: str,
) -> None:
    store = Store(database_url, pool_size=4)
    clusters = [f"c{index:02d}" for index in range(40)]
    with store.engine.begin() as conn:
        insert_clusters(conn, clusters)
    errors: list[BaseException] = []
    barrier = threading.Barrier(2)

    def write(name: str, order: list[str]) -> None:
        # Each round: one statement adds a snapshot to every cluster, in this writer's order, and the
        # next deletes half of what it added; the transaction stays open across both.
        try:
            barrier.wait()
            for round_number in range(40):
                with store.engine.begin() as conn:
                    ids = [f"{name}-{round_number}-{cluster}" for cluster in order]
                    conn.execute(
                        Snapshot.__table__.insert(),
                        [
                            {
                                "id": sid,
                                "cluster_id": cluster,
                                "project_id": "p1",
                                "snapshot_type": "onDemand",
                                "status": "completed",
                                "region": "eastus2",
                                "created_at": datetime(2024, 1, 1, tzinfo=UTC),
                            }
                            for sid, cluster in zip(ids, order, strict=True)
                        ],
                    )
                    conn.execute(Snapshot.__table__.delete().where(Snapshot.id.in_(ids[::2])))
        except BaseException as error:  # reported below
            errors.append(error)

    threads = [
        threading.Thread(target=write, args=("up", clusters)),
        threading.Thread(target=write, args=("down", clusters[::-1])),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    try:
        assert errors == []
        with store.connect() as conn:
            counted = dict(conn.execute(select(SnapshotCount.cluster_id, SnapshotCount.total)).all())
            actual = dict(
                conn.execute(select(Snapshot.cluster_id, func.count()).group_by(Snapshot.cluster_id)).all()
            )
        assert counted == actual and sum(actual.values()) == 2 * 40 * 20
    finally:
        store.close()
