"""examples/restore-drill/: one apply restores the newest snapshot into a scratch cluster; one destroy."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from tfkit import Shim, Workspace

pytestmark = pytest.mark.acceptance
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "restore-drill" / "main.tf"


def test_the_restore_drill_restores_the_newest_snapshot_records_its_duration_and_cleans_up(
    shim: Shim, workspace: Workspace, unique: str
) -> None:
    if not workspace.release.at_least(1, 2):
        pytest.skip("the drill's precondition and postcondition need Terraform 1.2 or newer")
    project_id = shim.create_project(f"drill-{unique}")
    shim.create_cluster(project_id, "orders")
    backup = f"/groups/{project_id}/clusters/orders/backup"
    shim.call("PUT", backup, {"method": "CLOUD_PROVIDER_SNAPSHOTS"})
    shim.advance(2 * 24 * 3600 + 600)
    newest = shim.snapshots(project_id, "orders")[0]
    assert newest["status"] == "completed"
    shutil.copy(EXAMPLE, workspace.path / "main.tf")
    variables = [f"-var=project_id={project_id}", "-var=source_cluster_name=orders"]

    applied = workspace.run("apply", "-auto-approve", "-input=false", *variables)

    assert applied.returncode == 0, applied.stdout + applied.stderr
    outputs = workspace.outputs()
    assert outputs["restored_snapshot_id"] == newest["id"]
    # The manual clock stands still while the restore runs, so it took no time by the shim's clock.
    assert outputs["restore_duration_seconds"] == 0
    jobs = shim.get(f"{backup}/restoreJobs")["results"]
    assert [(j["snapshotId"], j["targetClusterName"], j["status"]) for j in jobs] == [
        (newest["id"], "orders-drill", "completed")
    ]

    destroyed = workspace.run("destroy", "-auto-approve", "-input=false", *variables)

    assert destroyed.returncode == 0, destroyed.stdout + destroyed.stderr
    assert shim.request("GET", f"/groups/{project_id}/clusters/orders-drill").status_code == 404
    assert shim.snapshots(project_id, "orders")[0]["id"] == newest["id"]


def test_the_restore_drill_stops_at_plan_when_the_cluster_has_no_completed_snapshot(
    shim: Shim, workspace: Workspace, unique: str
) -> None:
    if not workspace.release.at_least(1, 2):
        pytest.skip("the drill's precondition needs Terraform 1.2 or newer")
    project_id = shim.create_project(f"nodrill-{unique}")
    shim.create_cluster(project_id, "empty")
    shutil.copy(EXAMPLE, workspace.path / "main.tf")

    planned = workspace.run(
        "plan", "-input=false", f"-var=project_id={project_id}", "-var=source_cluster_name=empty"
    )

    assert planned.returncode == 1
    assert "Cluster empty has no completed snapshot to restore." in " ".join(planned.stderr.split())
    assert shim.request("GET", f"/groups/{project_id}/clusters/empty-drill").status_code == 404
