"""The scheduler's claims (R7): compare-and-set, the slot constraint as a backstop, batches, idle ticks."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from shimkit import START, ApiClient, create_cluster, create_project, enable_backup
from sqlalchemy import event, select

from shim.clock import ManualClock
from shim.config import Config
from shim.service import Service, new_id
from shim.store import queries
from shim.store.models import Cluster, Snapshot

DAY = timedelta(days=1)
ONE_MEMBER = [{"regionsConfig": {"eastus2": {"electableNodes": 1}}}]


@pytest.fixture
def config(config: Config) -> Config:
    config.batch_size = 3
    return config


def backed_up(client: ApiClient, count: int) -> str:
    project_id = create_project(client)
    for index in range(count):
        create_cluster(client, project_id, f"c{index}", replicationSpecs=ONE_MEMBER)
        enable_backup(client, project_id, f"c{index}")
    return project_id


def service_of(app: Flask) -> Service:
    return app.extensions["cloudbackup"].service


def slots(service: Service) -> list[tuple[str, Any]]:
    with service.store.read() as session:
        return sorted(session.execute(select(Snapshot.cluster_id, Snapshot.slot_time)).all())


def test_a_tick_takes_every_due_cluster_in_batches(app: Flask, client: ApiClient, clock: ManualClock) -> None:
    backed_up(client, 7)
    service = service_of(app)
    clock.set(START + DAY)
    assert service.tick() == 7
    assert service.tick() == 0
    assert len(slots(service)) == 14


def test_a_claim_that_lost_a_race_falls_back_to_one_by_one_and_takes_the_slot_once(
    app: Flask, client: ApiClient, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    backed_up(client, 2)
    service = service_of(app)
    clock.set(START + DAY)
    with service.store.read() as session:
        stale = queries.due_clusters(session, clock.now(), 10)
    # Another scheduler claims the first cluster's slot after this one read the due clusters.
    with service.store.write() as session:
        assert queries.claim_slot(session, stale[0].id, stale[0].next_due_at, stale[0].next_due_at + DAY)
        session.add(
            Snapshot(
                id=new_id(),
                cluster_id=stale[0].id,
                project_id=stale[0].project_id,
                snapshot_type="scheduled",
                slot_time=stale[0].next_due_at,
                status="completed",
                region="eastus2",
                created_at=clock.now(),
            )
        )
    reads = iter([stale])
    real = queries.due_clusters
    monkeypatch.setattr(
        queries, "due_clusters", lambda s, now, limit: next(reads, None) or real(s, now, limit)
    )
    assert service.tick() == 1
    taken = slots(service)
    assert len(taken) == 4 and len(set(taken)) == 4


def test_the_slot_constraint_stops_a_second_snapshot_even_when_next_due_was_not_moved(
    app: Flask, client: ApiClient, clock: ManualClock
) -> None:
    backed_up(client, 1)
    service = service_of(app)
    with service.store.read() as session:
        cluster = session.execute(select(Cluster)).scalar_one()
    # Another process took the next slot's snapshot, but next_due_at still points at that slot.
    with service.store.write() as session:
        session.add(
            Snapshot(
                id=new_id(),
                cluster_id=cluster.id,
                project_id=cluster.project_id,
                snapshot_type="scheduled",
                slot_time=cluster.next_due_at,
                status="completed",
                region="eastus2",
                created_at=START + DAY,
            )
        )
    clock.set(START + DAY)
    assert service.tick() == 0
    assert len(slots(service)) == 2
    with service.store.read() as session:
        assert session.get(Cluster, cluster.id).next_due_at == START + 2 * DAY  # type: ignore[union-attr]


def test_an_advance_walks_slots_in_order_across_batches(app: Flask, client: ApiClient) -> None:
    project_id = backed_up(client, 5)
    service = service_of(app)
    service.advance(3 * 86400)
    for index in range(5):
        rows = client.get(f"/groups/{project_id}/clusters/c{index}/backup/snapshots").get_json()["results"]
        assert len(rows) == 3
        assert rows[0]["createdAt"] == "2024-01-04T12:00:00Z"


def test_an_idle_tick_runs_the_same_few_queries_however_many_clusters_there_are(
    app: Flask, client: ApiClient
) -> None:
    service = service_of(app)

    def statements() -> int:
        seen: list[str] = []

        def record(*args: Any) -> None:
            seen.append(args[2])

        event.listen(service.store.engine, "before_cursor_execute", record)
        try:
            service.tick()
        finally:
            event.remove(service.store.engine, "before_cursor_execute", record)
        return len([s for s in seen if not s.startswith(("BEGIN", "PRAGMA"))])

    backed_up(client, 1)
    few = statements()
    more = create_project(client, "more")
    for index in range(6):
        create_cluster(client, more, f"m{index}", replicationSpecs=ONE_MEMBER)
        enable_backup(client, more, f"m{index}")
    # One finds the earliest due slot and any running work; one reads the manual clock the replicas share.
    assert statements() == few == 2
