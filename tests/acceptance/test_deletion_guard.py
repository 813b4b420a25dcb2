"""What a destroy deletes from backup storage, shown before it happens, and deletion protection."""

from __future__ import annotations

import hcl
import pytest
from tfkit import Shim, Workspace

pytestmark = pytest.mark.acceptance


def protected(block: str, on: bool = True) -> str:
    """A resource block with deletion_protection set."""
    assert block.endswith("}\n")
    return block[:-2] + f"  deletion_protection = {'true' if on else 'false'}\n}}\n"


def destroy(workspace: Workspace) -> tuple[int, str]:
    """(exit code, output with Terraform's line wrapping undone)."""
    result = workspace.run("destroy", "-auto-approve", "-input=false")
    return result.returncode, flat(result.stdout + result.stderr)


def flat(text: str) -> str:
    return " ".join(text.split())


def test_a_protected_backup_refuses_a_destroy_until_protection_is_turned_off(
    shim: Shim, workspace: Workspace, unique: str
) -> None:
    base = hcl.project(f"guard-{unique}") + hcl.cluster("guarded")
    workspace.write(base + protected(hcl.backup()))
    workspace.apply()
    project_id = workspace.state()["cloudbackup_project.p"]["id"]
    assert shim.get(f"/groups/{project_id}/clusters/guarded/backup")["deletionProtection"] is True
    workspace.assert_no_changes()
    stored = shim.snapshots(project_id, "guarded")
    assert stored

    rc, out = destroy(workspace)

    # Terraform 1.3+ refuses at plan; 1.0 plans destroys without the provider, so the shim refuses.
    assert rc != 0
    assert "Deletion protection is on for this cloudbackup_cluster_backup" in out
    assert "set deletion_protection = false" in out
    assert shim.snapshots(project_id, "guarded") == stored
    assert shim.get(f"/groups/{project_id}/clusters/guarded/backup")["enabled"] is True

    workspace.write(base + protected(hcl.backup(), on=False))
    rc, out, _ = workspace.plan()
    assert rc == 2 and "updated in-place" in out and "must be replaced" not in out
    workspace.apply()
    assert shim.get(f"/groups/{project_id}/clusters/guarded/backup")["deletionProtection"] is False
    workspace.assert_no_changes()
    workspace.destroy()
    assert shim.request("GET", f"/groups/{project_id}").status_code == 404


def test_a_protected_cluster_refuses_a_replacement_at_plan_and_a_destroy(
    shim: Shim, workspace: Workspace, unique: str
) -> None:
    project = hcl.project(f"guardc-{unique}")
    workspace.write(project + protected(hcl.cluster("keeper")))
    workspace.apply()
    project_id = workspace.state()["cloudbackup_project.p"]["id"]
    assert shim.get(f"/groups/{project_id}/clusters/keeper")["deletionProtection"] is True
    workspace.assert_no_changes()

    workspace.write(project + protected(hcl.cluster("renamed")))
    rc, out, err = workspace.plan()
    assert rc == 1
    assert "Deletion protection is on for this cloudbackup_cluster" in flat(err)
    assert "Replacing this cloudbackup_cluster would delete every snapshot" in flat(err)

    workspace.write(project + protected(hcl.cluster("keeper")))
    rc, out = destroy(workspace)
    assert rc != 0 and "Deletion protection is on for this cloudbackup_cluster" in out
    assert shim.get(f"/groups/{project_id}/clusters/keeper")["stateName"] == "IDLE"

    workspace.write(project + protected(hcl.cluster("keeper"), on=False))
    workspace.apply()
    workspace.destroy()
    assert shim.request("GET", f"/groups/{project_id}").status_code == 404


def test_a_destroy_shows_the_snapshots_it_deletes_before_deleting_them(
    shim: Shim, workspace: Workspace, unique: str
) -> None:
    workspace.write(
        hcl.project(f"preview-{unique}") + hcl.cluster("previewed") + hcl.backup() + hcl.snapshot("before")
    )
    workspace.apply()
    project_id = workspace.state()["cloudbackup_project.p"]["id"]
    shim.advance(3 * 3600)

    if workspace.release.at_least(1, 3):
        # Terraform plans the destroy through the provider: the preview is in `terraform plan -destroy`.
        planned = workspace.run("plan", "-destroy", "-input=false")
        assert planned.returncode == 0, planned.stderr
        print(planned.stdout + planned.stderr)
        out = flat(planned.stdout + planned.stderr)
        assert "Destroying this cloudbackup_cluster_backup deletes 2 snapshot(s)" in out
        assert "(1 scheduled, 1 on-demand)" in out
        assert "the newest completed one was taken 3 hours ago" in out
        assert "immediately (R9), when this plan is applied" in out
        assert len(shim.snapshots(project_id, "previewed")) == 2
        rc, out = destroy(workspace)
    else:
        # Terraform 1.0 does not ask the provider to plan a destroy: the preview comes at apply, first.
        rc, out = destroy(workspace)
        assert "Destroying this cloudbackup_cluster_backup deletes" in out
        assert "immediately (R9), now" in out
    assert rc == 0, out
    assert shim.request("GET", f"/groups/{project_id}").status_code == 404


def test_a_cluster_whose_backup_is_protected_outside_terraform_is_not_destroyed(
    shim: Shim, workspace: Workspace, unique: str
) -> None:
    workspace.write(hcl.project(f"guardo-{unique}") + hcl.cluster("outside"))
    workspace.apply()
    project_id = workspace.state()["cloudbackup_project.p"]["id"]
    backup = f"/groups/{project_id}/clusters/outside/backup"
    shim.call("PUT", backup, {"method": "CLOUD_PROVIDER_SNAPSHOTS", "deletionProtection": True})
    stored = shim.snapshots(project_id, "outside")

    rc, out = destroy(workspace)

    # Terraform 1.3+ stops at plan; before, the shim's 409 stops the apply. Either way nothing goes.
    assert rc != 0 and "deletion protection" in out.lower()
    if workspace.release.at_least(1, 3):
        assert "The cluster's backup has deletion protection" in out
    assert shim.snapshots(project_id, "outside") == stored
    shim.call("PUT", backup, {"method": "CLOUD_PROVIDER_SNAPSHOTS", "deletionProtection": False})
    workspace.destroy()
