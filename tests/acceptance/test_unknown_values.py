"""Values known only at apply (refined unknowns, Terraform 1.6+) pass the plan and are checked at apply."""

from __future__ import annotations

import re

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


def rule_error(stderr: str) -> str:
    """The error's summary and detail, without the source lines Terraform quotes around them."""
    kept = [
        line.strip()
        for line in stderr.replace("│", "").splitlines()
        if line.strip() and not re.match(r"\s*(with |on main\.tf|\d+:|╷|╵)", line)
    ]
    return " ".join(" ".join(kept).split())


def test_a_tier_known_only_at_apply_is_refused_at_apply_with_the_rule_the_plan_would_name(
    shim: Shim, workspace: Workspace, unique: str
) -> None:
    project = hcl.project(f"late-m2-{unique}")
    workspace.write(project + hcl.cluster("shared", size="M2") + hcl.backup())
    rc, _, at_plan = workspace.plan()
    assert rc == 1 and "Scale cluster 'shared' to M10 or larger" in rule_error(at_plan), at_plan

    workspace.write(project + hcl.cluster("shared", size_expression=known_at_apply("M2")) + hcl.backup())
    rc, out, err = workspace.plan()
    assert rc == 2 and "3 to add" in out, out + err
    result = workspace.run("apply", "-auto-approve", "-input=false")
    assert result.returncode == 1, result.stdout + result.stderr
    assert rule_error(result.stderr) == rule_error(at_plan), result.stderr
    assert "cluster_name = cloudbackup_cluster.c.name" in result.stderr
    project_id = workspace.state()["cloudbackup_project.p"]["id"]
    assert shim.get(f"/groups/{project_id}/clusters/shared/backup")["enabled"] is False
    shim.call("DELETE", f"/groups/{project_id}/clusters/shared")
    shim.call("DELETE", f"/groups/{project_id}")
