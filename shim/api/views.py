"""How the API shows each record: the response objects of provider-schema/'s `$defs/response`."""

from __future__ import annotations

from typing import Any

from contract import rules
from shim import plain_fields
from shim.api import links
from shim.clock import format_time
from shim.service import Backup, preferred_region
from shim.store.models import Cluster, Project, RestoreJob, Snapshot


def project(row: Project, backup_method: str | None, cluster_count: int) -> dict[str, Any]:
    return {
        "id": row.id,
        "name": row.name,
        "backupMethod": backup_method,
        "clusterCount": cluster_count,
        "created": format_time(row.created_at),
    }


def cluster(row: Cluster) -> dict[str, Any]:
    return {
        "id": row.id,
        "groupId": row.project_id,
        # name, clusterType, diskSizeGB, deletionProtection and any plain field the schema adds.
        **plain_fields.render(row),
        "providerSettings": {"providerName": row.provider_name, "instanceSizeName": row.instance_size},
        "replicationSpecs": [{"regionsConfig": dict(row.regions)}],
        "providerBackupEnabled": row.backup_method == rules.CLOUD_PROVIDER_SNAPSHOTS,
        "backupMethod": row.backup_method,
        "preferredRegion": preferred_region(row),
        "stateName": row.state,
        "createDate": format_time(row.created_at),
    }


def backup(item: Backup) -> dict[str, Any]:
    row = item.cluster
    executed = row.backup_method == rules.CLOUD_PROVIDER_SNAPSHOTS
    body: dict[str, Any] = {
        "groupId": row.project_id,
        "clusterName": row.name,
        "enabled": row.backup_method is not None,
        "method": row.backup_method,
        # CONTINUOUS is recorded (it locks the project's method, R4); this system takes no snapshots for it.
        "executed": executed,
        "storageRegion": preferred_region(row) if executed else None,
        "referenceTime": format_time(row.reference_time) if executed else None,
        "nextSnapshotAt": format_time(row.next_due_at) if executed else None,
        "intervalHours": int(rules.SNAPSHOT_INTERVAL.total_seconds() // 3600),
        "retentionCount": rules.RETENTION_COUNT,
        "snapshotIds": item.snapshot_ids,
        "deletionProtection": bool(row.backup_deletion_protection) and row.backup_method is not None,
        **freshness(item),
    }
    if item.dry_run:
        body["dryRun"] = True
    return body


def freshness(item: Backup) -> dict[str, Any]:
    """The newest snapshot's moment and status, and the newest completed one's age by the shim's clock."""
    fresh, now = item.freshness, item.now
    return {
        "lastSnapshotAt": format_time(fresh.last_at) if fresh else None,
        "lastSnapshotStatus": fresh.last_status if fresh else None,
        "snapshotAgeSeconds": fresh.age_seconds(now) if fresh and now else None,
    }


def cluster_with_backup(item: Backup) -> dict[str, Any]:
    """A cluster with its backup embedded (`includeBackup=true`): both from one read, so they agree."""
    return {**cluster(item.cluster), "backup": backup(item)}


def snapshot(row: Snapshot, cluster_name: str) -> dict[str, Any]:
    scheduled = row.snapshot_type == "scheduled"
    return {
        "id": row.id,
        "createdAt": format_time(row.created_at),
        # An on-demand snapshot's retentionInDays sets its own; a scheduled one's is retention's (R8).
        "expiresAt": format_time(
            row.expires_at or rules.expected_expiry(row.created_at, scheduled=scheduled)
        ),
        "status": row.status,
        "snapshotType": row.snapshot_type,
        "type": "replicaSet",
        "cloudProvider": "AZURE",
        "regionName": row.region,
        "replicaSetName": cluster_name,
        "storageSizeBytes": row.storage_size_bytes,
        "diskSizeBytes": row.disk_size_bytes,
        "description": row.description,
        "checksum": row.checksum,
        "failureReason": row.failure_reason,
        # Atlas' fields for a replica set snapshot that a client may read: the schedule is daily.
        "frequencyType": "daily" if scheduled else "ondemand",
        "mongodVersion": None,
        "copyRegions": [],
        "policyItems": [],
        "links": links.record(f"/groups/{row.project_id}/clusters/{cluster_name}/backup/snapshots/{row.id}"),
    }


def restore_job(row: RestoreJob) -> dict[str, Any]:
    return {
        "id": row.id,
        "snapshotId": row.snapshot_id,
        "deliveryType": "automated",
        "targetGroupId": row.target_project_id,
        "targetClusterName": row.target_cluster_name,
        "status": row.status,
        "createdAt": format_time(row.created_at),
        "finishedAt": format_time(row.finished_at),
        "failureReason": row.failure_reason,
        # What an Atlas client polls instead of status: finishedAt with failed, cancelled, expired.
        "failed": row.status == "failed",
        "cancelled": False,
        "expired": False,
    }


def listing(results: list[dict[str, Any]], total: int) -> dict[str, Any]:
    return {"results": results, "totalCount": total}
