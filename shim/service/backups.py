"""A cluster's backup: enable (R1-R5, R7), disable (R9), the method lock (R4), start and stop its schedule."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from contract import rules
from shim import events, freshness, protection
from shim.errors import GROUP_NOT_FOUND, ApiError
from shim.freshness import Freshness
from shim.service import lookups
from shim.service.common import SnapshotJob, shape
from shim.service.context import Context, Job
from shim.store import queries
from shim.store.models import Cluster

if TYPE_CHECKING:
    from shim.service.engine import Engine

log = logging.getLogger(__name__)

BACKUP_CHANGE_IN_PROGRESS = "BACKUP_CHANGE_IN_PROGRESS"


@dataclass
class Backup:
    """A cluster's backup as the API shows it."""

    cluster: Cluster
    snapshot_ids: list[str]
    dry_run: bool = False
    # The newest snapshots, and the clock's now they are aged against; None where not read.
    freshness: Freshness | None = None
    now: datetime | None = None


class Backups(Job):
    """Each cluster's backup: its method and its schedule."""

    def __init__(self, ctx: Context, engine: Engine) -> None:
        super().__init__(ctx)
        self.engine = engine

    def get_backup(self, project_id: str, name: str) -> Backup:
        with self.ctx.store.read() as session:
            cluster = lookups.cluster(session, project_id, name)
            fresh = freshness.of_clusters(session, [cluster.id])[cluster.id]
            ids = queries.completed_snapshot_ids(session, cluster.id)
            return Backup(cluster, ids, False, fresh, self.ctx.now())

    def enable_backup(
        self,
        project_id: str,
        name: str,
        method: str,
        *,
        dry_run: bool = False,
        deletion_protection: bool | None = None,
    ) -> tuple[Backup, bool]:
        """R1-R5 by the rules; the first snapshot is taken at once (R7); returns (backup, changed)."""
        with self.ctx.work_lock:
            job: SnapshotJob | None = None
            try:
                job = self._enable_in_one_transaction(project_id, name, method, dry_run, deletion_protection)
            except IntegrityError:
                # Another process took this cluster's slot at the same instant (unique (cluster, slot)).
                raise self._change_in_progress(name) from None
            if isinstance(job, Backup):
                return job, False
            events.emit(
                self.ctx.source, events.BACKUP_ENABLED, project=project_id, cluster=name, method=method
            )
            if job is not None:
                self.engine.run_snapshots([job])
        return self.get_backup(project_id, name), True

    def _enable_in_one_transaction(
        self, project_id: str, name: str, method: str, dry_run: bool, deletion_protection: bool | None
    ) -> SnapshotJob | Backup | None:
        """enable_backup's checks and write, under the project's lock; a Backup when nothing changes."""
        job: SnapshotJob | None = None
        with self.ctx.store.write() as session:
            project = lookups.project(session, project_id, for_update=True)
            cluster = lookups.cluster(session, project_id, name, for_change=True)
            if deletion_protection is not None and not dry_run:
                cluster.backup_deletion_protection = deletion_protection
            if cluster.backup_method == method:
                fresh = freshness.of_clusters(session, [cluster.id])[cluster.id]
                ids = queries.completed_snapshot_ids(session, cluster.id)
                return Backup(cluster, ids, dry_run, fresh, self.ctx.now())
            others = queries.backup_methods_of_others(session, project_id, excluding=cluster.id)
            refusals = rules.enable_refusals(
                shape(cluster), method, others, project_name=project.name, current=cluster.backup_method
            )
            if refusals:
                raise ApiError.from_refusals(refusals)
            if not dry_run:
                self._refuse_while_purging(session, cluster)
            if dry_run:
                session.expunge(cluster)
                would_be = self._would_enable(cluster, method)
                return Backup(would_be, queries.completed_snapshot_ids(session, cluster.id), True)
            cluster.backup_method = method
            if method == rules.CLOUD_PROVIDER_SNAPSHOTS:
                job = self.start_schedule(session, cluster)
        return job

    def check_method_lock(
        self, session: Session, project_id: str, cluster_id: str, new: rules.ClusterShape
    ) -> None:
        """R4 under the project's lock, in the caller's write transaction: refuse if another cluster of the
        project already holds another method."""
        project = queries.lock_project(session, project_id)
        if project is None:
            raise ApiError(404, GROUP_NOT_FOUND, f"No project with ID {project_id}.")
        cluster = queries.cluster_by_id(session, cluster_id)
        if cluster is not None:
            self._refuse_while_purging(session, cluster)
        others = queries.backup_methods_of_others(session, project_id, excluding=cluster_id)
        refusals = rules.enable_refusals(
            new, rules.CLOUD_PROVIDER_SNAPSHOTS, others, project_name=project.name
        )
        if refusals:
            raise ApiError.from_refusals(refusals)

    def _refuse_while_purging(self, session: Session, cluster: Cluster) -> None:
        """A cluster whose backup is off but still has snapshots is being disabled (R9 deleting them, here or
        in another process): enabling now would mix the old snapshots with the new schedule's."""
        if cluster.backup_method is None and queries.snapshots_of(session, cluster.id):
            raise self._change_in_progress(cluster.name)

    @staticmethod
    def _change_in_progress(name: str) -> ApiError:
        return ApiError(
            409,
            BACKUP_CHANGE_IN_PROGRESS,
            f"Backup of cluster '{name}' is being disabled or enabled by another request right now (its "
            "snapshots are still being deleted or taken). Try again in a few seconds.",
        )

    def _would_enable(self, cluster: Cluster, method: str) -> Cluster:
        now = self.ctx.now()
        copy = Cluster(**{c.key: getattr(cluster, c.key) for c in Cluster.__table__.columns})
        copy.backup_method = method
        if method == rules.CLOUD_PROVIDER_SNAPSHOTS:
            copy.reference_time, copy.next_due_at = now, now + rules.SNAPSHOT_INTERVAL
        return copy

    def disable_backup(self, project_id: str, name: str) -> bool:
        """R9: stop the schedule and delete every snapshot of the cluster from storage; idempotent."""
        with self.ctx.work_lock, self.ctx.store.write() as session:
            cluster = lookups.cluster(session, project_id, name, for_change=True)
            protection.check_disable_backup(cluster)
            was = cluster.backup_method
            self.stop_schedule(cluster)
        if was is not None:
            events.emit(self.ctx.source, events.BACKUP_DISABLED, project=project_id, cluster=name, method=was)
        # Outside the lock: a snapshot still running in the cloud is awaited without blocking others.
        self.purge_snapshots(cluster.id)
        return was is not None

    def purge_snapshots(self, cluster_id: str) -> None:
        """Delete every snapshot of a cluster, storage first; in-flight ones are awaited, then deleted."""
        while True:
            with self.ctx.work_lock:
                with self.ctx.store.read() as session:
                    cluster = queries.cluster_by_id(session, cluster_id)
                    if cluster is not None and cluster.backup_method == rules.CLOUD_PROVIDER_SNAPSHOTS:
                        # Enabled again once every old snapshot was gone (enable refuses before): what
                        # the cluster has now is the new schedule's.
                        return
                    rows = queries.snapshots_of(session, cluster_id)
                running = [s for s in rows if s.status == "inProgress"]
                if running:
                    self.engine.poll_snapshots(running)
                    with self.ctx.store.read() as session:
                        rows = queries.snapshots_of(session, cluster_id)
                done = [s for s in rows if s.status != "inProgress"]
                deleted = self.engine.delete_snapshots(done)
                if deleted:
                    events.emit(
                        self.ctx.source, events.SNAPSHOT_DELETED, snapshots=deleted, why="backup disabled"
                    )
                if len(deleted) == len(rows):
                    return
                if len(done) == len(rows):
                    continue  # a row got its copy while being deleted: read it again at once
            time.sleep(self.ctx.poll_interval)

    def start_schedule(self, session: Session, cluster: Cluster) -> SnapshotJob:
        """R7: reference time = now; the first snapshot is the reference slot; the next is due 24 h later."""
        now = self.ctx.now()
        cluster.reference_time = now
        cluster.next_due_at = now + rules.SNAPSHOT_INTERVAL
        return self.engine.queue_snapshot(
            session, cluster, snapshot_type="scheduled", slot_time=now, created_at=now
        )

    @staticmethod
    def stop_schedule(cluster: Cluster) -> None:
        cluster.backup_method = None
        cluster.reference_time = None
        cluster.next_due_at = None
