"""Restore jobs (R10): a completed snapshot onto every member volume of a target cluster."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy import update

from contract import rules
from shim import events
from shim.drivers.base import DriverError
from shim.errors import (
    CLUSTER_NOT_FOUND,
    GROUP_NOT_FOUND,
    RESTORE_JOB_NOT_FOUND,
    SNAPSHOT_NOT_FOUND,
    ApiError,
)
from shim.service import lookups
from shim.service.common import new_id, shape
from shim.service.context import Job
from shim.store import queries
from shim.store.models import Cluster, RestoreJob, Snapshot, Volume

log = logging.getLogger(__name__)


class Restores(Job):
    """Restore jobs: record, start, poll, finish."""

    def list_restore_jobs(
        self, project_id: str, name: str, *, offset: int, limit: int
    ) -> tuple[list[RestoreJob], int]:
        with self.ctx.store.read() as session:
            cluster = lookups.cluster(session, project_id, name)
            return queries.restore_jobs_page(session, cluster.id, offset=offset, limit=limit)

    def get_restore_job(self, project_id: str, name: str, job_id: str) -> RestoreJob:
        with self.ctx.store.read() as session:
            cluster = lookups.cluster(session, project_id, name)
            job = queries.restore_job(session, cluster.id, job_id)
            if job is None:
                raise ApiError(
                    404, RESTORE_JOB_NOT_FOUND, f"No restore job with ID {job_id} for cluster '{name}'."
                )
            return job

    def create_restore_job(
        self, project_id: str, name: str, body: dict[str, Any], *, can_reach: Callable[[str], bool]
    ) -> RestoreJob:
        """R10: a completed snapshot onto every member volume of the target cluster (all its regions)."""
        target_project_id = body.get("targetGroupId", project_id)
        target_name = body["targetClusterName"]
        if not can_reach(target_project_id):
            raise ApiError(
                404, GROUP_NOT_FOUND, f"No project with ID {target_project_id}.", ["/targetGroupId"]
            )
        with self.ctx.work_lock:
            with self.ctx.store.write() as session:
                cluster = lookups.cluster(session, project_id, name, for_change=True)
                snapshot = queries.snapshot(session, cluster.id, body["snapshotId"])
                if snapshot is None:
                    raise ApiError(
                        404,
                        SNAPSHOT_NOT_FOUND,
                        f"No snapshot with ID {body['snapshotId']} for cluster '{name}'.",
                        ["/snapshotId"],
                    )
                if queries.project(session, target_project_id) is None:
                    raise ApiError(
                        404, GROUP_NOT_FOUND, f"No project with ID {target_project_id}.", ["/targetGroupId"]
                    )
                target = queries.cluster(session, target_project_id, target_name)
                if target is None or target.state == "DELETING":
                    raise ApiError(
                        404,
                        CLUSTER_NOT_FOUND,
                        f"No cluster named '{target_name}' in project {target_project_id}.",
                        ["/targetClusterName"],
                    )
                refusals = rules.restore_refusals(
                    snapshot_id=snapshot.id,
                    snapshot_status=snapshot.status,
                    snapshot_disk_bytes=snapshot.disk_size_bytes,
                    target=shape(target),
                    target_disk_gb=target.disk_size_gb,
                )
                target_volumes = [v for v in queries.volumes(session, target.id) if v.handle]
                # Refused up front where storage is regional, rather than failing half-way in the cloud.
                region_refusal = rules.restore_region_refusal(
                    snapshot.region,
                    [v.region for v in target_volumes],
                    self.ctx.driver.cross_region_restore,
                    target_name=target.name,
                )
                if region_refusal is not None:
                    refusals.append(region_refusal)
                if refusals:
                    raise ApiError.from_refusals(refusals)
                operations = [
                    {
                        "volumeId": v.id,
                        "region": v.region,
                        "volumeHandle": v.handle,
                        "token": None,
                        "state": "queued",
                    }
                    for v in target_volumes
                ]
                job = RestoreJob(
                    id=new_id(),
                    project_id=project_id,
                    cluster_id=cluster.id,
                    snapshot_id=snapshot.id,
                    target_project_id=target_project_id,
                    target_cluster_id=target.id,
                    target_cluster_name=target.name,
                    status="queued",
                    operations=operations,
                    created_at=self.ctx.now(),
                    owner=self.ctx.replica_id,
                )
                session.add(job)
                target.state = "RESTORING"
            self.run_restore(job.id)
        return self.get_restore_job(project_id, name, job.id)

    def run_restore(self, job_id: str) -> None:
        """Start every volume's restore (a queued job, also one restarted after a crash), then poll."""
        with self.ctx.store.read() as session:
            job = session.get(RestoreJob, job_id)
            assert job is not None
            snapshot = session.get(Snapshot, job.snapshot_id)
        if snapshot is None or not snapshot.handle:
            self._finish_restore(
                job_id, job.operations, "SNAPSHOT_GONE: the snapshot was deleted before the restore ran"
            )
            return
        ops = [dict(op) for op in job.operations]
        results = self.ctx.map(
            lambda op: self.ctx.driver.start_restore(
                snapshot_handle=snapshot.handle or "",
                target_volume_handle=op["volumeHandle"],
                region=op["region"],
                expected_checksum=snapshot.checksum,
            ),
            ops,
        )
        failure: str | None = None
        for op, result in zip(ops, results, strict=True):
            if isinstance(result, str):
                op["token"], op["state"] = result, "inProgress"
            else:
                op["state"], op["error"] = "failed", self._reason(result)
                failure = failure or op["error"]
        with self.ctx.store.write() as session:
            session.execute(
                update(RestoreJob).where(RestoreJob.id == job_id).values(operations=ops, status="inProgress")
            )
        events.emit(
            self.ctx.source,
            events.RESTORE_STARTED,
            job=job_id,
            snapshot=job.snapshot_id,
            target=job.target_cluster_name,
        )
        if failure and not any(op["state"] == "inProgress" for op in ops):
            self._finish_restore(job_id, ops, failure)
            return
        self.poll_restore(job_id)

    @staticmethod
    def _reason(error: Exception) -> str:
        return (
            f"{error.code}: {error.message}" if isinstance(error, DriverError) else f"DRIVER_ERROR: {error}"
        )

    def poll_restore(self, job_id: str) -> bool:
        """Poll a running restore's operations; finish the job when all did. True while it still runs."""
        with self.ctx.store.read() as session:
            job = session.get(RestoreJob, job_id)
            if job is None or job.status != "inProgress":
                return False
            ops = [dict(op) for op in job.operations]
        waiting = [op for op in ops if op["state"] == "inProgress" and op.get("token")]
        statuses = self.ctx.map(lambda op: self.ctx.driver.poll(op["token"]), waiting)
        for op, status in zip(waiting, statuses, strict=True):
            if isinstance(status, Exception):
                if isinstance(status, DriverError):
                    op["state"], op["error"] = "failed", self._reason(status)
                continue
            if status.state == "succeeded":
                op["state"] = "succeeded"
                op["volumeHandle"] = str(status.result.get("volumeHandle") or op["volumeHandle"])
                op["checksum"] = status.result.get("checksum")
            elif status.state == "failed":
                op["state"] = "failed"
                op["error"] = (
                    f"{status.error_code or 'RESTORE_FAILED'}: {status.error_message or 'no reason given'}"
                )
        if any(op["state"] in ("queued", "inProgress") for op in ops):
            with self.ctx.store.write() as session:
                session.execute(update(RestoreJob).where(RestoreJob.id == job_id).values(operations=ops))
            return True
        failure = next((op.get("error") or "RESTORE_FAILED" for op in ops if op["state"] == "failed"), None)
        self._finish_restore(job_id, ops, failure)
        return False

    def _finish_restore(self, job_id: str, ops: list[dict[str, Any]], failure: str | None) -> None:
        with self.ctx.store.write() as session:
            job = session.get(RestoreJob, job_id)
            if job is None:
                return
            for op in ops:
                if op.get("state") == "succeeded" and op.get("volumeHandle"):
                    session.execute(
                        update(Volume).where(Volume.id == op["volumeId"]).values(handle=op["volumeHandle"])
                    )
            job.operations = ops
            job.status = "failed" if failure else "completed"
            job.failure_reason = failure
            job.finished_at = self.ctx.now()
            if job.target_cluster_id:
                target = session.get(Cluster, job.target_cluster_id)
                if target is not None and target.state == "RESTORING":
                    target.state = "IDLE"
            took = (job.finished_at - job.created_at).total_seconds()
        events.emit(
            self.ctx.source,
            events.RESTORE_FINISHED,
            job=job_id,
            status=job.status,
            durationSeconds=took,
            reason=failure,
        )
        self.ctx.forget_operations([op["token"] for op in ops if op.get("token")])
        if failure:
            log.warning("restore job %s failed: %s", job_id, failure)
