"""Reconciliation at start: what a crash interrupted is finished, and storage is made to match the rows."""

from __future__ import annotations

import logging
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from shimkit import (
    ApiClient,
    all_stored_ids,
    create_cluster,
    create_project,
    enable_backup,
    member_volumes,
    write_volume_data,
)
from sqlalchemy import select, update

from shim.app import create_app, shutdown
from shim.config import Config
from shim.service import new_id
from shim.store.models import Cluster, RestoreJob, Snapshot, Volume


class Restarter:
    """Stops the app under test and starts another on the same data directory, as after a crash."""

    def __init__(self, app: Flask, config: Config, client: ApiClient) -> None:
        self.app, self.config, self.client = app, config, client
        self.stopped = False

    def store(self):
        return self.app.extensions["cloudbackup"].service.store

    def __call__(self) -> ApiClient:
        shutdown(self.app)
        self.app = create_app(self.config)
        self.client = self.client.as_key(self.client.key)  # type: ignore[arg-type]
        self.client.client = self.app.test_client()
        return self.client


@pytest.fixture
def restart(app: Flask, config: Config, client: ApiClient) -> Iterator[Restarter]:
    restarter = Restarter(app, config, client)
    yield restarter
    if restarter.app is not app:
        shutdown(restarter.app)
        # The app fixture shuts its own app down again: make that harmless.
        app.extensions["cloudbackup"] = restarter.app.extensions["cloudbackup"]


def snapshot_rows(restart: Restarter) -> list[Snapshot]:
    with restart.store().read() as session:
        return list(session.execute(select(Snapshot)).scalars())


def test_a_stored_snapshot_without_a_row_is_deleted_at_start(
    client: ApiClient, restart: Restarter, data_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    project_id = create_project(client)
    create_cluster(client, project_id)
    enable_backup(client, project_id)
    (kept,) = all_stored_ids(data_dir)
    region = data_dir / "snapshots" / "eastus2"
    orphan = new_id()
    # A complete snapshot in storage (data file and sidecar) that no row accounts for.
    (region / f"{orphan}.snap").write_bytes(b"copied before the crash")
    (region / f"{orphan}.json").write_text((region / f"{kept}.json").read_text().replace(kept, orphan))
    (region / "leftover.snap.partial").write_bytes(b"half a copy")
    with caplog.at_level(logging.WARNING, logger="shim.service"):
        restart()
    assert all_stored_ids(data_dir) == {kept}
    assert not (region / "leftover.snap.partial").exists()
    assert orphan in caplog.text and "no record" in caplog.text


def test_a_queued_snapshot_that_never_reached_the_driver_is_taken_at_start(
    client: ApiClient, restart: Restarter, data_dir: Path
) -> None:
    project_id = create_project(client)
    create_cluster(client, project_id)
    enable_backup(client, project_id)
    (first,) = snapshot_rows(restart)
    queued = new_id()
    with restart.store().write() as session:
        session.add(
            Snapshot(
                id=queued,
                cluster_id=first.cluster_id,
                project_id=project_id,
                snapshot_type="onDemand",
                status="queued",
                region="eastus2",
                volume_handle=first.volume_handle,
                created_at=first.created_at,
            )
        )
    restart()
    rows = {row.id: row for row in snapshot_rows(restart)}
    assert rows[queued].status == "completed"
    assert all_stored_ids(data_dir) == {first.id, queued}


def test_a_snapshot_copied_but_not_recorded_is_deleted_and_taken_again_at_start(
    client: ApiClient, restart: Restarter, data_dir: Path
) -> None:
    project_id = create_project(client)
    create_cluster(client, project_id)
    enable_backup(client, project_id)
    (first,) = snapshot_rows(restart)
    # The crash hit after the copy and before its token was committed: the row still says queued.
    with restart.store().write() as session:
        session.execute(
            update(Snapshot)
            .where(Snapshot.id == first.id)
            .values(status="queued", op_token=None, handle=None, checksum=None, finished_at=None)
        )
    restart()
    (row,) = snapshot_rows(restart)
    assert row.status == "completed" and row.handle and row.checksum
    assert all_stored_ids(data_dir) == {first.id}


def test_an_in_progress_snapshot_is_polled_again_at_start(
    client: ApiClient, restart: Restarter, data_dir: Path
) -> None:
    project_id = create_project(client)
    create_cluster(client, project_id)
    enable_backup(client, project_id)
    (first,) = snapshot_rows(restart)
    with restart.store().write() as session:
        session.execute(
            update(Snapshot)
            .where(Snapshot.id == first.id)
            .values(status="inProgress", handle=None, checksum=None)
        )
    restart()
    (row,) = snapshot_rows(restart)
    assert row.status == "completed" and row.checksum == first.checksum


def test_an_unfinished_termination_is_finished_at_start(
    client: ApiClient, restart: Restarter, data_dir: Path
) -> None:
    project_id = create_project(client)
    create_cluster(client, project_id)
    enable_backup(client, project_id)
    with restart.store().write() as session:
        session.execute(update(Cluster).values(state="DELETING", backup_method=None, next_due_at=None))
    restart()
    assert restart.client.get(f"/groups/{project_id}/clusters/rs1").status_code == 404
    assert all_stored_ids(data_dir) == set()
    assert not list((data_dir / "volumes").rglob("*.img"))


def test_an_unfinished_disable_deletes_the_remaining_snapshots_at_start(
    client: ApiClient, restart: Restarter, data_dir: Path
) -> None:
    project_id = create_project(client)
    create_cluster(client, project_id)
    enable_backup(client, project_id)
    with restart.store().write() as session:
        session.execute(update(Cluster).values(backup_method=None, reference_time=None, next_due_at=None))
    restart()
    assert snapshot_rows(restart) == []
    assert all_stored_ids(data_dir) == set()


def test_an_unfinished_creation_is_finished_at_start(
    client: ApiClient, restart: Restarter, data_dir: Path
) -> None:
    project_id = create_project(client)
    create_cluster(client, project_id, providerBackupEnabled=True)
    # As if the crash came after the intent: the cluster CREATING, two volumes not made, no schedule yet.
    with restart.store().write() as session:
        volumes = list(session.execute(select(Volume).order_by(Volume.id)).scalars())
        for volume in volumes[:2]:
            (data_dir / (volume.handle or "")).unlink()
            volume.handle = None
        session.execute(update(Cluster).values(state="CREATING", reference_time=None, next_due_at=None))
        session.execute(Snapshot.__table__.delete())
    shutil.rmtree(data_dir / "snapshots")
    restart()
    cluster = restart.client.get(f"/groups/{project_id}/clusters/rs1").get_json()
    assert cluster["stateName"] == "IDLE" and cluster["providerBackupEnabled"] is True
    assert len(list((data_dir / "volumes").rglob("*.img"))) == 5
    rows = snapshot_rows(restart)
    assert [row.status for row in rows] == ["completed"]
    assert all_stored_ids(data_dir) == {rows[0].id}


def test_a_queued_restore_job_runs_at_start(
    app: Flask, client: ApiClient, restart: Restarter, data_dir: Path
) -> None:
    project_id = create_project(client)
    create_cluster(client, project_id)
    create_cluster(client, project_id, "dst")
    data = b"the data the snapshot holds " * 100
    for handle in member_volumes(app, project_id, "rs1").values():
        write_volume_data(data_dir, handle, data, offset=4096)
    enable_backup(client, project_id)
    target_handles = list(member_volumes(app, project_id, "dst").values())
    for handle in target_handles:
        write_volume_data(data_dir, handle, b"x" * len(data), offset=4096)
    (snapshot,) = snapshot_rows(restart)
    with restart.store().read() as session:
        target = session.execute(select(Cluster).where(Cluster.name == "dst")).scalar_one()
        volumes = list(session.execute(select(Volume).where(Volume.cluster_id == target.id)).scalars())
    job_id = new_id()
    with restart.store().write() as session:
        session.add(
            RestoreJob(
                id=job_id,
                project_id=project_id,
                cluster_id=snapshot.cluster_id,
                snapshot_id=snapshot.id,
                target_project_id=project_id,
                target_cluster_id=target.id,
                target_cluster_name="dst",
                status="queued",
                created_at=snapshot.created_at,
                operations=[
                    {
                        "volumeId": v.id,
                        "region": v.region,
                        "volumeHandle": v.handle,
                        "token": None,
                        "state": "queued",
                    }
                    for v in volumes
                ],
            )
        )
    client = restart()
    job = client.get(f"/groups/{project_id}/clusters/rs1/backup/restoreJobs/{job_id}").get_json()
    assert job["status"] == "completed"
    # The restore really ran: every target volume now holds the snapshot's data.
    for handle in target_handles:
        with open(data_dir / handle, "rb") as volume:
            volume.seek(4096)
            assert volume.read(len(data)) == data, handle
