"""How fresh each cluster's backup is: its newest snapshot, and the age of its newest completed one."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from shim.store import queries
from shim.store.models import Snapshot


@dataclass(frozen=True)
class Freshness:
    """The newest snapshot of a cluster (any status) and the moment its newest completed one was taken."""

    last_at: datetime | None = None
    last_status: str | None = None
    last_completed_at: datetime | None = None

    def age_seconds(self, now: datetime) -> int | None:
        if self.last_completed_at is None:
            return None
        return max(0, int((now - self.last_completed_at).total_seconds()))


def of_clusters(session: Session, cluster_ids: Sequence[str]) -> dict[str, Freshness]:
    """Each cluster's freshness in two queries per chunk, whatever the number of snapshots."""
    found: dict[str, Freshness] = {cluster_id: Freshness() for cluster_id in cluster_ids}
    for part in queries.chunks(list(cluster_ids)):
        newest = (
            select(Snapshot.cluster_id, func.max(Snapshot.created_at).label("at"))
            .where(Snapshot.cluster_id.in_(part))
            .group_by(Snapshot.cluster_id)
            .subquery()
        )
        last: dict[str, tuple[datetime, str]] = {}
        rows = session.execute(
            select(Snapshot.cluster_id, Snapshot.created_at, Snapshot.status)
            .join(newest, (Snapshot.cluster_id == newest.c.cluster_id) & (Snapshot.created_at == newest.c.at))
            .order_by(Snapshot.id.desc())
        )
        for cluster_id, created_at, status in rows:
            last.setdefault(cluster_id, (created_at, status))
        completed: dict[str, datetime] = {
            cluster_id: at
            for cluster_id, at in session.execute(
                select(Snapshot.cluster_id, func.max(Snapshot.created_at))
                .where(Snapshot.cluster_id.in_(part), Snapshot.status == "completed")
                .group_by(Snapshot.cluster_id)
            )
        }
        for cluster_id in part:
            at, status = last.get(cluster_id, (None, None))
            found[cluster_id] = Freshness(at, status, completed.get(cluster_id))
    return found
