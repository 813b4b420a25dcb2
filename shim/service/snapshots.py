"""A cluster's snapshots as the API shows them: list, read, take one on demand, delete one."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from contract import rules
from shim import events
from shim.errors import BACKUP_NOT_ENABLED, CLUSTER_NOT_FOUND, GROUP_NOT_FOUND, ApiError
from shim.service import lookups
from shim.service.context import Context, Job
from shim.store import queries
from shim.store.models import Cluster, Snapshot

if TYPE_CHECKING:
    from shim.service.engine import Engine

log = logging.getLogger(__name__)

SNAPSHOT_IN_PROGRESS = "SNAPSHOT_IN_PROGRESS"


class Snapshots(Job):
    """The snapshots the API lists, takes on demand and deletes."""

    def __init__(self, ctx: Context, engine: Engine) -> None:
        super().__init__(ctx)
        self.engine = engine

    def list_snapshots(
        self, project_id: str, name: str, *, offset: int, limit: int
    ) -> tuple[Any, list[Any], int]:
        """(cluster id and name, a page of snapshot rows, total): the API's hottest path, so one Core
        statement outside any transaction in the common case."""
        with self.ctx.store.statements() as conn:
            listed = queries.snapshot_listing(conn, project_id, name, offset=offset, limit=limit)
            cluster, rows, total = listed
            if cluster is None:
                if not queries.project_exists(conn, project_id):
                    raise ApiError(404, GROUP_NOT_FOUND, f"No project with ID {project_id}.")
                raise ApiError(404, CLUSTER_NOT_FOUND, f"No cluster named '{name}' in project {project_id}.")
            return cluster, rows, total

    def get_snapshot(self, project_id: str, name: str, snapshot_id: str) -> tuple[Cluster, Snapshot]:
        with self.ctx.store.read() as session:
            cluster = lookups.cluster(session, project_id, name)
            return cluster, lookups.snapshot(session, cluster, snapshot_id)

    def take_snapshot(
        self, project_id: str, name: str, description: str | None, *, retention_days: int | None = None
    ) -> tuple[Cluster, Snapshot]:
        """An on-demand snapshot: kept `retention_days` days if given, else until deleted (or by R9)."""
        with self.ctx.work_lock:
            with self.ctx.store.write() as session:
                cluster = lookups.cluster(session, project_id, name, for_change=True)
                if cluster.backup_method != rules.CLOUD_PROVIDER_SNAPSHOTS:
                    now_method = cluster.backup_method or "no backup"
                    raise ApiError(
                        400,
                        BACKUP_NOT_ENABLED,
                        f"Cluster '{name}' has {now_method} enabled, and on-demand snapshots need cloud "
                        f"provider snapshots. Enable them first: PUT .../clusters/{name}/backup "
                        f'{{"method": "CLOUD_PROVIDER_SNAPSHOTS"}}.',
                    )
                job = self.engine.queue_snapshot(
                    session,
                    cluster,
                    snapshot_type="onDemand",
                    slot_time=None,
                    created_at=self.ctx.now(),
                    description=description,
                    expires_at=self.ctx.now() + timedelta(days=retention_days) if retention_days else None,
                )
            self.engine.run_snapshots([job])
        return self.get_snapshot(project_id, name, job.snapshot_id)

    def delete_snapshot(self, project_id: str, name: str, snapshot_id: str) -> None:
        with self.ctx.work_lock:
            with self.ctx.store.read() as session:
                cluster = lookups.cluster(session, project_id, name, for_change=True)
                row = lookups.snapshot(session, cluster, snapshot_id)
            if row.status in ("queued", "inProgress"):
                raise ApiError(
                    409,
                    SNAPSHOT_IN_PROGRESS,
                    f"Snapshot {snapshot_id} is {row.status}; delete it once it finished.",
                )
            self.engine.delete_snapshots([row])
            events.emit(
                self.ctx.source, events.SNAPSHOT_DELETED, snapshots=[snapshot_id], why="deleted by request"
            )
