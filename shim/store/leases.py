"""Replicas on one database: each registers with a lease it renews; a dead one's operations are adopted."""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, or_, select, update
from sqlalchemy.orm import Session

from shim.store.engine import Store
from shim.store.models import Cluster, Replica, RestoreJob, Snapshot

log = logging.getLogger(__name__)

# Long enough that a busy replica (a GC pause, a slow commit) keeps its work; short enough that a dead
# one's snapshots are finished within a minute.
LEASE_SECONDS = 30.0
UNFINISHED = ("queued", "inProgress")
# A cluster in these states has an operation under way that its owner replica finishes.
CLUSTER_UNFINISHED = ("CREATING", "DELETING")


def wall_clock() -> datetime:
    # Leases run on the machines' real clocks even under the manual clock, which only schedules.
    return datetime.now(UTC)


def _dead_on_this_host(description: str) -> bool:
    """A replica of this machine whose process is gone (killed). One whose pid is alive, this process's
    included (a container restarted as pid 1 again), keeps its lease until it expires."""
    host, _, pid_text = description.rpartition(" pid ")
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def register(store: Store, lease_seconds: float = LEASE_SECONDS) -> str:
    """A new replica id, recorded with a lease; the id is unique per process start.

    A replica of this machine whose process is gone (a kill -9, then a restart) is forgotten at once, so
    its work is adopted now rather than when its lease would have expired.
    """
    replica_id = uuid.uuid4().hex
    now = wall_clock()
    with store.write() as session:
        for other_id, description in session.execute(select(Replica.id, Replica.description)).all():
            if _dead_on_this_host(description):
                log.info("replica %s (%s) is gone: its work is adopted now", other_id, description)
                session.execute(delete(Replica).where(Replica.id == other_id))
        session.add(
            Replica(
                id=replica_id,
                description=f"{socket.gethostname()} pid {os.getpid()}",
                started_at=now,
                lease_until=now + timedelta(seconds=lease_seconds),
            )
        )
    return replica_id


def renew(store: Store, replica_id: str, lease_seconds: float = LEASE_SECONDS) -> None:
    until = wall_clock() + timedelta(seconds=lease_seconds)
    with store.write() as session:
        session.execute(update(Replica).where(Replica.id == replica_id).values(lease_until=until))


def unregister(store: Store, replica_id: str) -> None:
    """A clean stop: what this replica still owns is adopted by the others at once."""
    with store.write() as session:
        session.execute(delete(Replica).where(Replica.id == replica_id))


@dataclass(frozen=True)
class Adopted:
    """The unfinished work a replica took over: snapshot, restore job and cluster ids."""

    snapshots: list[str]
    restore_jobs: list[str]
    clusters: list[str]


def adopt_orphans(session: Session, replica_id: str) -> Adopted:
    """Take over the unfinished snapshots, restore jobs and cluster creations or terminations of no live
    replica.

    One UPDATE per table, so that two live replicas never adopt the same row: the second finds it owned.
    """
    live = select(Replica.id).where(Replica.lease_until > wall_clock())

    def take(model: type[Snapshot] | type[RestoreJob] | type[Cluster], unfinished: Any) -> list[str]:
        orphaned = or_(model.owner.is_(None), model.owner.not_in(live))
        statement = update(model).where(unfinished, orphaned).values(owner=replica_id).returning(model.id)
        return list(session.execute(statement).scalars())

    adopted = Adopted(
        take(Snapshot, Snapshot.status.in_(UNFINISHED)),
        take(RestoreJob, RestoreJob.status.in_(UNFINISHED)),
        take(Cluster, Cluster.state.in_(CLUSTER_UNFINISHED)),
    )
    if adopted.snapshots or adopted.restore_jobs or adopted.clusters:
        log.info(
            "adopted %d snapshot(s), %d restore job(s) and %d cluster creation(s) or termination(s) whose"
            " replica is gone",
            len(adopted.snapshots),
            len(adopted.restore_jobs),
            len(adopted.clusters),
        )
    return adopted


class LeaseKeeper:
    """Renews a replica's lease every third of its length until stopped; then unregisters it."""

    def __init__(self, store: Store, replica_id: str, lease_seconds: float = LEASE_SECONDS) -> None:
        self.store, self.replica_id, self.lease_seconds = store, replica_id, lease_seconds
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="lease", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)
        try:
            unregister(self.store, self.replica_id)
        except Exception:
            log.exception("could not unregister replica %s; its lease will expire", self.replica_id)

    def _run(self) -> None:
        while not self._stop.wait(self.lease_seconds / 3):
            try:
                renew(self.store, self.replica_id, self.lease_seconds)
            except Exception:
                log.exception("renewing the lease of replica %s failed; trying again", self.replica_id)
