"""The records a request names, found in its transaction or refused with a 404 that says which is missing."""

from __future__ import annotations

from sqlalchemy.orm import Session

from shim.errors import CLUSTER_NOT_FOUND, GROUP_NOT_FOUND, SNAPSHOT_NOT_FOUND, ApiError
from shim.store import queries
from shim.store.models import Cluster, Project, Snapshot


def project(session: Session, project_id: str, *, for_update: bool = False) -> Project:
    found = queries.lock_project(session, project_id) if for_update else queries.project(session, project_id)
    if found is None:
        raise ApiError(404, GROUP_NOT_FOUND, f"No project with ID {project_id}.")
    return found


def cluster(session: Session, project_id: str, name: str, *, for_change: bool = False) -> Cluster:
    """A cluster of a project; `for_change` holds the project (R4) and hides a cluster being deleted."""
    project(session, project_id, for_update=for_change)
    found = queries.cluster(session, project_id, name)
    if found is None or (for_change and found.state == "DELETING"):
        raise ApiError(404, CLUSTER_NOT_FOUND, f"No cluster named '{name}' in project {project_id}.")
    return found


def snapshot(session: Session, cluster: Cluster, snapshot_id: str) -> Snapshot:
    row = queries.snapshot(session, cluster.id, snapshot_id)
    if row is None:
        raise ApiError(
            404, SNAPSHOT_NOT_FOUND, f"No snapshot with ID {snapshot_id} for cluster '{cluster.name}'."
        )
    return row
