"""cloudbackup_restore_job: restores a snapshot into a target cluster; destroying it only forgets the job."""

from __future__ import annotations

from typing import Any

from tf.utils import Diagnostics

from contract.times import parse_time
from provider.client import ApiError, seg
from provider.plan_targets import check_restore
from provider.resource import Resource, State, split_import_id
from provider.waiting import until_finished


def duration(data: dict[str, Any]) -> int | None:
    """Whole seconds from the job's creation to its end; None while it runs."""
    created, finished = data.get("createdAt"), data.get("finishedAt")
    if not created or not finished:
        return None
    return max(0, int((parse_time(finished) - parse_time(created)).total_seconds()))


class RestoreJob(Resource):
    type_name = "cloudbackup_restore_job"
    lifecycle = (
        "Creating it starts the restore and waits, within `timeouts.create` (default 60 minutes), until "
        "it completed; a failed restore is an error that names the reason, and no resource is created. A "
        "restore cannot be undone: destroying the resource only removes it from the Terraform state, and "
        "the target cluster keeps the restored data."
    )

    def _path(self, project_id: str, cluster_name: str, job_id: str | None = None) -> str:
        base = f"/groups/{seg(project_id)}/clusters/{seg(cluster_name)}/backup/restoreJobs"
        return f"{base}/{seg(job_id)}" if job_id else base

    def body(self, values: State) -> dict[str, Any]:
        return {**super().body(values), "deliveryType": "automated"}

    def _state(self, project_id: str, cluster_name: str, data: dict[str, Any]) -> State:
        state = self.from_body(
            data, project_id=project_id, cluster_name=cluster_name, duration_seconds=duration(data)
        )
        # A restore into its own project may be answered without a target project.
        state["target_project_id"] = state["target_project_id"] or project_id
        return state

    def modify_plan(self, diags: Diagnostics, prior: State | None, planned: State, config: State) -> None:
        if config.get("target_project_id") is None:
            planned["target_project_id"] = planned.get("project_id")
        if prior is None or self.replaced(prior, planned):
            self.unknown_computed(planned)
            identity = self.session.identity
            check_restore(
                diags,
                self.session.client,
                self.session.run,
                planned,
                cross_region=identity.cross_region_restore if identity else None,
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
                "The restore failed",
                f"Restore job {data['id']} of snapshot {planned['snapshot_id']} into cluster "
                f"{planned['target_cluster_name']!r} failed: "
                f"{data.get('failureReason') or 'no reason given'}."
                f" "
                f"Fix the cause, then apply again to start a new restore.",
            )
            return None
        return self._state(project_id, cluster_name, data)

    def read(self, diags: Diagnostics, current: State) -> State | None:
        try:
            data = self.client.get(self._path(current["project_id"], current["cluster_name"], current["id"]))
        except ApiError as error:
            if error.not_found:
                return None
            raise
        return self._state(current["project_id"], current["cluster_name"], data)

    def delete(self, diags: Diagnostics, current: State) -> None:
        # A restore cannot be undone: destroying the resource only removes it from the Terraform state.
        return None

    def import_(self, diags: Diagnostics, import_id: str) -> State | None:
        project_id, cluster_name, job_id = split_import_id(import_id, "PROJECT_ID/CLUSTER_NAME/JOB_ID")
        return self.read(diags, {"project_id": project_id, "cluster_name": cluster_name, "id": job_id})
