"""data cloudbackup_backup_status: how fresh the backup of one cluster, or of a whole project, is."""

from __future__ import annotations

from typing import Any

from tf.utils import Diagnostics

from provider import schema as schema_module
from provider.session import Session
from provider.validation import validate_config


def cluster_status(name: str, backup: dict[str, Any]) -> dict[str, Any]:
    return {
        "cluster_name": name,
        "backup_enabled": bool(backup.get("enabled")),
        "method": backup.get("method"),
        "last_snapshot_at": backup.get("lastSnapshotAt"),
        "last_snapshot_status": backup.get("lastSnapshotStatus"),
        "snapshot_age_seconds": backup.get("snapshotAgeSeconds"),
        "next_snapshot_at": backup.get("nextSnapshotAt"),
    }


class BackupStatus:
    type_name = "cloudbackup_backup_status"

    def __init__(self, session: Session) -> None:
        self.session = session
        self.schema = schema_module.load().data_sources[self.type_name]

    def validate(self, diags: Diagnostics, config: dict[str, Any]) -> None:
        validate_config(diags, self.schema, config)

    def read(self, diags: Diagnostics, config: dict[str, Any]) -> dict[str, Any] | None:
        client = self.session.require_client()
        project_id, only = config["project_id"], config.get("cluster_name")
        # One list call answers for every cluster of the project, each with its backup embedded.
        clusters = client.clusters(project_id)
        if only is not None and only not in clusters:
            diags.add_error(
                f"No cluster named '{only}' in project {project_id}",
                "Set cluster_name to a cluster of the project, or leave it out to read every cluster.",
                path=["cluster_name"],
            )
            return None
        names = [only] if only is not None else sorted(clusters)
        statuses = []
        for name in names:
            backup = clusters[name].get("backup")
            if not isinstance(backup, dict):
                backup = client.backup(project_id, name) or {}
            statuses.append(cluster_status(name, backup))
        ages = [
            s["snapshot_age_seconds"]
            for s in statuses
            if s["method"] == "CLOUD_PROVIDER_SNAPSHOTS" and s["snapshot_age_seconds"] is not None
        ]
        return {
            "project_id": project_id,
            "cluster_name": only,
            "id": f"{project_id}/{only}" if only is not None else project_id,
            "clusters": statuses,
            "max_snapshot_age_seconds": max(ages) if ages else None,
        }
