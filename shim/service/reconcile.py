"""Reconciliation: finish what a crash interrupted at start, and make storage and the rows agree."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

from sqlalchemy import select, update

from contract import rules
from shim import events
from shim.clock import format_time
from shim.drivers.base import DriverError, StoredSnapshot
from shim.service.context import Context, Job
from shim.store import leases, queries
from shim.store.models import Cluster, Snapshot

if TYPE_CHECKING:
    from shim.service.adoption import Adoption
    from shim.service.backups import Backups
    from shim.service.clusters import Clusters
    from shim.service.engine import Engine
    from shim.service.restores import Restores
    from shim.service.schedule import Schedule

log = logging.getLogger(__name__)


class Reconcile(Job):
    """Makes the database, storage and the schedule agree again."""

    def __init__(
        self,
        ctx: Context,
        engine: Engine,
        clusters: Clusters,
        backups: Backups,
        restores: Restores,
        adoption: Adoption,
        schedule: Schedule,
    ) -> None:
        super().__init__(ctx)
        self.engine = engine
        self.clusters = clusters
        self.backups = backups
        self.restores = restores
        self.adoption = adoption
        self.schedule = schedule

    def reconcile(self) -> None:
        """Finish what a crash interrupted, make storage and the rows agree, and catch up (R7)."""
        with self.ctx.work_lock:
            # What no live replica owns is ours from here (a crash of this machine's last run included).
            adopted = self.adoption.adopt()
            self.clusters.finish_adopted(adopted.clusters)
            self._purge_unbacked()
            with self.ctx.store.read() as session:
                running = queries.snapshots_in_status(session, "inProgress", owner=self.ctx.replica_id)
            self.engine.poll_snapshots(running)
            self._reconcile_storage()
            self.adoption.restart_queued()
            # A stop between a step's results and its retention (a long advance, a tick) left a cluster
            # with more than three: R8 is part of the reconciliation, so it holds after any stop.
            self.engine.retain_all()
            with self.ctx.store.read() as session:
                restores = queries.restore_jobs_in_status(
                    session, ["queued", "inProgress"], owner=self.ctx.replica_id
                )
            for job in restores:
                log.info("reconcile: resuming restore job %s (%s)", job.id, job.status)
                events.emit(self.ctx.source, events.RECONCILE_FINDING, finding="restore resumed", job=job.id)
                if job.status == "queued":
                    self.restores.run_restore(job.id)
                else:
                    self.restores.poll_restore(job.id)
        caught_up = self.schedule.tick()
        if caught_up:
            log.info("reconcile: %d catch-up snapshot(s) after downtime", caught_up)

    def _purge_unbacked(self) -> None:
        """R9 finished: a cluster without cloud provider snapshots keeps no snapshot (a crash mid-disable)."""
        with self.ctx.store.read() as session:
            rows = session.execute(
                select(Snapshot.cluster_id)
                .join(Cluster, Cluster.id == Snapshot.cluster_id)
                .where(
                    (Cluster.backup_method.is_(None))
                    | (Cluster.backup_method != rules.CLOUD_PROVIDER_SNAPSHOTS)
                )
                .distinct()
            ).scalars()
            cluster_ids = list(rows)
        for cluster_id in cluster_ids:
            log.info("reconcile: deleting the snapshots of cluster %s, whose backup is disabled", cluster_id)
            self.backups.purge_snapshots(cluster_id)

    def reconcile_storage(self) -> None:
        """The periodic reconciliation while serving (the scheduler calls it): storage against the rows.

        A stored snapshot of ours without a row, or whose row failed, is deleted; a completed row whose
        stored snapshot vanished (deleted behind our back) is marked failed. Work in flight is left alone.
        A disable that another shim left half done (backup off, snapshots left) is finished too, so that
        enabling that cluster again is not refused until a restart.
        """
        self._purge_unbacked()
        self._reconcile_storage()

    def _reconcile_storage(self) -> None:
        # Listed before the rows are read (and outside the lock: a cloud lists slowly): a snapshot started
        # meanwhile already has its row, and one deleted meanwhile is deleted again harmlessly.
        stored = self.ctx.driver.list_snapshots()
        with self.ctx.work_lock:
            self._sweep_storage(stored)
            self._fail_vanished(stored)

    def _sweep_storage(self, stored: Sequence[StoredSnapshot]) -> None:
        """Delete every stored snapshot that no row accounts for, or whose row failed.

        A `queued` row's snapshot is kept: while serving it may be starting this very moment, and at start
        _restart_queued starts it again, which finishes with the copy storage holds (drivers never copy
        one snapshot id twice). So is an unfinished copy for a queued or inProgress row: another replica
        may be writing it now, and one a crash cut short is taken again over it.
        """
        if not stored:
            return
        live = ("queued", "inProgress", "completed")
        ids = [s.snapshot_id or s.unfinished_id for s in stored if s.snapshot_id or s.unfinished_id]
        with self.ctx.store.read() as session:
            rows = {s.id: s for s in queries.snapshots_by_ids(session, ids)}
            handles = set(
                session.execute(select(Snapshot.handle).where(Snapshot.handle.is_not(None))).scalars()
            )
        for item in stored:
            row = rows.get(item.snapshot_id or "")
            if row is not None and row.status in live:
                continue
            if item.snapshot_id is None and item.handle in handles:
                continue
            taking = rows.get(item.unfinished_id or "")
            if item.snapshot_id is None and taking is not None and taking.status in leases.UNFINISHED:
                continue
            why = "no record" if row is None else f"its record is {row.status}"
            events.emit(
                self.ctx.source,
                events.RECONCILE_FINDING,
                finding="stray stored snapshot",
                handle=item.handle,
                why=why,
            )
            log.warning("reconcile: deleting stored snapshot %s (%s): %s", item.handle, item.snapshot_id, why)
            try:
                self.ctx.driver.delete_snapshot(item.handle)
            except DriverError as error:
                log.error("reconcile: could not delete %s: %s", item.handle, error)

    def _fail_vanished(self, stored: Sequence[StoredSnapshot]) -> None:
        """A completed row whose snapshot is no longer in storage is marked failed, saying so."""
        listed = {s.snapshot_id for s in stored if s.snapshot_id}
        with self.ctx.store.read() as session:
            completed = session.execute(
                select(Snapshot.id, Snapshot.handle, Snapshot.cluster_id).where(
                    Snapshot.status == "completed"
                )
            ).all()
        # Not listed may just be newer than the listing: ask storage about each before failing it.
        unlisted = [row for row in completed if row.id not in listed]
        if not unlisted:
            return
        exists = self.ctx.map(lambda row: self.ctx.driver.snapshot_exists(row.handle or ""), unlisted)
        vanished = [row for row, found in zip(unlisted, exists, strict=True) if found is False]
        for row, found in zip(unlisted, exists, strict=True):
            if isinstance(found, Exception):
                log.warning("reconcile: could not look for snapshot %s in storage: %s", row.id, found)
        if not vanished:
            return
        now = self.ctx.now()
        with self.ctx.store.write() as session:
            for row in vanished:
                events.emit(
                    self.ctx.source, events.RECONCILE_FINDING, finding="snapshot vanished", snapshot=row.id
                )
                log.warning(
                    "reconcile: snapshot %s of cluster %s is no longer in storage (%s): marked failed",
                    row.id,
                    row.cluster_id,
                    row.handle,
                )
                session.execute(
                    update(Snapshot)
                    .where(Snapshot.id == row.id, Snapshot.status == "completed")
                    .values(
                        status="failed",
                        failure_reason=(
                            f"SNAPSHOT_VANISHED: the stored snapshot {row.handle} was found missing from "
                            f"storage on {format_time(now)} (deleted outside cloudbackup); it cannot be "
                            "restored"
                        ),
                    )
                )
