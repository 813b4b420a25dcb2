"""Restore jobs: GET/POST .../backup/restoreJobs, GET .../backup/restoreJobs/{jobId}."""

from __future__ import annotations

from typing import Any

from flask import Blueprint

from shim import schemas
from shim.api import links, views
from shim.api.common import OBJECT_ID, body, page, principal, reach, service
from shim.schemas import operation

RESPONSE = schemas.RESTORE_JOB + "#/$defs/response"


def blueprint() -> Blueprint:
    bp = Blueprint("restore_jobs", __name__)
    path = "/groups/<group_id>/clusters/<cluster_name>/backup/restoreJobs"

    @bp.get(path)
    @operation(
        summary="List the restore jobs of the cluster's snapshots, newest first.",
        response=RESPONSE,
        listing=True,
    )
    def list_restore_jobs(group_id: str, cluster_name: str) -> Any:
        offset, limit = page()
        rows, total = service().list_restore_jobs(reach(group_id), cluster_name, offset=offset, limit=limit)
        listed = views.listing([views.restore_job(row) for row in rows], total)
        return {**listed, "links": links.page(total)}

    @bp.post(path)
    @operation(
        summary="Restore a completed snapshot onto every volume of a target cluster (R10).",
        request=schemas.RESTORE_JOB,
        response=RESPONSE,
        status=201,
    )
    def create_restore_job(group_id: str, cluster_name: str) -> Any:
        project_id = reach(group_id)
        data = body(schemas.RESTORE_JOB)
        caller = principal()
        job = service().create_restore_job(
            project_id,
            cluster_name,
            data,
            can_reach=lambda pid: bool(OBJECT_ID.match(pid)) and caller.can_reach(pid),
        )
        return views.restore_job(job), 201

    @bp.get(path + "/<job_id>")
    @operation(summary="Get one restore job.", response=RESPONSE)
    def get_restore_job(group_id: str, cluster_name: str, job_id: str) -> Any:
        return views.restore_job(service().get_restore_job(reach(group_id), cluster_name, job_id))

    return bp
