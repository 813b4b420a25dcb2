"""Snapshots through the API: on-demand ones, listing, reading, deleting, R6 (where) and R9 (when gone)."""

from __future__ import annotations

from pathlib import Path

from shimkit import (
    ApiClient,
    FlakyDriver,
    advance,
    all_stored_ids,
    content_fingerprint,
    create_cluster,
    create_project,
    enable_backup,
    stored_snapshot_files,
    write_volume_data,
)

SNAPSHOTS = "/groups/{}/clusters/rs1/backup/snapshots"


def test_an_on_demand_snapshot_is_taken_and_described(client: ApiClient, data_dir: Path) -> None:
    project_id = create_project(client)
    create_cluster(client, project_id)
    enable_backup(client, project_id)
    response = client.post(SNAPSHOTS.format(project_id), {"description": "before the migration"})
    assert response.status_code == 201
    body = response.get_json()
    assert body["status"] == "completed"
    assert body["snapshotType"] == "onDemand"
    assert body["description"] == "before the migration"
    assert body["expiresAt"] is None
    assert body["type"] == "replicaSet" and body["cloudProvider"] == "AZURE"
    assert body["replicaSetName"] == "rs1"
    assert body["checksum"].startswith("sha256-4m:")
    assert body["failureReason"] is None
    assert body["id"] in all_stored_ids(data_dir)


def test_on_demand_snapshots_need_cloud_provider_snapshots_enabled(client: ApiClient) -> None:
    project_id = create_project(client)
    create_cluster(client, project_id)
    response = client.post(SNAPSHOTS.format(project_id), {})
    assert response.status_code == 400
    body = response.get_json()
    assert body["errorCode"] == "BACKUP_NOT_ENABLED"
    assert "PUT" in body["detail"] and "CLOUD_PROVIDER_SNAPSHOTS" in body["detail"]


def test_r6_a_snapshot_is_stored_in_the_preferred_region_of_a_multi_region_cluster(
    client: ApiClient, data_dir: Path
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
    snapshot = client.get(SNAPSHOTS.format(project_id)).get_json()["results"][0]
    assert snapshot["regionName"] == "northeurope"
    assert stored_snapshot_files(data_dir) == {"northeurope": {snapshot["id"]}}


def test_a_snapshot_copies_the_preferred_regions_first_member_byte_for_byte(
    client: ApiClient, data_dir: Path
) -> None:
    project_id = create_project(client)
    create_cluster(client, project_id)
    volume = next(p for p in (data_dir / "volumes" / "eastus2").rglob("member-0.img"))
    write_volume_data(data_dir, str(volume.relative_to(data_dir)), b"mongodb pages " * 1000, offset=4096)
    enable_backup(client, project_id)
    snapshot = client.get(SNAPSHOTS.format(project_id)).get_json()["results"][0]
    stored = data_dir / "snapshots" / "eastus2" / f"{snapshot['id']}.snap"
    assert content_fingerprint(stored) == content_fingerprint(volume)
    with open(stored, "rb") as copy:
        copy.seek(4096)
        assert copy.read(14) == b"mongodb pages "
    assert snapshot["storageSizeBytes"] < 16 << 20  # holes are kept: 1 GiB logical, a few MiB stored


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


def test_deleting_a_snapshot_removes_it_from_storage_and_the_list(client: ApiClient, data_dir: Path) -> None:
    project_id = create_project(client)
    create_cluster(client, project_id)
    enable_backup(client, project_id)
    snapshot_id = client.post(SNAPSHOTS.format(project_id), {}).get_json()["id"]
    assert snapshot_id in all_stored_ids(data_dir)
    assert client.delete(SNAPSHOTS.format(project_id) + f"/{snapshot_id}").status_code == 204
    assert snapshot_id not in all_stored_ids(data_dir)
    assert client.get(SNAPSHOTS.format(project_id) + f"/{snapshot_id}").status_code == 404
    assert client.delete(SNAPSHOTS.format(project_id) + f"/{snapshot_id}").status_code == 404


def test_r9_disabling_backup_deletes_every_snapshot_from_storage_on_demand_ones_too(
    client: ApiClient, data_dir: Path
) -> None:
    project_id = create_project(client)
    create_cluster(client, project_id)
    create_cluster(client, project_id, "keep")
    enable_backup(client, project_id)
    enable_backup(client, project_id, "keep")
    client.post(SNAPSHOTS.format(project_id), {})
    advance(client, 2 * 86400)
    kept = set(client.get(f"/groups/{project_id}/clusters/keep/backup").get_json()["snapshotIds"])
    assert len(all_stored_ids(data_dir)) == 4 + 3
    assert client.delete(f"/groups/{project_id}/clusters/rs1/backup").status_code == 204
    assert all_stored_ids(data_dir) == kept
    assert client.get(SNAPSHOTS.format(project_id)).get_json()["totalCount"] == 0


def test_r9_terminating_a_cluster_deletes_every_snapshot_and_volume(
    client: ApiClient, data_dir: Path
) -> None:
    project_id = create_project(client)
    create_cluster(client, project_id)
    enable_backup(client, project_id)
    client.post(SNAPSHOTS.format(project_id), {})
    advance(client, 86400)
    assert len(all_stored_ids(data_dir)) == 3
    assert client.delete(f"/groups/{project_id}/clusters/rs1").status_code == 204
    assert all_stored_ids(data_dir) == set()
    assert not list((data_dir / "volumes").rglob("*.img"))


def test_a_snapshot_that_fails_records_the_drivers_code_and_message(
    client: ApiClient, driver: FlakyDriver, data_dir: Path
) -> None:
    project_id = create_project(client)
    create_cluster(client, project_id)
    enable_backup(client, project_id)
    driver.fail_snapshots = 1
    body = client.post(SNAPSHOTS.format(project_id), {}).get_json()
    assert body["status"] == "failed"
    assert body["failureReason"] == "InternalDiskError: injected failure"
    assert body["id"] not in all_stored_ids(data_dir)
    driver.fail_snapshots, driver.fail_at_start = 1, True
    body = client.post(SNAPSHOTS.format(project_id), {}).get_json()
    assert body["status"] == "failed"
    assert body["failureReason"] == "OperationNotAllowed: injected failure at start"
