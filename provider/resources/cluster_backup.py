"""cloudbackup_cluster_backup: enables backup; destroying it disables backup and deletes the snapshots."""

from __future__ import annotations

from typing import Any

from tf.types import Unknown
from tf.utils import Diagnostics

from provider import deletion
from provider.client import ApiError, seg
from provider.planning import BACKUP_FIELDS, check_backup, known
from provider.resource import Resource, State, split_import_id
from provider.waiting import wait_for

DONE = ("completed", "failed")


def scheduled_ids(snapshots: list[dict[str, Any]]) -> list[str]:
    """The retained scheduled snapshots, newest first: on-demand ones are their own resources."""
    return [
        s["id"] for s in snapshots if s.get("snapshotType") == "scheduled" and s.get("status") == "completed"
    ]


class ClusterBackup(Resource):
    type_name = "cloudbackup_cluster_backup"
    lifecycle = (
        "Creating it enables backup and waits, within `timeouts.create` (default 60 minutes), until the "
        "first snapshot is stored; later snapshots are taken every 24 hours from that moment and the last"
        " 3 scheduled ones are kept. `terraform refresh` updates `snapshot_ids` and `next_snapshot_at`. "
        "Destroying it disables backup, which deletes every snapshot of the cluster from storage at once."
    )
    fields = BACKUP_FIELDS

    def _path(self, project_id: str, cluster_name: str) -> str:
        return f"/groups/{seg(project_id)}/clusters/{seg(cluster_name)}/backup"

    def _state(
        self, project_id: str, cluster_name: str, data: dict[str, Any], snapshots: list[dict[str, Any]]
    ) -> State:
        return self.from_body(
            data,
            id=f"{project_id}/{cluster_name}",
            project_id=project_id,
            cluster_name=cluster_name,
            snapshot_ids=scheduled_ids(snapshots),
        )

    def modify_plan(self, diags: Diagnostics, prior: State | None, planned: State, config: State) -> None:
        project_id, cluster_name = planned.get("project_id"), planned.get("cluster_name")
        if prior is not None and not self.replaced(prior, planned):
            return
        if prior is not None:
            self._before_deleting(diags, prior, "Replacing this cloudbackup_cluster_backup")
        self.unknown_computed(planned)
        planned["id"] = f"{project_id}/{cluster_name}" if known(project_id, cluster_name) else Unknown
        client = self.session.client
        check_backup(
            diags,
            client,
            self.session.run,
            project_id=project_id,
            cluster_name=cluster_name,
            method=planned.get("method"),
        )

    def plan_destroy(self, diags: Diagnostics, prior: State) -> None:
        self._before_deleting(diags, prior, "Destroying this cloudbackup_cluster_backup")

    def _before_deleting(self, diags: Diagnostics, prior: State, action: str) -> None:
        """Refuse when protected, else preview the snapshots that go (disabling backup deletes them all)."""
        if prior.get("deletion_protection"):
            deletion.refuse(diags, self.type_name, action, prior.get("cluster_name"))
        elif self.session.client is not None:
            deletion.preview(diags, self.client, prior["project_id"], prior["cluster_name"], action)

    def _get(self, project_id: str, cluster_name: str) -> dict[str, Any] | None:
        try:
            data = self.client.get(self._path(project_id, cluster_name))
        except ApiError as error:
            if error.not_found:
                return None
            raise
        return data if data.get("enabled", True) and data.get("method") else None

    def create(self, diags: Diagnostics, planned: State) -> State | None:
        project_id, cluster_name = planned["project_id"], planned["cluster_name"]
        deadline = self.deadline(planned)
        data = self.client.put(self._path(project_id, cluster_name), self.body(planned))
        snapshots: list[dict[str, Any]] = []
        if data.get("executed", True) and data.get("snapshotIds") is not None:
            # The first snapshot is taken at once: wait until it is stored (or failed), however long it takes.
            def first_snapshot() -> dict[str, Any] | None:
                snapshots[:] = self.client.get(f"{self._path(project_id, cluster_name)}/snapshots").get(
                    "results", []
                )
                if snapshots and snapshots[0].get("status") in DONE:
                    # Read after the snapshot finished, so that its freshness is what a refresh reads.
                    current = self._get(project_id, cluster_name) or {}
                    if snapshots[0].get("status") == "failed":
                        diags.add_warning(
                            "The first snapshot failed",
                            f"Backup is enabled, but snapshot {snapshots[0].get('id')} failed: "
                            f"{snapshots[0].get('failureReason') or 'no reason given'}. The schedule takes "
                            f"the next one in {current.get('intervalHours', 24)} hours; take one now with a "
                            f"cloudbackup_snapshot resource.",
                        )
                    return current
                return None

            data = wait_for(first_snapshot, deadline=deadline, first=0.02)
        return self._state(project_id, cluster_name, data, snapshots)

    def read(self, diags: Diagnostics, current: State) -> State | None:
        project_id, cluster_name = current["project_id"], current["cluster_name"]
        data = self.client.backup(project_id, cluster_name)
        if data is None or not (data.get("enabled", True) and data.get("method")):
            return None
        snapshots = self.client.snapshots(project_id, cluster_name) if data.get("snapshotIds") else []
        return self._state(project_id, cluster_name, data, snapshots)

    def update(self, diags: Diagnostics, prior: State, planned: State) -> State | None:
        # Only deletion_protection (and timeouts) change in place; the rest forces a replacement. A PUT
        # is the whole backup: it sends every field, changed or not.
        if not self.changes_in_place(prior, planned):
            return planned
        data = self.client.put(self._path(planned["project_id"], planned["cluster_name"]), self.body(planned))
        answered = self.from_body(data)
        return {**planned, **{name: answered[name] for name in self.in_place_attributes()}}

    def delete(self, diags: Diagnostics, current: State) -> None:
        deletion.preview_at_apply(
            diags,
            self.client,
            self.session.terraform_version,
            current,
            current["cluster_name"],
            "Destroying this cloudbackup_cluster_backup",
        )
        try:
            self.client.delete(self._path(current["project_id"], current["cluster_name"]))
        except ApiError as error:
            if deletion.refused_at_apply(diags, error, self.type_name):
                return
            if not error.not_found:
                raise

    def import_(self, diags: Diagnostics, import_id: str) -> State | None:
        project_id, cluster_name = split_import_id(import_id, "PROJECT_ID/CLUSTER_NAME")
        return self.read(diags, {"project_id": project_id, "cluster_name": cluster_name})
