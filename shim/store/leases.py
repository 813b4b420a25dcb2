"""Replicas on one database: each registers with a lease it renews; a dead one's operations are adopted."""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, or_, select, update
from sqlalchemy.orm import Session

from shim.store.engine import Store
from shim.store.models import Replica, RestoreJob, Snapshot

log = logging.getLogger(__name__)

# Long enough that a busy replica (a GC pause, a slow commit) keeps its work; short enough that a dead
# one's snapshots are finished within a minute.
LEASE_SECONDS = 30.0
UNFINISHED = ("queued", "inProgress")


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


def adopt_orphans(session: Session, replica_id: str) -> tuple[list[str], list[str]]:
    """Take over the unfinished snapshots and restore jobs of no live replica: (snapshot ids, job ids).

    One UPDATE per table, so that two live replicas never adopt the same row: the second finds it owned.
    """
    live = select(Replica.id).where(Replica.lease_until > wall_clock())
    adopted: list[list[str]] = []
    for model in (Snapshot, RestoreJob):
        orphaned = or_(model.owner.is_(None), model.owner.not_in(live))
        ids = list(
            session.execute(
                update(model)
                .where(model.status.in_(UNFINISHED), orphaned)
                .values(owner=replica_id)
                .returning(model.id)
            ).scalars()
        )
        adopted.append(ids)
    if adopted[0] or adopted[1]:
        log.info(
            "adopted %d snapshot(s) and %d restore job(s) whose replica is gone",
            len(adopted[0]),
            len(adopted[1]),
        )
    return adopted[0], adopted[1]


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
