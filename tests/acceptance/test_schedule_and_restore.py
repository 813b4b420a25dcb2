"""The schedule and retention seen through Terraform, and a restore whose data is verified by checksum."""

from __future__ import annotations

import os
from datetime import datetime, timedelta

import hcl
import pytest
from tfkit import Shim, Workspace

from shim.drivers.digest import content_digest

pytestmark = pytest.mark.acceptance
DAY = 24 * 3600


def parse(moment: str) -> datetime:
    return datetime.fromisoformat(moment.replace("Z", "+00:00"))


def test_four_days_later_a_refresh_shows_the_three_scheduled_snapshots_kept(
    shim: Shim, workspace: Workspace, unique: str
) -> None:
    workspace.write(hcl.project(f"sched-{unique}") + hcl.cluster("nightly") + hcl.backup())
    workspace.apply()
    before = workspace.state()["cloudbackup_cluster_backup.b"]
    project_id = before["project_id"]

    shim.advance(4 * DAY)
    workspace.refresh()
    after = workspace.state()["cloudbackup_cluster_backup.b"]
    stored = shim.snapshots(project_id, "nightly")
    assert len(after["snapshot_ids"]) == 3
    assert after["snapshot_ids"] == [s["id"] for s in stored]
    assert {s["snapshotType"] for s in stored} == {"scheduled"}
    assert before["snapshot_ids"][0] not in after["snapshot_ids"]
    created = [parse(s["createdAt"]) for s in stored]
    assert created == sorted(created, reverse=True)
    assert parse(after["next_snapshot_at"]) == parse(after["reference_time"]) + timedelta(days=5)
    # The refreshed state is what the API holds: the next plan has nothing to do.
    workspace.assert_no_changes()
    workspace.destroy()


def _volumes(shim: Shim, project_id: str, cluster: dict) -> list[str]:
    root = shim.data_dir / "volumes"
    return sorted(str(p) for p in root.glob(f"*/{project_id}/{cluster['id']}/member-*.img"))


def test_a_restore_through_terraform_puts_the_snapshot_content_on_every_target_volume(
    shim: Shim, workspace: Workspace, unique: str
) -> None:
    base = (
        hcl.project(f"restore-{unique}")
        + hcl.cluster("source")
        + hcl.cluster("target", label="t", regions=(("eastus2", 7),), nodes=2)
        + hcl.backup()
    )
    workspace.write(base)
    workspace.apply()
    project_id = workspace.state()["cloudbackup_project.p"]["id"]
    source = shim.get(f"/groups/{project_id}/clusters/source")
    target = shim.get(f"/groups/{project_id}/clusters/target")
    payload = os.urandom(1 << 20)
    for path in _volumes(shim, project_id, source):
        with open(path, "r+b") as volume:
            volume.seek(5 << 20)
            volume.write(payload)

    workspace.write(base + hcl.snapshot("with data"))
    workspace.apply()
    snapshot_id = workspace.state()["cloudbackup_snapshot.s"]["id"]
    checksum = shim.get(f"/groups/{project_id}/clusters/source/backup/snapshots/{snapshot_id}")["checksum"]
    targets = _volumes(shim, project_id, target)
    assert len(targets) == 2 and all(content_digest(p) != checksum for p in targets)

    restore = """
resource "cloudbackup_restore_job" "r" {
  project_id          = cloudbackup_project.p.id
  cluster_name        = cloudbackup_cluster.c.name
  snapshot_id         = cloudbackup_snapshot.s.id
  target_cluster_name = cloudbackup_cluster.t.name
  timeouts {
    create = "10m"
  }
}
"""
    workspace.write(base + hcl.snapshot("with data") + restore)
    workspace.apply()
    job = workspace.state()["cloudbackup_restore_job.r"]
    assert job["status"] == "completed" and job["finished_at"] and job["target_project_id"] == project_id
    assert [content_digest(p) for p in targets] == [checksum, checksum]
    workspace.assert_no_changes()

    workspace.forget("cloudbackup_restore_job.r")
    workspace.import_("cloudbackup_restore_job.r", f"{project_id}/source/{job['id']}")
    # An imported resource has no timeouts block until the configuration gives it one: configure none.
    workspace.write(
        base + hcl.snapshot("with data") + restore.replace('  timeouts {\n    create = "10m"\n  }\n', "")
    )
    workspace.assert_no_changes()

    # Destroying a restore job only forgets it: the job and the restored data stay.
    workspace.write(base + hcl.snapshot("with data"))
    workspace.apply()
    assert (
        shim.get(f"/groups/{project_id}/clusters/source/backup/restoreJobs/{job['id']}")["status"]
        == "completed"
    )
    assert [content_digest(p) for p in targets] == [checksum, checksum]
    workspace.destroy()
