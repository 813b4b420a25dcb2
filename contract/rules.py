"""The backup rules R1-R11 as pure functions: values in, refusals or values out, no I/O.

Long because the eleven rules are read, and changed, side by side; each is a small pure
function, and splitting them would scatter what R1-R11 say about one cluster.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from contract.regions import PROVIDER_REGIONS

CLOUD_PROVIDER_SNAPSHOTS = "CLOUD_PROVIDER_SNAPSHOTS"
CONTINUOUS = "CONTINUOUS"
METHODS = (CLOUD_PROVIDER_SNAPSHOTS, CONTINUOUS)

UNSUPPORTED_TIERS = frozenset({"M0", "M2", "M5"})
SUPPORTED_PROVIDER = "AZURE"
REPLICASET = "REPLICASET"
PREFERRED_PRIORITY = 7

SNAPSHOT_INTERVAL = timedelta(hours=24)
RETENTION_COUNT = 3
GIB = 1 << 30

# JSON pointers into an API body: the provider maps them onto its own attribute names.
INSTANCE_SIZE = "/providerSettings/instanceSizeName"
PROVIDER_NAME = "/providerSettings/providerName"
CLUSTER_TYPE = "/clusterType"
REGIONS = "/replicationSpecs/0/regionsConfig"
DISK_SIZE = "/diskSizeGB"
METHOD = "/method"


@dataclass(frozen=True)
class Refusal:
    """Why a request cannot be done: the API's errorCode, a detail that says how to fix it, and the field."""

    code: str
    detail: str
    field: str | None = None
    rule: str | None = None
    status: int = 400


@dataclass(frozen=True)
class ClusterShape:
    """What the rules need to know of a cluster (existing or planned)."""

    name: str
    provider_name: str
    instance_size: str
    cluster_type: str = REPLICASET


@dataclass(frozen=True)
class RegionSpec:
    """One region of a cluster: its election priority and how many electable members it has."""

    priority: int = PREFERRED_PRIORITY
    electable_nodes: int = 3


@dataclass(frozen=True)
class SnapshotFacts:
    """What retention needs to know of one snapshot."""

    id: str
    created_at: datetime
    status: str
    scheduled: bool


# R1-R3: what a cluster must be for cloud provider snapshots.


def tier_refusal(cluster: ClusterShape, *, changing: bool = False) -> Refusal | None:
    """R1: cloud provider snapshots are not available for M0, M2 and M5 clusters."""
    if cluster.instance_size not in UNSUPPORTED_TIERS:
        return None
    if changing:
        detail = (
            f"Cluster '{cluster.name}' has cloud provider snapshots enabled, and they are not available "
            f"for {cluster.instance_size} clusters. Disable backup first (this deletes the cluster's "
            f"snapshots), then scale the cluster to {cluster.instance_size}; or keep M10 or larger."
        )
    else:
        detail = (
            f"Cloud provider snapshots are not available for {cluster.instance_size} clusters. "
            f"Scale cluster '{cluster.name}' to M10 or larger, then enable backup."
        )
    return Refusal("TIER_NOT_SUPPORTED", detail, INSTANCE_SIZE, "R1")


def provider_refusal(cluster: ClusterShape, *, changing: bool = False) -> Refusal | None:
    """R2: cloud provider snapshots are for Azure-backed clusters only."""
    if cluster.provider_name == SUPPORTED_PROVIDER:
        return None
    if changing:
        detail = (
            f"Cluster '{cluster.name}' has cloud provider snapshots enabled, and they are available for "
            f"Azure-backed clusters only. Disable backup first (this deletes the cluster's snapshots), "
            f"then move the cluster to {cluster.provider_name}; or keep it on AZURE."
        )
    else:
        detail = (
            f"Cloud provider snapshots are available for Azure-backed clusters only, and cluster "
            f"'{cluster.name}' runs on {cluster.provider_name}. Back up an AZURE cluster instead."
        )
    return Refusal("PROVIDER_NOT_SUPPORTED", detail, PROVIDER_NAME, "R2")


def topology_refusal(cluster: ClusterShape, *, changing: bool = False) -> Refusal | None:
    """R3: cloud provider snapshots are for replica sets only, not SHARDED or GEOSHARDED clusters."""
    if cluster.cluster_type == REPLICASET:
        return None
    if changing:
        detail = (
            f"Cluster '{cluster.name}' has cloud provider snapshots enabled, and they are available for "
            f"replica sets only. Disable backup first (this deletes the cluster's snapshots), then make "
            f"the cluster {cluster.cluster_type}; or keep it a REPLICASET."
        )
    else:
        detail = (
            f"Cloud provider snapshots are available for replica sets only, and cluster '{cluster.name}' "
            f"is {cluster.cluster_type}. Back up a REPLICASET cluster instead."
        )
    return Refusal("SHARDED_NOT_SUPPORTED", detail, CLUSTER_TYPE, "R3")


def method_lock_refusal(
    requested: str,
    other_clusters: Mapping[str, str],
    *,
    project_name: str,
    current: str | None = None,
) -> Refusal | None:
    """R4: the first backup method enabled in a project is the only one its other clusters may use.

    `other_clusters` maps the names of the project's other clusters with backup enabled to their method;
    `current` is the method already enabled on this cluster, if any.
    """
    if current is not None and current != requested:
        return Refusal(
            "BACKUP_METHOD_LOCKED",
            f"Backup is already enabled on this cluster with {current}. To switch to {requested}, "
            f"disable backup first (this deletes the cluster's snapshots), then enable {requested}.",
            METHOD,
            "R4",
            409,
        )
    holders = sorted(name for name, method in other_clusters.items() if method != requested)
    if not holders:
        return None
    locked = other_clusters[holders[0]]
    names = ", ".join(f"'{name}'" for name in holders)
    return Refusal(
        "BACKUP_METHOD_LOCKED",
        f"Project '{project_name}' is locked to the {locked} backup method by cluster(s) {names}: every "
        f"cluster of a project must use the first method enabled in it. Use {locked} for this cluster, "
        f"or disable backup on {names} and then enable {requested}.",
        METHOD,
        "R4",
        409,
    )


def enable_refusals(
    cluster: ClusterShape,
    requested: str,
    other_clusters: Mapping[str, str],
    *,
    project_name: str,
    current: str | None = None,
) -> list[Refusal]:
    """R1-R5: every reason backup with `requested` cannot be enabled on `cluster`, most specific first."""
    refusals: list[Refusal | None] = []
    if requested == CLOUD_PROVIDER_SNAPSHOTS:
        refusals += [tier_refusal(cluster), provider_refusal(cluster), topology_refusal(cluster)]
    refusals.append(
        method_lock_refusal(requested, other_clusters, project_name=project_name, current=current)
    )
    return [r for r in refusals if r is not None]


def change_refusals(new: ClusterShape, enabled_method: str | None) -> list[Refusal]:
    """R11: while cloud provider snapshots are enabled, the cluster must stay what they need."""
    if enabled_method != CLOUD_PROVIDER_SNAPSHOTS:
        return []
    checks = (tier_refusal, provider_refusal, topology_refusal)
    return [r for r in (check(new, changing=True) for check in checks) if r is not None]


# Regions (R6) and volume sizes.


def preferred_region(regions: Mapping[str, RegionSpec]) -> str:
    """R6: the region where snapshots are stored, the one of highest priority (ties: first by name)."""
    if not regions:
        raise ValueError("a cluster has at least one region")
    return min(regions, key=lambda name: (-regions[name].priority, name))


def region_refusals(provider_name: str, regions: Mapping[str, RegionSpec]) -> list[Refusal]:
    """A cluster's regions exist on its provider, and exactly one is preferred; no two share a priority."""
    refusals: list[Refusal] = []
    known = PROVIDER_REGIONS.get(provider_name)
    if known is not None:
        names, label, examples = known
        for name in sorted(regions):
            if name not in names:
                close = difflib.get_close_matches(name.lower(), sorted(names), n=1)
                hint = f" Did you mean '{close[0]}'?" if close else ""
                refusals.append(
                    Refusal(
                        "INVALID_REGION",
                        f"'{name}' is not {label} region. Use {label} region name such as {examples}.{hint}",
                        f"{REGIONS}/{name}",
                    )
                )
    for name, spec in sorted(regions.items()):
        if not 1 <= spec.priority <= PREFERRED_PRIORITY:
            refusals.append(
                Refusal(
                    "INVALID_REGION_PRIORITY",
                    f"Region '{name}' has priority {spec.priority}; priorities run from 1 to 7, and the "
                    f"preferred region has 7.",
                    f"{REGIONS}/{name}/priority",
                )
            )
    preferred = sorted(name for name, spec in regions.items() if spec.priority == PREFERRED_PRIORITY)
    if len(preferred) != 1:
        found = "none has" if not preferred else f"{', '.join(preferred)} all have"
        refusals.append(
            Refusal(
                "INVALID_REGION_PRIORITY",
                f"Exactly one region must have priority 7 (the preferred region, where snapshots are "
                f"stored), but {found} it. Give one region priority 7 and the others lower, distinct "
                f"priorities.",
                REGIONS,
            )
        )
    by_priority: dict[int, list[str]] = {}
    for name, spec in regions.items():
        by_priority.setdefault(spec.priority, []).append(name)
    for priority, names in sorted(by_priority.items()):
        if len(names) > 1 and priority != PREFERRED_PRIORITY:
            refusals.append(
                Refusal(
                    "INVALID_REGION_PRIORITY",
                    f"Regions {', '.join(sorted(names))} share priority {priority}. Give each region its "
                    f"own priority.",
                    REGIONS,
                )
            )
    return refusals


def duplicate_region_refusal(names: Iterable[str]) -> Refusal | None:
    """A region is listed once per cluster."""
    seen: set[str] = set()
    for name in names:
        if name in seen:
            return Refusal(
                "INVALID_REGION",
                f"Region '{name}' is listed twice. List each region once, with its members.",
                f"{REGIONS}/{name}",
            )
        seen.add(name)
    return None


def disk_size_refusal(current_gb: int, requested_gb: int) -> Refusal | None:
    """A member volume can grow but not shrink (Azure managed disks cannot shrink)."""
    if requested_gb >= current_gb:
        return None
    return Refusal(
        "DISK_SIZE_DECREASE_NOT_SUPPORTED",
        f"diskSizeGB can grow but not shrink: the cluster's volumes have {current_gb} GiB and "
        f"{requested_gb} was asked. Keep {current_gb} or more: volumes cannot shrink, and a snapshot "
        f"restores only into volumes at least as large as its own.",
        DISK_SIZE,
    )


# R10: restores.


def restore_refusals(
    *,
    snapshot_id: str,
    snapshot_status: str,
    snapshot_disk_bytes: int | None,
    target: ClusterShape,
    target_disk_gb: int,
) -> list[Refusal]:
    """R10: a completed snapshot restores into an Azure cluster whose volumes are at least as large."""
    refusals: list[Refusal] = []
    if snapshot_status != "completed":
        refusals.append(
            Refusal(
                "RESTORE_INVALID",
                f"Snapshot {snapshot_id} is {snapshot_status}; only a completed snapshot can be restored. "
                f"Wait for it to complete, or pick another snapshot.",
                "/snapshotId",
                "R10",
            )
        )
    if target.provider_name != SUPPORTED_PROVIDER:
        refusals.append(
            Refusal(
                "RESTORE_INVALID",
                f"Target cluster '{target.name}' runs on {target.provider_name}; snapshots restore into "
                f"Azure clusters only. Pick an AZURE target cluster.",
                "/targetClusterName",
                "R10",
            )
        )
    if snapshot_disk_bytes is not None and target_disk_gb * GIB < snapshot_disk_bytes:
        needed = -(-snapshot_disk_bytes // GIB)
        refusals.append(
            Refusal(
                "RESTORE_INVALID",
                f"Target cluster '{target.name}' has {target_disk_gb} GiB volumes, smaller than the "
                f"snapshot's {needed} GiB. Grow the target's diskSizeGB to {needed} or more, then restore.",
                "/targetClusterName",
                "R10",
            )
        )
    return refusals


def restore_region_refusal(
    snapshot_region: str,
    target_regions: Iterable[str],
    cross_region_supported: bool,
    *,
    target_name: str | None = None,
) -> Refusal | None:
    """R10 where storage is regional: a snapshot restores only onto volumes in the region it is stored in.

    `target_regions` are the regions of the target cluster's member volumes; `cross_region_supported` is
    the driver's capability (Azure creates a disk only from a snapshot in the disk's own region).
    """
    if cross_region_supported:
        return None
    others = sorted({region for region in target_regions if region != snapshot_region})
    if not others:
        return None
    target = f"target cluster '{target_name}'" if target_name else "the target cluster"
    return Refusal(
        "RESTORE_INVALID",
        f"The snapshot is stored in {snapshot_region}, and {target} has members in "
        f"{', '.join(others)}: Azure creates a disk only from a snapshot in the disk's own region, so a "
        f"snapshot cannot be restored across regions. Restore into a cluster whose members are all in "
        f"{snapshot_region}.",
        "/targetClusterName",
        "R10",
    )


# R7: the schedule. Slots are reference + k x interval; they never drift from the reference.


def slot_at_or_before(
    reference: datetime, moment: datetime, interval: timedelta = SNAPSHOT_INTERVAL
) -> datetime:
    """The latest slot not after `moment` (the reference itself before the first interval has passed)."""
    if moment <= reference:
        return reference
    return reference + ((moment - reference) // interval) * interval


def next_slot_after(
    reference: datetime, moment: datetime, interval: timedelta = SNAPSHOT_INTERVAL
) -> datetime:
    """The first slot strictly after `moment`."""
    if moment < reference:
        return reference
    return slot_at_or_before(reference, moment, interval) + interval


def due_slot(
    reference: datetime, next_due: datetime, now: datetime, interval: timedelta = SNAPSHOT_INTERVAL
) -> tuple[datetime, datetime] | None:
    """R7: the slot to snapshot now and the next due time, or None when nothing is due.

    After downtime that missed several slots, only the latest missed one is taken (one catch-up
    snapshot, never a burst); the next due time is then the first slot in the future.
    """
    if now < next_due:
        return None
    return slot_at_or_before(reference, now, interval), next_slot_after(reference, now, interval)


def slots_between(
    reference: datetime, after: datetime, until: datetime, interval: timedelta = SNAPSHOT_INTERVAL
) -> list[datetime]:
    """Every slot in (after, until], in order: what a clock that ran all along would have taken."""
    slots: list[datetime] = []
    slot = next_slot_after(reference, after, interval)
    while slot <= until:
        slots.append(slot)
        slot += interval
    return slots


# R8: retention.


def expired_snapshots(snapshots: Sequence[SnapshotFacts], keep: int = RETENTION_COUNT) -> list[str]:
    """R8: the scheduled snapshots to delete so that the last `keep` completed ones remain.

    A failed snapshot neither counts nor pushes out a good one; failed scheduled snapshots older than
    the oldest retained one go too, so they do not pile up. On-demand snapshots are never expired.
    """
    scheduled = sorted((s for s in snapshots if s.scheduled), key=lambda s: s.created_at, reverse=True)
    completed = [s for s in scheduled if s.status == "completed"]
    if len(completed) <= keep:
        if len(completed) < keep:
            return []
        oldest_kept = completed[-1].created_at
        return [s.id for s in scheduled if s.status == "failed" and s.created_at < oldest_kept]
    oldest_kept = completed[keep - 1].created_at
    expired = [s.id for s in completed[keep:]]
    expired += [s.id for s in scheduled if s.status == "failed" and s.created_at < oldest_kept]
    return expired


def expected_expiry(created_at: datetime, *, scheduled: bool) -> datetime | None:
    """When a scheduled snapshot is pushed out if the schedule goes on; on-demand ones do not expire."""
    return created_at + RETENTION_COUNT * SNAPSHOT_INTERVAL if scheduled else None
