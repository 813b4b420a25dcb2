"""Reconciliation of the snapshot rows with storage, at start and periodically while serving, per driver.

Storage is changed behind the shim's back through the driver itself (as another process or a person in
the Azure portal would), so the same test holds for every driver kind.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from flask import Flask
from shimkit import ApiClient, create_cluster, create_project, enable_backup, member_volumes, settle
from shimstorage import ShimStorage, stored_ids
from sqlalchemy import update

from shim.app import create_app, shutdown
from shim.config import Config
from shim.drivers.base import Driver
from shim.service import Service, new_id
from shim.store.models import Snapshot

pytestmark = pytest.mark.drivers()

SNAPSHOTS = "/groups/{}/clusters/rs1/backup/snapshots"
Restart = Callable[[], tuple[Service, ApiClient]]


def service_of(app: Flask) -> Service:
    return app.extensions["cloudbackup"].service


@pytest.fixture
def restart(app: Flask, config: Config, client: ApiClient) -> Iterator[Restart]:
    """Stop the shim and start another on the same database and storage; returns its service and client."""
    apps = [app]

    def again() -> tuple[Service, ApiClient]:
        shutdown(apps[-1])
        apps.append(create_app(config))
        restarted = client.as_key(client.key)  # type: ignore[arg-type]
        restarted.client = apps[-1].test_client()
        return service_of(apps[-1]), restarted

    yield again
    if len(apps) > 1:
        shutdown(apps[-1])
        # The app fixture shuts its own app down again: make that harmless.
        app.extensions["cloudbackup"] = apps[-1].extensions["cloudbackup"]


def plant(driver: Driver, volume: str, snapshot_id: str) -> str:
    """Take a snapshot in storage that the shim did not ask for (tagged as ours); return its handle."""
    token = driver.start_snapshot(volume_handle=volume, region="eastus2", snapshot_id=snapshot_id, tags={})
    deadline = time.monotonic() + 15
    while not (status := driver.poll(token)).finished:
        assert time.monotonic() < deadline, "the planted snapshot did not finish"
        time.sleep(0.005)
    assert status.state == "succeeded", status
    return str(status.result["handle"])


def starting(service: Service, snapshot_id: str) -> None:
    """The snapshot row as while its start is under way (or was, when the process died): queued, no token."""
    with service.store.write() as session:
        session.execute(
            update(Snapshot)
            .where(Snapshot.id == snapshot_id)
            .values(status="queued", op_token=None, handle=None, finished_at=None)
        )


def backed_up(client: ApiClient, app: Flask) -> tuple[str, str, str]:
    """A backed-up cluster with one completed snapshot: (project id, snapshot id, primary volume)."""
    project_id = create_project(client)
    create_cluster(client, project_id)
    enable_backup(client, project_id)
    settle(client)
    (snapshot,) = client.get(SNAPSHOTS.format(project_id)).get_json()["results"]
    assert snapshot["status"] == "completed"
    return project_id, snapshot["id"], member_volumes(app, project_id, "rs1")[("eastus2", 0)]


def test_a_stored_snapshot_of_ours_without_a_record_is_deleted_and_logged_while_serving_and_at_start(
    client: ApiClient, app: Flask, storage: ShimStorage, restart: Restart, caplog: pytest.LogCaptureFixture
) -> None:
    _, kept, volume = backed_up(client, app)
    service = service_of(app)
    orphan = new_id()
    plant(service.driver, volume, orphan)
    assert stored_ids(storage) == {kept, orphan}
    with caplog.at_level(logging.WARNING, logger="shim.service"):
        service.reconcile_storage()
    assert stored_ids(storage) == {kept}
    assert f"({orphan}): no record" in caplog.text
    caplog.clear()
    another = new_id()
    plant(service.driver, volume, another)
    with caplog.at_level(logging.WARNING, logger="shim.service"):
        restart()
    assert stored_ids(storage) == {kept}
    assert f"({another}): no record" in caplog.text


def test_a_stored_snapshot_whose_record_failed_is_deleted_and_the_record_kept(
    client: ApiClient, app: Flask, storage: ShimStorage, caplog: pytest.LogCaptureFixture
) -> None:
    project_id, kept, volume = backed_up(client, app)
    storage.fail_next_snapshots(1)
    failed = client.post(SNAPSHOTS.format(project_id), {}).get_json()["id"]
    settle(client)
    # What a failed copy can leave behind, e.g. when its clean-up was cut short.
    plant(service_of(app).driver, volume, failed)
    assert stored_ids(storage) == {kept, failed}
    with caplog.at_level(logging.WARNING, logger="shim.service"):
        service_of(app).reconcile_storage()
    assert stored_ids(storage) == {kept}
    assert f"({failed}): its record is failed" in caplog.text
    row = client.get(SNAPSHOTS.format(project_id) + f"/{failed}").get_json()
    assert row["status"] == "failed" and row["failureReason"] == "InternalDiskError: injected failure"


def test_a_completed_record_whose_snapshot_vanished_is_marked_failed_while_serving_and_at_start(
    client: ApiClient, app: Flask, storage: ShimStorage, restart: Restart
) -> None:
    project_id, first, _ = backed_up(client, app)
    second = client.post(SNAPSHOTS.format(project_id), {"description": "gone at start"}).get_json()["id"]
    third = client.post(SNAPSHOTS.format(project_id), {"description": "kept"}).get_json()["id"]
    settle(client)
    service = service_of(app)
    with service.store.read() as session:
        handles = {row.id: row.handle for row in session.query(Snapshot)}
    service.driver.delete_snapshot(handles[first] or "")  # deleted behind the shim's back
    service.reconcile_storage()
    gone = client.get(SNAPSHOTS.format(project_id) + f"/{first}").get_json()
    assert gone["status"] == "failed"
    assert gone["failureReason"].startswith(f"SNAPSHOT_VANISHED: the stored snapshot {handles[first]} was")
    assert "deleted outside cloudbackup" in gone["failureReason"]
    create_cluster(client, project_id, "dst", replicationSpecs=[{"regionsConfig": {"eastus2": {}}}])
    refused = client.post(
        f"/groups/{project_id}/clusters/rs1/backup/restoreJobs",
        {"snapshotId": first, "targetClusterName": "dst"},
    )
    assert refused.status_code == 400 and "only a completed snapshot" in refused.get_json()["detail"]

    service.driver.delete_snapshot(handles[second] or "")
    _, client = restart()
    statuses = {s["id"]: s["status"] for s in client.get(SNAPSHOTS.format(project_id)).get_json()["results"]}
    assert statuses == {first: "failed", second: "failed", third: "completed"}
    assert stored_ids(storage) == {third}


def test_a_snapshot_whose_token_was_not_recorded_is_left_alone_and_finished_with_its_copy_at_start(
    client: ApiClient, app: Flask, storage: ShimStorage, restart: Restart
) -> None:
    project_id, first, volume = backed_up(client, app)
    service = service_of(app)
    with service.store.read() as session:
        handle = session.get(Snapshot, first).handle  # type: ignore[union-attr]
    copy = storage.fingerprint(handle)
    storage.write(volume, b"written after the copy", offset=8192)
    # The row of a snapshot whose start is under way (or was, when the process died) is queued.
    starting(service, first)
    service.reconcile_storage()  # while serving: it may be starting this very moment
    assert stored_ids(storage) == {first}
    assert client.get(SNAPSHOTS.format(project_id) + f"/{first}").get_json()["status"] == "queued"
    _, client = restart()  # at start it is started again, and finishes with the copy storage holds
    settle(client)
    assert client.get(SNAPSHOTS.format(project_id) + f"/{first}").get_json()["status"] == "completed"
    assert stored_ids(storage) == {first}
    assert storage.fingerprint(handle) == copy != storage.fingerprint(volume)


@pytest.mark.drivers("local")
def test_a_copy_another_replica_has_under_way_is_left_alone_by_the_sweep_and_finished_at_start(
    client: ApiClient, app: Flask, data_dir: Path, restart: Restart
) -> None:
    project_id, first, _ = backed_up(client, app)
    service = service_of(app)
    # What another replica's copy looks like halfway: a queued row, and a partial data file with no sidecar.
    starting(service, first)
    region = data_dir / "snapshots" / "eastus2"
    (region / f"{first}.snap").rename(region / f"{first}.snap.partial")
    (region / f"{first}.json").unlink()
    service.reconcile_storage()
    assert (region / f"{first}.snap.partial").exists(), "the sweep deleted a copy under way"
    _, client = restart()
    settle(client)
    assert client.get(SNAPSHOTS.format(project_id) + f"/{first}").get_json()["status"] == "completed"
    assert sorted(path.name for path in region.iterdir()) == [f"{first}.json", f"{first}.snap"]
