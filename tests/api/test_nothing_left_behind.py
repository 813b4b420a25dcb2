"""R9 to the last file: once everything is destroyed, the data directory holds the database alone."""

from __future__ import annotations

from pathlib import Path

from flask import Flask
from shimkit import (
    ApiClient,
    advance,
    create_cluster,
    create_project,
    enable_backup,
    member_volumes,
    snapshot_handle,
    write_volume_data,
)

from shim.store.engine import DATABASE_FILE

ONE_MEMBER = [{"regionsConfig": {"eastus2": {"priority": 7, "electableNodes": 1}}}]


def files_besides_the_database(data_dir: Path) -> list[str]:
    return sorted(
        str(path.relative_to(data_dir))
        for path in data_dir.rglob("*")
        if path.is_file() and not path.name.startswith(DATABASE_FILE)
    )


def test_destroying_everything_after_restores_and_failures_leaves_only_the_database(
    client: ApiClient, app: Flask, data_dir: Path
) -> None:
    project_id = create_project(client)
    create_cluster(client, project_id, "src", replicationSpecs=ONE_MEMBER)
    create_cluster(client, project_id, "dst", replicationSpecs=ONE_MEMBER)
    enable_backup(client, project_id, "src")
    advance(client, 2 * 86400)
    snapshots = client.get(f"/groups/{project_id}/clusters/src/backup/snapshots").get_json()["results"]
    good, bad = snapshots[0]["id"], snapshots[1]["id"]
    # A restore that succeeds, one that fails (the snapshot rotted in storage), then a snapshot that
    # fails (its volume vanished from storage): each leaves an operation record in the local driver.
    restore = f"/groups/{project_id}/clusters/src/backup/restoreJobs"
    done = client.post(restore, {"snapshotId": good, "targetClusterName": "dst"}).get_json()
    assert done["status"] == "completed", done
    write_volume_data(data_dir, snapshot_handle(app, bad), b"bit rot", offset=4096)
    rotted = client.post(restore, {"snapshotId": bad, "targetClusterName": "dst"}).get_json()
    assert rotted["status"] == "failed", rotted
    (source_volume,) = member_volumes(app, project_id, "src").values()
    (data_dir / source_volume).unlink()
    failed = client.post(f"/groups/{project_id}/clusters/src/backup/snapshots", {}).get_json()
    assert failed["status"] == "failed", failed
    assert files_besides_the_database(data_dir)  # there was something to clean up
    for name in ("src", "dst"):
        assert client.delete(f"/groups/{project_id}/clusters/{name}").status_code == 204
    assert client.delete(f"/groups/{project_id}").status_code == 204
    assert files_besides_the_database(data_dir) == []
