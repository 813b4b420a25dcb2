"""The schedule (R7): a scheduler tick, a manual-clock advance (walk) and the claim of due slots."""

from __future__ import annotations

import logging
import time
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from contract import rules
from shim import clock_advance, events
from shim.clock import ManualClock, format_time
from shim.errors import ApiError
from shim.service.common import SnapshotJob, region_specs
from shim.service.context import Context, Job
from shim.service.engine import intent
from shim.store import leases, queries
from shim.store.models import Snapshot

if TYPE_CHECKING:
    from shim.service.adoption import Adoption
    from shim.service.engine import Engine
    from shim.service.restores import Restores

log = logging.getLogger(__name__)

SHUTTING_DOWN = "SHUTTING_DOWN"


class Schedule(Job):
    """Takes due slots: at each tick, or each in order as a manual clock passes them."""

    def __init__(self, ctx: Context, engine: Engine, restores: Restores, adoption: Adoption) -> None:
        super().__init__(ctx)
        self.engine = engine
        self.restores = restores
        self.adoption = adoption

    def tick(self) -> int:
        """One scheduler pass at the clock's now: due slots (one catch-up each), then running operations.

        Returns the number of snapshots started. Skipped while a manual-clock advance runs.
        """
        if not self.ctx.advance_lock.acquire(blocking=False):
            return 0
        try:
            started = 0
            if self.ctx.replica_id is not None and time.monotonic() >= self.ctx.next_adoption:
                with self.ctx.work_lock:
                    self.adoption.adopt_and_resume()
            with self.ctx.store.statements() as conn:
                pending = queries.pending_work(conn)
            earliest = pending.earliest_due
            doomed: list[Snapshot] = []
            while earliest is not None and earliest <= self.ctx.now():
                with self.ctx.work_lock:
                    jobs = self._claim_due(self.ctx.now(), walk=False)
                    doomed = self.engine.run_snapshots(jobs, expired=doomed, defer_retention=True)
                started += len(jobs)
                if len(jobs) < self.ctx.batch_size:
                    break
            if doomed:
                with self.ctx.work_lock:
                    self.engine.run_snapshots([], expired=doomed)
            if started or pending.snapshots_running or pending.restores_running:
                with self.ctx.work_lock:
                    self._poll_running()
            expiry = pending.earliest_expiry
            if expiry is not None and expiry <= self.ctx.now():
                self.engine.delete_expired_on_demand()
            return started
        finally:
            self.ctx.advance_lock.release()

    def advance(self, seconds: int) -> datetime:
        """Move a manual clock as if the shim had been running all along, and return once that work is done.

        Every slot due by the target is taken in order, at its own time: batches of the earliest due
        slots (one per cluster per batch, so each cluster's slots stay in order), each awaited, its
        retention applied while the next batch copies (the last batch's after it); then the clock is
        set to the target.
        """
        if not isinstance(self.ctx.clock, ManualClock):
            raise RuntimeError("only a manual clock can be advanced")
        # One advance at a time: in this process without waiting, across processes by a database lease.
        if not self.ctx.advancing.acquire(blocking=False):
            raise clock_advance.in_progress()
        try:
            with self.ctx.store.write() as session:
                lease = clock_advance.take(session)
            try:
                return self._walk(seconds, lease)
            finally:
                with self.ctx.store.write() as session:
                    clock_advance.release(session, lease)
        finally:
            self.ctx.advancing.release()

    def _walk(self, seconds: int, lease: str) -> datetime:
        # Each step (one batch) is its own transactions and holds work_lock only while it claims and
        # copies, so requests are answered between steps.
        renewed = time.monotonic()
        with self.ctx.advance_lock:
            target = self.ctx.clock.now() + timedelta(seconds=seconds)
            doomed: list[Snapshot] = []
            pending = self._publish_step(target)
            while True:
                # Until no slot is due by the target: with other replicas claiming too, a batch may
                # come back empty (all taken by them) while slots remain.
                with self.ctx.work_lock:
                    jobs = self._claim_due(target, walk=True) if pending else []
                    # The next step is published before this batch copies: other replicas take from it
                    # meanwhile.
                    pending = pending and self._publish_step(target)
                    doomed = self.engine.run_snapshots(jobs, expired=doomed, defer_retention=bool(jobs))
                self._await_running()
                if not pending and not jobs:
                    break
                if self.ctx.snapshot_delay and self.ctx.snapshot_delay[0] == "step":
                    time.sleep(self.ctx.snapshot_delay[1])
                if self.ctx.stopping.is_set():
                    # SIGTERM: end at this step, its retention applied, rather than walking on for minutes.
                    with self.ctx.work_lock:
                        self.engine.run_snapshots([], expired=doomed)
                    raise ApiError(
                        503,
                        SHUTTING_DOWN,
                        f"The shim is stopping: the clock stands at {format_time(self.ctx.clock.now())}, "
                        "every slot up to then taken. Advance the rest once it is back.",
                    )
                if time.monotonic() - renewed > clock_advance.LEASE_SECONDS / 4:
                    with self.ctx.store.write() as session:
                        clock_advance.renew(session, lease)
                    renewed = time.monotonic()
            self._await_other_replicas(target)
            # Other replicas apply retention to the slots they took at the end of their tick, after this
            # replica saw those slots finished: R8 for every cluster now, so that the advance returns
            # with each keeping three.
            with self.ctx.work_lock:
                self.engine.retain_all()
            self.ctx.clock.set(target)
            with self.ctx.store.write() as session:
                self.ctx.save_clock(session)
            self.engine.delete_expired_on_demand()
            return self.ctx.clock.now()

    def _await_other_replicas(self, target: datetime) -> None:
        """Return once every scheduled slot up to `target` is finished, whichever replica took it (or
        adopts it from a dead one), so that an advance returns with its work done, as with one replica."""
        delay = 0.01
        unfinished = (
            select(Snapshot.id)
            .where(
                Snapshot.status.in_(leases.UNFINISHED),
                Snapshot.snapshot_type == "scheduled",
                Snapshot.slot_time <= target,
            )
            .limit(1)
        )
        while True:
            with self.ctx.store.read() as session:
                if session.execute(unfinished).first() is None:
                    return
            with self.ctx.work_lock:
                if self.ctx.replica_id is not None and time.monotonic() >= self.ctx.next_adoption:
                    self.adoption.adopt_and_resume()
                self._poll_running()
            time.sleep(delay)
            delay = min(delay * 2, self.ctx.poll_interval)

    def _publish_step(self, target: datetime) -> bool:
        """Move the shared clock over the next batch's slots before claiming them, so that the other
        replicas' schedulers take part of them: never more than one slot per cluster (less than an
        interval past the earliest), so their catch-up rule (R7) takes the same slot a walk would."""
        with self.ctx.store.write() as session:
            due = queries.due_clusters(session, target, self.ctx.batch_size)
            if not due:
                return False
            window_end = due[0].next_due_at + rules.SNAPSHOT_INTERVAL - timedelta(seconds=1)
            self.ctx.clock.set(min(due[-1].next_due_at, window_end, target))
            self.ctx.save_clock(session)
            return True

    def _claim_due(self, now: datetime, *, walk: bool) -> list[SnapshotJob]:
        """Claim the next batch of due slots and commit their `queued` snapshots (the intent).

        A claim is a compare-and-set of next_due_at; the unique (cluster, slot) of snapshots backs it,
        so two ticks racing, or a restart, never take two snapshots for one slot. `walk` takes each
        cluster's next slot itself (a manual clock passing it); otherwise due_slot picks the latest
        missed slot: one catch-up after downtime, never a burst.
        """
        # One executemany for the batch where the database reports its row count, else one by one.
        batched = self.ctx.store.engine.dialect.supports_sane_multi_rowcount
        try:
            return self._claim_batch(now, walk=walk, one_by_one=not batched)
        except (IntegrityError, _ClaimConflict):
            return self._claim_batch(now, walk=walk, one_by_one=True)

    def _claim_batch(self, now: datetime, *, walk: bool, one_by_one: bool) -> list[SnapshotJob]:
        jobs: list[SnapshotJob] = []
        with self.ctx.store.write() as session:
            due = queries.due_clusters(session, now, self.ctx.batch_size)
            if not due:
                return []
            vols = queries.volumes_of(session, [row.id for row in due])
            claims: list[dict[str, Any]] = []
            rows: list[dict[str, Any]] = []
            latest = None
            for row in due:
                if walk:
                    slot, following, taken_at = (
                        row.next_due_at,
                        row.next_due_at + rules.SNAPSHOT_INTERVAL,
                        row.next_due_at,
                    )
                else:
                    picked = rules.due_slot(row.reference_time, row.next_due_at, now)
                    if picked is None:
                        continue
                    slot, following = picked
                    taken_at = now
                latest = taken_at if latest is None else max(latest, taken_at)
                region = rules.preferred_region(region_specs(row.regions))
                try:
                    source = self.engine.source_volume(vols[row.id], region)
                except ApiError:
                    log.error("cluster %s has no volume in %s; its slot %s is skipped", row.id, region, slot)
                    source = None
                claim = {"cid": row.id, "old": row.next_due_at, "new": following}
                if one_by_one:
                    if not queries.claim_slot(session, row.id, row.next_due_at, following):
                        continue
                    exists = session.execute(
                        select(Snapshot.id).where(Snapshot.cluster_id == row.id, Snapshot.slot_time == slot)
                    ).first()
                    if exists or source is None:
                        continue
                claims.append(claim)
                if source is None:
                    continue
                snapshot, job = intent(
                    cluster_id=row.id,
                    project_id=row.project_id,
                    cluster_name=row.name,
                    snapshot_type="scheduled",
                    slot_time=slot,
                    region=region,
                    volume_handle=source,
                    created_at=taken_at,
                    owner=self.ctx.replica_id,
                )
                rows.append(snapshot)
                jobs.append(job)
            if not one_by_one and claims and not queries.claim_slots(session, claims):
                # Someone else moved a slot meanwhile (or the database cannot say): claim one by one.
                raise _ClaimConflict
            if rows:
                session.execute(Snapshot.__table__.insert(), rows)
            if walk and latest is not None and isinstance(self.ctx.clock, ManualClock):
                self.ctx.clock.set(latest)
                self.ctx.save_clock(session)
        events.emit_queued(self.ctx.source, jobs)
        return jobs

    def _poll_running(self) -> int:
        """Poll every inProgress snapshot and restore job once; returns how many are still running."""
        with self.ctx.store.read() as session:
            running = queries.snapshots_in_status(session, "inProgress", owner=self.ctx.replica_id)
            restores = [
                job.id
                for job in queries.restore_jobs_in_status(session, ["inProgress"], owner=self.ctx.replica_id)
            ]
        still = self.engine.poll_tokens(
            [(s.id, s.op_token or "", s.cluster_id, s.snapshot_type) for s in running if s.op_token]
        )
        still += sum(1 for job_id in restores if self.restores.poll_restore(job_id))
        return still

    def _await_running(self) -> None:
        delay = 0.01
        while True:
            with self.ctx.work_lock:
                if not self._poll_running():
                    return
            time.sleep(delay)
            delay = min(delay * 2, self.ctx.poll_interval)


class _ClaimConflict(Exception):
    """A batch claim found a slot already moved; the batch is claimed again one cluster at a time."""
