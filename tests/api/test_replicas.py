"""Replicas on one database: a shared manual clock, competing schedulers, operations owned under a lease."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest
from flask import Flask
from shimkit import START, ApiClient, create_cluster, create_project, enable_backup
from sqlalchemy import select, update

from shim.app import create_app, shutdown
from shim.clock import ManualClock, format_time
from shim.config import Config
from shim.service import Service
from shim.store.models import Cluster, Replica, Snapshot

DAY = 24 * 3600
ONE_MEMBER = [{"regionsConfig": {"eastus2": {"electableNodes": 1}}}]


def service_of(app: Flask) -> Service:
    return app.extensions["cloudbackup"].service


@pytest.fixture
def config(config: Config) -> Config:
    config.batch_size = 2
    return config


@pytest.fixture
def replica(config: Config, client: ApiClient) -> Iterator[Callable[..., tuple[Flask, ApiClient]]]:
    """Start another replica on the same database and storage, with its own clock object and key."""
    started: list[Flask] = []

    def start(**overrides: object) -> tuple[Flask, ApiClient]:
        values = {**config.__dict__, "clock": ManualClock(START), **overrides}
        app = create_app(Config(**values))  # type: ignore[arg-type]
        started.append(app)
        other = client.as_key(client.key)  # type: ignore[arg-type]
        other.client = app.test_client()
        return app, other

    yield start
    for app in started:
        shutdown(app)


def end_lease(dead: Service, *, looking: Service) -> None:
    """`dead`'s lease runs out (as when its process is killed), and `looking`'s next tick looks for its work
    rather than the one 15 s later."""
    with looking.store.write() as session:
        session.execute(
            update(Replica)
            .where(Replica.id == dead.replica_id)
            .values(lease_until=datetime.now(UTC) - timedelta(seconds=1))
        )
    looking._next_adoption = 0.0


def backed_up(client: ApiClient, count: int) -> str:
    project_id = create_project(client)
    for index in range(count):
        create_cluster(client, project_id, f"c{index}", replicationSpecs=ONE_MEMBER)
        enable_backup(client, project_id, f"c{index}")
    return project_id


def test_an_advance_through_one_replica_moves_the_clock_of_every_replica(
    client: ApiClient, replica: Callable[..., tuple[Flask, ApiClient]]
) -> None:
    _, other = replica()
    response = client.post("/admin/clock", {"advanceSeconds": 3 * DAY})
    assert response.status_code == 200
    expected = format_time(START + timedelta(days=3))
    assert other.get("/admin/clock").get_json()["now"] == expected
    # And back: the other replica's advance moves this one's clock.
    other.post("/admin/clock", {"advanceSeconds": DAY})
    assert client.get("/admin/clock").get_json()["now"] == format_time(START + timedelta(days=4))


def test_other_replicas_schedulers_compete_for_the_slots_an_advance_passes_and_take_each_once(
    app: Flask, client: ApiClient, replica: Callable[..., tuple[Flask, ApiClient]]
) -> None:
    project_id = backed_up(client, 12)
    others = [service_of(replica(batch_size=2)[0]) for _ in range(2)]
    done = threading.Event()
    errors: list[BaseException] = []

    def keep_ticking(service: Service) -> None:
        # What the scheduler thread of a serving replica does, without the pause between ticks.
        try:
            while not done.is_set():
                service.tick()
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=keep_ticking, args=(s,)) for s in others]
    for thread in threads:
        thread.start()
    try:
        assert client.post("/admin/clock", {"advanceSeconds": 4 * DAY}).status_code == 200
        # Read as the advance returns, the other replicas still ticking: its work is done, retention too.
        with service_of(app).store.read() as session:
            rows = session.execute(
                select(Snapshot.cluster_id, Snapshot.slot_time, Snapshot.status, Snapshot.owner).where(
                    Snapshot.snapshot_type == "scheduled"
                )
            ).all()
            clusters = (
                session.execute(select(Cluster.id).where(Cluster.project_id == project_id)).scalars().all()
            )
    finally:
        done.set()
        for thread in threads:
            thread.join()
    assert errors == []
    # Retention keeps the last three slots of each cluster, every one taken once and completed.
    assert Counter(row.cluster_id for row in rows) == dict.fromkeys(clusters, 3)
    assert {row.status for row in rows} == {"completed"}
    for cluster_id in clusters:
        slots = sorted(row.slot_time for row in rows if row.cluster_id == cluster_id)
        assert slots == [START + timedelta(days=d) for d in (2, 3, 4)]
    # The competition happened: more than one replica took scheduled snapshots.
    owners = {row.owner for row in rows}
    assert len(owners) > 1, owners


def test_a_replica_starting_leaves_a_live_replicas_operations_alone_then_adopts_them_when_its_lease_ends(
    app: Flask, client: ApiClient, replica: Callable[..., tuple[Flask, ApiClient]]
) -> None:
    project_id = backed_up(client, 1)
    first = service_of(app)
    # The first replica has committed its intent (queued) and is about to start the driver.
    with first.store.write() as session:
        (snapshot,) = session.execute(select(Snapshot)).scalars().all()
        snapshot.status, snapshot.op_token, snapshot.handle = "queued", None, None
        snapshot_id = snapshot.id
    other_app, other = replica()
    second = service_of(other_app)

    def row() -> Snapshot:
        with second.store.read() as session:
            return session.execute(select(Snapshot).where(Snapshot.id == snapshot_id)).scalar_one()

    # Starting (its reconciliation) and ticking, the second replica neither re-runs nor fails it.
    second.tick()
    assert (row().status, row().owner) == ("queued", first.replica_id)
    # The first replica dies: its lease runs out, and the second adopts and finishes its work.
    end_lease(first, looking=second)
    second.tick()
    assert (row().status, row().owner) == ("completed", second.replica_id)
    listing = other.get(f"/groups/{project_id}/clusters/c0/backup/snapshots").get_json()
    assert [s["status"] for s in listing["results"]] == ["completed"]


@pytest.mark.parametrize("state", ["CREATING", "DELETING"])
def test_a_replica_starting_leaves_a_cluster_a_live_replica_creates_or_terminates_alone_then_finishes_it(
    app: Flask, client: ApiClient, replica: Callable[..., tuple[Flask, ApiClient]], state: str
) -> None:
    project_id = backed_up(client, 1)
    first = service_of(app)
    # The first replica is halfway through creating (or terminating) the cluster: volumes, snapshots.
    stopped = {"backup_method": None, "reference_time": None, "next_due_at": None}
    with first.store.write() as session:
        session.execute(update(Cluster).values(state=state, **(stopped if state == "DELETING" else {})))
    other_app, other = replica()
    second = service_of(other_app)
    path = f"/groups/{project_id}/clusters/c0"
    # Starting (its reconciliation) and ticking, the second replica does not take the operation over.
    second.tick()
    assert other.get(path).get_json()["stateName"] == state
    # The first replica dies: its lease runs out, and the second adopts and finishes its work.
    end_lease(first, looking=second)
    second.tick()
    if state == "CREATING":
        assert other.get(path).get_json()["stateName"] == "IDLE"
    else:
        assert other.get(path).status_code == 404
        with second.store.read() as session:
            assert session.execute(select(Snapshot)).scalars().all() == []
