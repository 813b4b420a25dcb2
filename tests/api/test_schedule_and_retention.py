"""The schedule (R7) and retention (R8) over simulated days, driven through /admin/clock.

Every test runs once per driver kind, and compares the rows with that driver's storage itself.
"""

from __future__ import annotations

import threading
from datetime import timedelta
from pathlib import Path

import pytest
from flask import Flask
from shimkit import (
    START,
    ApiClient,
    advance,
    create_cluster,
    create_project,
    enable_backup,
    settle,
)
from shimstorage import ShimStorage, stored_ids

from shim.app import create_app, shutdown
from shim.clock import ManualClock, format_time
from shim.config import Config

pytestmark = pytest.mark.drivers()

DAY = 86400
SNAPSHOTS = "/groups/{}/clusters/rs1/backup/snapshots"


def snapshots(client: ApiClient, project_id: str) -> list[dict]:
    return client.get(SNAPSHOTS.format(project_id) + "?itemsPerPage=500").get_json()["results"]


def assert_storage_matches_the_database(client: ApiClient, project_id: str, storage: ShimStorage) -> None:
    completed = {
        s["id"]: s["regionName"] for s in snapshots(client, project_id) if s["status"] == "completed"
    }
    on_disk = storage.stored_by_region()
    assert {sid for ids in on_disk.values() for sid in ids} == set(completed)
    for region, ids in on_disk.items():
        assert all(completed[sid] == region for sid in ids)


def test_thirty_days_keep_exactly_the_last_three_scheduled_snapshots_and_every_on_demand_one(
    client: ApiClient, storage: ShimStorage
) -> None:
    project_id = create_project(client)
    create_cluster(client, project_id)
    enable_backup(client, project_id)
    on_demand = client.post(SNAPSHOTS.format(project_id), {"description": "keep me"}).get_json()["id"]
    assert advance(client, 30 * DAY) == format_time(START + timedelta(days=30))
    rows = snapshots(client, project_id)
    scheduled = [s for s in rows if s["snapshotType"] == "scheduled"]
    assert [s["createdAt"] for s in scheduled] == [
        format_time(START + timedelta(days=d)) for d in (30, 29, 28)
    ]
    assert all(s["status"] == "completed" for s in rows)
    assert [s["id"] for s in rows if s["snapshotType"] == "onDemand"] == [on_demand]
    assert storage.snapshots_started() == 1 + 1 + 30  # the first, the on-demand one, one per day
    assert_storage_matches_the_database(client, project_id, storage)
    backup = client.get(f"/groups/{project_id}/clusters/rs1/backup").get_json()
    assert backup["nextSnapshotAt"] == format_time(START + timedelta(days=31))
    assert backup["referenceTime"] == format_time(START)
    assert backup["snapshotIds"] == [s["id"] for s in rows]


def test_advancing_in_uneven_steps_takes_the_same_slots_without_drift(
    client: ApiClient, storage: ShimStorage
) -> None:
    project_id = create_project(client)
    create_cluster(client, project_id)
    advance(client, 3600 + 17)  # backup enabled at 13:00:17
    enable_backup(client, project_id)
    for step in (5 * 3600, 19 * 3600 - 18, 1, 3 * DAY + 7, 11 * 3600):
        advance(client, step)
    created = [s["createdAt"] for s in snapshots(client, project_id)]
    reference = START + timedelta(seconds=3617)
    assert created == [format_time(reference + timedelta(days=d)) for d in (4, 3, 2)]
    assert_storage_matches_the_database(client, project_id, storage)


def test_a_slot_is_not_taken_before_it_is_due(client: ApiClient, storage: ShimStorage) -> None:
    project_id = create_project(client)
    create_cluster(client, project_id)
    enable_backup(client, project_id)
    advance(client, DAY - 1)
    assert len(snapshots(client, project_id)) == 1
    assert storage.snapshots_started() == 1
    advance(client, 1)
    assert [s["status"] for s in snapshots(client, project_id)] == ["completed", "completed"]
    assert len(stored_ids(storage)) == 2


def test_a_failed_snapshot_neither_counts_nor_pushes_out_a_good_one(
    client: ApiClient, storage: ShimStorage
) -> None:
    project_id = create_project(client)
    create_cluster(client, project_id)
    enable_backup(client, project_id)  # day 0
    advance(client, 2 * DAY)  # days 1, 2
    storage.fail_next_snapshots(1)
    advance(client, DAY)  # day 3 fails
    rows = snapshots(client, project_id)
    assert [s["status"] for s in rows] == ["failed", "completed", "completed", "completed"]
    assert rows[0]["failureReason"] == "InternalDiskError: injected failure"
    assert_storage_matches_the_database(client, project_id, storage)
    advance(client, DAY)  # day 4 succeeds: days 4, 2 and 1 are the last three good ones
    rows = snapshots(client, project_id)
    good = [s["createdAt"] for s in rows if s["status"] == "completed"]
    assert good == [format_time(START + timedelta(days=d)) for d in (4, 2, 1)]
    assert [s["status"] for s in rows] == ["completed", "failed", "completed", "completed"]
    assert_storage_matches_the_database(client, project_id, storage)
    advance(client, 2 * DAY)  # days 5 and 6: the failed one is now older than every kept one
    rows = snapshots(client, project_id)
    assert [s["createdAt"] for s in rows] == [format_time(START + timedelta(days=d)) for d in (6, 5, 4)]
    assert_storage_matches_the_database(client, project_id, storage)


def test_clusters_with_different_reference_times_each_keep_their_own_slots(client: ApiClient) -> None:
    project_id = create_project(client)
    create_cluster(client, project_id, "rs1")
    create_cluster(client, project_id, "late")
    enable_backup(client, project_id, "rs1")
    advance(client, 6 * 3600)
    enable_backup(client, project_id, "late")
    advance(client, 2 * DAY)
    early = [s["createdAt"] for s in snapshots(client, project_id)]
    late = [
        s["createdAt"]
        for s in client.get(f"/groups/{project_id}/clusters/late/backup/snapshots").get_json()["results"]
    ]
    assert early == [format_time(START + timedelta(days=d)) for d in (2, 1, 0)]
    assert late == [format_time(START + timedelta(hours=6, days=d)) for d in (2, 1, 0)]


def test_after_real_downtime_one_catch_up_snapshot_is_taken_then_the_next_slot_in_the_future(
    app: Flask, client: ApiClient, config: Config, data_dir: Path
) -> None:
    project_id = create_project(client)
    create_cluster(client, project_id)
    enable_backup(client, project_id)
    shutdown(app)
    # The shim was down three and a half days: it starts again on a clock that is that much later.
    later = Config(
        data_dir=data_dir,
        database_url=config.database_url,
        clock=ManualClock(START + timedelta(days=3, hours=12)),
        manual_clock=True,
        driver_factory=config.driver_factory,
    )
    restarted = create_app(later)
    try:
        again = client.as_key(client.key)  # type: ignore[arg-type]
        again.client = restarted.test_client()
        rows = snapshots(again, project_id)
        assert len(rows) == 2  # the first, and one catch-up: never a burst
        catch_up = rows[0]
        assert catch_up["createdAt"] == format_time(START + timedelta(days=3, hours=12))
        backup = again.get(f"/groups/{project_id}/clusters/rs1/backup").get_json()
        assert backup["nextSnapshotAt"] == format_time(START + timedelta(days=4))
        advance(again, 12 * 3600)
        assert len(snapshots(again, project_id)) == 3
    finally:
        shutdown(restarted)


@pytest.mark.drivers("local")
def test_a_manual_clock_keeps_its_time_across_a_restart(
    app: Flask, client: ApiClient, config: Config, data_dir: Path
) -> None:
    advance(client, 5 * DAY)
    shutdown(app)
    restarted = create_app(
        Config(
            data_dir=data_dir,
            database_url=config.database_url,
            manual_clock=True,
            driver_factory=config.driver_factory,
        )
    )
    try:
        again = client.as_key(client.key)  # type: ignore[arg-type]
        again.client = restarted.test_client()
        assert again.get("/admin/clock").get_json()["now"] == format_time(START + timedelta(days=5))
    finally:
        shutdown(restarted)


def test_two_schedulers_ticking_at_once_never_take_two_snapshots_for_one_slot(
    app: Flask, client: ApiClient, config: Config, data_dir: Path, clock: ManualClock, storage: ShimStorage
) -> None:
    project_id = create_project(client)
    for index in range(20):
        create_cluster(
            client,
            project_id,
            f"c{index}",
            replicationSpecs=[{"regionsConfig": {"eastus2": {"electableNodes": 1}}}],
        )
        enable_backup(client, project_id, f"c{index}")
    # A second process on the same database and storage, its clock at the same moment.
    other = create_app(
        Config(
            data_dir=data_dir,
            database_url=config.database_url,
            clock=clock,
            manual_clock=True,
            driver_factory=config.driver_factory,
            batch_size=7,
        )
    )
    try:
        clock.set(START + timedelta(days=1))
        services = [app.extensions["cloudbackup"].service, other.extensions["cloudbackup"].service]
        barrier = threading.Barrier(4)
        errors: list[BaseException] = []

        def tick(service) -> None:
            try:
                barrier.wait()
                service.tick()
            except BaseException as error:  # pragma: no cover - reported below
                errors.append(error)

        threads = [threading.Thread(target=tick, args=(s,)) for s in services * 2]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
    finally:
        shutdown(other)
    total = 0
    for index in range(20):
        rows = client.get(f"/groups/{project_id}/clusters/c{index}/backup/snapshots").get_json()["results"]
        assert [s["createdAt"] for s in rows] == [format_time(START + timedelta(days=1)), format_time(START)]
        total += len(rows)
    assert total == 40
    assert storage.snapshots_started() == 40
    settle(client)
    assert len(stored_ids(storage)) == 40
