"""The backup rules R1-R5 and R11 through PUT .../backup, cluster POST and PATCH, with dry runs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from shimkit import ApiClient, all_stored_ids, cluster_body, create_cluster, create_project, enable_backup


def put_backup(
    client: ApiClient, project_id: str, name: str = "rs1", method: str | None = None, dry: bool = False
):
    path = f"/groups/{project_id}/clusters/{name}/backup" + ("?dryRun=true" if dry else "")
    return client.put(path, {} if method is None else {"method": method})


def state(client: ApiClient, project_id: str) -> dict[str, Any]:
    """What a refused request must leave unchanged: the project, its clusters and their snapshots."""
    clusters = client.get(f"/groups/{project_id}/clusters").get_json()["results"]
    return {
        "project": client.get(f"/groups/{project_id}").get_json(),
        "clusters": clusters,
        "snapshots": {
            c["name"]: client.get(f"/groups/{project_id}/clusters/{c['name']}/backup/snapshots").get_json()
            for c in clusters
        },
    }


@pytest.mark.parametrize(
    ("overrides", "code", "rule_words"),
    [
        (
            {"providerSettings": {"providerName": "AZURE", "instanceSizeName": "M5"}},
            "TIER_NOT_SUPPORTED",
            "M10 or larger",
        ),
        (
            {"providerSettings": {"providerName": "AZURE", "instanceSizeName": "M0"}},
            "TIER_NOT_SUPPORTED",
            "M0",
        ),
        (
            {
                "providerSettings": {"providerName": "AWS", "instanceSizeName": "M10"},
                "replicationSpecs": [{"regionsConfig": {"us-east-1": {}}}],
            },
            "PROVIDER_NOT_SUPPORTED",
            "Azure",
        ),
        ({"clusterType": "SHARDED"}, "SHARDED_NOT_SUPPORTED", "replica sets"),
        ({"clusterType": "GEOSHARDED"}, "SHARDED_NOT_SUPPORTED", "replica sets"),
    ],
)
def test_r1_to_r3_refuse_backup_of_unsupported_clusters_and_change_nothing(
    client: ApiClient, data_dir: Path, overrides: dict[str, Any], code: str, rule_words: str
) -> None:
    project_id = create_project(client)
    create_cluster(client, project_id, **overrides)
    before = state(client, project_id)
    for dry in (True, False):
        response = put_backup(client, project_id, dry=dry)
        assert response.status_code == 400
        body = response.get_json()
        assert body["errorCode"] == code
        assert rule_words in body["detail"]
        assert body["reason"] == "Bad Request"
    assert state(client, project_id) == before
    assert all_stored_ids(data_dir) == set()


@pytest.mark.parametrize(
    ("overrides", "code"),
    [
        ({"providerSettings": {"providerName": "AZURE", "instanceSizeName": "M2"}}, "TIER_NOT_SUPPORTED"),
        (
            {
                "providerSettings": {"providerName": "GCP", "instanceSizeName": "M10"},
                "replicationSpecs": [{"regionsConfig": {"us-central1": {}}}],
            },
            "PROVIDER_NOT_SUPPORTED",
        ),
        ({"clusterType": "SHARDED"}, "SHARDED_NOT_SUPPORTED"),
    ],
)
def test_creating_an_unsupported_cluster_with_backup_enabled_is_refused_and_creates_nothing(
    client: ApiClient, data_dir: Path, overrides: dict[str, Any], code: str
) -> None:
    project_id = create_project(client)
    response = client.post(
        f"/groups/{project_id}/clusters", cluster_body(providerBackupEnabled=True, **overrides)
    )
    assert response.status_code == 400
    assert response.get_json()["errorCode"] == code
    assert client.get(f"/groups/{project_id}/clusters").get_json()["totalCount"] == 0
    assert not (data_dir / "volumes").exists() or not list((data_dir / "volumes").rglob("*.img"))


def test_enabling_backup_takes_the_first_snapshot_at_once_and_schedules_the_next_in_24_hours(
    client: ApiClient,
) -> None:
    project_id = create_project(client)
    create_cluster(client, project_id)
    body = enable_backup(client, project_id)
    assert (
        body["enabled"] is True and body["method"] == "CLOUD_PROVIDER_SNAPSHOTS" and body["executed"] is True
    )
    assert body["referenceTime"] == "2024-01-01T12:00:00Z"
    assert body["nextSnapshotAt"] == "2024-01-02T12:00:00Z"
    assert body["intervalHours"] == 24 and body["retentionCount"] == 3
    assert body["storageRegion"] == "eastus2"
    assert len(body["snapshotIds"]) == 1
    assert "dryRun" not in body


def test_a_put_without_a_body_enables_cloud_provider_snapshots(client: ApiClient) -> None:
    project_id = create_project(client)
    create_cluster(client, project_id)
    response = client.put(f"/groups/{project_id}/clusters/rs1/backup")
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["method"] == "CLOUD_PROVIDER_SNAPSHOTS"


def test_putting_the_enabled_method_again_is_idempotent_and_takes_no_new_snapshot(client: ApiClient) -> None:
    project_id = create_project(client)
    create_cluster(client, project_id)
    first = enable_backup(client, project_id)
    again = enable_backup(client, project_id)
    assert again == first
    assert client.get(f"/groups/{project_id}/clusters/rs1/backup/snapshots").get_json()["totalCount"] == 1


def test_a_dry_run_answers_the_would_be_backup_and_changes_nothing(client: ApiClient, data_dir: Path) -> None:
    project_id = create_project(client)
    create_cluster(client, project_id)
    before = state(client, project_id)
    response = put_backup(client, project_id, dry=True)
    assert response.status_code == 200
    body = response.get_json()
    assert body["dryRun"] is True
    assert body["enabled"] is True and body["method"] == "CLOUD_PROVIDER_SNAPSHOTS"
    assert body["nextSnapshotAt"] == "2024-01-02T12:00:00Z"
    assert body["snapshotIds"] == []
    assert state(client, project_id) == before
    assert client.get(f"/groups/{project_id}/clusters/rs1/backup").get_json()["enabled"] is False
    assert all_stored_ids(data_dir) == set()


def test_a_bad_dry_run_flag_is_refused(client: ApiClient) -> None:
    project_id = create_project(client)
    create_cluster(client, project_id)
    response = client.put(f"/groups/{project_id}/clusters/rs1/backup?dryRun=perhaps", {})
    assert response.status_code == 400
    assert response.get_json()["parameters"] == ["dryRun"]


def test_r4_locks_the_project_to_the_first_method_and_names_it_and_the_way_out(client: ApiClient) -> None:
    project_id = create_project(client)
    create_cluster(client, project_id, "first")
    create_cluster(client, project_id, "second")
    enable_backup(client, project_id, "first", "CONTINUOUS")
    before = state(client, project_id)
    for dry in (True, False):
        response = put_backup(client, project_id, "second", "CLOUD_PROVIDER_SNAPSHOTS", dry=dry)
        assert response.status_code == 409
        body = response.get_json()
        assert body["errorCode"] == "BACKUP_METHOD_LOCKED"
        assert "CONTINUOUS" in body["detail"]
        assert "'first'" in body["detail"]
        assert "disable backup on" in body["detail"]
        assert body["parameters"] == ["/method"]
    assert state(client, project_id) == before
    # The same method is allowed; the lock lasts until backup is disabled on every cluster.
    assert put_backup(client, project_id, "second", "CONTINUOUS").status_code == 200
    assert client.delete(f"/groups/{project_id}/clusters/first/backup").status_code == 204
    assert put_backup(client, project_id, "first", "CLOUD_PROVIDER_SNAPSHOTS").status_code == 409
    assert client.delete(f"/groups/{project_id}/clusters/second/backup").status_code == 204
    assert client.get(f"/groups/{project_id}").get_json()["backupMethod"] is None
    assert put_backup(client, project_id, "first", "CLOUD_PROVIDER_SNAPSHOTS").status_code == 200
    assert client.get(f"/groups/{project_id}").get_json()["backupMethod"] == "CLOUD_PROVIDER_SNAPSHOTS"


def test_r4_also_refuses_another_method_on_a_cluster_that_has_one(client: ApiClient) -> None:
    project_id = create_project(client)
    create_cluster(client, project_id)
    enable_backup(client, project_id)
    response = put_backup(client, project_id, method="CONTINUOUS")
    assert response.status_code == 409
    assert "disable backup first" in response.get_json()["detail"]


def test_r4_applies_to_backup_enabled_at_cluster_creation(client: ApiClient) -> None:
    project_id = create_project(client)
    create_cluster(client, project_id, "first")
    enable_backup(client, project_id, "first", "CONTINUOUS")
    response = client.post(
        f"/groups/{project_id}/clusters", cluster_body("second", providerBackupEnabled=True)
    )
    assert response.status_code == 409
    assert response.get_json()["errorCode"] == "BACKUP_METHOD_LOCKED"
    assert client.get(f"/groups/{project_id}/clusters/second").status_code == 404


def test_r5_a_project_with_cloud_provider_snapshots_cannot_back_up_sharded_or_other_provider_clusters(
    client: ApiClient,
) -> None:
    project_id = create_project(client)
    create_cluster(client, project_id, "azure")
    create_cluster(client, project_id, "sharded", clusterType="SHARDED")
    create_cluster(
        client,
        project_id,
        "aws",
        providerSettings={"providerName": "AWS", "instanceSizeName": "M10"},
        replicationSpecs=[{"regionsConfig": {"us-east-1": {}}}],
    )
    enable_backup(client, project_id, "azure")
    assert put_backup(client, project_id, "sharded").get_json()["errorCode"] == "SHARDED_NOT_SUPPORTED"
    assert put_backup(client, project_id, "aws").get_json()["errorCode"] == "PROVIDER_NOT_SUPPORTED"
    # Nor with CONTINUOUS: the project is locked to cloud provider snapshots (R4).
    locked = put_backup(client, project_id, "sharded", "CONTINUOUS")
    assert locked.status_code == 409 and locked.get_json()["errorCode"] == "BACKUP_METHOD_LOCKED"


def test_continuous_is_recorded_and_locks_the_project_but_takes_no_snapshots(
    client: ApiClient, data_dir: Path
) -> None:
    project_id = create_project(client)
    create_cluster(client, project_id)
    body = enable_backup(client, project_id, method="CONTINUOUS")
    assert body["enabled"] is True and body["method"] == "CONTINUOUS"
    assert body["executed"] is False
    assert body["nextSnapshotAt"] is None and body["snapshotIds"] == []
    cluster = client.get(f"/groups/{project_id}/clusters/rs1").get_json()
    assert cluster["backupMethod"] == "CONTINUOUS" and cluster["providerBackupEnabled"] is False
    response = client.post(f"/groups/{project_id}/clusters/rs1/backup/snapshots", {})
    assert response.status_code == 400 and response.get_json()["errorCode"] == "BACKUP_NOT_ENABLED"
    assert all_stored_ids(data_dir) == set()


@pytest.mark.parametrize(
    ("change", "code", "field"),
    [
        (
            {"providerSettings": {"providerName": "AZURE", "instanceSizeName": "M5"}},
            "TIER_NOT_SUPPORTED",
            "/providerSettings/instanceSizeName",
        ),
        (
            {"providerSettings": {"providerName": "AZURE", "instanceSizeName": "M0"}},
            "TIER_NOT_SUPPORTED",
            "/providerSettings/instanceSizeName",
        ),
        ({"clusterType": "SHARDED"}, "SHARDED_NOT_SUPPORTED", "/clusterType"),
        (
            {
                "providerSettings": {"providerName": "AWS", "instanceSizeName": "M10"},
                "replicationSpecs": [{"regionsConfig": {"us-east-1": {}}}],
            },
            "PROVIDER_NOT_SUPPORTED",
            "/providerSettings/providerName",
        ),
    ],
)
def test_r11_refuses_changes_backup_cannot_follow_until_backup_is_disabled(
    client: ApiClient, data_dir: Path, change: dict[str, Any], code: str, field: str
) -> None:
    project_id = create_project(client)
    create_cluster(client, project_id)
    enable_backup(client, project_id)
    before = state(client, project_id)
    stored = all_stored_ids(data_dir)
    response = client.patch(f"/groups/{project_id}/clusters/rs1", change)
    assert response.status_code == 400
    body = response.get_json()
    assert body["errorCode"] == code
    assert "Disable backup first" in body["detail"]
    assert field in body["parameters"]
    assert state(client, project_id) == before
    assert all_stored_ids(data_dir) == stored
    # Disabling backup in the same PATCH, or before, lets the change through.
    response = client.patch(f"/groups/{project_id}/clusters/rs1", {**change, "providerBackupEnabled": False})
    assert response.status_code == 200, response.get_json()
    assert all_stored_ids(data_dir) == set()


def test_r11_allows_changes_that_keep_the_cluster_backed_up(client: ApiClient) -> None:
    project_id = create_project(client)
    create_cluster(client, project_id)
    enable_backup(client, project_id)
    response = client.patch(
        f"/groups/{project_id}/clusters/rs1",
        {"providerSettings": {"providerName": "AZURE", "instanceSizeName": "M40"}},
    )
    assert response.status_code == 200


def test_r11_does_not_apply_to_a_cluster_without_cloud_provider_snapshots(client: ApiClient) -> None:
    project_id = create_project(client)
    create_cluster(client, project_id)
    enable_backup(client, project_id, method="CONTINUOUS")
    response = client.patch(f"/groups/{project_id}/clusters/rs1", {"clusterType": "SHARDED"})
    assert response.status_code == 200


def test_disabling_backup_is_idempotent(client: ApiClient) -> None:
    project_id = create_project(client)
    create_cluster(client, project_id)
    assert client.delete(f"/groups/{project_id}/clusters/rs1/backup").status_code == 204
    enable_backup(client, project_id)
    assert client.delete(f"/groups/{project_id}/clusters/rs1/backup").status_code == 204
    assert client.delete(f"/groups/{project_id}/clusters/rs1/backup").status_code == 204
    body = client.get(f"/groups/{project_id}/clusters/rs1/backup").get_json()
    assert body == {
        "groupId": project_id,
        "clusterName": "rs1",
        "enabled": False,
        "method": None,
        "executed": False,
        "storageRegion": None,
        "referenceTime": None,
        "nextSnapshotAt": None,
        "intervalHours": 24,
        "retentionCount": 3,
        "snapshotIds": [],
        "deletionProtection": False,
        "lastSnapshotAt": None,
        "lastSnapshotStatus": None,
        "snapshotAgeSeconds": None,
    }


def test_backup_of_an_unknown_cluster_is_cluster_not_found(client: ApiClient) -> None:
    project_id = create_project(client)
    for method in ("GET", "PUT", "DELETE"):
        response = client.request(method, f"/groups/{project_id}/clusters/nope/backup")
        assert response.status_code == 404
        assert response.get_json()["errorCode"] == "CLUSTER_NOT_FOUND"
