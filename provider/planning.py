"""Plan-time checks: the rules of contract/rules.py on what this run planned and what the API holds."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from tf.types import Unknown
from tf.utils import Diagnostics

from contract import rules
from contract.fields import field_map
from provider.client import ApiError, Client, seg
from provider.diagnostics import Path, add_api_error, add_refusal

RULE_CODES = frozenset(
    {"TIER_NOT_SUPPORTED", "PROVIDER_NOT_SUPPORTED", "SHARDED_NOT_SUPPORTED", "BACKUP_METHOD_LOCKED"}
)

# Where a cluster's refusals land: the attribute each API field is, read from the schema (contract/fields.py).
CLUSTER_FIELDS: Mapping[str, Path] = field_map("cluster")
# Where a backup's refusals land: its method for R4 (from the schema), and for R1-R3 the cluster it names,
# whose name and shape fields are at fault.
BACKUP_FIELDS: Mapping[str, Path] = {
    **{
        pointer: ["cluster_name"]
        for pointer in (rules.INSTANCE_SIZE, rules.PROVIDER_NAME, rules.CLUSTER_TYPE)
    },
    "/name": ["cluster_name"],
    **field_map("cluster_backup"),
}


SHAPE_ATTRIBUTES = ("provider_name", "instance_size", "cluster_type")
# Terraform plans resources that do not depend on each other concurrently: before reporting that a
# cluster or backup is in neither the configuration nor the API, a check gives its plan this long to come.
PEER_PLAN_SECONDS = 5.0


def known(*values: Any) -> bool:
    return all(v is not Unknown and v is not None for v in values)


@dataclass
class PlannedCluster:
    """A cluster as this run planned it; any field may be Unknown until apply."""

    project_id: Any
    name: str
    provider_name: Any
    instance_size: Any
    cluster_type: Any
    disk_size_gb: Any = None
    # Region names, and the one snapshots are stored in (R6); Unknown until known.
    regions: Any = None
    preferred_region: Any = None

    def shape(self) -> rules.ClusterShape | None:
        if not known(self.provider_name, self.instance_size, self.cluster_type):
            return None
        return rules.ClusterShape(self.name, self.provider_name, self.instance_size, self.cluster_type)


@dataclass
class Run:
    """What this plugin process planned so far: Terraform plans a whole configuration in one process."""

    clusters: list[PlannedCluster] = field(default_factory=list)
    new_projects: list[Any] = field(default_factory=list)
    backups: dict[str, dict[str, str]] = field(default_factory=dict)
    # A condition, so that a check can wait for a plan Terraform makes at the same time (see wait_until).
    lock: threading.Condition = field(default_factory=threading.Condition)

    def wait_until(self, found: Any, timeout: float = PEER_PLAN_SECONDS) -> Any:
        """`found()` once it is not None, waiting up to `timeout` for plans of other resources to arrive."""
        with self.lock:
            return self.lock.wait_for(found, timeout)

    def record_new_project(self, name: Any) -> None:
        with self.lock:
            self.new_projects.append(name)

    def record_cluster(self, cluster: PlannedCluster) -> None:
        with self.lock:
            self.clusters = [
                c
                for c in self.clusters
                if not (c.name == cluster.name and c.project_id == cluster.project_id)
            ]
            self.clusters.append(cluster)
            self.lock.notify_all()

    def find_cluster(self, project_id: Any, name: str) -> PlannedCluster | None:
        """The planned cluster of that name; project IDs are compared when both are known."""
        with self.lock:
            candidates = [c for c in self.clusters if c.name == name]
        if known(project_id):
            exact = [c for c in candidates if c.project_id == project_id]
            if exact:
                return exact[0]
            candidates = [c for c in candidates if c.project_id is Unknown]
        return candidates[0] if len(candidates) == 1 else None

    def project_key(self, project_id: Any) -> str | None:
        """A key for the project: its ID, or the one project this run creates when the ID is not known yet."""
        if known(project_id):
            return str(project_id)
        with self.lock:
            if len(self.new_projects) == 1:
                return f"new project {self.new_projects[0]!r}"
        return None

    def new_project_name(self) -> str:
        with self.lock:
            names = [n for n in self.new_projects if known(n)]
        return str(names[0]) if len(names) == 1 else "the new project"

    def planned_backup(self, project_id: Any, cluster_name: str) -> str | None:
        """The method of a backup this run plans for that cluster, if any."""
        key = self.project_key(project_id)
        with self.lock:
            return self.backups.get(key, {}).get(cluster_name) if key else None

    def record_backup(self, key: str, cluster_name: str, method: str) -> dict[str, str]:
        """Remember a planned backup; returns the other backups planned for the same project."""
        with self.lock:
            planned = self.backups.setdefault(key, {})
            others = {name: m for name, m in planned.items() if name != cluster_name}
            planned[cluster_name] = method
            self.lock.notify_all()
            return others


def check_cluster_change(
    diags: Diagnostics, prior: Mapping[str, Any] | None, planned: Mapping[str, Any]
) -> None:
    """R11, and volumes that cannot shrink: what an update of an existing cluster may not do."""
    if prior is None:
        return
    if prior.get("backup_enabled") and prior.get("backup_method") == rules.CLOUD_PROVIDER_SNAPSHOTS:
        # Values still unknown keep their prior value here: the shim refuses them at apply if need be.
        values = {n: planned.get(n) if known(planned.get(n)) else prior.get(n) for n in SHAPE_ATTRIBUTES}
        if any(values[n] != prior.get(n) for n in SHAPE_ATTRIBUTES):
            shape = rules.ClusterShape(
                str(planned.get("name")),
                values["provider_name"],
                values["instance_size"],
                values["cluster_type"],
            )
            for refusal in rules.change_refusals(shape, rules.CLOUD_PROVIDER_SNAPSHOTS):
                add_refusal(diags, refusal, CLUSTER_FIELDS)
    old, new = prior.get("disk_size_gb"), planned.get("disk_size_gb")
    if known(old, new):
        refusal = rules.disk_size_refusal(int(old), int(new))
        if refusal:
            add_refusal(diags, refusal, CLUSTER_FIELDS)


def check_backup(
    diags: Diagnostics,
    client: Client | None,
    run: Run,
    *,
    project_id: Any,
    cluster_name: Any,
    method: Any,
) -> None:
    """R1-R4 for a backup this plan creates, with whatever is known now; unknown values pass."""
    if not known(cluster_name, method):
        return
    key = run.project_key(project_id)
    in_run = run.record_backup(key, cluster_name, method) if key else {}
    project_name = run.new_project_name() if not known(project_id) else str(project_id)
    planned = run.find_cluster(project_id, cluster_name)

    if planned is None and known(project_id) and client is not None:
        # An existing cluster this configuration does not declare: the shim checks every rule (dry run).
        path = f"/groups/{seg(project_id)}/clusters/{seg(cluster_name)}/backup"
        try:
            client.put(path, {"method": method}, dryRun="true")
        except ApiError as error:
            if error.code in RULE_CODES:
                add_api_error(diags, error, "Checking the backup", BACKUP_FIELDS)
                return
            if error.status >= 500 or error.status in (401, 403):
                add_api_error(diags, error, "Checking the backup", BACKUP_FIELDS)
                return
            # Anything else (no such cluster yet, say) is for apply to report: a valid plan must pass.
        if in_run:
            _conflict(diags, method, in_run, project_name)
        return

    others: dict[str, str] = dict(in_run)
    current = None
    if known(project_id) and client is not None:
        try:
            existing = client.clusters(str(project_id))
            project_name = str(client.project(str(project_id)).get("name") or project_id)
        except ApiError as error:
            if not error.not_found:
                add_api_error(diags, error, "Checking the backup", BACKUP_FIELDS)
                return
            existing = {}
        for name, cluster in existing.items():
            enabled = cluster.get("providerBackupEnabled") or cluster.get("backupMethod")
            if not enabled:
                continue
            if name == cluster_name:
                current = cluster.get("backupMethod")
            else:
                others.setdefault(name, cluster.get("backupMethod") or rules.CLOUD_PROVIDER_SNAPSHOTS)
    shape = planned.shape() if planned is not None else None
    if shape is not None:
        refusals = rules.enable_refusals(shape, method, others, project_name=project_name, current=current)
    else:
        refusal = rules.method_lock_refusal(method, others, project_name=project_name, current=current)
        refusals = [refusal] if refusal else []
    for refusal in refusals:
        add_refusal(diags, refusal, BACKUP_FIELDS)


def _conflict(diags: Diagnostics, method: str, in_run: dict[str, str], project_name: str) -> None:
    refusal = rules.method_lock_refusal(method, in_run, project_name=project_name)
    if refusal:
        add_refusal(diags, refusal, BACKUP_FIELDS)


def check_regions(diags: Diagnostics, provider_name: Any, regions: Any, path_for: Any) -> None:
    """Region names on Azure, one preferred region, distinct priorities, no region twice."""
    if regions is None or regions is Unknown or any(r is Unknown for r in regions):
        return
    names = [r.get("name") for r in regions]
    if not all(known(n) for n in names):
        return
    duplicate = rules.duplicate_region_refusal(names)
    if duplicate:
        add_refusal(diags, duplicate, CLUSTER_FIELDS, path_for(duplicate.field))
    specs: dict[str, rules.RegionSpec] = {}
    for region in regions:
        priority = region.get("priority")
        nodes = region.get("electable_nodes")
        if priority is Unknown or nodes is Unknown:
            return
        given = {"priority": priority, "electable_nodes": nodes}
        specs[region["name"]] = rules.RegionSpec(**{k: int(v) for k, v in given.items() if v is not None})
    if duplicate:
        return
    provider = provider_name if known(provider_name) else ""
    for refusal in rules.region_refusals(provider, specs):
        add_refusal(diags, refusal, CLUSTER_FIELDS, path_for(refusal.field))
