"""What every job of the service shares: record ids, a cluster's regions and shape, and a snapshot job."""

from __future__ import annotations

import itertools
import secrets
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from contract import rules
from shim.store.models import Cluster, Snapshot

_PROCESS_ID = secrets.token_hex(5)
_counter = itertools.count(secrets.randbelow(1 << 23))
_counter_lock = threading.Lock()


def new_id() -> str:
    """A 24-hex identifier shaped like a MongoDB ObjectId: seconds, a per-process random part, a counter.

    Ids made later in one process sort later, which orders records created in the same second.
    """
    with _counter_lock:
        count = next(_counter) & 0xFFFFFF
    return f"{int(time.time()) & 0xFFFFFFFF:08x}{_PROCESS_ID}{count:06x}"


def region_specs(regions: dict[str, Any]) -> dict[str, rules.RegionSpec]:
    """A cluster's regions (as stored or as sent) as the rules see them."""
    return {
        name: rules.RegionSpec(
            priority=int(spec.get("priority", rules.PREFERRED_PRIORITY)),
            electable_nodes=int(spec.get("electableNodes", 3)),
        )
        for name, spec in regions.items()
    }


def normalised_regions(regions: dict[str, Any]) -> dict[str, dict[str, int]]:
    """Regions with their defaults filled in, in the order given."""
    return {
        name: {"priority": spec.priority, "electableNodes": spec.electable_nodes}
        for name, spec in region_specs(regions).items()
    }


def shape(cluster: Cluster) -> rules.ClusterShape:
    return rules.ClusterShape(
        cluster.name, cluster.provider_name, cluster.instance_size, cluster.cluster_type
    )


def preferred_region(cluster: Cluster) -> str:
    return rules.preferred_region(region_specs(cluster.regions))


def members(regions: dict[str, Any]) -> list[tuple[str, int]]:
    """(region, member index) of every electable member: each has its own volume."""
    return [
        (name, member)
        for name, spec in region_specs(regions).items()
        for member in range(spec.electable_nodes)
    ]


@dataclass(frozen=True)
class SnapshotJob:
    """What starting one snapshot needs, read from its committed `queued` row."""

    snapshot_id: str
    cluster_id: str
    project_id: str
    cluster_name: str
    snapshot_type: str
    region: str
    volume_handle: str

    @classmethod
    def of(cls, row: Mapping[str, Any] | Snapshot, cluster_name: str) -> SnapshotJob:
        """The job of a `queued` row: its columns as inserted, or the row as read back after a restart."""

        def column(name: str) -> Any:
            return row[name] if isinstance(row, Mapping) else getattr(row, name)

        return cls(
            column("id"),
            column("cluster_id"),
            column("project_id"),
            cluster_name,
            column("snapshot_type"),
            column("region"),
            column("volume_handle") or "",
        )
