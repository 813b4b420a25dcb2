"""Snapshots through the API: on-demand ones, listing, reading, deleting, R6 (where) and R9 (when gone).

Every test runs once per driver kind, looking at that driver's storage itself.
"""

from __future__ import annotations

import pytest
from flask import Flask
from shimkit import (
    ApiClient,
    advance,
    create_cluster,
    create_project,
    enable_backup,
    member_volumes,
    settle,
    snapshot_handle,
)
from shimstorage import ShimStorage, stored_ids, volume_handles

pytestmark = pytest.mark.drivers()

SNAPSHOTS = "/groups/{}/clusters/rs1/backup/snapshots"


def test_an_on_demand_snapshot_is_taken_and_described(client: ApiClient, storage: ShimStorage) -> None:
    project_id = create_project(client)
    create_cluster(client, project_id)
    enable_backup(client, project_id)
    response = client.post(SNAPSHOTS.format(project_id), {"description": "before the migration"})
    assert response.status_code == 201
    assert response.get_json()["status"] in ("inProgress", "completed")  # a cloud's copy takes a while
    settle(client)
    body = client.get(SNAPSHOTS.format(project_id) + f"/{response.get_json()['id']}").get_json()
    assert body["status"] == "completed"
    assert body["snapshotType"] == "onDemand"
    assert body["description"] == "before the migration"
    assert body["expiresAt"] is None
    assert body["type"] == "replicaSet" and body["cloudProvider"] == "AZURE"
    assert body["replicaSetName"] == "rs1"
    if storage.checksums:
        assert body["checksum"].startswith("sha256-4m:")
    else:
        assert body["checksum"] is None
    assert body["failureReason"] is None
    assert body["id"] in stored_ids(storage)


def test_on_demand_snapshots_need_cloud_provider_snapshots_enabled(client: ApiClient) -> None:
    project_id = create_project(client)
    create_cluster(client, project_id)
    response = client.post(SNAPSHOTS.format(project_id), {})
    assert response.status_code == 400
    body = response.get_json()
    assert body["errorCode"] == "BACKUP_NOT_ENABLED"
    assert "PUT" in body["detail"] and "CLOUD_PROVIDER_SNAPSHOTS" in body["detail"]


def test_r6_a_snapshot_is_stored_in_the_preferred_region_of_a_multi_region_cluster(
    client: ApiClient, storage: ShimStorage
) -> None:
    project_id = create_project(client)
    create_cluster(
        client,
        project_id,
        replicationSpecs=[
            {
                "regionsConfig": {
                    "westeurope": {"priority": 5},
                    "northeurope": {"priority": 7},
                    "uksouth": {"priority": 6},
                }
            }
        ],
    )
    backup = enable_backup(client, project_id)
    assert backup["storageRegion"] == "northeurope"
    settle(client)
    snapshot = client.get(SNAPSHOTS.format(project_id)).get_json()["results"][0]
    assert snapshot["regionName"] == "northeurope" and snapshot["status"] == "completed"
    assert storage.stored_by_region() == {"northeurope": {snapshot["id"]}}


def test_a_snapshot_copies_the_preferred_regions_first_member_byte_for_byte(
    client: ApiClient, app: Flask, storage: ShimStorage
) -> None:
    project_id = create_project(client)
    create_cluster(client, project_id)
    volumes = member_volumes(app, project_id, "rs1")
    storage.write(volumes[("eastus2", 0)], b"mongodb pages " * 1000, offset=4096)
    storage.write(volumes[("eastus2", 1)], b"another member", offset=4096)
    enable_backup(client, project_id)
    settle(client)
    snapshot = client.get(SNAPSHOTS.format(project_id)).get_json()["results"][0]
    stored = snapshot_handle(app, snapshot["id"])
    assert storage.fingerprint(stored) == storage.fingerprint(volumes[("eastus2", 0)])
    assert storage.read(stored, 4096, 14) == b"mongodb pages "
    if storage.kind == "local":
        assert snapshot["storageSizeBytes"] < 16 << 20  # holes are kept: 1 GiB logical, a few MiB stored
    else:
        assert snapshot["storageSizeBytes"] == 1 << 30  # a full Azure snapshot holds the whole disk


def test_snapshots_are_listed_newest_first_and_paged(client: ApiClient) -> None:
    project_id = create_project(client)
    create_cluster(client, project_id)
    enable_backup(client, project_id)
    ids = [
        client.post(SNAPSHOTS.format(project_id), {"description": str(i)}).get_json()["id"] for i in range(3)
    ]
    advance(client, 60)
    ids.append(client.post(SNAPSHOTS.format(project_id), {}).get_json()["id"])
    listing = client.get(SNAPSHOTS.format(project_id)).get_json()
    assert listing["totalCount"] == 5
    assert [s["id"] for s in listing["results"]][:4] == ids[::-1]
    page = client.get(SNAPSHOTS.format(project_id) + "?itemsPerPage=2&pageNum=2").get_json()
    assert page["totalCount"] == 5
    assert [s["id"] for s in page["results"]] == [ids[1], ids[0]]


def test_a_snapshot_is_read_by_id_and_unknown_ids_are_snapshot_not_found(client: ApiClient) -> None:
    project_id = create_project(client)
    create_cluster(client, project_id)
    enable_backup(client, project_id)
    snapshot_id = client.get(SNAPSHOTS.format(project_id)).get_json()["results"][0]["id"]
    assert client.get(SNAPSHOTS.format(project_id) + f"/{snapshot_id}").get_json()["id"] == snapshot_id
    for unknown in ("0123456789abcdef01234567", "x"):
        response = client.get(SNAPSHOTS.format(project_id) + f"/{unknown}")
        assert response.status_code == 404
        assert response.get_json()["errorCode"] == "SNAPSHOT_NOT_FOUND"


def test_a_snapshot_of_another_cluster_is_not_found_under_this_one(client: ApiClient) -> None:
    project_id = create_project(client)
    create_cluster(client, project_id, "rs1")
    create_cluster(client, project_id, "rs2")
    enable_backup(client, project_id, "rs2")
    other = client.get(f"/groups/{project_id}/clusters/rs2/backup/snapshots").get_json()["results"][0]["id"]
    assert client.get(SNAPSHOTS.format(project_id) + f"/{other}").status_code == 404
    assert client.delete(SNAPSHOTS.format(project_id) + f"/{other}").status_code == 404


def test_deleting_a_snapshot_removes_it_from_storage_and_the_list(
    client: ApiClient, storage: ShimStorage
) -> None:
    project_id = create_project(client)
    create_cluster(client, project_id)
    enable_backup(client, project_id)
    snapshot_id = client.post(SNAPSHOTS.format(project_id), {}).get_json()["id"]
    settle(client)
    assert snapshot_id in stored_ids(storage)
    assert client.delete(SNAPSHOTS.format(project_id) + f"/{snapshot_id}").status_code == 204
    assert snapshot_id not in stored_ids(storage)
    assert client.get(SNAPSHOTS.format(project_id) + f"/{snapshot_id}").status_code == 404
    assert client.delete(SNAPSHOTS.format(project_id) + f"/{snapshot_id}").status_code == 404


def test_r9_disabling_backup_deletes_every_snapshot_from_storage_on_demand_ones_too(
    client: ApiClient, storage: ShimStorage
) -> None:
    project_id = create_project(client)
    create_cluster(client, project_id)
    create_cluster(client, project_id, "keep")
    enable_backup(client, project_id)
    enable_backup(client, project_id, "keep")
    client.post(SNAPSHOTS.format(project_id), {})
    advance(client, 2 * 86400)
    kept = set(client.get(f"/groups/{project_id}/clusters/keep/backup").get_json()["snapshotIds"])
    assert len(stored_ids(storage)) == 4 + 3
    assert client.delete(f"/groups/{project_id}/clusters/rs1/backup").status_code == 204
    assert stored_ids(storage) == kept
    assert client.get(SNAPSHOTS.format(project_id)).get_json()["totalCount"] == 0


def test_r9_terminating_a_cluster_deletes_every_snapshot_and_volume(
    client: ApiClient, app: Flask, storage: ShimStorage
) -> None:
    project_id = create_project(client)
    create_cluster(client, project_id)
    create_cluster(client, project_id, "other", providerBackupEnabled=True)
    enable_backup(client, project_id)
    client.post(SNAPSHOTS.format(project_id), {})
    advance(client, 86400)
    assert len(stored_ids(storage)) == 3 + 2
    assert len(volume_handles(storage)) == 5 + 5
    others = set(client.get(f"/groups/{project_id}/clusters/other/backup").get_json()["snapshotIds"])
    assert client.delete(f"/groups/{project_id}/clusters/rs1").status_code == 204
    assert stored_ids(storage) == others
    assert volume_handles(storage) == set(member_volumes(app, project_id, "other").values())


def test_a_snapshot_that_fails_records_the_drivers_code_and_message(
    client: ApiClient, storage: ShimStorage
) -> None:
    project_id = create_project(client)
    create_cluster(client, project_id)
    enable_backup(client, project_id)

    def failed_snapshot() -> dict:
        snapshot_id = client.post(SNAPSHOTS.format(project_id), {}).get_json()["id"]
        settle(client)
        return client.get(SNAPSHOTS.format(project_id) + f"/{snapshot_id}").get_json()

    storage.fail_next_snapshots(1)
    body = failed_snapshot()
    assert body["status"] == "failed"
    assert body["failureReason"] == "InternalDiskError: injected failure"
    assert body["id"] not in stored_ids(storage)
    storage.fail_next_snapshots(1, at_start=True)
    body = failed_snapshot()
    assert body["status"] == "failed"
    assert body["failureReason"] == "OperationNotAllowed: injected failure at start"
    assert body["id"] not in stored_ids(storage)
