"""Replicas on one database: adopting a dead replica's operations, and starting queued snapshots again."""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from shim import events
from shim.service.common import SnapshotJob
from shim.service.context import Context, Job
from shim.store import leases, queries
from shim.store.models import Cluster, RestoreJob

if TYPE_CHECKING:
    from shim.service.clusters import Clusters
    from shim.service.engine import Engine
    from shim.service.restores import Restores

log = logging.getLogger(__name__)


class Adoption(Job):
    """What a crash or a dead replica left unstarted: it is owned and started again."""

    def __init__(self, ctx: Context, engine: Engine, clusters: Clusters, restores: Restores) -> None:
        super().__init__(ctx)
        self.engine = engine
        self.clusters = clusters
        self.restores = restores

    def adopt(self) -> leases.Adopted:
        """Own the unfinished operations of replicas whose lease expired (and of none)."""
        self.ctx.next_adoption = time.monotonic() + self.ctx.lease_seconds / 2
        with self.ctx.store.write() as session:
            return leases.adopt_orphans(session, self.ctx.replica_id or "")

    def adopt_and_resume(self) -> None:
        """While serving: a dead replica's cluster operations are finished, its queued snapshots started
        again, its restores resumed; its inProgress operations are polled by this replica's ticks."""
        adopted = self.adopt()
        self.clusters.finish_adopted(adopted.clusters)
        if adopted.snapshots:
            self.restart_queued()
        for job_id in adopted.restore_jobs:
            with self.ctx.store.read() as session:
                job = session.get(RestoreJob, job_id)
            if job is not None and job.status == "queued":
                self.restores.run_restore(job_id)

    def restart_queued(self) -> None:
        """A `queued` snapshot never reached the driver (or its token was lost): start it again.

        Restarting rather than failing keeps the slot it claimed; a start that reached storage before
        the crash is finished with the copy storage holds, not taken twice.
        """
        while True:
            with self.ctx.store.read() as session:
                queued = queries.snapshots_in_status(
                    session, "queued", limit=self.ctx.batch_size, owner=self.ctx.replica_id
                )
                clusters = {
                    c.id: c for c in (session.get(Cluster, s.cluster_id) for s in queued) if c is not None
                }
            if not queued:
                return
            jobs = []
            for s in queued:
                cluster = clusters.get(s.cluster_id)
                if cluster is None or not s.volume_handle:
                    continue
                events.emit(
                    self.ctx.source,
                    events.RECONCILE_FINDING,
                    finding="queued snapshot restarted",
                    snapshot=s.id,
                )
                jobs.append(SnapshotJob.of(s, cluster.name))
            # One line per batch: each snapshot has its own reconcile.finding event already.
            log.info("reconcile: restarting %d queued snapshot(s)", len(jobs))
            orphans = [s.id for s in queued if s.cluster_id not in clusters or not s.volume_handle]
            if orphans:
                with self.ctx.store.write() as session:
                    queries.delete_snapshot_rows(session, orphans)
            self.engine.run_snapshots(jobs)
