"""The snapshot engine: queue, start and poll through the driver, record the outcome, retention (R8)."""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
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
    """Takes snapshots through the driver and records what became of them.

    One path for every snapshot, scheduled or on demand: its intent is committed `queued` (queue_snapshot
    here, or the schedule's claim through `intent`); run_snapshots starts and polls it on the pool;
    `_outcome` turns the driver's answer into a row change, which `_record` writes with the run's
    deletions in one transaction; then retention (R8) runs for the clusters that got a result.
    """

    # --- claim: the intent ---------------------------------------------------------------------------

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
        """Commit (with the caller's transaction) one `queued` snapshot of the cluster, for run_snapshots."""
        region = preferred_region(cluster)
        source = self.source_volume(volume_list or queries.volumes(session, cluster.id), region)
        row, job = intent(
            cluster_id=cluster.id,
            project_id=cluster.project_id,
            cluster_name=cluster.name,
            snapshot_type=snapshot_type,
            slot_time=slot_time,
            region=region,
            volume_handle=source,
            created_at=created_at,
            owner=self.ctx.replica_id,
            description=description,
            expires_at=expires_at,
        )
        session.add(Snapshot(**row))
        events.emit_queued(self.ctx.source, [job])
        return job

    @staticmethod
    def source_volume(volume_list: Sequence[Volume], region: str) -> str:
        """R6: the snapshot is taken of the first member in the preferred region and stored there."""
        in_region = sorted(
            (v for v in volume_list if v.region == region and v.handle), key=lambda v: v.member
        )
        if not in_region:
            raise ApiError(409, STORAGE_ERROR, f"The cluster has no volume in its preferred region {region}.")
        return in_region[0].handle or ""

    # --- run: start and poll through the driver ------------------------------------------------------

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

        `expired` are snapshots that retention (R8) doomed: the same pool deletes them from storage
        alongside these starts, and the same transaction deletes their rows; every retention deletion
        runs here. Retention of this batch is applied before returning, or with `defer_retention`
        returned instead, for the next batch's call: the schedule's loops so overlap one batch's
        deletions with the next one's copies, and run a last call with no jobs for the last batch's.
        """
        if not jobs and not expired:
            return []
        tasks: list[Callable[[], Any]] = [functools.partial(self._start_and_poll, job) for job in jobs]
        tasks += self._deletion_tasks(expired)
        results = self.ctx.map(_call, tasks)
        outcomes, deletions = results[: len(jobs)], results[len(jobs) :]
        now = self.ctx.now()
        changes: list[dict[str, Any]] = []
        answers: list[Answer] = []
        for job, outcome in zip(jobs, outcomes, strict=True):
            if isinstance(outcome, Exception):
                changes.append(self._failure(job.snapshot_id, outcome, now))
                continue
            token, status = outcome
            answer = Answer(job.snapshot_id, job.cluster_id, job.snapshot_type, token, status)
            answers.append(answer)
            # An operation still running is recorded inProgress with its token, for the polls to come.
            changes.append(
                self._outcome(answer, now)
                or {"id": job.snapshot_id, "status": "inProgress", "op_token": token}
            )
        if len(jobs) > len(answers):
            log.warning("%d snapshot(s) failed to start", len(jobs) - len(answers))
        self._record(changes, expired=(expired, deletions))
        return self._retain(answers, defer=defer_retention)

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
        answers = [
            Answer(sid, cluster_id, kind, token, status)
            for (sid, token, cluster_id, kind), status in zip(items, statuses, strict=True)
        ]
        changes = [change for answer in answers if (change := self._outcome(answer, now)) is not None]
        if changes:
            self._record(changes)
        self._retain(answers)
        return len(answers) - len(changes)

    # --- record: the driver's answer as a row change --------------------------------------------------

    def _outcome(self, answer: Answer, now: datetime) -> dict[str, Any] | None:
        """The row change a driver's answer makes: completed or failed, with the operation's token; None
        while the operation runs, or when the poll itself failed (the next poll asks again)."""
        status = answer.status
        if isinstance(status, DriverError):
            return {**self._failure(answer.snapshot_id, status, now), "op_token": answer.token}
        if isinstance(status, Exception):
            log.warning("polling snapshot %s failed (will retry): %s", answer.snapshot_id, status)
            return None
        if not status.finished:
            return None
        return {**self._snapshot_result(answer.snapshot_id, status, now), "op_token": answer.token}

    @staticmethod
    def _failure(snapshot_id: str, error: Exception, now: datetime) -> dict[str, Any]:
        if isinstance(error, DriverError):
            reason = f"{error.code}: {error.message}"
        else:
            log.error("snapshot %s: the driver raised %r", snapshot_id, error)
            reason = f"DRIVER_ERROR: {error}"
        return {"id": snapshot_id, "status": "failed", "failure_reason": reason, "finished_at": now}

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

    def _record(
        self,
        changes: Sequence[dict[str, Any]],
        *,
        expired: tuple[Sequence[Snapshot], Sequence[Any]] = ((), ()),
    ) -> None:
        """Write the row changes, and delete the rows of `expired` (rows, their storage deletions' results)
        whose storage is gone, in one transaction; then tell the driver and the listeners."""
        with self.ctx.store.write() as session:
            queries.update_snapshots(session, changes)
            gone = self._delete_rows(session, *expired)
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

    # --- retention (R8), and deleting snapshots ---------------------------------------------------------

    def _retain(self, answers: Sequence[Answer], *, defer: bool = False) -> list[Snapshot]:
        """R8 for the clusters whose scheduled snapshot finished: deleted now, or returned (`defer`)."""
        return self.apply_retention(
            sorted({a.cluster_id for a in answers if a.finished and a.snapshot_type == "scheduled"}),
            defer=defer,
        )

    def retain_all(self) -> None:
        """R8 over every cluster that has more scheduled snapshots than it keeps."""
        with self.ctx.store.read() as session:
            over = queries.clusters_over_retention(session, rules.RETENTION_COUNT)
        if over:
            log.info("applying retention to %d cluster(s)", len(over))
            self.apply_retention(over)

    def apply_retention(self, cluster_ids: Sequence[str], *, defer: bool = False) -> list[Snapshot]:
        """R8 for these clusters, storage first, then the rows; with `defer`, the doomed are returned for
        the caller's next run_snapshots to delete instead."""
        doomed = self._expired(cluster_ids)
        if defer:
            return doomed
        self.run_snapshots([], expired=doomed)
        return []

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
            self.run_snapshots([], expired=rows)

    def delete_snapshots(self, rows: Sequence[Snapshot]) -> list[str]:
        """Storage first, then the rows whose storage is gone; returns the ids deleted, or answers 502 when
        storage refused some (those rows are kept, for a retry)."""
        if not rows:
            return []
        results = self.ctx.map(_call, self._deletion_tasks(rows))
        with self.ctx.store.write() as session:
            gone = self._delete_rows(session, rows, results)
        failed = sum(1 for result in results if isinstance(result, Exception))
        if failed:
            raise ApiError(502, STORAGE_ERROR, f"Storage refused to delete {failed} snapshot(s); try again.")
        return gone

    def _deletion_tasks(self, rows: Sequence[Snapshot]) -> list[Callable[[], Any]]:
        """Deleting from storage: one task per row that has a stored copy."""
        return [functools.partial(self.ctx.driver.delete_snapshot, s.handle or "") for s in rows if s.handle]

    @staticmethod
    def _delete_rows(session: Session, rows: Sequence[Snapshot], results: Sequence[Any]) -> list[str]:
        """Then the rows (`results` are _deletion_tasks' outcomes): those whose copy is gone from storage,
        and those without a copy; returns the ids deleted."""
        stored = [s for s in rows if s.handle]
        failed = {s.id for s, r in zip(stored, results, strict=True) if isinstance(r, Exception)}
        for s, r in zip(stored, results, strict=True):
            if isinstance(r, Exception):
                log.warning("could not delete snapshot %s from storage (kept for a retry): %s", s.id, r)
        gone = [s.id for s in stored if s.id not in failed]
        queries.delete_snapshot_rows(session, gone)
        # A row read without a copy may have got one since (taken by another request or process): it
        # stays, and is found again by the caller's next read.
        uncopied = [s.id for s in rows if not s.handle]
        if uncopied:
            queries.delete_uncopied_snapshot_rows(session, uncopied)
            gone += list(set(uncopied) - queries.existing_snapshot_ids(session, uncopied))
        return gone


@dataclass(frozen=True)
class Answer:
    """The driver's answer about one started snapshot: its status, or the error its poll raised."""

    snapshot_id: str
    cluster_id: str
    snapshot_type: str
    token: str
    status: OperationStatus | Exception

    @property
    def finished(self) -> bool:
        return isinstance(self.status, OperationStatus) and self.status.finished


def intent(
    *,
    cluster_id: str,
    project_id: str,
    cluster_name: str,
    snapshot_type: str,
    slot_time: datetime | None,
    region: str,
    volume_handle: str,
    created_at: datetime,
    owner: str | None,
    description: str | None = None,
    expires_at: datetime | None = None,
) -> tuple[dict[str, Any], SnapshotJob]:
    """A new `queued` snapshot row (its columns) and the job that starts it, made together so they agree."""
    row = {
        "id": new_id(),
        "cluster_id": cluster_id,
        "project_id": project_id,
        "snapshot_type": snapshot_type,
        "slot_time": slot_time,
        "status": "queued",
        "region": region,
        "volume_handle": volume_handle,
        "description": description,
        "created_at": created_at,
        "owner": owner,
        "expires_at": expires_at,
    }
    return row, SnapshotJob.of(row, cluster_name)


def _call(task: Callable[[], T]) -> T:
    return task()
