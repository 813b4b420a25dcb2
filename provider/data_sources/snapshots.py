"""data cloudbackup_snapshots: the stored snapshots of one cluster, newest first."""

from __future__ import annotations

from typing import Any

from tf.utils import Diagnostics

from contract import documents
from provider import schema as schema_module
from provider.bodies import from_body
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
            "snapshots": [listed(s) for s in ordered],
        }


def item_attributes() -> tuple[str, ...]:
    """The attributes of one listed snapshot, as the data source's schema names them."""
    return tuple(documents.document("snapshots.data")["$defs"]["snapshotItem"]["properties"])


def listed(answer: dict[str, Any]) -> dict[str, Any]:
    """One listed snapshot: the cloudbackup_snapshot attributes of the same names, read from the answer
    by that resource's field map."""
    state = from_body("cloudbackup_snapshot", answer)
    return {name: state[name] for name in item_attributes()}
