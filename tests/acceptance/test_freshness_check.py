"""Backup freshness in Terraform: the resource's attributes and a check block over the data source."""

from __future__ import annotations

import shutil
from pathlib import Path

import hcl
import pytest
from tfkit import Shim, Workspace

pytestmark = pytest.mark.acceptance
DAY = 24 * 3600
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "backup-freshness" / "main.tf"


def test_the_backup_resource_reads_its_freshness_and_a_plan_right_after_apply_is_empty(
    shim: Shim, workspace: Workspace, unique: str
) -> None:
    workspace.write(hcl.project(f"fresh-{unique}") + hcl.cluster("fresh") + hcl.backup())
    workspace.apply()
    state = workspace.state()["cloudbackup_cluster_backup.b"]
    assert state["last_snapshot_status"] == "completed"
    assert state["last_snapshot_at"] == state["reference_time"]
    assert state["snapshot_age_seconds"] == 0
    workspace.assert_no_changes()

    shim.advance(3600)
    workspace.refresh()
    assert workspace.state()["cloudbackup_cluster_backup.b"]["snapshot_age_seconds"] == 3600
    workspace.destroy()


def _volume_files(shim: Shim, project_id: str, cluster_id: str) -> list[Path]:
    return sorted((shim.data_dir / "volumes").glob(f"*/{project_id}/{cluster_id}/member-*.img"))


def test_the_freshness_check_fails_after_a_missed_day_and_passes_once_snapshots_resume(
    shim: Shim, workspace: Workspace, unique: str
) -> None:
    if not workspace.release.at_least(1, 5):
        pytest.skip("check blocks need Terraform 1.5 or newer")
    project_id = shim.create_project(f"check-{unique}")
    cluster = shim.create_cluster(project_id, "watched")
    shim.call("PUT", f"/groups/{project_id}/clusters/watched/backup", {"method": "CLOUD_PROVIDER_SNAPSHOTS"})
    shim.advance(0)
    shutil.copy(EXAMPLE, workspace.path / "main.tf")

    def plan() -> str:
        result = workspace.run("plan", "-input=false", f"-var=project_id={project_id}")
        assert result.returncode == 0, result.stderr
        return " ".join((result.stdout + result.stderr).split())

    assert "Check block assertion failed" not in plan()

    # A missed day: the cluster's volumes vanish from the local driver, so the scheduled snapshot fails.
    volumes = _volume_files(shim, project_id, cluster["id"])
    assert volumes
    for volume in volumes:
        volume.rename(volume.with_name(volume.name + ".away"))
    try:
        shim.advance(DAY + 3 * 3600)
    finally:
        for volume in volumes:
            volume.with_name(volume.name + ".away").rename(volume)
    backup = shim.get(f"/groups/{project_id}/clusters/watched/backup")
    assert backup["lastSnapshotStatus"] == "failed"

    missed = plan()
    assert "Check block assertion failed" in missed
    assert "Stale backups: watched (newest completed snapshot 27 hours old, last snapshot failed)" in missed

    shim.advance(DAY)
    assert shim.get(f"/groups/{project_id}/clusters/watched/backup")["lastSnapshotStatus"] == "completed"
    assert "Check block assertion failed" not in plan()
    assert shim.request("DELETE", f"/groups/{project_id}/clusters/watched").status_code == 204
