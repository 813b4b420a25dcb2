"""A cluster's backup: GET/PUT/DELETE /groups/{groupId}/clusters/{clusterName}/backup."""

from __future__ import annotations

from typing import Any

from flask import Blueprint

from contract import rules
from shim import schemas
from shim.api import views
from shim.api.common import body, flag, reach, service
from shim.schemas import operation

RESPONSE = schemas.CLUSTER_BACKUP + "#/$defs/response"


def blueprint() -> Blueprint:
    bp = Blueprint("backup", __name__)
    path = "/groups/<group_id>/clusters/<cluster_name>/backup"

    @bp.get(path)
    @operation(summary="Get the cluster's backup: method, schedule and stored snapshots.", response=RESPONSE)
    def get_backup(group_id: str, cluster_name: str) -> Any:
        return views.backup(service().get_backup(reach(group_id), cluster_name))

    @bp.put(path)
    @operation(
        summary="Enable backup (the first snapshot is taken at once); dryRun=true only checks the rules.",
        request=schemas.CLUSTER_BACKUP,
        response=RESPONSE,
        query=("dryRun",),
        errors=(400, 401, 403, 404, 409),
    )
    def enable_backup(group_id: str, cluster_name: str) -> Any:
        project_id = reach(group_id)
        data = body(schemas.CLUSTER_BACKUP)
        dry_run = flag("dryRun")
        method = data.get("method", rules.CLOUD_PROVIDER_SNAPSHOTS)
        backup, _changed = service().enable_backup(
            project_id,
            cluster_name,
            method,
            dry_run=dry_run,
            deletion_protection=data.get("deletionProtection"),
        )
        return views.backup(backup)

    @bp.delete(path)
    @operation(
        summary="Disable backup and delete every snapshot of the cluster from storage (R9); idempotent. "
        "Refused (409 DELETION_PROTECTED) while the backup has deletion protection.",
        status=204,
        errors=(401, 403, 404, 409),
    )
    def disable_backup(group_id: str, cluster_name: str) -> Any:
        service().disable_backup(reach(group_id), cluster_name)
        return "", 204

    return bp
