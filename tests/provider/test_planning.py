"""Plan-time checks without Terraform: defaults, unknowns, rules on this run's plans and the API's answers."""

from __future__ import annotations

from typing import Any

from tf.types import Unknown
from tf.utils import Diagnostics

from provider import schema
from provider.client import ApiError
from provider.planning import Run, check_backup, check_cluster_change
from provider.plugin import Plugin
from provider.resource import duration_seconds, split_import_id

PID = "0123456789abcdef01234567"


class FakeClient:
    """Answers the reads the checks make, and records dry runs."""

    def __init__(
        self, clusters: dict[str, dict[str, Any]] | None = None, refusal: ApiError | None = None
    ) -> None:
        self._clusters = clusters or {}
        self.refusal = refusal
        self.dry_runs: list[tuple[str, Any]] = []

    def clusters(self, project_id: str) -> dict[str, dict[str, Any]]:
        return self._clusters

    def project(self, project_id: str) -> dict[str, Any]:
        return {"id": project_id, "name": "shop"}

    def put(self, path: str, body: Any = None, **query: Any) -> Any:
        self.dry_runs.append((path, query))
        if self.refusal:
            raise self.refusal
        return {"dryRun": True}


def cluster_config(**overrides: Any) -> dict[str, Any]:
    config = {
        "project_id": Unknown,
        "name": "orders",
        "provider_name": "AZURE",
        "instance_size": "M10",
        "cluster_type": None,
        "disk_size_gb": None,
        "region": [{"name": "eastus2", "priority": None, "electable_nodes": None}],
    }
    config.update(overrides)
    # Every attribute the schema has (null where not given), as Terraform sends a configuration.
    return {k: config.get(k) for k in schema.load().resources["cloudbackup_cluster"].names}


def errors(diags: Diagnostics) -> list[tuple[str, list[Any] | None]]:
    return [(d.summary, d.path) for d in diags.diagnostics if d.severity == "error"]


def test_a_new_cluster_plans_its_defaults_and_leaves_what_apply_decides_unknown() -> None:
    plugin = Plugin()
    diags = Diagnostics()
    planned, replace = plugin.resources["cloudbackup_cluster"].plan(diags, None, cluster_config())
    assert not diags.diagnostics and replace == []
    assert (planned["cluster_type"], planned["disk_size_gb"]) == ("REPLICASET", 10)
    assert planned["region"] == [{"name": "eastus2", "priority": 7, "electable_nodes": 3}]
    assert planned["preferred_region"] == "eastus2"
    assert planned["id"] is Unknown and planned["state"] is Unknown


def test_an_unchanged_cluster_keeps_its_computed_values_from_the_state() -> None:
    plugin = Plugin()
    prior = cluster_config(
        project_id=PID,
        cluster_type="REPLICASET",
        disk_size_gb=10,
        region=[{"name": "eastus2", "priority": 7, "electable_nodes": 3}],
    )
    prior.update(
        id=f"{PID}/orders",
        state="IDLE",
        preferred_region="eastus2",
        backup_enabled=True,
        backup_method="CLOUD_PROVIDER_SNAPSHOTS",
        deletion_protection=False,
    )
    planned, replace = plugin.resources["cloudbackup_cluster"].plan(
        Diagnostics(), prior, cluster_config(project_id=PID)
    )
    assert planned == prior and replace == []


def test_a_backup_of_a_planned_m0_cluster_is_refused_on_its_cluster_name() -> None:
    run, diags = Run(), Diagnostics()
    plugin = Plugin()
    plugin.session.run = run
    plugin.resources["cloudbackup_cluster"].plan(Diagnostics(), None, cluster_config(instance_size="M0"))
    check_backup(
        diags, None, run, project_id=Unknown, cluster_name="orders", method="CLOUD_PROVIDER_SNAPSHOTS"
    )
    assert errors(diags) == [
        ("Cloud provider snapshots are not available for M0, M2 and M5 clusters", ["cluster_name"])
    ]


def test_a_project_locked_by_a_cluster_outside_the_configuration_refuses_the_other_method() -> None:
    run, diags = Run(), Diagnostics()
    client = FakeClient({"legacy": {"providerBackupEnabled": False, "backupMethod": "CONTINUOUS"}})
    plugin = Plugin()
    plugin.session.run = run
    plugin.resources["cloudbackup_cluster"].plan(Diagnostics(), None, cluster_config(project_id=PID))
    check_backup(diags, client, run, project_id=PID, cluster_name="orders", method="CLOUD_PROVIDER_SNAPSHOTS")
    assert errors(diags) == [("The project is locked to another backup method", ["method"])]


def test_an_existing_cluster_is_checked_by_a_dry_run_whose_refusal_lands_on_the_attribute() -> None:
    refusal = ApiError(
        400, "TIER_NOT_SUPPORTED", "Scale it.", parameters=["/providerSettings/instanceSizeName"]
    )
    client, diags = FakeClient(refusal=refusal), Diagnostics()
    check_backup(diags, client, Run(), project_id=PID, cluster_name="free", method="CLOUD_PROVIDER_SNAPSHOTS")
    assert client.dry_runs == [(f"/groups/{PID}/clusters/free/backup", {"dryRun": "true"})]
    assert errors(diags) == [
        ("Cloud provider snapshots are not available for M0, M2 and M5 clusters", ["cluster_name"])
    ]


def test_a_dry_run_that_finds_no_cluster_passes_because_a_valid_plan_must_not_be_refused() -> None:
    client, diags = FakeClient(refusal=ApiError(404, "CLUSTER_NOT_FOUND", "no such cluster")), Diagnostics()
    check_backup(
        diags, client, Run(), project_id=PID, cluster_name="later", method="CLOUD_PROVIDER_SNAPSHOTS"
    )
    assert diags.diagnostics == []


def test_two_backups_of_one_new_project_with_different_methods_are_refused() -> None:
    run, diags = Run(), Diagnostics()
    run.record_new_project("shop")
    check_backup(diags, None, run, project_id=Unknown, cluster_name="a", method="CLOUD_PROVIDER_SNAPSHOTS")
    check_backup(diags, None, run, project_id=Unknown, cluster_name="b", method="CONTINUOUS")
    assert errors(diags) == [("The project is locked to another backup method", ["method"])]


def test_unknown_values_pass_every_check() -> None:
    run, diags = Run(), Diagnostics()
    check_backup(diags, FakeClient(), run, project_id=Unknown, cluster_name=Unknown, method="CONTINUOUS")
    check_backup(diags, FakeClient(), run, project_id=PID, cluster_name="x", method=Unknown)
    check_cluster_change(
        diags,
        {
            "backup_enabled": True,
            "backup_method": "CLOUD_PROVIDER_SNAPSHOTS",
            "instance_size": "M10",
            "provider_name": "AZURE",
            "cluster_type": "REPLICASET",
        },
        {"name": "x", "instance_size": Unknown, "provider_name": "AZURE", "cluster_type": "REPLICASET"},
    )
    assert diags.diagnostics == []


def test_a_backed_up_cluster_moved_to_a_shared_tier_is_refused_on_instance_size() -> None:
    diags = Diagnostics()
    prior = {
        "backup_enabled": True,
        "backup_method": "CLOUD_PROVIDER_SNAPSHOTS",
        "instance_size": "M10",
        "provider_name": "AZURE",
        "cluster_type": "REPLICASET",
        "disk_size_gb": 10,
    }
    check_cluster_change(diags, prior, {**prior, "name": "x", "instance_size": "M2", "disk_size_gb": 5})
    assert errors(diags) == [
        ("Cloud provider snapshots are not available for M0, M2 and M5 clusters", ["instance_size"]),
        ("Disk size cannot shrink", ["disk_size_gb"]),
    ]


def test_invalid_values_are_errors_on_their_attribute() -> None:
    plugin, diags = Plugin(), Diagnostics()
    config = cluster_config(
        instance_size="M3", region=[{"name": "eastus9", "priority": 7, "electable_nodes": 3}]
    )
    plugin.resources["cloudbackup_cluster"].validate(diags, config)
    assert errors(diags) == [("Invalid value for instance_size", ["instance_size"])]
    diags = Diagnostics()
    plugin.resources["cloudbackup_cluster"].validate(
        diags, cluster_config(region=[{"name": "eastus9", "priority": 7, "electable_nodes": 3}])
    )
    assert errors(diags) == [("Invalid region", ["region", (0,), "name"])]
    assert "Did you mean" in diags.diagnostics[0].detail


def test_import_ids_are_split_on_slashes_so_hyphens_in_names_are_safe() -> None:
    assert split_import_id(f"{PID}/orders-db-1/abc", "PROJECT_ID/CLUSTER_NAME/SNAPSHOT_ID") == [
        PID,
        "orders-db-1",
        "abc",
    ]


def test_timeouts_read_terraform_durations() -> None:
    assert duration_seconds("1h30m") == 5400 and duration_seconds("250ms") == 0.25


def test_a_destroy_is_recognised_from_terraforms_command_line_and_nothing_else_is() -> None:
    from provider.destroy_run import is_destroy

    destroys = (
        ["terraform", "destroy", "-auto-approve"],
        ["terraform", "-chdir=infra", "destroy"],
        ["terraform", "apply", "-destroy", "-auto-approve"],
        ["terraform", "plan", "-input=false", "-destroy"],
    )
    others = (
        ["terraform", "apply", "-auto-approve"],
        ["terraform", "plan", "-destroy=false"],
        ["terraform", "refresh"],
        ["terraform", "apply", "destroy.tfplan"],
        ["terraform"],
    )
    assert all(is_destroy(argv) for argv in destroys)
    assert not any(is_destroy(argv) for argv in others)


def test_only_a_resource_code_from_a_known_route_means_gone() -> None:
    assert ApiError(404, "CLUSTER_NOT_FOUND", "no such cluster").not_found
    assert ApiError(404, "GROUP_NOT_FOUND", "no such project").not_found
    assert not ApiError(404, "RESOURCE_NOT_FOUND", "no route").not_found
    assert not ApiError(404, "HTTP_ERROR", "a proxy's 404 page").not_found
    assert not ApiError(400, "CLUSTER_NOT_FOUND", "odd").not_found


def test_the_shims_details_are_told_in_terraform_attributes_and_resources(client: Any) -> None:
    from shimkit import create_cluster, create_project

    from provider.diagnostics import in_terraform_words

    project_id = create_project(client, "words")
    create_cluster(client, project_id, "plain", diskSizeGB=8)
    refused = client.post(f"/groups/{project_id}/clusters/plain/backup/snapshots", {}).get_json()
    text = in_terraform_words(refused["detail"])
    assert 'add a cloudbackup_cluster_backup resource with cluster_name = "plain"' in text
    assert "PUT" not in text
    shrink = client.patch(f"/groups/{project_id}/clusters/plain", {"diskSizeGB": 5}).get_json()
    assert shrink["errorCode"] == "DISK_SIZE_DECREASE_NOT_SUPPORTED"
    words = in_terraform_words(shrink["detail"])
    assert words.startswith("disk_size_gb can grow but not shrink") and "diskSizeGB" not in words


class RestoreClient(FakeClient):
    """A project whose source cluster 'src' (40 GiB, eastus2) has backup and one stored snapshot."""

    def cluster(self, project_id: str, name: str) -> dict[str, Any] | None:
        return self._clusters.get(name)

    def snapshots(self, project_id: str, cluster_name: str) -> list[dict[str, Any]]:
        return [{"id": "5" * 24, "status": "completed", "regionName": "eastus2"}]


def restore_world() -> tuple[RestoreClient, Run]:
    source = {
        "name": "src",
        "providerSettings": {"providerName": "AZURE", "instanceSizeName": "M10"},
        "diskSizeGB": 40,
        "replicationSpecs": [{"regionsConfig": {"eastus2": {"priority": 7, "electableNodes": 3}}}],
        "providerBackupEnabled": True,
        "backupMethod": "CLOUD_PROVIDER_SNAPSHOTS",
    }
    return RestoreClient({"src": source}), Run()


def plan_target(run: Run, disk: int, regions: list[str]) -> None:
    from provider.planning import PlannedCluster

    run.record_cluster(PlannedCluster(PID, "dst", "AZURE", "M10", "REPLICASET", disk, regions, regions[0]))


def restore_plan(snapshot_id: Any) -> dict[str, Any]:
    return {
        "project_id": PID,
        "cluster_name": "src",
        "snapshot_id": snapshot_id,
        "target_cluster_name": "dst",
        "target_project_id": PID,
    }


def test_a_restore_into_another_region_is_refused_at_plan_where_storage_is_regional() -> None:
    from provider.plan_targets import check_restore

    client, run = restore_world()
    plan_target(run, 40, ["westus2"])
    diags = Diagnostics()
    check_restore(diags, client, run, restore_plan("5" * 24), cross_region=False)  # type: ignore[arg-type]
    assert errors(diags) == [("The snapshot cannot be restored into that target", ["target_cluster_name"])]
    assert "stored in eastus2" in diags.diagnostics[0].detail
    allowed = Diagnostics()
    check_restore(allowed, client, run, restore_plan("5" * 24), cross_region=True)  # type: ignore[arg-type]
    assert allowed.diagnostics == []


def test_a_restore_of_a_snapshot_taken_in_this_run_into_a_smaller_target_is_refused_at_plan() -> None:
    from provider.plan_targets import check_restore

    client, run = restore_world()
    plan_target(run, 20, ["eastus2"])
    diags = Diagnostics()
    check_restore(diags, client, run, restore_plan(Unknown), cross_region=True)  # type: ignore[arg-type]
    assert errors(diags) == [("The snapshot cannot be restored into that target", ["target_cluster_name"])]
    assert "disk_size_gb to 40" in diags.diagnostics[0].detail
    plan_target(run, 40, ["eastus2"])
    fits = Diagnostics()
    check_restore(fits, client, run, restore_plan(Unknown), cross_region=True)  # type: ignore[arg-type]
    assert fits.diagnostics == []


def test_api_errors_at_apply_are_summarised_in_words_not_codes() -> None:
    from provider.diagnostics import add_api_error

    diags = Diagnostics()
    add_api_error(diags, ApiError(401, "USER_UNAUTHORIZED", "Bad key.", method="GET", path="/x"), "Reading")
    add_api_error(
        diags, ApiError(400, "BACKUP_NOT_ENABLED", "No backup.", method="POST", path="/y"), "Creating"
    )
    summaries = [d.summary for d in diags.diagnostics]
    assert summaries == ["The cloudbackup API refused the API key", "The cluster has no backup"]
    assert "public_key and private_key" in diags.diagnostics[0].detail
