"""Operations that take a while, as in a cloud: answered inProgress, polled by ticks, awaited as promised."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask import Flask
from shimkit import ApiClient, SlowDriver, advance, all_stored_ids, create_cluster, create_project

from shim.config import Config
from shim.drivers.local import LocalDriver


@pytest.fixture
def config(config: Config) -> Config:
    config.driver_factory = lambda c: SlowDriver(LocalDriver(c.data_dir, durable=False), polls=1)
    return config


def statuses(client: ApiClient, project_id: str, name: str = "rs1") -> list[str]:
    rows = client.get(f"/groups/{project_id}/clusters/{name}/backup/snapshots").get_json()["results"]
    return [row["status"] for row in rows]


def test_enabling_backup_answers_while_the_first_snapshot_runs_and_a_tick_finishes_it(
    app: Flask, client: ApiClient
) -> None:
    project_id = create_project(client)
    create_cluster(client, project_id)
    backup = client.put(f"/groups/{project_id}/clusters/rs1/backup", {}).get_json()
    assert backup["enabled"] is True and backup["snapshotIds"] == []
    assert statuses(client, project_id) == ["inProgress"]
    service = app.extensions["cloudbackup"].service
    service.tick()
    assert statuses(client, project_id) == ["completed"]


def test_advancing_waits_for_running_snapshots_and_applies_retention(
    client: ApiClient, data_dir: Path
) -> None:
    project_id = create_project(client)
    create_cluster(client, project_id, providerBackupEnabled=True)
    advance(client, 5 * 86400)
    assert statuses(client, project_id) == ["completed"] * 3
    assert len(all_stored_ids(data_dir)) == 3


def test_disabling_backup_waits_for_a_running_snapshot_then_deletes_it_from_storage(
    client: ApiClient, data_dir: Path
) -> None:
    project_id = create_project(client)
    create_cluster(client, project_id, providerBackupEnabled=True)
    assert statuses(client, project_id) == ["inProgress"]
    assert client.delete(f"/groups/{project_id}/clusters/rs1/backup").status_code == 204
    assert statuses(client, project_id) == []
    assert all_stored_ids(data_dir) == set()


def test_a_restore_runs_in_the_background_with_the_target_restoring(app: Flask, client: ApiClient) -> None:
    project_id = create_project(client)
    create_cluster(client, project_id, providerBackupEnabled=True)
    create_cluster(client, project_id, "dst")
    service = app.extensions["cloudbackup"].service
    service.tick()
    snapshot = client.get(f"/groups/{project_id}/clusters/rs1/backup/snapshots").get_json()["results"][0]
    job = client.post(
        f"/groups/{project_id}/clusters/rs1/backup/restoreJobs",
        {"snapshotId": snapshot["id"], "targetClusterName": "dst"},
    ).get_json()
    assert job["status"] == "inProgress" and job["finishedAt"] is None
    assert client.get(f"/groups/{project_id}/clusters/dst").get_json()["stateName"] == "RESTORING"
    service.tick()
    path = f"/groups/{project_id}/clusters/rs1/backup/restoreJobs/{job['id']}"
    assert client.get(path).get_json()["status"] == "completed"
    assert client.get(f"/groups/{project_id}/clusters/dst").get_json()["stateName"] == "IDLE"


def test_a_snapshot_still_running_cannot_be_deleted_yet(client: ApiClient) -> None:
    project_id = create_project(client)
    create_cluster(client, project_id, providerBackupEnabled=True)
    snapshot_id = client.get(f"/groups/{project_id}/clusters/rs1/backup/snapshots").get_json()["results"][0][
        "id"
    ]
    response = client.delete(f"/groups/{project_id}/clusters/rs1/backup/snapshots/{snapshot_id}")
    assert response.status_code == 409
    assert response.get_json()["errorCode"] == "SNAPSHOT_IN_PROGRESS"
