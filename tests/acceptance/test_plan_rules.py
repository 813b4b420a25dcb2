"""Rules R1-R4 and R11, and invalid values, fail `terraform plan` on the attribute at fault."""

from __future__ import annotations

import re

import hcl
import pytest
from tfkit import Shim, Workspace

pytestmark = pytest.mark.acceptance


def plan_fails(shim: Shim, workspace: Workspace, config: str, *expected: str) -> str:
    """Plan `config`: it must fail with every `expected` text, and the shim must hold the same afterwards."""
    before = shim.everything()
    workspace.write(config)
    rc, out, err = workspace.plan()
    text = re.sub(r"\s+", " ", err)
    assert rc == 1, f"plan should fail:\n{out}\n{err}"
    for fragment in expected:
        assert fragment in text, f"{fragment!r} not in:\n{err}"
    assert shim.everything() == before
    return err


def test_a_backup_of_an_m0_cluster_declared_alongside_fails_the_plan_on_its_cluster_name(
    shim: Shim, workspace: Workspace, unique: str
) -> None:
    config = hcl.project(f"r1-{unique}") + hcl.cluster("free", size="M0") + hcl.backup()
    err = plan_fails(
        shim,
        workspace,
        config,
        "Cloud provider snapshots are not available for M0, M2 and M5 clusters",
        "Scale cluster 'free' to M10 or larger",
    )
    assert "cluster_name = cloudbackup_cluster.c.name" in err


def test_a_backup_of_an_existing_m2_cluster_fails_the_plan_through_a_dry_run(
    shim: Shim, workspace: Workspace, unique: str
) -> None:
    project_id = shim.create_project(f"r1b-{unique}")
    shim.create_cluster(project_id, "shared-tier", size="M2")
    config = hcl.backup(project=f'"{project_id}"', cluster='"shared-tier"')
    plan_fails(shim, workspace, config, "not available for M2", "shared-tier")


def test_a_backup_of_an_aws_cluster_declared_alongside_fails_the_plan(
    shim: Shim, workspace: Workspace, unique: str
) -> None:
    config = hcl.project(f"r2-{unique}") + hcl.cluster("on-aws", provider="AWS", regions=(("us-east-1", 7),))
    plan_fails(
        shim, workspace, config + hcl.backup(), "available for Azure-backed clusters only", "runs on AWS"
    )


def test_a_backup_of_an_existing_sharded_cluster_fails_the_plan(
    shim: Shim, workspace: Workspace, unique: str
) -> None:
    project_id = shim.create_project(f"r3-{unique}")
    shim.create_cluster(project_id, "shards", kind="SHARDED")
    config = hcl.backup(project=f'"{project_id}"', cluster='"shards"')
    plan_fails(shim, workspace, config, "available for replica set clusters only", "is SHARDED")


def test_a_project_locked_to_continuous_by_a_cluster_outside_the_configuration_refuses_snapshots(
    shim: Shim, workspace: Workspace, unique: str
) -> None:
    project_id = shim.create_project(f"r4-{unique}")
    shim.create_cluster(project_id, "legacy")
    shim.call("PUT", f"/groups/{project_id}/clusters/legacy/backup", {"method": "CONTINUOUS"})
    config = hcl.cluster("fresh", project=f'"{project_id}"') + hcl.backup(project=f'"{project_id}"')
    err = plan_fails(shim, workspace, config, "locked to another backup method", "'legacy'", "CONTINUOUS")
    assert "method" in err


def test_two_backups_asking_one_new_project_for_different_methods_fail_the_plan(
    shim: Shim, workspace: Workspace, unique: str
) -> None:
    config = (
        hcl.project(f"r4b-{unique}")
        + hcl.cluster("first")
        + hcl.cluster("second", label="c2")
        + hcl.backup()
        + hcl.backup(label="b2", cluster="cloudbackup_cluster.c2.name", method="CONTINUOUS")
    )
    plan_fails(shim, workspace, config, "locked to another backup method")


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"size": "M5"}, "not available for M5 clusters. Disable backup first"),
        ({"cluster_type": "SHARDED"}, "available for replica sets only. Disable backup first"),
        (
            {"provider": "GCP", "regions": (("us-central1", 7), ("us-east1", 6))},
            "Azure-backed clusters only. Disable backup first",
        ),
    ],
)
def test_a_backed_up_cluster_cannot_be_changed_into_what_snapshots_do_not_support(
    shim: Shim, workspace: Workspace, unique: str, change: dict, expected: str
) -> None:
    base = hcl.project(f"r11-{unique}")
    workspace.write(base + hcl.cluster("kept") + hcl.backup())
    workspace.apply()
    plan_fails(shim, workspace, base + hcl.cluster("kept", **change) + hcl.backup(), expected)
    workspace.write(base + hcl.cluster("kept") + hcl.backup())
    workspace.destroy()


@pytest.mark.parametrize(
    ("regions", "size", "expected"),
    [
        ((("eastus2", 7),), "M3", "'M3' is not one of"),
        ((("eastus9", 7),), "M10", "'eastus9' is not an Azure region"),
        ((("eastus2", 7), ("westus2", 7)), "M10", "Exactly one region must have priority 7"),
        ((("eastus2", 6), ("westus2", 5)), "M10", "Exactly one region must have priority 7"),
        ((("eastus2", 7), ("westus2", 5), ("centralus", 5)), "M10", "share priority 5"),
        ((("eastus2", 7), ("eastus2", 6)), "M10", "Region 'eastus2' is listed twice"),
        ((("eastus2", 9),), "M10", "9 is greater than the maximum of 7"),
    ],
)
def test_invalid_cluster_values_fail_the_plan(
    shim: Shim, workspace: Workspace, unique: str, regions: tuple, size: str, expected: str
) -> None:
    config = hcl.project(f"bad-{unique}") + hcl.cluster("bad", size=size, regions=regions)
    plan_fails(shim, workspace, config, expected)


def test_a_missing_key_is_one_clear_error_at_provider_configuration(
    workspace: Workspace, monkeypatch: pytest.MonkeyPatch, unique: str
) -> None:
    monkeypatch.delenv("CLOUDBACKUP_PRIVATE_KEY")
    workspace.write(hcl.project(f"nokey-{unique}"))
    rc, _, err = workspace.plan()
    assert rc == 1 and err.count("Error:") == 1 and "Missing cloudbackup API key" in err


def test_an_unreachable_url_is_one_clear_error_at_provider_configuration(
    workspace: Workspace, monkeypatch: pytest.MonkeyPatch, unique: str
) -> None:
    monkeypatch.setenv("CLOUDBACKUP_URL", "http://127.0.0.1:9")
    workspace.write(hcl.project(f"nourl-{unique}"))
    rc, _, err = workspace.plan()
    assert rc == 1 and err.count("Error:") == 1 and "Cannot reach the cloudbackup API" in err
    assert "Traceback" not in err


def test_a_valid_plan_with_values_unknown_until_apply_passes(
    shim: Shim, workspace: Workspace, unique: str
) -> None:
    # The project is new, so every project_id is unknown at plan time: nothing may be refused for it.
    workspace.write(hcl.project(f"ok-{unique}") + hcl.cluster("fine") + hcl.backup())
    rc, out, err = workspace.plan()
    assert rc == 2, out + err
    assert "3 to add" in out


def snapshot_of(cluster: str, project: str = "cloudbackup_project.p.id") -> str:
    return (
        'resource "cloudbackup_snapshot" "s" {\n'
        f"  project_id   = {project}\n"
        f"  cluster_name = {cluster}\n"
        '  description  = "at plan"\n'
        "}\n"
    )


def restore_of(*, project: str, cluster: str, snapshot: str, target: str, label: str = "r") -> str:
    return (
        f'resource "cloudbackup_restore_job" "{label}" {{\n'
        f"  project_id          = {project}\n"
        f"  cluster_name        = {cluster}\n"
        f"  snapshot_id         = {snapshot}\n"
        f"  target_cluster_name = {target}\n"
        "}\n"
    )


def test_an_on_demand_snapshot_of_a_cluster_without_backup_in_the_configuration_fails_the_plan(
    shim: Shim, workspace: Workspace, unique: str
) -> None:
    config = hcl.project(f"nobk-{unique}") + hcl.cluster("plain") + snapshot_of("cloudbackup_cluster.c.name")
    err = plan_fails(
        shim, workspace, config, "The cluster has no backup", "Add a cloudbackup_cluster_backup resource"
    )
    assert "cluster_name = cloudbackup_cluster.c.name" in err


def test_an_on_demand_snapshot_of_an_existing_cluster_named_literally_is_looked_up_at_plan(
    shim: Shim, workspace: Workspace, unique: str
) -> None:
    project_id = shim.create_project(f"lit-{unique}")
    shim.create_cluster(project_id, "unbacked")
    shim.create_cluster(project_id, "backed")
    shim.call("PUT", f"/groups/{project_id}/clusters/backed/backup", {"method": "CLOUD_PROVIDER_SNAPSHOTS"})
    project = f'"{project_id}"'
    plan_fails(shim, workspace, snapshot_of('"unbacked"', project), "The cluster has no backup", "'unbacked'")
    plan_fails(shim, workspace, snapshot_of('"absent"', project), "No such cluster", "'absent'")
    workspace.write(snapshot_of('"backed"', project))
    rc, out, err = workspace.plan()
    assert rc == 2 and "1 to add" in out, out + err


def test_a_restore_into_a_target_declared_smaller_than_the_source_fails_the_plan_on_the_target(
    shim: Shim, workspace: Workspace, unique: str
) -> None:
    project_id = shim.create_project(f"small-{unique}")
    body = {
        "name": "big",
        "providerSettings": {"providerName": "AZURE", "instanceSizeName": "M10"},
        "clusterType": "REPLICASET",
        "replicationSpecs": [{"regionsConfig": {"eastus2": {"priority": 7, "electableNodes": 1}}}],
        "diskSizeGB": 40,
    }
    shim.call("POST", f"/groups/{project_id}/clusters", body)
    shim.call("PUT", f"/groups/{project_id}/clusters/big/backup", {"method": "CLOUD_PROVIDER_SNAPSHOTS"})
    project = f'"{project_id}"'
    target = hcl.cluster("small", label="t", project=project, disk=20, regions=(("eastus2", 7),))
    config = (
        target
        + snapshot_of('"big"', project)
        + restore_of(
            project=project,
            cluster='"big"',
            snapshot="cloudbackup_snapshot.s.id",
            target="cloudbackup_cluster.t.name",
        )
    )
    err = plan_fails(
        shim,
        workspace,
        config,
        "The snapshot cannot be restored into that target",
        "Grow the target's disk_size_gb to 40 or more",
    )
    assert "diskSizeGB" not in err and "target_cluster_name = cloudbackup_cluster.t.name" in err


def test_a_restore_of_a_stored_snapshot_into_a_smaller_target_fails_the_plan_on_the_target(
    shim: Shim, workspace: Workspace, unique: str
) -> None:
    project_id = shim.create_project(f"stored-{unique}")
    body = {
        "name": "big",
        "providerSettings": {"providerName": "AZURE", "instanceSizeName": "M10"},
        "clusterType": "REPLICASET",
        "replicationSpecs": [{"regionsConfig": {"eastus2": {"priority": 7, "electableNodes": 1}}}],
        "diskSizeGB": 30,
    }
    shim.call("POST", f"/groups/{project_id}/clusters", body)
    shim.call("PUT", f"/groups/{project_id}/clusters/big/backup", {"method": "CLOUD_PROVIDER_SNAPSHOTS"})
    snapshot_id = shim.snapshots(project_id, "big")[0]["id"]
    project = f'"{project_id}"'
    restore = restore_of(
        project=project, cluster='"big"', snapshot=f'"{snapshot_id}"', target="cloudbackup_cluster.t.name"
    )
    small = hcl.cluster("small", label="t", project=project, disk=20, regions=(("eastus2", 7),))
    plan_fails(shim, workspace, small + restore, "Grow the target's disk_size_gb to 30 or more")
    large = hcl.cluster("large", label="t", project=project, disk=30, regions=(("eastus2", 7),))
    workspace.write(large + restore)
    rc, out, err = workspace.plan()
    assert rc == 2 and "2 to add" in out, out + err


def test_a_restore_into_a_target_cluster_that_exists_nowhere_fails_the_plan(
    shim: Shim, workspace: Workspace, unique: str
) -> None:
    project_id = shim.create_project(f"notarget-{unique}")
    shim.create_cluster(project_id, "src")
    shim.call("PUT", f"/groups/{project_id}/clusters/src/backup", {"method": "CLOUD_PROVIDER_SNAPSHOTS"})
    snapshot_id = shim.snapshots(project_id, "src")[0]["id"]
    project = f'"{project_id}"'
    config = restore_of(project=project, cluster='"src"', snapshot=f'"{snapshot_id}"', target='"nowhere"')
    plan_fails(shim, workspace, config, "No such target cluster", "'nowhere'")
    wrong_id = restore_of(
        project=project, cluster='"src"', snapshot='"0123456789abcdef01234567"', target='"src"'
    )
    plan_fails(shim, workspace, wrong_id, "No such snapshot", "0123456789abcdef01234567")


def test_a_disk_shrink_error_names_the_attribute_and_gives_advice_that_works(
    shim: Shim, workspace: Workspace, unique: str
) -> None:
    base = hcl.project(f"shrink-{unique}")
    workspace.write(base + hcl.cluster("grown", disk=40))
    workspace.apply()
    err = plan_fails(shim, workspace, base + hcl.cluster("grown", disk=20), "Disk size cannot shrink")
    text = re.sub(r"\s+", " ", err)
    assert "disk_size_gb can grow but not shrink" in text and "Keep 40 or more" in text
    assert "diskSizeGB" not in text and "smaller cluster" not in text
    workspace.destroy()


def test_a_snapshot_whose_cluster_is_known_only_at_apply_gets_the_plan_error_at_apply(
    shim: Shim, workspace: Workspace, unique: str
) -> None:
    late_name = '"${substr(cloudbackup_cluster.c.id, 0, 0)}plain"'
    config = hcl.project(f"late-{unique}") + hcl.cluster("plain") + snapshot_of(late_name)
    workspace.write(config)
    rc, out, err = workspace.plan()
    assert rc == 2, out + err
    apply = workspace.run("apply", "-auto-approve", "-input=false")
    text = re.sub(r"\s+", " ", apply.stderr)
    assert apply.returncode == 1, apply.stdout + apply.stderr
    assert "The cluster has no backup" in text and "Add a cloudbackup_cluster_backup resource" in text
    assert "PUT .../" not in text
    assert set(workspace.state()) == {"cloudbackup_project.p", "cloudbackup_cluster.c"}
    workspace.destroy()


def test_a_snapshot_of_a_cluster_whose_backup_is_declared_but_not_referenced_passes_the_plan(
    shim: Shim, workspace: Workspace, unique: str
) -> None:
    # The snapshot and the backup both depend on the cluster alone, so Terraform plans them together.
    config = (
        hcl.project(f"peer-{unique}")
        + hcl.cluster("peer")
        + hcl.backup()
        + snapshot_of("cloudbackup_cluster.c.name")
    )
    workspace.write(config)
    for _ in range(3):
        rc, out, err = workspace.plan()
        assert rc == 2 and "4 to add" in out, out + err
