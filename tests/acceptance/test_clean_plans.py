"""Plans stay clean: right after an apply nothing is to do and nothing "changed outside of Terraform"."""

from __future__ import annotations

import re

import hcl
import pytest
from tfkit import Shim, Workspace

pytestmark = pytest.mark.acceptance
DAY = 24 * 3600
DRIFT_NOTE = "Objects have changed outside of Terraform"
# The attributes documented as changing with the snapshot schedule.
# (last_snapshot_at moves to each new snapshot; snapshot_age_seconds is 0 again right at one.)
SCHEDULE_ATTRIBUTES = {"next_snapshot_at", "snapshot_ids", "last_snapshot_at"}


def drifted(plan_output: str) -> dict[str, set[str]]:
    """The resources and attributes that Terraform's drift note lists (empty without a note)."""
    if DRIFT_NOTE not in plan_output:
        return {}
    note = plan_output.split(DRIFT_NOTE, 1)[1]
    note = re.split(
        r"\n(?:Unless you have made equivalent changes|This is a refresh-only plan|No changes\.)", note
    )[0]
    found: dict[str, set[str]] = {}
    current = None
    for line in note.splitlines():
        header = re.match(r"\s*# (\S+) has (?:been )?changed", line)
        if header:
            current = found.setdefault(header.group(1), set())
            continue
        attribute = re.match(r"\s*[~+-] (\w+)\s*=", line) or re.match(r"\s*[~+-] (\w+) \[", line)
        if attribute and current is not None and attribute.group(1) not in ("id",):
            current.add(attribute.group(1))
    return found


def test_a_plan_right_after_an_apply_with_an_on_demand_snapshot_is_empty_and_notes_no_drift(
    shim: Shim, workspace: Workspace, unique: str
) -> None:
    workspace.write(
        hcl.project(f"clean-{unique}")
        + hcl.cluster("tidy")
        + hcl.backup()
        + hcl.snapshot("before the release")
    )
    workspace.apply()
    out = workspace.assert_no_changes()
    assert DRIFT_NOTE not in out, out

    state = workspace.state()
    backup = state["cloudbackup_cluster_backup.b"]
    on_demand = state["cloudbackup_snapshot.s"]["id"]
    # The backup lists its retained scheduled snapshots; the on-demand one is its own resource.
    assert on_demand not in backup["snapshot_ids"] and len(backup["snapshot_ids"]) == 1
    project_id = backup["project_id"]
    kinds = {s["id"]: s["snapshotType"] for s in shim.snapshots(project_id, "tidy")}
    assert kinds == {backup["snapshot_ids"][0]: "scheduled", on_demand: "onDemand"}

    # A day later the schedule took a snapshot: that alone may show, in the schedule's attributes alone.
    shim.advance(DAY)
    rc, out, err = workspace.plan()
    assert rc == 0, out + err
    assert set(drifted(out)) <= {"cloudbackup_cluster_backup.b"}, out
    assert all(attrs <= SCHEDULE_ATTRIBUTES for attrs in drifted(out).values()), out
    if not workspace.release.at_least(1, 2):
        # Terraform before 1.2 notes every change it refreshes; later ones only those a plan relies on.
        assert drifted(out) == {"cloudbackup_cluster_backup.b": SCHEDULE_ATTRIBUTES}, out
    workspace.refresh()
    ids = workspace.state()["cloudbackup_cluster_backup.b"]["snapshot_ids"]
    assert len(ids) == 2 and ids[1] == backup["snapshot_ids"][0] and on_demand not in ids
    out = workspace.assert_no_changes()
    assert DRIFT_NOTE not in out, out

    # The cluster's backup attributes are as Terraform last wrote the cluster: created before its backup,
    # then read afresh by the next change of the cluster itself.
    assert workspace.state()["cloudbackup_cluster.c"]["backup_enabled"] is False
    workspace.write(
        hcl.project(f"clean-{unique}")
        + hcl.cluster("tidy", size="M20")
        + hcl.backup()
        + hcl.snapshot("before the release")
    )
    rc, out, err = workspace.plan()
    assert rc == 2 and "1 to change" in out and DRIFT_NOTE not in out, out + err
    workspace.apply()
    cluster = workspace.state()["cloudbackup_cluster.c"]
    assert (cluster["instance_size"], cluster["backup_enabled"], cluster["backup_method"]) == (
        "M20",
        True,
        "CLOUD_PROVIDER_SNAPSHOTS",
    )
    out = workspace.assert_no_changes()
    assert DRIFT_NOTE not in out, out
    workspace.destroy()
