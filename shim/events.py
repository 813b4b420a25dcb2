"""Lifecycle events: one structured log record per change of a backup, snapshot or restore, and listeners."""

from __future__ import annotations

import logging
import threading
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from shim.store import queries
from shim.store.models import Cluster, Snapshot

if TYPE_CHECKING:
    from shim.service import Service

log = logging.getLogger("shim.events")

BACKUP_ENABLED = "backup.enabled"
BACKUP_DISABLED = "backup.disabled"
SNAPSHOT_QUEUED = "snapshot.queued"
SNAPSHOT_STARTED = "snapshot.started"
SNAPSHOT_COMPLETED = "snapshot.completed"
SNAPSHOT_FAILED = "snapshot.failed"
SNAPSHOT_DELETED = "snapshot.deleted"
RETENTION_DELETED = "retention.deleted"
RESTORE_STARTED = "restore.started"
RESTORE_FINISHED = "restore.finished"
RECONCILE_FINDING = "reconcile.finding"


@dataclass(frozen=True)
class Event:
    """One lifecycle change: its name and the facts a reader (or a metric) needs."""

    name: str
    fields: dict[str, Any] = field(default_factory=dict)


Listener = Callable[[Event], None]

# Listeners per service, so that the many apps of one test process each count only their own events;
# weak, so that an app dropped by its test is not kept alive by its metrics.
_listeners: weakref.WeakKeyDictionary[Any, list[Listener]] = weakref.WeakKeyDictionary()
_lock = threading.Lock()


def subscribe(source: Any, listener: Listener) -> None:
    """Call `listener` with every event `source` (a Service) emits."""
    with _lock:
        _listeners.setdefault(source, []).append(listener)


def emit(source: Any, name: str, **fields: Any) -> None:
    """Log the event (as `event` and `fields` on the record, for the JSON formatter) and tell listeners."""
    event = Event(name, {k: v for k, v in fields.items() if v is not None})
    if log.isEnabledFor(logging.INFO):
        text = " ".join(f"{k}={_text(v)}" for k, v in event.fields.items())
        log.info("%s %s", name, text, extra={"event": name, "fields": event.fields})
    for listener in _listeners.get(source, ()):
        try:
            listener(event)
        except Exception:
            # A metric must never break the change it observes.
            log.exception("event listener failed on %s", name)


def _text(value: Any) -> str:
    if isinstance(value, list | tuple):
        return ",".join(str(v) for v in value)
    return str(value)


def error_code(reason: str | None) -> str | None:
    """The code a failure reason starts with (`CODE: message`), as the service records them."""
    if not reason:
        return None
    code, sep, _ = reason.partition(":")
    return code.strip() if sep and code.strip().replace("_", "").isalnum() else "UNKNOWN"


def snapshots_finished(service: Service, changes: Sequence[dict[str, Any]]) -> None:
    """One completed/failed event per finished snapshot among recorded `changes`, with duration and bytes.

    The rows are read back (one query per batch) because the changes lack the cluster and the start time.
    """
    finished = [c["id"] for c in changes if c.get("status") in ("completed", "failed")]
    if not finished:
        return
    rows: list[Any] = []
    with service.store.read() as session:
        for part in queries.chunks(finished):
            rows += session.execute(
                select(
                    Snapshot.id,
                    Snapshot.status,
                    Snapshot.snapshot_type,
                    Snapshot.project_id,
                    Snapshot.region,
                    Snapshot.storage_size_bytes,
                    Snapshot.failure_reason,
                    Snapshot.created_at,
                    Snapshot.finished_at,
                    Cluster.name,
                )
                .join(Cluster, Cluster.id == Snapshot.cluster_id)
                .where(Snapshot.id.in_(part))
            ).all()
    for row in rows:
        duration = (
            round((row.finished_at - row.created_at).total_seconds(), 3)
            if row.finished_at and row.created_at
            else None
        )
        common = {
            "snapshot": row.id,
            "project": row.project_id,
            "cluster": row.name,
            "type": row.snapshot_type,
            "region": row.region,
            "durationSeconds": duration,
        }
        if row.status == "completed":
            emit(service, SNAPSHOT_COMPLETED, **common, bytes=row.storage_size_bytes)
        else:
            emit(
                service,
                SNAPSHOT_FAILED,
                **common,
                errorCode=error_code(row.failure_reason),
                reason=row.failure_reason,
            )


def emit_queued(service: Service, jobs: Sequence[Any]) -> None:
    """One queued event per claimed scheduled slot (SnapshotJob)."""
    for job in jobs:
        emit(
            service,
            SNAPSHOT_QUEUED,
            snapshot=job.snapshot_id,
            cluster=job.cluster_name,
            type=job.snapshot_type,
        )
