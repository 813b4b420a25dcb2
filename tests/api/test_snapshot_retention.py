"""On-demand snapshots with Atlas' retentionInDays: an expiresAt, and deletion once it passes."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

from flask import Flask
from shimkit import ApiClient, advance, all_stored_ids, create_cluster, create_project, enable_backup, settle

from shim.clock import ManualClock


def test_an_on_demand_snapshot_with_retention_in_days_expires_and_is_deleted_from_storage(
    client: ApiClient, data_dir: Path
) -> None:
    project_id = create_project(client)
    create_cluster(client, project_id)
    enable_backup(client, project_id)
    base = f"/groups/{project_id}/clusters/rs1/backup/snapshots"
    kept = client.post(base, {"description": "kept"}).get_json()
    response = client.post(base, {"description": "atlas client", "retentionInDays": 2})
    assert response.status_code == 201, response.get_json()
    expiring = response.get_json()
    assert kept["expiresAt"] is None
    created = datetime.fromisoformat(expiring["createdAt"].replace("Z", "+00:00"))
    assert datetime.fromisoformat(expiring["expiresAt"].replace("Z", "+00:00")) == created + timedelta(days=2)
    settle(client)
    assert expiring["id"] in all_stored_ids(data_dir)

    advance(client, 2 * 24 * 3600 - 60)
    assert client.get(f"{base}/{expiring['id']}").status_code == 200

    advance(client, 60)
    assert client.get(f"{base}/{expiring['id']}").status_code == 404
    assert expiring["id"] not in all_stored_ids(data_dir)
    assert client.get(f"{base}/{kept['id']}").status_code == 200


def test_retention_in_days_must_be_a_positive_number_of_days(client: ApiClient) -> None:
    project_id = create_project(client)
    create_cluster(client, project_id)
    enable_backup(client, project_id)
    response = client.post(f"/groups/{project_id}/clusters/rs1/backup/snapshots", {"retentionInDays": 0})
    assert response.status_code == 400
    assert response.get_json()["errorCode"] == "INVALID_ATTRIBUTE"
    assert response.get_json()["parameters"] == ["/retentionInDays"]


def test_the_scheduler_deletes_an_expired_on_demand_snapshot_on_its_next_pass(
    app: Flask, client: ApiClient, clock: ManualClock
) -> None:
    project_id = create_project(client)
    create_cluster(client, project_id)
    enable_backup(client, project_id)
    base = f"/groups/{project_id}/clusters/rs1/backup/snapshots"
    expiring = client.post(base, {"retentionInDays": 1}).get_json()
    settle(client)
    service = app.extensions["cloudbackup"].service

    clock.set(clock.now() + timedelta(hours=23))
    service.tick()
    assert client.get(f"{base}/{expiring['id']}").status_code == 200

    clock.set(clock.now() + timedelta(hours=1))
    service.tick()
    assert client.get(f"{base}/{expiring['id']}").status_code == 404
