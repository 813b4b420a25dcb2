"""An on-demand snapshot with retention_in_days: it expires on the shim, and Terraform plans a new one."""

from __future__ import annotations

from datetime import timedelta

import hcl
import pytest
from tfkit import Shim, Workspace

from shim.clock import parse_time

pytestmark = pytest.mark.acceptance
DAY = 24 * 3600


def test_a_snapshot_kept_two_days_expires_and_is_planned_again(
    shim: Shim, workspace: Workspace, unique: str
) -> None:
    snapshot = hcl.snapshot("two days")
    snapshot = snapshot[:-2] + "  retention_in_days = 2\n}\n"
    workspace.write(hcl.project(f"keep2-{unique}") + hcl.cluster("keep2") + hcl.backup() + snapshot)
    workspace.apply()
    state = workspace.state()["cloudbackup_snapshot.s"]
    assert state["retention_in_days"] == 2
    assert parse_time(state["expires_at"]) == parse_time(state["created_at"]) + timedelta(days=2)
    workspace.assert_no_changes()

    shim.advance(2 * DAY)
    project_id = state["project_id"]
    assert state["id"] not in [s["id"] for s in shim.snapshots(project_id, "keep2")]
    rc, out, _ = workspace.plan()
    assert rc == 2 and "cloudbackup_snapshot.s will be created" in out
    workspace.destroy()
