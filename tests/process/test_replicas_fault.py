"""Proof by fault: three `serve` replicas on one PostgreSQL, one SIGKILLed mid-batch and restarted."""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import pytest
from pgserver import PostgresServer
from shimkit import all_stored_ids, cluster_body
from sqlalchemy import select
from test_serve import Api, Shim, create_key

from shim.clock import parse_time
from shim.store import Store
from shim.store.models import Replica, Snapshot

CLUSTERS = 200
DAYS = 4
ONE_MEMBER = [{"regionsConfig": {"eastus2": {"electableNodes": 1}}}]


@pytest.fixture
def database(postgres: PostgresServer) -> Iterator[str]:
    name = postgres.create_database()
    yield postgres.url(name)
    postgres.drop_database(name)


@pytest.fixture
def replicas() -> Iterator[list[Shim]]:
    started: list[Shim] = []
    yield started
    for shim in started:
        if shim.process.poll() is None:
            shim.kill()


def start(data_dir: Path, database: str) -> Shim:
    # Each snapshot's start lingers a little, so that a batch is still running when the kill comes.
    return Shim(
        data_dir,
        "--database",
        database,
        "--manual-clock",
        "--lease-seconds",
        "3",
        env={"CLOUDBACKUP_TEST_SNAPSHOT_DELAY": "after:0.3"},
    )


@pytest.mark.slow
def test_three_replicas_take_every_slot_once_while_one_is_killed_mid_batch_and_restarted(
    data_dir: Path, database: str, replicas: list[Shim]
) -> None:
    key_pair = create_key(database)
    replicas.extend(start(data_dir, database) for _ in range(3))
    apis = [Api(shim, key_pair) for shim in replicas]
    project = apis[0]("POST", "/groups", {"name": "fleet"}, expect=201)["id"]

    def enable(index: int) -> None:
        api = apis[index % 3]
        name = f"c{index}"
        api(
            "POST", f"/groups/{project}/clusters", cluster_body(name, replicationSpecs=ONE_MEMBER), expect=201
        )
        api(
            "PUT",
            f"/groups/{project}/clusters/{name}/backup",
            {"method": "CLOUD_PROVIDER_SNAPSHOTS"},
            expect=200,
        )

    with ThreadPoolExecutor(6) as pool:
        list(pool.map(enable, range(CLUSTERS)))
    store = Store(database, pool_size=2)
    try:
        victim = replicas[1]
        with store.read() as session:
            victim_id = session.execute(
                select(Replica.id).where(Replica.description.endswith(f" pid {victim.process.pid}"))
            ).scalar_one()
        advanced: list[object] = []
        advancing = threading.Thread(
            target=lambda: advanced.append(apis[0]("POST", "/admin/clock", {"advanceSeconds": DAYS * 86400}))
        )
        advancing.start()
        # Kill the victim while it holds claimed snapshots it has not finished: mid-batch.
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            with store.read() as session:
                mine = session.execute(
                    select(Snapshot.id).where(
                        Snapshot.owner == victim_id, Snapshot.status.in_(("queued", "inProgress"))
                    )
                ).first()
            if mine is not None:
                break
            time.sleep(0.01)
        assert mine is not None, "the victim replica never took part in the advance"
        victim.kill()
        replicas[1] = start(data_dir, database)
        advancing.join(300)
        assert advanced and isinstance(advanced[0], dict), advanced
        now = parse_time(advanced[0]["now"])
        # The dead replica's claims are adopted once its lease ends: wait until nothing is left running.
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            with store.read() as session:
                unfinished = session.execute(
                    select(Snapshot.id).where(Snapshot.status.in_(("queued", "inProgress")))
                ).all()
            if not unfinished:
                break
            time.sleep(0.2)
        assert unfinished == [], "operations stuck in queued/inProgress"
        with store.read() as session:
            rows = session.execute(select(Snapshot)).scalars().all()
    finally:
        store.close()
    by_cluster: dict[str, list[Snapshot]] = defaultdict(list)
    for row in rows:
        by_cluster[row.cluster_id].append(row)
    assert len(by_cluster) == CLUSTERS
    for cluster_id, kept in by_cluster.items():
        assert {s.status for s in kept} == {"completed"}, (
            cluster_id,
            [(s.slot_time, s.status) for s in kept],
        )
        slots = sorted(s.slot_time for s in kept)  # type: ignore[type-var]
        # Three retained, one a day, the newest the last slot before now: no gap, no slot twice.
        assert len(slots) == 3
        assert slots[1] - slots[0] == slots[2] - slots[1] == timedelta(days=1)
        assert now - timedelta(days=1) < slots[2] <= now
    # Storage holds exactly the snapshots the database knows: no orphan file, none missing.
    assert all_stored_ids(data_dir) == {row.id for row in rows}
    owners = {row.owner for row in rows}
    assert len(owners) >= 2, "the replicas did not share the work"
