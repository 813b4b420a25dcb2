"""Clusters: GET/POST /groups/{groupId}/clusters, GET/PATCH/DELETE .../clusters/{clusterName}."""

from __future__ import annotations

from typing import Any

from flask import Blueprint

from shim import schemas
from shim.api import views
from shim.api.common import body, flag, page, reach, service
from shim.errors import ApiError
from shim.schemas import operation
from shim.store.models import Cluster

RESPONSE = schemas.CLUSTER + "#/$defs/response"
INCLUDE_BACKUP = "includeBackup"

# The list's own query parameter, described for the OpenAPI document beside the shared ones.
schemas.QUERY_PARAMETERS.setdefault(
    INCLUDE_BACKUP,
    {
        "description": "Embed each cluster's backup (what GET .../clusters/{clusterName}/backup answers) "
        "as `backup`: one request reads a whole project.",
        "schema": {"type": "boolean", "default": False},
    },
)


def _with_backup(project_id: str, row: Cluster) -> dict[str, Any]:
    try:
        return views.cluster_with_backup(service().get_backup(project_id, row.name))
    except ApiError as error:
        if error.status != 404:
            raise
        # Terminated since the list was read: the cluster as listed, with no backup to show.
        return {**views.cluster(row), "backup": None}


def blueprint() -> Blueprint:
    bp = Blueprint("clusters", __name__)

    @bp.get("/groups/<group_id>/clusters")
    @operation(
        summary="List the project's clusters, newest first; includeBackup=true embeds each one's backup.",
        response=RESPONSE,
        listing=True,
        query=(INCLUDE_BACKUP,),
    )
    def list_clusters(group_id: str) -> Any:
        project_id = reach(group_id)
        offset, limit = page()
        with_backup = flag(INCLUDE_BACKUP)
        rows, total = service().list_clusters(project_id, offset=offset, limit=limit)
        if not with_backup:
            return views.listing([views.cluster(row) for row in rows], total)
        return views.listing([_with_backup(project_id, row) for row in rows], total)

    @bp.post("/groups/<group_id>/clusters")
    @operation(
        summary="Create a cluster and its member volumes; providerBackupEnabled enables backup at once.",
        request=schemas.CLUSTER,
        response=RESPONSE,
        status=201,
        errors=(400, 401, 403, 404, 409),
    )
    def create_cluster(group_id: str) -> Any:
        project_id = reach(group_id)
        data = body(schemas.CLUSTER)
        return views.cluster(service().create_cluster(project_id, data)), 201

    @bp.get("/groups/<group_id>/clusters/<cluster_name>")
    @operation(summary="Get one cluster.", response=RESPONSE)
    def get_cluster(group_id: str, cluster_name: str) -> Any:
        return views.cluster(service().get_cluster(reach(group_id), cluster_name))

    @bp.patch("/groups/<group_id>/clusters/<cluster_name>")
    @operation(
        summary="Change a cluster (R11 refuses what cloud provider snapshots cannot follow).",
        request=schemas.CLUSTER_PATCH,
        response=RESPONSE,
        errors=(400, 401, 403, 404, 409),
    )
    def update_cluster(group_id: str, cluster_name: str) -> Any:
        project_id = reach(group_id)
        data = body(schemas.CLUSTER_PATCH)
        return views.cluster(service().update_cluster(project_id, cluster_name, data))

    @bp.delete("/groups/<group_id>/clusters/<cluster_name>")
    @operation(summary="Terminate a cluster: its snapshots (R9) and volumes are deleted.", status=204)
    def terminate_cluster(group_id: str, cluster_name: str) -> Any:
        service().terminate_cluster(reach(group_id), cluster_name)
        return "", 204

    return bp
