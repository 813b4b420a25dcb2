"""The backup's freshness: the newest snapshot's moment and status, and the newest completed one's age."""

from __future__ import annotations

from shimkit import ApiClient, FlakyDriver, advance, create_cluster, create_project, enable_backup, settle

DAY = 24 * 3600


def test_a_backup_without_snapshots_has_no_freshness(client: ApiClient) -> None:
    project_id = create_project(client)
    create_cluster(client, project_id)
    body = client.get(f"/groups/{project_id}/clusters/rs1/backup").get_json()
    fields = ("lastSnapshotAt", "lastSnapshotStatus", "snapshotAgeSeconds")
    assert [body[name] for name in fields] == [None, None, None]


def test_the_age_grows_with_the_clock_and_a_failed_snapshot_does_not_reset_it(
    client: ApiClient, driver: FlakyDriver
) -> None:
    project_id = create_project(client)
    create_cluster(client, project_id)
    enable_backup(client, project_id)
    settle(client)
    first = client.get(f"/groups/{project_id}/clusters/rs1/backup").get_json()
    assert first["lastSnapshotStatus"] == "completed" and first["snapshotAgeSeconds"] == 0

    driver.fail_snapshots = 10
    advance(client, DAY + 3600)
    missed = client.get(f"/groups/{project_id}/clusters/rs1/backup").get_json()

    assert missed["lastSnapshotStatus"] == "failed"
    assert missed["lastSnapshotAt"] > first["lastSnapshotAt"]
    assert missed["snapshotAgeSeconds"] == DAY + 3600
    listed = client.get(f"/groups/{project_id}/clusters?includeBackup=true").get_json()["results"][0]
    assert listed["backup"]["snapshotAgeSeconds"] == DAY + 3600

    driver.fail_snapshots = 0
    advance(client, DAY)
    resumed = client.get(f"/groups/{project_id}/clusters/rs1/backup").get_json()
    assert resumed["lastSnapshotStatus"] == "completed"
    assert resumed["snapshotAgeSeconds"] == 3600
