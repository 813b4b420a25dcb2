"""Clusters: GET/POST /groups/{groupId}/clusters, GET/PATCH/DELETE .../clusters/{clusterName}."""

from __future__ import annotations

from typing import Any

from flask import Blueprint
from sqlalchemy import select
from sqlalchemy.orm import Session

from shim import freshness, schemas
from shim.api import views
from shim.api.common import body, flag, page, reach, service
from shim.errors import GROUP_NOT_FOUND, ApiError
from shim.schemas import operation
from shim.service import Backup
from shim.store.models import Snapshot

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


def _listing_with_backups(project_id: str, offset: int, limit: int) -> dict[str, Any]:
    """A page of clusters, each with its backup: one read transaction, one query for all their snapshots.

    The backup of each is what GET .../backup answers (the same view over the same rows); reading them one
    by one instead costs a transaction per cluster, which is most of the time of a large project's list.
    """
    from shim.store import queries

    with service().store.read() as session:
        if queries.project(session, project_id) is None:
            raise ApiError(404, GROUP_NOT_FOUND, f"No project with ID {project_id}.")
        rows, total = queries.clusters_page(session, project_id, offset=offset, limit=limit)
        snapshot_ids = _completed_snapshot_ids(session, [row.id for row in rows])
        fresh = freshness.of_clusters(session, [row.id for row in rows])
    now = service().now()
    return views.listing(
        [
            views.cluster_with_backup(Backup(row, snapshot_ids[row.id], False, fresh[row.id], now))
            for row in rows
        ],
        total,
    )


def _completed_snapshot_ids(session: Session, cluster_ids: list[str]) -> dict[str, list[str]]:
    """Each cluster's stored snapshots, newest first (as queries.completed_snapshot_ids orders them)."""
    from shim.store import queries

    found: dict[str, list[str]] = {cluster_id: [] for cluster_id in cluster_ids}
    for part in queries.chunks(cluster_ids):
        rows = session.execute(
            select(Snapshot.cluster_id, Snapshot.id)
            .where(Snapshot.cluster_id.in_(part), Snapshot.status == "completed")
            .order_by(Snapshot.created_at.desc(), Snapshot.id.desc())
        )
        for cluster_id, snapshot_id in rows:
            found[cluster_id].append(snapshot_id)
    return found


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
        if flag(INCLUDE_BACKUP):
            return _listing_with_backups(project_id, offset, limit)
        rows, total = service().list_clusters(project_id, offset=offset, limit=limit)
        return views.listing([views.cluster(row) for row in rows], total)

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
    @operation(
        summary="Terminate a cluster: its snapshots (R9) and volumes are deleted. Refused (409 "
        "DELETION_PROTECTED) while the cluster or its backup has deletion protection.",
        status=204,
        errors=(401, 403, 404, 409),
    )
    def terminate_cluster(group_id: str, cluster_name: str) -> Any:
        service().terminate_cluster(reach(group_id), cluster_name)
        return "", 204

    return bp
