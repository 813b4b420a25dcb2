"""data cloudbackup_snapshots: the stored snapshots of one cluster, newest first."""

from __future__ import annotations

from typing import Any

from tf.utils import Diagnostics

from provider import schema as schema_module
from provider.session import Session
from provider.validation import validate_config


class Snapshots:
    type_name = "cloudbackup_snapshots"

    def __init__(self, session: Session) -> None:
        self.session = session
        self.schema = schema_module.load().data_sources[self.type_name]

    def validate(self, diags: Diagnostics, config: dict[str, Any]) -> None:
        validate_config(diags, self.schema, config)

    def read(self, diags: Diagnostics, config: dict[str, Any]) -> dict[str, Any]:
        project_id, cluster_name = config["project_id"], config["cluster_name"]
        snapshots = self.session.require_client().snapshots(project_id, cluster_name)
        ordered = sorted(snapshots, key=lambda s: s.get("createdAt") or "", reverse=True)
        return {
            "project_id": project_id,
            "cluster_name": cluster_name,
            "id": f"{project_id}/{cluster_name}",
            "snapshots": [
                {
                    "id": s.get("id"),
                    "created_at": s.get("createdAt"),
                    "status": s.get("status"),
                    "snapshot_type": s.get("snapshotType"),
                    "region": s.get("regionName"),
                    "storage_size_bytes": s.get("storageSizeBytes"),
                    "description": s.get("description"),
                }
                for s in ordered
            ],
        }
