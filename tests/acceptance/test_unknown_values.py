"""Values known only at apply (refined unknowns, Terraform 1.6+) pass the plan and are checked at apply."""

from __future__ import annotations

import hcl
import pytest
from tfkit import Shim, Workspace

pytestmark = pytest.mark.acceptance


def known_at_apply(value: str) -> str:
    """An expression that is `value` once the project exists, and unknown while it is planned."""
    return f'replace(cloudbackup_project.p.id, "/.*/", "{value}")'


def test_a_description_and_a_tier_unknown_at_plan_pass_the_plan_and_the_apply(
    shim: Shim, workspace: Workspace, unique: str
) -> None:
    workspace.write(
        hcl.project(f"unknown-{unique}")
        + hcl.cluster("later", size_expression=known_at_apply("M10"))
        + hcl.backup()
        + hcl.snapshot("before ${cloudbackup_cluster.c.id}")
    )
    rc, out, err = workspace.plan()
    assert rc == 2 and "4 to add" in out, out + err
    workspace.apply()
    state = workspace.state()
    cluster = state["cloudbackup_cluster.c"]
    assert cluster["instance_size"] == "M10"
    assert state["cloudbackup_snapshot.s"]["description"] == f"before {cluster['id']}"
    api = shim.get(f"/groups/{cluster['project_id']}/clusters/later/backup/snapshots")["results"]
    assert f"before {cluster['id']}" in [s.get("description") for s in api]
    workspace.assert_no_changes()
    workspace.destroy()


def test_a_tier_known_only_at_apply_is_refused_at_apply_with_the_rule_the_plan_would_name(
    shim: Shim, workspace: Workspace, unique: str
) -> None:
    workspace.write(
        hcl.project(f"late-m2-{unique}")
        + hcl.cluster("shared", size_expression=known_at_apply("M2"))
        + hcl.backup()
    )
    rc, out, err = workspace.plan()
    assert rc == 2 and "3 to add" in out, out + err
    result = workspace.run("apply", "-auto-approve", "-input=false")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Cloud provider snapshots are not available for M0, M2 and M5 clusters" in " ".join(
        result.stderr.split()
    ), result.stderr
    project_id = workspace.state()["cloudbackup_project.p"]["id"]
    assert shim.get(f"/groups/{project_id}/clusters/shared/backup")["enabled"] is False
    shim.call("DELETE", f"/groups/{project_id}/clusters/shared")
    shim.call("DELETE", f"/groups/{project_id}")
