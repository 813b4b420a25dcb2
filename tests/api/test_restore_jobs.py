"""Restore jobs (R10): a completed snapshot onto every volume of a target cluster, checked in storage itself.

Every test runs once per driver kind; where the kinds differ (the azure driver restores only within a
region, and keeps no content digest), the test says what each does.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from shimkit import (
    ApiClient,
    create_cluster,
    create_project,
    enable_backup,
    member_volumes,
    settle,
    snapshot_handle,
    write_volume_data,
)
from shimstorage import ShimStorage, volume_handles

pytestmark = pytest.mark.drivers()

ONE_MEMBER = [{"regionsConfig": {"eastus2": {"priority": 7, "electableNodes": 1}}}]
DOCUMENT = b"\x01document\x02" * 5000


def volumes(app: Flask, project_id: str, name: str) -> list[str]:
    """The cluster's volume handles, by region and member (a restore may replace them)."""
    return [handle for _, handle in sorted(member_volumes(app, project_id, name).items())]


def restore(client: ApiClient, project_id: str, body: dict[str, Any], source: str = "src"):
    return client.post(f"/groups/{project_id}/clusters/{source}/backup/restoreJobs", body)


def restored(client: ApiClient, project_id: str, body: dict[str, Any], source: str = "src") -> dict[str, Any]:
    """Create a restore job and return it once it finished (a cloud restores in the background)."""
    response = restore(client, project_id, body, source)
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["status"] in ("inProgress", "completed", "failed")
    settle(client)
    path = f"/groups/{project_id}/clusters/{source}/backup/restoreJobs/{response.get_json()['id']}"
    return client.get(path).get_json()


def seeded_source(client: ApiClient, app: Flask, storage: ShimStorage, project_id: str) -> dict[str, Any]:
    """A backed-up source cluster whose primary volume holds data; returns its first snapshot, completed."""
    create_cluster(client, project_id, "src", replicationSpecs=ONE_MEMBER)
    (primary,) = volumes(app, project_id, "src")
    storage.write(primary, DOCUMENT, offset=1 << 20)
    enable_backup(client, project_id, "src")
    settle(client)
    snapshot = client.get(f"/groups/{project_id}/clusters/src/backup/snapshots").get_json()["results"][0]
    assert snapshot["status"] == "completed"
    return snapshot


def test_a_restore_makes_every_target_volume_identical_to_the_snapshot(
    client: ApiClient, app: Flask, storage: ShimStorage
) -> None:
    project_id = create_project(client)
    snapshot = seeded_source(client, app, storage, project_id)
    create_cluster(client, project_id, "dst", replicationSpecs=ONE_MEMBER)
    job = restored(client, project_id, {"snapshotId": snapshot["id"], "targetClusterName": "dst"})
    assert job["status"] == "completed"
    assert job["deliveryType"] == "automated"
    assert job["targetGroupId"] == project_id and job["targetClusterName"] == "dst"
    assert job["finishedAt"] is not None and job["failureReason"] is None
    stored = snapshot_handle(app, snapshot["id"])
    (source,) = volumes(app, project_id, "src")
    (target,) = volumes(app, project_id, "dst")
    assert storage.fingerprint(source) == storage.fingerprint(stored) == storage.fingerprint(target)
    assert storage.read(target, 1 << 20, len(DOCUMENT)) == DOCUMENT
    assert storage.volume_size(target) == 1 << 30
    assert storage.content_digest(target) == storage.content_digest(stored)
    if storage.checksums:
        assert storage.content_digest(target) == snapshot["checksum"]
    assert client.get(f"/groups/{project_id}/clusters/dst").get_json()["stateName"] == "IDLE"


def test_a_restore_writes_every_member_of_the_target(
    client: ApiClient, app: Flask, storage: ShimStorage
) -> None:
    project_id = create_project(client)
    snapshot = seeded_source(client, app, storage, project_id)
    create_cluster(client, project_id, "dst", replicationSpecs=[{"regionsConfig": {"eastus2": {}}}])
    for handle in volumes(app, project_id, "dst"):
        storage.write(handle, b"what was there before", offset=1 << 20)
    job = restored(client, project_id, {"snapshotId": snapshot["id"], "targetClusterName": "dst"})
    assert job["status"] == "completed"
    targets = volumes(app, project_id, "dst")
    assert len(targets) == 3
    stored = snapshot_handle(app, snapshot["id"])
    assert {storage.fingerprint(handle) for handle in targets} == {storage.fingerprint(stored)}
    assert {storage.content_digest(handle) for handle in targets} == {storage.content_digest(stored)}
    # Storage holds exactly the clusters' volumes: one a restore replaced is not left behind.
    assert volume_handles(storage) == set(targets) | set(volumes(app, project_id, "src"))


def test_r10_a_restore_across_regions_is_done_where_storage_can_and_refused_up_front_where_it_cannot(
    client: ApiClient, app: Flask, storage: ShimStorage
) -> None:
    project_id = create_project(client)
    snapshot = seeded_source(client, app, storage, project_id)  # stored in eastus2
    create_cluster(client, project_id, "dst")  # eastus2 x3 and westus2 x2
    before = {handle: storage.fingerprint(handle) for handle in volumes(app, project_id, "dst")}
    body = {"snapshotId": snapshot["id"], "targetClusterName": "dst"}
    if app.extensions["cloudbackup"].service.driver.cross_region_restore:
        job = restored(client, project_id, body)
        assert job["status"] == "completed"
        targets = volumes(app, project_id, "dst")
        assert len(targets) == 5
        stored = snapshot_handle(app, snapshot["id"])
        assert {storage.content_digest(handle) for handle in targets} == {storage.content_digest(stored)}
        return
    response = restore(client, project_id, body)
    assert response.status_code == 400
    error = response.get_json()
    assert error["errorCode"] == "RESTORE_INVALID" and error["parameters"] == ["/targetClusterName"]
    assert "stored in eastus2" in error["detail"] and "has members in westus2" in error["detail"]
    assert "Restore into a cluster whose members are all in eastus2" in error["detail"]
    assert client.get(f"/groups/{project_id}/clusters/src/backup/restoreJobs").get_json()["totalCount"] == 0
    assert client.get(f"/groups/{project_id}/clusters/dst").get_json()["stateName"] == "IDLE"
    assert {handle: storage.fingerprint(handle) for handle in volumes(app, project_id, "dst")} == before


def test_a_restore_into_another_project_the_key_reaches(
    client: ApiClient, app: Flask, storage: ShimStorage
) -> None:
    source_project = create_project(client, "source")
    target_project = create_project(client, "target")
    snapshot = seeded_source(client, app, storage, source_project)
    create_cluster(client, target_project, "dst", replicationSpecs=ONE_MEMBER)
    job = restored(
        client,
        source_project,
        {"snapshotId": snapshot["id"], "targetGroupId": target_project, "targetClusterName": "dst"},
    )
    assert job["status"] == "completed" and job["targetGroupId"] == target_project
    (target,) = volumes(app, target_project, "dst")
    assert storage.read(target, 1 << 20, len(DOCUMENT)) == DOCUMENT


def test_restore_jobs_are_listed_newest_first_and_read_by_id(
    client: ApiClient, app: Flask, storage: ShimStorage
) -> None:
    project_id = create_project(client)
    snapshot = seeded_source(client, app, storage, project_id)
    create_cluster(client, project_id, "dst", replicationSpecs=ONE_MEMBER)
    first = restored(client, project_id, {"snapshotId": snapshot["id"], "targetClusterName": "dst"})
    second = restored(client, project_id, {"snapshotId": snapshot["id"], "targetClusterName": "dst"})
    assert first["status"] == second["status"] == "completed"
    listing = client.get(f"/groups/{project_id}/clusters/src/backup/restoreJobs").get_json()
    assert listing["totalCount"] == 2
    assert [j["id"] for j in listing["results"]] == [second["id"], first["id"]]
    got = client.get(f"/groups/{project_id}/clusters/src/backup/restoreJobs/{first['id']}")
    assert got.get_json() == first
    missing = client.get(f"/groups/{project_id}/clusters/src/backup/restoreJobs/0123456789abcdef01234567")
    assert missing.status_code == 404 and missing.get_json()["errorCode"] == "RESTORE_JOB_NOT_FOUND"


def test_r10_refuses_a_target_that_is_not_on_azure(
    client: ApiClient, app: Flask, storage: ShimStorage
) -> None:
    project_id = create_project(client)
    snapshot = seeded_source(client, app, storage, project_id)
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
    assert "AWS" in body["detail"] and "/targetClusterName" in body["parameters"]
    assert client.get(f"/groups/{project_id}/clusters/src/backup/restoreJobs").get_json()["totalCount"] == 0


def test_r10_refuses_a_target_with_smaller_volumes_than_the_snapshot(
    client: ApiClient, app: Flask, storage: ShimStorage
) -> None:
    project_id = create_project(client)
    create_cluster(client, project_id, "src", replicationSpecs=ONE_MEMBER, diskSizeGB=3)
    enable_backup(client, project_id, "src")
    settle(client)
    snapshot = client.get(f"/groups/{project_id}/clusters/src/backup/snapshots").get_json()["results"][0]
    create_cluster(client, project_id, "small", replicationSpecs=ONE_MEMBER, diskSizeGB=2)
    (target,) = volumes(app, project_id, "small")
    storage.write(target, b"keep me", offset=4096)
    before = storage.fingerprint(target)
    response = restore(client, project_id, {"snapshotId": snapshot["id"], "targetClusterName": "small"})
    assert response.status_code == 400
    assert response.get_json()["errorCode"] == "RESTORE_INVALID"
    assert "Grow the target's diskSizeGB to 3" in response.get_json()["detail"]
    assert volumes(app, project_id, "small") == [target]
    assert storage.fingerprint(target) == before


def test_r10_refuses_a_snapshot_that_did_not_complete(
    client: ApiClient, app: Flask, storage: ShimStorage
) -> None:
    project_id = create_project(client)
    seeded_source(client, app, storage, project_id)
    storage.fail_next_snapshots(1)
    failed = client.post(f"/groups/{project_id}/clusters/src/backup/snapshots", {}).get_json()
    settle(client)
    create_cluster(client, project_id, "dst", replicationSpecs=ONE_MEMBER)
    response = restore(client, project_id, {"snapshotId": failed["id"], "targetClusterName": "dst"})
    assert response.status_code == 400
    assert f"Snapshot {failed['id']} is failed" in response.get_json()["detail"]
    assert "only a completed snapshot" in response.get_json()["detail"]


def test_a_restore_names_an_unknown_snapshot_target_cluster_or_target_project(
    client: ApiClient, app: Flask, storage: ShimStorage
) -> None:
    project_id = create_project(client)
    snapshot = seeded_source(client, app, storage, project_id)
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


@pytest.mark.drivers("local")  # Azure keeps no digest of a snapshot: a changed one cannot be told apart
def test_a_corrupted_snapshot_fails_the_restore_and_leaves_the_target_as_it_was(
    client: ApiClient, app: Flask, storage: ShimStorage, data_dir: Path
) -> None:
    project_id = create_project(client)
    snapshot = seeded_source(client, app, storage, project_id)
    create_cluster(client, project_id, "dst", replicationSpecs=ONE_MEMBER)
    (target,) = volumes(app, project_id, "dst")
    before = storage.fingerprint(target)
    write_volume_data(data_dir, snapshot_handle(app, snapshot["id"]), b"bit rot", offset=1 << 20)
    job = restored(client, project_id, {"snapshotId": snapshot["id"], "targetClusterName": "dst"})
    assert job["status"] == "failed"
    assert job["failureReason"].startswith("SNAPSHOT_CORRUPT")
    assert storage.fingerprint(target) == before
    assert client.get(f"/groups/{project_id}/clusters/dst").get_json()["stateName"] == "IDLE"
