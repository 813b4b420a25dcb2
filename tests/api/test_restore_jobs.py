"""Restore jobs (R10): a completed snapshot onto every volume of a target cluster, checked by SHA-256."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import Flask
from shimkit import (
    ApiClient,
    content_fingerprint,
    create_cluster,
    create_project,
    enable_backup,
    file_sha256,
    write_volume_data,
)

from shim.drivers.digest import content_digest

ONE_MEMBER = [{"regionsConfig": {"eastus2": {"priority": 7, "electableNodes": 1}}}]


def volumes(app: Flask, project_id: str, name: str) -> list[Path]:
    service = app.extensions["cloudbackup"].service
    from shim.store import queries

    with service.store.read() as session:
        cluster = queries.cluster(session, project_id, name)
        assert cluster is not None
        return [service.driver.data_dir / v.handle for v in queries.volumes(session, cluster.id)]


def restore(client: ApiClient, project_id: str, body: dict[str, Any], source: str = "src"):
    return client.post(f"/groups/{project_id}/clusters/{source}/backup/restoreJobs", body)


def seeded_source(client: ApiClient, app: Flask, data_dir: Path, project_id: str) -> dict[str, Any]:
    """A backed-up source cluster whose primary volume holds data; returns its first snapshot."""
    create_cluster(client, project_id, "src", replicationSpecs=ONE_MEMBER)
    (primary,) = volumes(app, project_id, "src")
    write_volume_data(
        data_dir, str(primary.relative_to(data_dir)), b"\x01document\x02" * 5000, offset=1 << 20
    )
    enable_backup(client, project_id, "src")
    return client.get(f"/groups/{project_id}/clusters/src/backup/snapshots").get_json()["results"][0]


def test_a_restore_makes_every_target_volume_byte_identical_to_the_snapshot(
    client: ApiClient, app: Flask, data_dir: Path
) -> None:
    project_id = create_project(client)
    snapshot = seeded_source(client, app, data_dir, project_id)
    create_cluster(client, project_id, "dst", replicationSpecs=ONE_MEMBER)
    response = restore(client, project_id, {"snapshotId": snapshot["id"], "targetClusterName": "dst"})
    assert response.status_code == 201, response.get_json()
    job = response.get_json()
    assert job["status"] == "completed"
    assert job["deliveryType"] == "automated"
    assert job["targetGroupId"] == project_id and job["targetClusterName"] == "dst"
    assert job["finishedAt"] is not None and job["failureReason"] is None
    stored = data_dir / "snapshots" / "eastus2" / f"{snapshot['id']}.snap"
    (source,) = volumes(app, project_id, "src")
    (target,) = volumes(app, project_id, "dst")
    expected = file_sha256(stored)
    assert content_fingerprint(source) == content_fingerprint(stored)
    assert file_sha256(target) == expected
    assert content_digest(target) == snapshot["checksum"]
    assert client.get(f"/groups/{project_id}/clusters/dst").get_json()["stateName"] == "IDLE"


def test_a_restore_writes_every_member_in_every_region_of_the_target(
    client: ApiClient, app: Flask, data_dir: Path
) -> None:
    project_id = create_project(client)
    snapshot = seeded_source(client, app, data_dir, project_id)
    create_cluster(client, project_id, "dst")  # eastus2 x3 and westus2 x2
    job = restore(client, project_id, {"snapshotId": snapshot["id"], "targetClusterName": "dst"}).get_json()
    assert job["status"] == "completed"
    targets = volumes(app, project_id, "dst")
    assert len(targets) == 5
    assert {content_digest(path) for path in targets} == {snapshot["checksum"]}


def test_a_restore_into_another_project_the_key_reaches(
    client: ApiClient, app: Flask, data_dir: Path
) -> None:
    source_project = create_project(client, "source")
    target_project = create_project(client, "target")
    snapshot = seeded_source(client, app, data_dir, source_project)
    create_cluster(client, target_project, "dst", replicationSpecs=ONE_MEMBER)
    response = restore(
        client,
        source_project,
        {"snapshotId": snapshot["id"], "targetGroupId": target_project, "targetClusterName": "dst"},
    )
    assert response.status_code == 201
    assert response.get_json()["targetGroupId"] == target_project
    (target,) = volumes(app, target_project, "dst")
    assert content_digest(target) == snapshot["checksum"]


def test_restore_jobs_are_listed_newest_first_and_read_by_id(
    client: ApiClient, app: Flask, data_dir: Path
) -> None:
    project_id = create_project(client)
    snapshot = seeded_source(client, app, data_dir, project_id)
    create_cluster(client, project_id, "dst", replicationSpecs=ONE_MEMBER)
    first = restore(client, project_id, {"snapshotId": snapshot["id"], "targetClusterName": "dst"}).get_json()
    second = restore(
        client, project_id, {"snapshotId": snapshot["id"], "targetClusterName": "dst"}
    ).get_json()
    listing = client.get(f"/groups/{project_id}/clusters/src/backup/restoreJobs").get_json()
    assert listing["totalCount"] == 2
    assert [j["id"] for j in listing["results"]] == [second["id"], first["id"]]
    got = client.get(f"/groups/{project_id}/clusters/src/backup/restoreJobs/{first['id']}")
    assert got.get_json() == first
    missing = client.get(f"/groups/{project_id}/clusters/src/backup/restoreJobs/0123456789abcdef01234567")
    assert missing.status_code == 404 and missing.get_json()["errorCode"] == "RESTORE_JOB_NOT_FOUND"


def test_r10_refuses_a_target_that_is_not_on_azure(client: ApiClient, app: Flask, data_dir: Path) -> None:
    project_id = create_project(client)
    snapshot = seeded_source(client, app, data_dir, project_id)
    create_cluster(
        client,
        project_id,
        "aws",
        providerSettings={"providerName": "AWS", "instanceSizeName": "M10"},
        replicationSpecs=[{"regionsConfig": {"us-east-1": {}}}],
    )
    response = restore(client, project_id, {"snapshotId": snapshot["id"], "targetClusterName": "aws"})
    assert response.status_code == 400
    body = response.get_json()
    assert body["errorCode"] == "RESTORE_INVALID"
    assert "AWS" in body["detail"] and body["parameters"] == ["/targetClusterName"]
    assert client.get(f"/groups/{project_id}/clusters/src/backup/restoreJobs").get_json()["totalCount"] == 0


def test_r10_refuses_a_target_with_smaller_volumes_than_the_snapshot(
    client: ApiClient, app: Flask, data_dir: Path
) -> None:
    project_id = create_project(client)
    create_cluster(client, project_id, "src", replicationSpecs=ONE_MEMBER, diskSizeGB=3)
    enable_backup(client, project_id, "src")
    snapshot = client.get(f"/groups/{project_id}/clusters/src/backup/snapshots").get_json()["results"][0]
    create_cluster(client, project_id, "small", replicationSpecs=ONE_MEMBER, diskSizeGB=2)
    (target,) = volumes(app, project_id, "small")
    before = content_fingerprint(target)
    response = restore(client, project_id, {"snapshotId": snapshot["id"], "targetClusterName": "small"})
    assert response.status_code == 400
    assert response.get_json()["errorCode"] == "RESTORE_INVALID"
    assert "Grow the target's diskSizeGB to 3" in response.get_json()["detail"]
    assert content_fingerprint(target) == before


def test_r10_refuses_a_snapshot_that_did_not_complete(
    client: ApiClient, app: Flask, data_dir: Path, driver
) -> None:
    project_id = create_project(client)
    seeded_source(client, app, data_dir, project_id)
    driver.fail_snapshots = 1
    failed = client.post(f"/groups/{project_id}/clusters/src/backup/snapshots", {}).get_json()
    create_cluster(client, project_id, "dst", replicationSpecs=ONE_MEMBER)
    response = restore(client, project_id, {"snapshotId": failed["id"], "targetClusterName": "dst"})
    assert response.status_code == 400
    assert "only a completed snapshot" in response.get_json()["detail"]


def test_a_restore_names_an_unknown_snapshot_target_cluster_or_target_project(
    client: ApiClient, app: Flask, data_dir: Path
) -> None:
    project_id = create_project(client)
    snapshot = seeded_source(client, app, data_dir, project_id)
    cases = [
        ({"snapshotId": "0123456789abcdef01234567", "targetClusterName": "src"}, "SNAPSHOT_NOT_FOUND"),
        ({"snapshotId": snapshot["id"], "targetClusterName": "nope"}, "CLUSTER_NOT_FOUND"),
        (
            {
                "snapshotId": snapshot["id"],
                "targetClusterName": "src",
                "targetGroupId": "0123456789abcdef01234567",
            },
            "GROUP_NOT_FOUND",
        ),
    ]
    for body, code in cases:
        response = restore(client, project_id, body)
        assert response.status_code == 404, body
        assert response.get_json()["errorCode"] == code


def test_a_corrupted_snapshot_fails_the_restore_and_leaves_the_target_as_it_was(
    client: ApiClient, app: Flask, data_dir: Path
) -> None:
    project_id = create_project(client)
    snapshot = seeded_source(client, app, data_dir, project_id)
    create_cluster(client, project_id, "dst", replicationSpecs=ONE_MEMBER)
    (target,) = volumes(app, project_id, "dst")
    before = content_fingerprint(target)
    stored = data_dir / "snapshots" / "eastus2" / f"{snapshot['id']}.snap"
    write_volume_data(data_dir, str(stored.relative_to(data_dir)), b"bit rot", offset=1 << 20)
    job = restore(client, project_id, {"snapshotId": snapshot["id"], "targetClusterName": "dst"}).get_json()
    assert job["status"] == "failed"
    assert job["failureReason"].startswith("SNAPSHOT_CORRUPT")
    assert content_fingerprint(target) == before
    assert client.get(f"/groups/{project_id}/clusters/dst").get_json()["stateName"] == "IDLE"
