"""The queries the service runs: lookups, due slots, retention facts, and batched writes.

Long because it is the store's one seam: every statement the service's jobs run is here, so that an
index, a lock or a dialect's quirk is checked against all the statements that rely on it in one read.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, bindparam, delete, exists, func, select, update
from sqlalchemy.orm import Session

from contract.rules import SnapshotFacts
from shim.store.models import Cluster, Project, RestoreJob, Snapshot, SnapshotCount, Volume

# Keep IN lists and executemany batches well under every database's parameter limit.
CHUNK = 500

FINISHED = ("completed", "failed")


def chunks(items: Sequence[Any], size: int = CHUNK) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


# projects


def project(session: Session, project_id: str, *, for_update: bool = False) -> Project | None:
    statement = select(Project).where(Project.id == project_id)
    if for_update:
        # Serialises backup-method changes of a project on PostgreSQL; SQLite's BEGIN IMMEDIATE already does.
        statement = statement.with_for_update()
    return session.execute(statement).scalar_one_or_none()


def lock_project(session: Session, project_id: str) -> Project | None:
    """The project, held until the session's transaction ends: the lock every backup-method change takes.

    On PostgreSQL a row lock (SELECT ... FOR UPDATE); on SQLite a Store.write() session began with
    BEGIN IMMEDIATE, so the database's write lock is already held (call it in one). Either way a
    second writer of the same project waits, then sees the first one's commit, so a check and the
    write it guards are one step.
    """
    return project(session, project_id, for_update=True)


def project_by_name(session: Session, name: str) -> Project | None:
    return session.execute(select(Project).where(Project.name == name)).scalar_one_or_none()


def projects_page(
    session: Session, *, only: str | None, offset: int, limit: int
) -> tuple[list[Project], int]:
    statement = select(Project)
    counted = select(func.count()).select_from(Project)
    if only is not None:
        statement = statement.where(Project.id == only)
        counted = counted.where(Project.id == only)
    rows = session.execute(
        statement.order_by(Project.created_at.desc(), Project.id.desc()).offset(offset).limit(limit)
    ).scalars()
    return list(rows), session.execute(counted).scalar_one()


def project_summaries(session: Session, project_ids: Iterable[str]) -> dict[str, tuple[str | None, int]]:
    """Project id -> (backup method its clusters lock it to, or None; number of clusters)."""
    ids = list(project_ids)
    found: dict[str, tuple[str | None, int]] = {}
    for part in chunks(ids):
        rows = session.execute(
            select(Cluster.project_id, func.min(Cluster.backup_method), func.count())
            .where(Cluster.project_id.in_(part))
            .group_by(Cluster.project_id)
        )
        found.update({pid: (method, count) for pid, method, count in rows})
    return {pid: found.get(pid, (None, 0)) for pid in ids}


def cluster_count(session: Session, project_id: str) -> int:
    return session.execute(
        select(func.count()).select_from(Cluster).where(Cluster.project_id == project_id)
    ).scalar_one()


# clusters and volumes


def cluster(session: Session, project_id: str, name: str) -> Cluster | None:
    return session.execute(
        select(Cluster).where(Cluster.project_id == project_id, Cluster.name == name)
    ).scalar_one_or_none()


def cluster_by_id(session: Session, cluster_id: str) -> Cluster | None:
    return session.get(Cluster, cluster_id)


def clusters_page(session: Session, project_id: str, *, offset: int, limit: int) -> tuple[list[Cluster], int]:
    rows = session.execute(
        select(Cluster)
        .where(Cluster.project_id == project_id)
        .order_by(Cluster.created_at.desc(), Cluster.id.desc())
        .offset(offset)
        .limit(limit)
    ).scalars()
    return list(rows), cluster_count(session, project_id)


def backup_methods_of_others(session: Session, project_id: str, *, excluding: str | None) -> dict[str, str]:
    """Names of the project's other clusters with backup enabled, and their method (for R4)."""
    statement = select(Cluster.name, Cluster.backup_method).where(
        Cluster.project_id == project_id, Cluster.backup_method.is_not(None)
    )
    if excluding is not None:
        statement = statement.where(Cluster.id != excluding)
    return {name: method for name, method in session.execute(statement) if method is not None}


def volumes(session: Session, cluster_id: str) -> list[Volume]:
    return list(
        session.execute(
            select(Volume).where(Volume.cluster_id == cluster_id).order_by(Volume.region, Volume.member)
        ).scalars()
    )


def volumes_of(session: Session, cluster_ids: Sequence[str]) -> dict[str, list[Volume]]:
    found: dict[str, list[Volume]] = {cid: [] for cid in cluster_ids}
    for part in chunks(cluster_ids):
        rows = session.execute(
            select(Volume).where(Volume.cluster_id.in_(part)).order_by(Volume.region, Volume.member)
        ).scalars()
        for volume in rows:
            found[volume.cluster_id].append(volume)
    return found


# the schedule


def due_clusters(session: Session, now: datetime, limit: int) -> list[Any]:
    """Clusters whose next snapshot is due by `now`, earliest first: a range scan of the next_due_at index."""
    return list(
        session.execute(
            select(
                Cluster.id,
                Cluster.project_id,
                Cluster.name,
                Cluster.regions,
                Cluster.reference_time,
                Cluster.next_due_at,
            )
            .where(Cluster.next_due_at <= now)
            .order_by(Cluster.next_due_at, Cluster.id)
            .limit(limit)
        )
    )


def claim_slots(session: Session, claims: Sequence[dict[str, Any]]) -> bool:
    """Move each cluster's next_due_at from `old` to `new` (compare-and-set); True if every one moved.

    Only answers for the batch as a whole, and only where the database reports rows per executemany;
    the caller falls back to claiming one by one when it cannot tell or when one did not move.
    """
    if not claims or not session.bind.dialect.supports_sane_multi_rowcount:  # type: ignore[union-attr]
        return False
    result = session.connection().execute(
        update(Cluster.__table__)
        .where(
            Cluster.__table__.c.id == bindparam("cid"), Cluster.__table__.c.next_due_at == bindparam("old")
        )
        .values(next_due_at=bindparam("new")),
        list(claims),
    )
    return result.rowcount == len(claims)


def claim_slot(session: Session, cluster_id: str, old: datetime, new: datetime) -> bool:
    result = session.execute(
        update(Cluster)
        .where(Cluster.id == cluster_id, Cluster.next_due_at == old)
        .values(next_due_at=new)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1  # type: ignore[attr-defined]


# snapshots


def snapshot(session: Session, cluster_id: str, snapshot_id: str) -> Snapshot | None:
    return session.execute(
        select(Snapshot).where(Snapshot.id == snapshot_id, Snapshot.cluster_id == cluster_id)
    ).scalar_one_or_none()


_SNAPSHOTS = Snapshot.__table__
_CLUSTERS = Cluster.__table__
_PROJECTS = Project.__table__
_COUNTS = SnapshotCount.__table__

# Prepared once: GET .../snapshots is the hottest path of the API.
_CLUSTER_REF = select(_CLUSTERS.c.id, _CLUSTERS.c.name).where(
    _CLUSTERS.c.project_id == bindparam("project_id"), _CLUSTERS.c.name == bindparam("name")
)
# The cluster and its snapshot count in one lookup: the count is a row the triggers keep, so it costs
# the same at 10 or 10,000 snapshots (no row yet: none taken).
_COUNTED_CLUSTER = (
    select(_CLUSTERS.c.id, _CLUSTERS.c.name, func.coalesce(_COUNTS.c.total, 0).label("total"))
    .select_from(_CLUSTERS.outerjoin(_COUNTS, _COUNTS.c.cluster_id == _CLUSTERS.c.id))
    .where(_CLUSTERS.c.project_id == bindparam("project_id"), _CLUSTERS.c.name == bindparam("name"))
)
_PROJECT_EXISTS = select(_PROJECTS.c.id).where(_PROJECTS.c.id == bindparam("project_id"))
# Newest first through the (cluster_id, created_at, id) index read backwards: a page reads its own rows
# only, however many snapshots the cluster has.
_SNAPSHOT_PAGE = (
    select(_SNAPSHOTS)
    .where(_SNAPSHOTS.c.cluster_id == bindparam("cluster_id"))
    .order_by(_SNAPSHOTS.c.created_at.desc(), _SNAPSHOTS.c.id.desc())
    .limit(bindparam("limit"))
    .offset(bindparam("offset"))
)


_PENDING_WORK = select(
    select(func.min(_CLUSTERS.c.next_due_at)).scalar_subquery().label("earliest_due"),
    exists().where(_SNAPSHOTS.c.status == "inProgress").label("snapshots_running"),
    exists().where(RestoreJob.__table__.c.status == "inProgress").label("restores_running"),
    # When the first on-demand snapshot taken with retentionInDays expires (None: none will).
    select(func.min(_SNAPSHOTS.c.expires_at)).scalar_subquery().label("earliest_expiry"),
)


def pending_work(conn: Connection) -> Row[Any]:
    """(earliest next_due_at, any snapshot running, any restore running): an idle tick's one query."""
    return conn.execute(_PENDING_WORK).one()


def cluster_ref(conn: Connection, project_id: str, name: str) -> Row[Any] | None:
    """(id, name) of a cluster, by a Core query."""
    return conn.execute(_CLUSTER_REF, {"project_id": project_id, "name": name}).first()


def project_exists(conn: Connection, project_id: str) -> bool:
    return conn.execute(_PROJECT_EXISTS, {"project_id": project_id}).first() is not None


@dataclass(frozen=True)
class ClusterRef:
    """What a listing needs to know of its cluster."""

    id: str
    name: str


def snapshot_listing(
    conn: Connection, project_id: str, name: str, *, offset: int, limit: int
) -> tuple[ClusterRef | None, list[Row[Any]], int]:
    """(cluster id and name or None, a page of its snapshots newest first, their total).

    Each statement stands alone (it may run outside a transaction). The cost of a page does not grow
    with the cluster's snapshot count: the page reads its own index entries, the total is one row.
    """
    found = conn.execute(_COUNTED_CLUSTER, {"project_id": project_id, "name": name}).first()
    if found is None:
        return None, [], 0
    rows = list(conn.execute(_SNAPSHOT_PAGE, {"cluster_id": found.id, "limit": limit, "offset": offset}))
    return ClusterRef(found.id, found.name), rows, int(found.total)


def completed_snapshot_ids(session: Session, cluster_id: str) -> list[str]:
    """The cluster's stored snapshots, newest first."""
    return list(
        session.execute(
            select(Snapshot.id)
            .where(Snapshot.cluster_id == cluster_id, Snapshot.status == "completed")
            .order_by(Snapshot.created_at.desc(), Snapshot.id.desc())
        ).scalars()
    )


def snapshots_of(session: Session, cluster_id: str) -> list[Snapshot]:
    return list(session.execute(select(Snapshot).where(Snapshot.cluster_id == cluster_id)).scalars())


_ANY = object()


def snapshots_in_status(
    session: Session, status: str, limit: int | None = None, *, owner: str | object | None = _ANY
) -> list[Snapshot]:
    """Snapshots in `status`, oldest first; with `owner`, only that replica's (None: no replica's)."""
    statement = select(Snapshot).where(Snapshot.status == status).order_by(Snapshot.created_at, Snapshot.id)
    if owner is not _ANY:
        statement = statement.where(Snapshot.owner.is_(None) if owner is None else Snapshot.owner == owner)
    if limit is not None:
        statement = statement.limit(limit)
    return list(session.execute(statement).scalars())


def existing_snapshot_ids(session: Session, ids: Sequence[str]) -> set[str]:
    found: set[str] = set()
    for part in chunks(ids):
        found.update(session.execute(select(Snapshot.id).where(Snapshot.id.in_(part))).scalars())
    return found


def snapshots_by_ids(session: Session, ids: Sequence[str]) -> list[Snapshot]:
    found: list[Snapshot] = []
    for part in chunks(ids):
        found += session.execute(select(Snapshot).where(Snapshot.id.in_(part))).scalars()
    return found


def retention_facts(
    session: Session, cluster_ids: Sequence[str]
) -> dict[str, list[tuple[SnapshotFacts, str | None]]]:
    """Per cluster, its finished snapshots as the retention rule sees them, with their storage handles."""
    found: dict[str, list[tuple[SnapshotFacts, str | None]]] = {cid: [] for cid in cluster_ids}
    for part in chunks(cluster_ids):
        rows = session.execute(
            select(
                Snapshot.id,
                Snapshot.cluster_id,
                Snapshot.created_at,
                Snapshot.status,
                Snapshot.snapshot_type,
                Snapshot.handle,
            ).where(Snapshot.cluster_id.in_(part), Snapshot.status.in_(FINISHED))
        )
        for sid, cid, created, status, kind, handle in rows:
            found[cid].append((SnapshotFacts(sid, created, status, kind == "scheduled"), handle))
    return found


def clusters_over_retention(session: Session, keep: int) -> list[str]:
    """Clusters with more than `keep` finished scheduled snapshots: those R8 may have to trim."""
    rows = session.execute(
        select(Snapshot.cluster_id)
        .where(Snapshot.snapshot_type == "scheduled", Snapshot.status.in_(FINISHED))
        .group_by(Snapshot.cluster_id)
        .having(func.count() > keep)
    ).scalars()
    return sorted(rows)


def update_snapshots(session: Session, changes: Sequence[dict[str, Any]]) -> None:
    """Apply per-snapshot column changes, grouped so that each group is one executemany."""
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for change in changes:
        groups.setdefault(tuple(sorted(k for k in change if k != "id")), []).append(change)
    table = Snapshot.__table__
    for columns, rows in groups.items():
        statement = (
            update(table)
            .where(table.c.id == bindparam("sid"))
            .values({column: bindparam(f"v_{column}") for column in columns})
        )
        params = [{"sid": row["id"], **{f"v_{c}": row[c] for c in columns}} for row in rows]
        for part in chunks(params):
            session.connection().execute(statement, list(part))


def _deletion_chunk(session: Session) -> int:
    """IN-list size of a deletion: one statement on PostgreSQL (well under its 65,535 parameters), so
    that its count trigger takes the clusters' counters in one sorted pass (see revision 0003)."""
    return CHUNK if session.get_bind().dialect.name == "sqlite" else 30_000


def delete_snapshot_rows(session: Session, ids: Sequence[str]) -> None:
    for part in chunks(ids, _deletion_chunk(session)):
        session.execute(
            delete(Snapshot).where(Snapshot.id.in_(part)).execution_options(synchronize_session=False)
        )


def delete_uncopied_snapshot_rows(session: Session, ids: Sequence[str]) -> None:
    """Delete these rows unless a copy was recorded on them since they were read (their handle set)."""
    for part in chunks(ids, _deletion_chunk(session)):
        session.execute(
            delete(Snapshot)
            .where(Snapshot.id.in_(part), Snapshot.handle.is_(None))
            .execution_options(synchronize_session=False)
        )


# restore jobs


def restore_job(session: Session, cluster_id: str, job_id: str) -> RestoreJob | None:
    return session.execute(
        select(RestoreJob).where(RestoreJob.id == job_id, RestoreJob.cluster_id == cluster_id)
    ).scalar_one_or_none()


def restore_jobs_page(
    session: Session, cluster_id: str, *, offset: int, limit: int
) -> tuple[list[RestoreJob], int]:
    rows = session.execute(
        select(RestoreJob)
        .where(RestoreJob.cluster_id == cluster_id)
        .order_by(RestoreJob.created_at.desc(), RestoreJob.id.desc())
        .offset(offset)
        .limit(limit)
    ).scalars()
    total = session.execute(
        select(func.count()).select_from(RestoreJob).where(RestoreJob.cluster_id == cluster_id)
    ).scalar_one()
    return list(rows), total


def restore_jobs_in_status(
    session: Session, statuses: Sequence[str], *, owner: str | object | None = _ANY
) -> list[RestoreJob]:
    statement = select(RestoreJob).where(RestoreJob.status.in_(statuses)).order_by(RestoreJob.created_at)
    if owner is not _ANY:
        statement = statement.where(
            RestoreJob.owner.is_(None) if owner is None else RestoreJob.owner == owner
        )
    return list(session.execute(statement).scalars())
