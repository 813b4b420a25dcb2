"""The snapshot engine: queue, start and poll through the driver, record the outcome, retention (R8)."""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy.orm import Session

from contract import rules
from shim import events, on_demand
from shim.drivers.base import DriverError, OperationStatus
from shim.errors import STORAGE_ERROR, ApiError
from shim.service.common import SnapshotJob, new_id, preferred_region
from shim.service.context import Job
from shim.store import queries
from shim.store.models import Cluster, Snapshot, Volume

log = logging.getLogger(__name__)

T = TypeVar("T")

# Tags that trace a stored snapshot back to its row (the azure driver keeps them as resource tags).
TAG_SNAPSHOT = "cloudbackup-snapshot-id"
TAG_CLUSTER = "cloudbackup-cluster-id"
TAG_PROJECT = "cloudbackup-project-id"
TAG_CLUSTER_NAME = "cloudbackup-cluster-name"
TAG_TYPE = "cloudbackup-snapshot-type"


class Engine(Job):
    """Takes snapshots through the driver and records what became of them."""

    def queue_snapshot(
        self,
        session: Session,
        cluster: Cluster,
        *,
        snapshot_type: str,
        slot_time: datetime | None,
        created_at: datetime,
        description: str | None = None,
        volume_list: list[Volume] | None = None,
        expires_at: datetime | None = None,
    ) -> SnapshotJob:
        region = preferred_region(cluster)
        source = self.source_volume(volume_list or queries.volumes(session, cluster.id), region)
        snapshot = Snapshot(
            id=new_id(),
            cluster_id=cluster.id,
            project_id=cluster.project_id,
            snapshot_type=snapshot_type,
            slot_time=slot_time,
            status="queued",
            region=region,
            volume_handle=source,
            description=description,
            created_at=created_at,
            owner=self.ctx.replica_id,
            expires_at=expires_at,
        )
        session.add(snapshot)
        events.emit(
            self.ctx.source,
            events.SNAPSHOT_QUEUED,
            snapshot=snapshot.id,
            cluster=cluster.name,
            type=snapshot_type,
        )
        return SnapshotJob(
            snapshot.id, cluster.id, cluster.project_id, cluster.name, snapshot_type, region, source
        )

    @staticmethod
    def source_volume(volume_list: Sequence[Volume], region: str) -> str:
        """R6: the snapshot is taken of the first member in the preferred region and stored there."""
        in_region = sorted(
            (v for v in volume_list if v.region == region and v.handle), key=lambda v: v.member
        )
        if not in_region:
            raise ApiError(409, STORAGE_ERROR, f"The cluster has no volume in its preferred region {region}.")
        return in_region[0].handle or ""

    def run_snapshots(
        self,
        jobs: Sequence[SnapshotJob],
        *,
        expired: Sequence[Snapshot] = (),
        defer_retention: bool = False,
    ) -> list[Snapshot]:
        """Start the snapshots (intent already committed) and poll each once, then record them all.

        Each snapshot is started and polled by one task on the pool, so the pool never waits for the
        slowest start of a batch before polling; one transaction then records every result: finished
        ones completed or failed, the others inProgress with their token. The local driver finishes
        within start; a cloud driver's operations stay inProgress and are polled by later ticks (or
        awaited by a manual-clock advance). A crash before that transaction leaves the rows `queued`,
        which reconcile() starts again (a driver's start is idempotent per snapshot id).

        `expired` are snapshots that an earlier batch's retention (R8) doomed: the same pool deletes them
        from storage alongside these starts, and the same transaction deletes their rows. Retention of
        this batch is applied before returning, or with `defer_retention` returned instead, for the
        next batch's call: the schedule's loops so overlap one batch's deletions with the next one's
        copies, and run a last call with no jobs for the last batch's.
        """
        if not jobs and not expired:
            return []
        stored = [s for s in expired if s.handle]
        tasks: list[Callable[[], Any]] = [functools.partial(self._start_and_poll, job) for job in jobs]
        tasks += [functools.partial(self.ctx.driver.delete_snapshot, s.handle or "") for s in stored]
        results = self.ctx.map(_call, tasks)
        outcomes, deletions = results[: len(jobs)], results[len(jobs) :]
        now = self.ctx.now()
        changes: list[dict[str, Any]] = []
        retention: set[str] = set()
        failed_to_start = 0
        for job, outcome in zip(jobs, outcomes, strict=True):
            if isinstance(outcome, Exception):
                changes.append(self._failure(job.snapshot_id, outcome, now))
                failed_to_start += 1
                continue
            token, status = outcome
            if isinstance(status, DriverError):
                changes.append({**self._failure(job.snapshot_id, status, now), "op_token": token})
            elif isinstance(status, Exception) or not status.finished:
                if isinstance(status, Exception):
                    log.warning("polling snapshot %s failed (will retry): %s", job.snapshot_id, status)
                changes.append({"id": job.snapshot_id, "status": "inProgress", "op_token": token})
            else:
                changes.append({**self._snapshot_result(job.snapshot_id, status, now), "op_token": token})
                if job.snapshot_type == "scheduled":
                    retention.add(job.cluster_id)
        kept: set[str] = set()
        for snapshot, deletion in zip(stored, deletions, strict=True):
            if isinstance(deletion, Exception):
                log.warning(
                    "retention: could not delete snapshot %s (kept for a retry): %s", snapshot.id, deletion
                )
                kept.add(snapshot.id)
        gone = [s.id for s in expired if s.id not in kept]
        with self.ctx.store.write() as session:
            queries.update_snapshots(session, changes)
            queries.delete_snapshot_rows(session, gone)
            copied = [c["id"] for c in changes if c.get("handle")]
            alive = queries.existing_snapshot_ids(session, copied) if copied else set()
        self.ctx.forget_operations([c.get("op_token") for c in changes if c["status"] != "inProgress"])
        # A row deleted while its copy ran (backup disabled by another request or process, R9): the
        # copy has no row to account for it, so it goes at once rather than at the next reconciliation.
        orphans = [c["handle"] for c in changes if c.get("handle") and c["id"] not in alive]
        if orphans:
            log.info("deleting %d snapshot(s) whose record was deleted while they were taken", len(orphans))
            self.ctx.map(self.ctx.driver.delete_snapshot, orphans)
        events.snapshots_finished(self.ctx.source, changes)
        if gone:
            events.emit(self.ctx.source, events.RETENTION_DELETED, snapshots=gone)
        if failed_to_start:
            log.warning("%d snapshot(s) failed to start", failed_to_start)
        if not retention:
            return []
        doomed = self._expired(sorted(retention))
        if defer_retention:
            return doomed
        self._delete_expired(doomed)
        return []

    def _start_and_poll(self, job: SnapshotJob) -> tuple[str, OperationStatus | Exception]:
        """Start one snapshot and poll it at once: (token, its status, or the error the poll raised)."""
        token = self._start_one(job)
        try:
            return token, self.ctx.driver.poll(token)
        except Exception as error:
            return token, error

    def _start_one(self, job: SnapshotJob) -> str:
        if self.ctx.snapshot_delay and self.ctx.snapshot_delay[0] == "before":
            time.sleep(self.ctx.snapshot_delay[1])
        token = self.ctx.driver.start_snapshot(
            volume_handle=job.volume_handle,
            region=job.region,
            snapshot_id=job.snapshot_id,
            tags={
                TAG_SNAPSHOT: job.snapshot_id,
                TAG_CLUSTER: job.cluster_id,
                TAG_PROJECT: job.project_id,
                TAG_CLUSTER_NAME: job.cluster_name,
                TAG_TYPE: job.snapshot_type,
            },
        )
        events.emit(
            self.ctx.source, events.SNAPSHOT_STARTED, snapshot=job.snapshot_id, cluster=job.cluster_name
        )
        if self.ctx.snapshot_delay and self.ctx.snapshot_delay[0] == "after":
            time.sleep(self.ctx.snapshot_delay[1])
        return token

    @staticmethod
    def _failure(snapshot_id: str, error: Exception, now: datetime) -> dict[str, Any]:
        if isinstance(error, DriverError):
            reason = f"{error.code}: {error.message}"
        else:
            log.error("snapshot %s: the driver raised %r", snapshot_id, error)
            reason = f"DRIVER_ERROR: {error}"
        return {"id": snapshot_id, "status": "failed", "failure_reason": reason, "finished_at": now}

    def poll_snapshots(self, rows: Sequence[Snapshot]) -> None:
        self.poll_tokens(
            [(s.id, s.op_token or "", s.cluster_id, s.snapshot_type) for s in rows if s.op_token]
        )

    def poll_tokens(self, items: Sequence[tuple[str, str, str, str]]) -> int:
        """Poll (snapshot id, token, cluster id, type) operations; record the finished; count the rest."""
        if not items:
            return 0
        statuses = self.ctx.map(lambda item: self.ctx.driver.poll(item[1]), items)
        now = self.ctx.now()
        changes: list[dict[str, Any]] = []
        retention: set[str] = set()
        running = 0
        for (sid, _token, cluster_id, kind), status in zip(items, statuses, strict=True):
            if isinstance(status, Exception):
                if isinstance(status, DriverError):
                    changes.append(self._failure(sid, status, now))
                else:
                    log.warning("polling snapshot %s failed (will retry): %s", sid, status)
                    running += 1
                continue
            if not status.finished:
                running += 1
                continue
            changes.append(self._snapshot_result(sid, status, now))
            if kind == "scheduled":
                retention.add(cluster_id)
        if changes:
            with self.ctx.store.write() as session:
                queries.update_snapshots(session, changes)
            events.snapshots_finished(self.ctx.source, changes)
            finished = {change["id"] for change in changes}
            self.ctx.forget_operations([token for sid, token, _c, _k in items if sid in finished])
        if retention:
            self.apply_retention(sorted(retention))
        return running

    @staticmethod
    def _snapshot_result(snapshot_id: str, status: OperationStatus, now: datetime) -> dict[str, Any]:
        if status.state == "failed":
            code = status.error_code or "SNAPSHOT_FAILED"
            reason = f"{code}: {status.error_message or 'the driver gave no reason'}"
            return {"id": snapshot_id, "status": "failed", "failure_reason": reason, "finished_at": now}
        result = status.result

        def number(key: str) -> int | None:
            value = result.get(key)
            return int(value) if isinstance(value, int | float) else None

        checksum = result.get("checksum")
        return {
            "id": snapshot_id,
            "status": "completed",
            "handle": str(result.get("handle") or ""),
            "storage_size_bytes": number("storageSizeBytes"),
            "disk_size_bytes": number("diskSizeBytes"),
            "checksum": str(checksum) if checksum else None,
            "finished_at": now,
        }

    def apply_retention(self, cluster_ids: Sequence[str]) -> None:
        """R8 for these clusters: storage first, then the rows."""
        self._delete_expired(self._expired(cluster_ids))

    def _expired(self, cluster_ids: Sequence[str]) -> list[Snapshot]:
        """The snapshots of these clusters that retention (R8) deletes, as they stand now."""
        if not cluster_ids:
            return []
        with self.ctx.store.read() as session:
            facts = queries.retention_facts(session, cluster_ids)
        expired: list[Snapshot] = []
        for items in facts.values():
            doomed = set(rules.expired_snapshots([fact for fact, _ in items]))
            expired += [Snapshot(id=fact.id, handle=handle) for fact, handle in items if fact.id in doomed]
        return expired

    def delete_expired_on_demand(self) -> None:
        """On-demand snapshots whose retentionInDays ran out: storage first, then the rows."""
        with self.ctx.work_lock:
            with self.ctx.store.read() as session:
                rows = [
                    Snapshot(id=s.id, handle=s.handle) for s in on_demand.expired(session, self.ctx.now())
                ]
            if rows:
                self._delete_expired(rows)

    def _delete_expired(self, expired: Sequence[Snapshot]) -> None:
        if expired:
            try:
                events.emit(
                    self.ctx.source, events.RETENTION_DELETED, snapshots=self.delete_snapshots(expired)
                )
            except ApiError as error:
                log.warning("retention: %s", error.detail)

    def delete_snapshots(self, rows: Sequence[Snapshot]) -> list[str]:
        """Storage first, then the rows whose storage is gone; returns the ids deleted."""
        stored = [s for s in rows if s.handle]
        results = self.ctx.map(lambda s: self.ctx.driver.delete_snapshot(s.handle or ""), stored)
        failed = {s.id for s, r in zip(stored, results, strict=True) if isinstance(r, Exception)}
        for s, r in zip(stored, results, strict=True):
            if isinstance(r, Exception):
                log.warning("could not delete snapshot %s from storage (kept for a retry): %s", s.id, r)
        gone = [s.id for s in rows if s.id not in failed and s.handle]
        # A row read without a copy may have got one since (taken by another request or process): it
        # stays, and is found again by the caller's next read.
        uncopied = [s.id for s in rows if not s.handle]
        if gone or uncopied:
            with self.ctx.store.write() as session:
                queries.delete_snapshot_rows(session, gone)
                queries.delete_uncopied_snapshot_rows(session, uncopied)
                gone += list(set(uncopied) - queries.existing_snapshot_ids(session, uncopied))
        if failed:
            raise ApiError(
                502, STORAGE_ERROR, f"Storage refused to delete {len(failed)} snapshot(s); try again."
            )
        return gone


def _call(task: Callable[[], T]) -> T:
    return task()
