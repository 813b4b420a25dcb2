"""On-demand snapshots taken with retentionInDays: which have expired and are due for deletion."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from shim.store.models import Snapshot

# Snapshots still being taken are left alone: they are deleted at the first pass after they finish.
FINISHED = ("completed", "failed")


def expired(session: Session, now: datetime) -> list[Snapshot]:
    """The finished on-demand snapshots whose expiry is at or before `now`, oldest first."""
    return list(
        session.execute(
            select(Snapshot)
            .where(
                Snapshot.snapshot_type == "onDemand",
                Snapshot.expires_at.is_not(None),
                Snapshot.expires_at <= now,
                Snapshot.status.in_(FINISHED),
            )
            .order_by(Snapshot.expires_at, Snapshot.id)
        ).scalars()
    )
