"""Plan-time checks of what a snapshot or restore job acts on: the cluster, its backup, the restore target."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from tf.utils import Diagnostics

from contract import rules
from contract.fields import field_map
from provider.client import ApiError, Client
from provider.destroy_run import terraform_destroys
from provider.diagnostics import add_refusal
from provider.planning import Run, known

# Where a restore's refusals land: the attribute each API field is, read from the schema.
RESTORE_FIELDS = field_map("restore_job")


@dataclass(frozen=True)
class ClusterFacts:
    """A cluster as this run plans it or as the API holds it; any value may be Unknown."""

    name: str
    provider_name: Any
    disk_size_gb: Any
    regions: Any
    preferred_region: Any
    backup_method: Any


def lookup_cluster(run: Run, client: Client | None, project_id: Any, name: str) -> ClusterFacts | None:
    """The cluster planned in this run, else the one the API holds; None when neither has it."""
    planned = run.find_cluster(project_id, name)
    if planned is not None:
        method = run.planned_backup(project_id, name)
        existing = _api_cluster(client, project_id, name) if method is None else None
        if method is None and existing is not None:
            method = existing.backup_method
        return ClusterFacts(
            name,
            planned.provider_name,
            planned.disk_size_gb,
            planned.regions,
            planned.preferred_region,
            method,
        )
    facts = _api_cluster(client, project_id, name)
    if facts is not None and facts.backup_method is None:
        method = run.planned_backup(project_id, name)
        if method is not None:
            facts = replace(facts, backup_method=method)
    return facts


def _api_cluster(client: Client | None, project_id: Any, name: str) -> ClusterFacts | None:
    if client is None or not known(project_id):
        return None
    try:
        data = client.cluster(str(project_id), name)
    except ApiError as error:
        if error.not_found:
            return None
        raise
    if data is None:
        return None
    specs = (data.get("replicationSpecs") or [{}])[0].get("regionsConfig") or {}
    enabled = data.get("providerBackupEnabled") or data.get("backupMethod")
    preferred = data.get("preferredRegion")
    if preferred is None and specs:
        preferred = rules.preferred_region(
            {
                n: rules.RegionSpec(int(c.get("priority", 7)), int(c.get("electableNodes", 3)))
                for n, c in specs.items()
            }
        )
    return ClusterFacts(
        name,
        (data.get("providerSettings") or {}).get("providerName"),
        data.get("diskSizeGB"),
        sorted(specs),
        preferred,
        (data.get("backupMethod") or rules.CLOUD_PROVIDER_SNAPSHOTS) if enabled else None,
    )


def _lookup_or_wait(run: Run, client: Client | None, project_id: Any, name: str) -> ClusterFacts | None:
    """lookup_cluster, giving a cluster planned at the same time the chance to be recorded first."""
    facts = lookup_cluster(run, client, project_id, name)
    waited = facts is None and _findable(run, client, project_id)
    if waited and run.wait_until(lambda: run.find_cluster(project_id, name)) is not None:
        facts = lookup_cluster(run, client, project_id, name)
    return facts


def _findable(run: Run, client: Client | None, project_id: Any) -> bool:
    """Whether a cluster absent from both this run and the API is really absent (not merely unseen)."""
    if known(project_id):
        return client is not None
    return run.project_key(project_id) is not None


def _where(project_id: Any, run: Run) -> str:
    return f"project {project_id}" if known(project_id) else f"the new project {run.new_project_name()!r}"


def check_source(
    diags: Diagnostics,
    client: Client | None,
    run: Run,
    *,
    project_id: Any,
    cluster_name: Any,
    resource: str,
) -> ClusterFacts | None:
    """The cluster an on-demand snapshot or a restore reads from exists and has snapshots enabled."""
    if not known(cluster_name) or terraform_destroys():
        return None
    facts = _lookup_or_wait(run, client, project_id, str(cluster_name))
    if facts is not None and facts.backup_method is None:
        method = run.wait_until(lambda: run.planned_backup(project_id, str(cluster_name)))
        facts = replace(facts, backup_method=method) if method else facts
    if facts is None:
        if _findable(run, client, project_id):
            diags.add_error(
                "No such cluster",
                f"There is no cluster named '{cluster_name}' in {_where(project_id, run)}, neither in this "
                f"configuration nor in the cloudbackup API. Fix cluster_name, or declare the cluster as a "
                f"cloudbackup_cluster resource and set cluster_name from it so that it is created first.",
                path=["cluster_name"],
            )
        return None
    if facts.backup_method is None:
        diags.add_error(
            "The cluster has no backup",
            f"A {resource} needs cloud provider snapshots on cluster '{cluster_name}', and neither this "
            f"configuration nor the cloudbackup API enables them. Add a cloudbackup_cluster_backup resource "
            f"for the cluster and set this resource's cluster_name = "
            f"cloudbackup_cluster_backup.<name>.cluster_name, so that backup is enabled first.",
            path=["cluster_name"],
        )
        return None
    if known(facts.backup_method) and facts.backup_method != rules.CLOUD_PROVIDER_SNAPSHOTS:
        diags.add_error(
            "The cluster's backup takes no snapshots",
            f"Cluster '{cluster_name}' is backed up with {facts.backup_method}, which this system records "
            f'but does not execute: a {resource} needs method = "{rules.CLOUD_PROVIDER_SNAPSHOTS}" on its '
            f"cloudbackup_cluster_backup.",
            path=["cluster_name"],
        )
        return None
    return facts


def check_restore(
    diags: Diagnostics,
    client: Client | None,
    run: Run,
    planned: dict[str, Any],
    *,
    cross_region: bool | None,
) -> None:
    """R10 for a restore job this plan creates, with whatever is known now; unknown values pass."""
    if terraform_destroys():
        return
    project_id, cluster_name = planned.get("project_id"), planned.get("cluster_name")
    source = check_source(
        diags,
        client,
        run,
        project_id=project_id,
        cluster_name=cluster_name,
        resource="cloudbackup_restore_job",
    )
    target_project, target_name = planned.get("target_project_id"), planned.get("target_cluster_name")
    if not known(target_name):
        return
    target = _lookup_or_wait(run, client, target_project, str(target_name))
    if target is None:
        if _findable(run, client, target_project):
            diags.add_error(
                "No such target cluster",
                f"There is no cluster named '{target_name}' in {_where(target_project, run)}, neither in "
                f"this configuration nor in the cloudbackup API. Fix target_cluster_name, or declare the "
                f"target as a cloudbackup_cluster resource and set target_cluster_name = "
                f"cloudbackup_cluster.<name>.name so that it is created first.",
                path=["target_cluster_name"],
            )
        return
    snapshot = _snapshot(diags, client, project_id, cluster_name, planned.get("snapshot_id"), source)
    if snapshot is False:
        return
    refusals: list[rules.Refusal] = []
    if known(target.provider_name, target.disk_size_gb):
        # A snapshot taken in this run will have the size of the source's volumes; a stored one, its own.
        source_bytes = (
            int(source.disk_size_gb) * rules.GIB
            if snapshot is None and source is not None and known(source.disk_size_gb)
            else None
        )
        if snapshot and isinstance(snapshot.get("diskSizeBytes"), int):
            source_bytes = snapshot["diskSizeBytes"]
        status = snapshot.get("status", "completed") if snapshot else "completed"
        refusals += rules.restore_refusals(
            snapshot_id=str(planned.get("snapshot_id")),
            snapshot_status="completed" if status in ("queued", "inProgress") else status,
            snapshot_disk_bytes=source_bytes,
            target=rules.ClusterShape(str(target_name), target.provider_name, "M10"),
            target_disk_gb=int(target.disk_size_gb),
        )
    stored_in = snapshot.get("regionName") if snapshot else (source.preferred_region if source else None)
    if cross_region is False and known(stored_in, target.regions) and all(known(r) for r in target.regions):
        refusal = rules.restore_region_refusal(
            str(stored_in), target.regions, False, target_name=str(target_name)
        )
        if refusal:
            refusals.append(refusal)
    for refusal in refusals:
        add_refusal(diags, refusal, RESTORE_FIELDS)


def _snapshot(
    diags: Diagnostics,
    client: Client | None,
    project_id: Any,
    cluster_name: Any,
    snapshot_id: Any,
    source: ClusterFacts | None,
) -> dict[str, Any] | bool | None:
    """A stored snapshot named by a known ID (None: one this run takes; False: an error was reported)."""
    if not known(snapshot_id):
        return None
    if client is None or source is None or not known(project_id):
        return False
    try:
        snapshots = client.snapshots(str(project_id), str(cluster_name))
    except ApiError as error:
        if error.not_found:
            return False
        raise
    found = next((s for s in snapshots if s.get("id") == snapshot_id), None)
    if found is None:
        diags.add_error(
            "No such snapshot",
            f"Cluster '{cluster_name}' has no snapshot with ID {snapshot_id}. Pick one of its snapshots "
            f"(the cloudbackup_snapshots data source lists them), or take one with a cloudbackup_snapshot "
            f"resource and set snapshot_id = cloudbackup_snapshot.<name>.id.",
            path=["snapshot_id"],
        )
        return False
    return found
