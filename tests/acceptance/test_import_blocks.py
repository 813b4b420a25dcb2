"""`import` blocks with `terraform plan -generate-config-out` (Terraform 1.5+) adopt every resource type."""

from __future__ import annotations

import re
import time

import pytest
from tfkit import Shim, Workspace

pytestmark = pytest.mark.acceptance


def adopt(shim: Shim, unique: str) -> dict[str, str]:
    """Resources made through the API alone, each with its Terraform import ID."""
    project_id = shim.create_project(f"adopt-{unique}")
    shim.create_cluster(project_id, "source")
    shim.create_cluster(project_id, "target", size="M20")
    shim.call("PUT", f"/groups/{project_id}/clusters/source/backup", {"method": "CLOUD_PROVIDER_SNAPSHOTS"})
    base = f"/groups/{project_id}/clusters/source/backup"
    snapshot = shim.call("POST", f"{base}/snapshots", {"description": "adopted"})
    job = shim.call(
        "POST",
        f"{base}/restoreJobs",
        {"snapshotId": snapshot["id"], "deliveryType": "automated", "targetClusterName": "target"},
    )
    for _ in range(600):
        if shim.get(f"{base}/restoreJobs/{job['id']}")["status"] in ("completed", "failed"):
            break
        time.sleep(0.05)
    return {
        "cloudbackup_project.p": project_id,
        "cloudbackup_cluster.source": f"{project_id}/source",
        "cloudbackup_cluster.target": f"{project_id}/target",
        "cloudbackup_cluster_backup.b": f"{project_id}/source",
        "cloudbackup_snapshot.s": f"{project_id}/source/{snapshot['id']}",
        "cloudbackup_restore_job.r": f"{project_id}/source/{job['id']}",
    }


def test_import_blocks_generate_a_configuration_that_applies_and_then_plans_no_change(
    shim: Shim, workspace: Workspace, unique: str
) -> None:
    if not workspace.release.at_least(1, 5):
        pytest.skip(f"import blocks need Terraform 1.5 or newer, not {workspace.release.version}")
    ids = adopt(shim, unique)
    workspace.write("".join(f'import {{\n  to = {to}\n  id = "{id_}"\n}}\n' for to, id_ in ids.items()))
    generated = workspace.path / "generated.tf"
    result = workspace.run("plan", "-input=false", "-generate-config-out=generated.tf")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Warning" not in result.stderr, result.stderr
    assert f"Plan: {len(ids)} to import, 0 to add, 0 to change, 0 to destroy." in result.stdout, result.stdout
    text = generated.read_text()
    assert all(f'resource "{to.split(".")[0]}" "{to.split(".")[1]}"' in text for to in ids), text

    valid = workspace.run("validate")
    assert valid.returncode == 0, valid.stdout + valid.stderr
    applied = workspace.run("apply", "-auto-approve", "-input=false")
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert (
        f"Apply complete! Resources: {len(ids)} imported, 0 added, 0 changed, 0 destroyed." in applied.stdout
    )
    assert set(workspace.state()) == set(ids)
    out = workspace.assert_no_changes()
    assert "Objects have changed outside of Terraform" not in out

    # Wired together as a user would (so that the project is destroyed last), it still plans no change.
    project_id = ids["cloudbackup_project.p"]
    wired = re.sub(rf'(\n\s*project_id\s*=\s*)"{project_id}"', r"\1cloudbackup_project.p.id", text)
    assert wired.count("cloudbackup_project.p.id") == len(ids) - 1
    generated.write_text(wired)
    workspace.assert_no_changes()
    workspace.destroy()
    assert shim.request("GET", f"/groups/{project_id}").status_code == 404
