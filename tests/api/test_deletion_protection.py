"""Deletion protection on clusters and backups: a DELETE that would purge snapshots (R9) is refused."""

from __future__ import annotations

from pathlib import Path

from shimkit import ApiClient, all_stored_ids, create_cluster, create_project, enable_backup, settle


def protect_backup(client: ApiClient, project_id: str, on: bool, name: str = "rs1") -> dict:
    response = client.put(
        f"/groups/{project_id}/clusters/{name}/backup",
        {"method": "CLOUD_PROVIDER_SNAPSHOTS", "deletionProtection": on},
    )
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def test_a_protected_backup_cannot_be_disabled_and_keeps_its_snapshots(
    client: ApiClient, data_dir: Path
) -> None:
    project_id = create_project(client)
    create_cluster(client, project_id)
    enable_backup(client, project_id)
    settle(client)
    assert protect_backup(client, project_id, True)["deletionProtection"] is True
    stored = all_stored_ids(data_dir)
    assert stored

    response = client.delete(f"/groups/{project_id}/clusters/rs1/backup")

    assert response.status_code == 409
    body = response.get_json()
    assert body["errorCode"] == "DELETION_PROTECTED"
    assert '"deletionProtection": false' in body["detail"]
    backup = client.get(f"/groups/{project_id}/clusters/rs1/backup").get_json()
    assert backup["enabled"] is True and backup["deletionProtection"] is True
    assert all_stored_ids(data_dir) == stored


def test_a_protected_backup_cannot_be_disabled_through_the_cluster_either(client: ApiClient) -> None:
    project_id = create_project(client)
    create_cluster(client, project_id)
    protect_backup(client, project_id, True)

    response = client.patch(f"/groups/{project_id}/clusters/rs1", {"providerBackupEnabled": False})

    assert response.status_code == 409
    assert response.get_json()["errorCode"] == "DELETION_PROTECTED"
    assert client.get(f"/groups/{project_id}/clusters/rs1").get_json()["providerBackupEnabled"] is True


def test_turning_backup_protection_off_lets_backup_be_disabled(client: ApiClient, data_dir: Path) -> None:
    project_id = create_project(client)
    create_cluster(client, project_id)
    protect_backup(client, project_id, True)
    settle(client)

    assert protect_backup(client, project_id, False)["deletionProtection"] is False
    assert client.delete(f"/groups/{project_id}/clusters/rs1/backup").status_code == 204

    assert all_stored_ids(data_dir) == set()


def test_a_put_without_the_flag_keeps_the_protection(client: ApiClient) -> None:
    project_id = create_project(client)
    create_cluster(client, project_id)
    protect_backup(client, project_id, True)

    assert enable_backup(client, project_id)["deletionProtection"] is True


def test_a_protected_cluster_cannot_be_terminated_until_protection_is_off(client: ApiClient) -> None:
    project_id = create_project(client)
    created = create_cluster(client, project_id, deletionProtection=True)
    assert created["deletionProtection"] is True

    response = client.delete(f"/groups/{project_id}/clusters/rs1")

    assert response.status_code == 409
    body = response.get_json()
    assert body["errorCode"] == "DELETION_PROTECTED" and "PATCH" in body["detail"]
    assert client.get(f"/groups/{project_id}/clusters/rs1").get_json()["stateName"] == "IDLE"

    patched = client.patch(f"/groups/{project_id}/clusters/rs1", {"deletionProtection": False})
    assert patched.status_code == 200 and patched.get_json()["deletionProtection"] is False
    assert client.delete(f"/groups/{project_id}/clusters/rs1").status_code == 204
    assert client.get(f"/groups/{project_id}/clusters/rs1").status_code == 404


def test_a_cluster_whose_backup_is_protected_cannot_be_terminated(client: ApiClient, data_dir: Path) -> None:
    project_id = create_project(client)
    create_cluster(client, project_id)
    protect_backup(client, project_id, True)
    settle(client)
    stored = all_stored_ids(data_dir)

    response = client.delete(f"/groups/{project_id}/clusters/rs1")

    assert response.status_code == 409
    assert response.get_json()["errorCode"] == "DELETION_PROTECTED"
    assert all_stored_ids(data_dir) == stored
