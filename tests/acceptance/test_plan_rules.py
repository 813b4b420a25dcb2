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
