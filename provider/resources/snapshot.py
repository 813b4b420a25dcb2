"""cloudbackup_snapshot: an on-demand snapshot, kept until destroyed (or until backup is disabled)."""

from __future__ import annotations

from typing import Any

from tf.utils import Diagnostics

from contract.times import parse_time
from provider.client import ApiError, seg
from provider.plan_targets import check_source
from provider.resource import Resource, State, split_import_id
from provider.waiting import until_finished


def retention_days(data: dict[str, Any]) -> int | None:
    """The retentionInDays an on-demand snapshot was taken with, from its expiresAt (whole days)."""
    expires, created = data.get("expiresAt"), data.get("createdAt")
    if data.get("snapshotType") != "onDemand" or not expires or not created:
        return None
    seconds = (parse_time(expires) - parse_time(created)).total_seconds()
    return round(seconds / 86400)


class Snapshot(Resource):
    type_name = "cloudbackup_snapshot"
    lifecycle = (
        "Creating it takes an on-demand snapshot and waits, within `timeouts.create` (default 60 "
        "minutes), until it is stored; a failed snapshot is an error. It is kept until destroyed, until "
        "`retention_in_days` pass (if set: the shim then deletes it, and Terraform plans a new one), or "
        "until backup is disabled or the cluster terminated; destroying it deletes it from storage. A "
        "snapshot deleted outside Terraform is planned for creation again."
    )

    def _path(self, project_id: str, cluster_name: str, snapshot_id: str | None = None) -> str:
        base = f"/groups/{seg(project_id)}/clusters/{seg(cluster_name)}/backup/snapshots"
        return f"{base}/{seg(snapshot_id)}" if snapshot_id else base

    def _state(self, project_id: str, cluster_name: str, data: dict[str, Any], description: Any) -> State:
        state = self.from_body(
            data, project_id=project_id, cluster_name=cluster_name, retention_in_days=retention_days(data)
        )
        # The API may answer "" for no description: keep what the configuration said.
        state["description"] = state["description"] or description
        return state

    def modify_plan(self, diags: Diagnostics, prior: State | None, planned: State, config: State) -> None:
        if prior is None or self.replaced(prior, planned):
            self.unknown_computed(planned)
            check_source(
                diags,
                self.session.client,
                self.session.run,
                project_id=planned.get("project_id"),
                cluster_name=planned.get("cluster_name"),
                resource="cloudbackup_snapshot",
            )

    def create(self, diags: Diagnostics, planned: State) -> State | None:
        project_id, cluster_name = planned["project_id"], planned["cluster_name"]
        deadline = self.deadline(planned)
        data = self.client.post(self._path(project_id, cluster_name), self.body(planned))
        data = until_finished(
            self.client, self._path(project_id, cluster_name, data["id"]), data, deadline=deadline
        )
        if data.get("status") == "failed":
            diags.add_error(
                "The snapshot failed",
                f"Snapshot {data['id']} of cluster {cluster_name!r} failed: "
                f"{data.get('failureReason') or 'no reason given'}. Check the storage the shim uses, "
                f"then apply again to take a new one.",
            )
            return None
        return self._state(project_id, cluster_name, data, planned.get("description"))

    def read(self, diags: Diagnostics, current: State) -> State | None:
        project_id, cluster_name = current["project_id"], current["cluster_name"]
        try:
            snapshots = self.client.snapshots(project_id, cluster_name)
        except ApiError as error:
            if error.not_found:
                return None
            raise
        data = next((s for s in snapshots if s.get("id") == current["id"]), None)
        return self._state(project_id, cluster_name, data, current.get("description")) if data else None

    def delete(self, diags: Diagnostics, current: State) -> None:
        try:
            self.client.delete(self._path(current["project_id"], current["cluster_name"], current["id"]))
        except ApiError as error:
            if not error.not_found:
                raise

    def import_(self, diags: Diagnostics, import_id: str) -> State | None:
        project_id, cluster_name, snapshot_id = split_import_id(
            import_id, "PROJECT_ID/CLUSTER_NAME/SNAPSHOT_ID"
        )
        return self.read(diags, {"project_id": project_id, "cluster_name": cluster_name, "id": snapshot_id})
