"""Every resource through the real terraform CLI: create, no change, import, update, drift, destroy."""

from __future__ import annotations

import hcl
import pytest
from tfkit import Shim, Workspace

pytestmark = pytest.mark.acceptance


def test_a_project_is_created_imported_replaced_and_destroyed(
    shim: Shim, workspace: Workspace, unique: str
) -> None:
    workspace.write(hcl.project(f"life-{unique}"))
    workspace.apply()
    project_id = workspace.state()["cloudbackup_project.p"]["id"]
    assert shim.get(f"/groups/{project_id}")["name"] == f"life-{unique}"
    workspace.assert_no_changes()

    workspace.forget("cloudbackup_project.p")
    workspace.import_("cloudbackup_project.p", project_id)
    workspace.assert_no_changes()

    workspace.write(hcl.project(f"renamed-{unique}"))
    rc, out, _ = workspace.plan()
    assert rc == 2 and "must be replaced" in out
    workspace.apply()
    new_id = workspace.state()["cloudbackup_project.p"]["id"]
    assert new_id != project_id
    assert shim.request("GET", f"/groups/{project_id}").status_code == 404
    workspace.assert_no_changes()

    workspace.destroy()
    assert shim.request("GET", f"/groups/{new_id}").status_code == 404


def test_a_cluster_plans_its_defaults_reads_back_what_the_api_holds_and_updates_in_place(
    shim: Shim, workspace: Workspace, unique: str
) -> None:
    name = f"orders-db-{unique}"
    workspace.write(
        hcl.project(f"cl-{unique}")
        + hcl.cluster(name, regions=(("eastus2", None), ("westus2", 6)), nodes=None)
    )
    workspace.apply()
    state = workspace.state()["cloudbackup_cluster.c"]
    project_id = state["project_id"]
    assert state["id"] == f"{project_id}/{name}"
    assert (state["cluster_type"], state["disk_size_gb"], state["state"]) == ("REPLICASET", 10, "IDLE")
    assert sorted((r["name"], r["priority"], r["electable_nodes"]) for r in state["region"]) == [
        ("eastus2", 7, 3),
        ("westus2", 6, 3),
    ]
    assert state["preferred_region"] == "eastus2"
    assert state["backup_enabled"] is False and state["backup_method"] is None
    api = shim.get(f"/groups/{project_id}/clusters/{name}")
    assert api["replicationSpecs"][0]["regionsConfig"]["westus2"] == {"priority": 6, "electableNodes": 3}
    workspace.assert_no_changes()

    # Hyphens in the name do not break the PROJECT_ID/NAME import ID.
    workspace.forget("cloudbackup_cluster.c")
    workspace.import_("cloudbackup_cluster.c", f"{project_id}/{name}")
    workspace.assert_no_changes()

    workspace.write(
        hcl.project(f"cl-{unique}")
        + hcl.cluster(
            name, size="M20", disk=20, regions=(("eastus2", 6), ("westus2", 7), ("centralus", 5)), nodes=None
        )
    )
    rc, out, _ = workspace.plan()
    assert rc == 2 and "updated in-place" in out and "must be replaced" not in out
    workspace.apply()
    api = shim.get(f"/groups/{project_id}/clusters/{name}")
    assert api["providerSettings"]["instanceSizeName"] == "M20" and api["diskSizeGB"] == 20
    assert set(api["replicationSpecs"][0]["regionsConfig"]) == {"eastus2", "westus2", "centralus"}
    assert workspace.state()["cloudbackup_cluster.c"]["preferred_region"] == "westus2"
    workspace.assert_no_changes()

    # Terminated outside Terraform: planned for creation again, not an error.
    shim.call("DELETE", f"/groups/{project_id}/clusters/{name}")
    rc, out, _ = workspace.plan()
    assert rc == 2 and "cloudbackup_cluster.c will be created" in out

    workspace.destroy()


def test_a_backup_is_enabled_imported_drifts_and_its_destroy_empties_the_storage(
    shim: Shim, workspace: Workspace, unique: str
) -> None:
    name = f"ledger-{unique}"
    base = hcl.project(f"bk-{unique}") + hcl.cluster(name)
    workspace.write(base + hcl.backup(timeout="30m"))
    workspace.apply()
    state = workspace.state()["cloudbackup_cluster_backup.b"]
    project_id = state["project_id"]
    assert state["id"] == f"{project_id}/{name}"
    assert state["method"] == "CLOUD_PROVIDER_SNAPSHOTS"
    assert (state["storage_region"], state["interval_hours"], state["retention_count"]) == ("eastus2", 24, 3)
    assert len(state["snapshot_ids"]) == 1 and state["reference_time"] and state["next_snapshot_at"]
    first = shim.snapshots(project_id, name)
    assert [s["id"] for s in first] == state["snapshot_ids"] and first[0]["status"] == "completed"
    workspace.assert_no_changes()

    workspace.forget("cloudbackup_cluster_backup.b")
    workspace.import_("cloudbackup_cluster_backup.b", f"{project_id}/{name}")
    # An imported resource has no timeouts block until the configuration gives it one: configure none.
    workspace.write(base + hcl.backup())
    workspace.assert_no_changes()

    # Only timeouts can change in place; the backup and its snapshots are untouched.
    workspace.write(base + hcl.backup(timeout="2h"))
    rc, out, _ = workspace.plan()
    assert rc == 2 and "updated in-place" in out
    workspace.apply()
    assert [s["id"] for s in shim.snapshots(project_id, name)] == state["snapshot_ids"]
    workspace.assert_no_changes()

    # Backup disabled by hand shows in the plan as a backup to enable again.
    shim.call("DELETE", f"/groups/{project_id}/clusters/{name}/backup")
    rc, out, _ = workspace.plan()
    assert rc == 2 and "cloudbackup_cluster_backup.b will be created" in out
    workspace.apply()
    ids = workspace.state()["cloudbackup_cluster_backup.b"]["snapshot_ids"]
    assert ids and all(any(p.name.startswith(i) for p in shim.snapshot_files()) for i in ids)

    workspace.write(base)
    workspace.apply()
    assert shim.get(f"/groups/{project_id}/clusters/{name}/backup")["enabled"] is False
    assert not [p for p in shim.snapshot_files() if any(p.name.startswith(i) for i in ids)]
    workspace.destroy()


def test_an_on_demand_snapshot_is_taken_listed_imported_replaced_and_deleted(
    shim: Shim, workspace: Workspace, unique: str
) -> None:
    name = f"events-{unique}"
    base = hcl.project(f"sn-{unique}") + hcl.cluster(name) + hcl.backup()
    listing = """
data "cloudbackup_snapshots" "all" {
  project_id   = cloudbackup_project.p.id
  cluster_name = cloudbackup_cluster_backup.b.cluster_name
  depends_on   = [cloudbackup_snapshot.s]
}
output "listed" { value = data.cloudbackup_snapshots.all.snapshots[*].id }
"""
    workspace.write(base + hcl.snapshot("before the migration") + listing)
    workspace.apply()
    state = workspace.state()["cloudbackup_snapshot.s"]
    project_id = state["project_id"]
    assert (state["status"], state["snapshot_type"], state["region"]) == ("completed", "onDemand", "eastus2")
    assert state["description"] == "before the migration" and state["storage_size_bytes"] is not None
    listed = workspace.outputs()["listed"]
    assert listed[0] == state["id"] and len(listed) == 2
    workspace.assert_no_changes()

    workspace.forget("cloudbackup_snapshot.s")
    workspace.import_("cloudbackup_snapshot.s", f"{project_id}/{name}/{state['id']}")
    workspace.assert_no_changes()

    workspace.write(base + hcl.snapshot("after the migration") + listing)
    workspace.apply()
    replaced = workspace.state()["cloudbackup_snapshot.s"]
    api_ids = [s["id"] for s in shim.snapshots(project_id, name)]
    assert replaced["id"] in api_ids and state["id"] not in api_ids
    workspace.assert_no_changes()

    # Deleted by hand: planned for creation again.
    shim.call("DELETE", f"/groups/{project_id}/clusters/{name}/backup/snapshots/{replaced['id']}")
    rc, out, _ = workspace.plan()
    assert rc == 2 and "cloudbackup_snapshot.s will be created" in out
    workspace.apply()
    again = workspace.state()["cloudbackup_snapshot.s"]["id"]

    workspace.write(base)
    workspace.apply()
    assert again not in [s["id"] for s in shim.snapshots(project_id, name)]
    workspace.destroy()
