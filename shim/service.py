"""The use cases: projects, clusters, backup, snapshots, restores, the schedule and reconciliation at start.

Every change is recorded before storage is touched and its result recorded after, so that a crash at any
line leaves the database telling the truth or something that reconcile() finishes at the next start:

- a snapshot row is committed `queued` (the intent), the driver operation is started and its token
  committed with `inProgress`, then its result is committed `completed` or `failed`;
- deletions (retention R8, R9, DELETE of a snapshot) delete from storage first, then the row;
- at start, every unfinished operation is polled again, a `queued` snapshot with no token (the crash
  hit between intent and start) is started again, and every stored snapshot without a live row is
  deleted from storage;
- at start and periodically while serving, a stored snapshot whose row is missing or failed is deleted,
  and a completed row whose stored snapshot vanished is marked failed.

Requests that change only the database run in one transaction; those that drive storage run the
intent → act → result transactions above, with the driver calls outside any transaction.

Over 400 lines for now: this class is split by job (projects, clusters, backups, one snapshot engine,
restores, schedule, reconcile) in a later round (issue 10); until then new code goes in new modules.
"""

from __future__ import annotations

import functools
import itertools
import logging
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from contract import rules
from shim import clock_advance, events, freshness, on_demand, protection
from shim.clock import Clock, ManualClock, format_time, parse_time, utc
from shim.drivers.base import Driver, DriverError, OperationStatus, StoredSnapshot, VolumeSpec
from shim.errors import (
    BACKUP_NOT_ENABLED,
    CANNOT_DELETE_GROUP_WITH_CLUSTERS,
    CLUSTER_NOT_FOUND,
    DUPLICATE_CLUSTER_NAME,
    DUPLICATE_PROJECT_NAME,
    GROUP_NOT_FOUND,
    RESTORE_JOB_NOT_FOUND,
    SNAPSHOT_NOT_FOUND,
    STORAGE_ERROR,
    ApiError,
)
from shim.freshness import Freshness
from shim.store import Store, leases, queries
from shim.store.models import Cluster, Project, RestoreJob, Setting, Snapshot, Volume

log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")

MANUAL_CLOCK_SETTING = "manual_clock_now"
SNAPSHOT_IN_PROGRESS = "SNAPSHOT_IN_PROGRESS"
BACKUP_CHANGE_IN_PROGRESS = "BACKUP_CHANGE_IN_PROGRESS"
SHUTTING_DOWN = "SHUTTING_DOWN"
# Tags that trace a stored snapshot back to its row (the azure driver keeps them as resource tags).
TAG_SNAPSHOT = "cloudbackup-snapshot-id"
TAG_CLUSTER = "cloudbackup-cluster-id"
TAG_PROJECT = "cloudbackup-project-id"
TAG_CLUSTER_NAME = "cloudbackup-cluster-name"
TAG_TYPE = "cloudbackup-snapshot-type"


_PROCESS_ID = secrets.token_hex(5)
_counter = itertools.count(secrets.randbelow(1 << 23))
_counter_lock = threading.Lock()


def new_id() -> str:
    """A 24-hex identifier shaped like a MongoDB ObjectId: seconds, a per-process random part, a counter.

    Ids made later in one process sort later, which orders records created in the same second.
    """
    with _counter_lock:
        count = next(_counter) & 0xFFFFFF
    return f"{int(time.time()) & 0xFFFFFFFF:08x}{_PROCESS_ID}{count:06x}"


def region_specs(regions: dict[str, Any]) -> dict[str, rules.RegionSpec]:
    """A cluster's regions (as stored or as sent) as the rules see them."""
    return {
        name: rules.RegionSpec(
            priority=int(spec.get("priority", rules.PREFERRED_PRIORITY)),
            electable_nodes=int(spec.get("electableNodes", 3)),
        )
        for name, spec in regions.items()
    }


def normalised_regions(regions: dict[str, Any]) -> dict[str, dict[str, int]]:
    """Regions with their defaults filled in, in the order given."""
    return {
        name: {"priority": spec.priority, "electableNodes": spec.electable_nodes}
        for name, spec in region_specs(regions).items()
    }


def shape(cluster: Cluster) -> rules.ClusterShape:
    return rules.ClusterShape(
        cluster.name, cluster.provider_name, cluster.instance_size, cluster.cluster_type
    )


def preferred_region(cluster: Cluster) -> str:
    return rules.preferred_region(region_specs(cluster.regions))


def members(regions: dict[str, Any]) -> list[tuple[str, int]]:
    """(region, member index) of every electable member: each has its own volume."""
    return [
        (name, member)
        for name, spec in region_specs(regions).items()
        for member in range(spec.electable_nodes)
    ]


@dataclass(frozen=True)
class SnapshotJob:
    """What starting one snapshot needs, read from its committed `queued` row."""

    snapshot_id: str
    cluster_id: str
    project_id: str
    cluster_name: str
    snapshot_type: str
    region: str
    volume_handle: str


@dataclass
class Backup:
    """A cluster's backup as the API shows it."""

    cluster: Cluster
    snapshot_ids: list[str]
    dry_run: bool = False
    # The newest snapshots, and the clock's now they are aged against; None where not read.
    freshness: Freshness | None = None
    now: datetime | None = None


class Service:
    """The shim's use cases over one store, one driver and one clock."""

    def __init__(
        self,
        store: Store,
        driver: Driver,
        clock: Clock,
        *,
        batch_size: int = 500,
        driver_workers: int = 8,
        poll_interval: float = 0.2,
        snapshot_delay: tuple[str, float] | None = None,
    ) -> None:
        self.store = store
        self.driver = driver
        self.clock = clock
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self.snapshot_delay = snapshot_delay
        self.pool = ThreadPoolExecutor(max_workers=driver_workers, thread_name_prefix="driver")
        # Serialises the work that touches snapshots and volumes inside this process (scheduler batches,
        # API changes of backups and clusters); the database's constraints guard across processes.
        self.work_lock = threading.RLock()
        # Held by a manual-clock advance from start to end, so the scheduler thread does not race it.
        self.advance_lock = threading.Lock()
        # Held by the one advance this process runs; a second one is refused rather than queued.
        self._advancing = threading.Lock()
        # Set when the process is asked to stop (SIGTERM): a clock advance ends at its next step.
        self.stopping = threading.Event()
        self._closed = False
        # Replicas on one database: this process's id (shim.store.leases), stamped on the operations it
        # runs; another live replica leaves them alone, and adopts them once this one's lease expires.
        self.replica_id: str | None = None
        self.lease_seconds = leases.LEASE_SECONDS
        self._next_adoption = 0.0

    # --- plumbing ------------------------------------------------------------------------------------

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self.pool.shutdown(wait=True)

    def now(self) -> datetime:
        if isinstance(self.clock, ManualClock):
            # Shared by every replica: an advance through any of them moves the time of all.
            with self.store.statements() as conn:
                saved = conn.execute(
                    select(Setting.value).where(Setting.key == MANUAL_CLOCK_SETTING)
                ).scalar_one_or_none()
            if saved is not None:
                self.clock.set(parse_time(saved))
        return self.clock.now()

    def _map(self, fn: Callable[[T], R], items: Sequence[T]) -> list[R | Exception]:
        """Run a driver call over many items at once (bounded by the pool); failures come back as values."""

        def guarded(item: T) -> R | Exception:
            try:
                return fn(item)
            except Exception as error:
                return error

        if len(items) == 1:
            return [guarded(items[0])]
        return list(self.pool.map(guarded, items))

    def load_manual_clock(self) -> None:
        """A manual clock resumes where it stood before a restart (its now is kept in the database)."""
        if not isinstance(self.clock, ManualClock):
            return
        with self.store.write() as session:
            setting = session.get(Setting, MANUAL_CLOCK_SETTING)
            if setting is not None:
                self.clock.resume(parse_time(setting.value))
            self._save_clock(session)

    def _save_clock(self, session: Session) -> None:
        if not isinstance(self.clock, ManualClock):
            return
        setting = session.get(Setting, MANUAL_CLOCK_SETTING, with_for_update=True)
        if setting is None:
            session.add(Setting(key=MANUAL_CLOCK_SETTING, value=utc(self.clock.now()).isoformat()))
        else:
            # Another replica may have moved it further meanwhile: the shared clock never goes back.
            self.clock.set(parse_time(setting.value))
            setting.value = utc(self.clock.now()).isoformat()

    # --- projects ------------------------------------------------------------------------------------

    def list_projects(self, *, only: str | None, offset: int, limit: int) -> tuple[list[Project], int]:
        with self.store.read() as session:
            return queries.projects_page(session, only=only, offset=offset, limit=limit)

    def project_summaries(self, project_ids: Iterable[str]) -> dict[str, tuple[str | None, int]]:
        with self.store.read() as session:
            return queries.project_summaries(session, project_ids)

    def get_project(self, project_id: str) -> Project:
        with self.store.read() as session:
            return self._project(session, project_id)

    def create_project(self, name: str) -> Project:
        try:
            with self.store.write() as session:
                if queries.project_by_name(session, name) is not None:
                    raise self._duplicate_project(name)
                project = Project(id=new_id(), name=name, created_at=self.now())
                session.add(project)
        except IntegrityError:
            raise self._duplicate_project(name) from None
        return project

    @staticmethod
    def _duplicate_project(name: str) -> ApiError:
        return ApiError(
            409,
            DUPLICATE_PROJECT_NAME,
            f"A project named '{name}' already exists. Pick another name.",
            ["/name"],
        )

    def delete_project(self, project_id: str) -> None:
        with self.store.write() as session:
            project = self._project(session, project_id)
            count = queries.cluster_count(session, project_id)
            if count:
                raise ApiError(
                    409,
                    CANNOT_DELETE_GROUP_WITH_CLUSTERS,
                    f"Project '{project.name}' still has {count} cluster(s). Terminate them first "
                    f"(DELETE .../clusters/NAME), then delete the project.",
                )
            session.delete(project)

    @staticmethod
    def _project(session: Session, project_id: str, *, for_update: bool = False) -> Project:
        project = (
            queries.lock_project(session, project_id) if for_update else queries.project(session, project_id)
        )
        if project is None:
            raise ApiError(404, GROUP_NOT_FOUND, f"No project with ID {project_id}.")
        return project

    # --- clusters ------------------------------------------------------------------------------------

    def list_clusters(self, project_id: str, *, offset: int, limit: int) -> tuple[list[Cluster], int]:
        with self.store.read() as session:
            self._project(session, project_id)
            return queries.clusters_page(session, project_id, offset=offset, limit=limit)

    def get_cluster(self, project_id: str, name: str) -> Cluster:
        with self.store.read() as session:
            return self._cluster(session, project_id, name)

    def _cluster(self, session: Session, project_id: str, name: str, *, for_change: bool = False) -> Cluster:
        self._project(session, project_id, for_update=for_change)
        cluster = queries.cluster(session, project_id, name)
        if cluster is None or (for_change and cluster.state == "DELETING"):
            raise ApiError(404, CLUSTER_NOT_FOUND, f"No cluster named '{name}' in project {project_id}.")
        return cluster

    def create_cluster(self, project_id: str, body: dict[str, Any]) -> Cluster:
        """Record the cluster, create its member volumes, then (if asked) enable backup: snapshot at once."""
        settings = body["providerSettings"]
        regions = normalised_regions(body["replicationSpecs"][0]["regionsConfig"])
        new_shape = rules.ClusterShape(
            body["name"],
            settings["providerName"],
            settings["instanceSizeName"],
            body.get("clusterType", "REPLICASET"),
        )
        refusals = rules.region_refusals(new_shape.provider_name, region_specs(regions))
        if refusals:
            raise ApiError.from_refusals(refusals)
        enable = bool(body.get("providerBackupEnabled"))
        with self.work_lock:
            try:
                with self.store.write() as session:
                    project = self._project(session, project_id, for_update=True)
                    if queries.cluster(session, project_id, new_shape.name) is not None:
                        raise self._duplicate_cluster(new_shape.name, project.name)
                    if enable:
                        others = queries.backup_methods_of_others(session, project_id, excluding=None)
                        refusals += rules.enable_refusals(
                            new_shape, rules.CLOUD_PROVIDER_SNAPSHOTS, others, project_name=project.name
                        )
                    if refusals:
                        raise ApiError.from_refusals(refusals)
                    cluster = Cluster(
                        id=new_id(),
                        project_id=project_id,
                        name=new_shape.name,
                        provider_name=new_shape.provider_name,
                        instance_size=new_shape.instance_size,
                        cluster_type=new_shape.cluster_type,
                        regions=regions,
                        disk_size_gb=int(body.get("diskSizeGB", 10)),
                        state="CREATING",
                        backup_method=rules.CLOUD_PROVIDER_SNAPSHOTS if enable else None,
                        created_at=self.now(),
                        deletion_protection=bool(body.get("deletionProtection", False)),
                        owner=self.replica_id,
                    )
                    session.add(cluster)
                    session.flush()
                    session.add_all(
                        Volume(cluster_id=cluster.id, region=region, member=member)
                        for region, member in members(regions)
                    )
            except IntegrityError:
                raise self._duplicate_cluster(new_shape.name, project_id) from None
            try:
                self._create_missing_volumes(cluster.id)
            except DriverError as error:
                self._undo_creation(cluster.id)
                raise ApiError(
                    502, STORAGE_ERROR, f"Storage refused to create the cluster's volumes: {error.message}"
                ) from None
            job = self._finish_creation(cluster.id)
            if job is not None:
                self._run_snapshots([job])
        return self.get_cluster(project_id, new_shape.name)

    @staticmethod
    def _duplicate_cluster(name: str, project: str) -> ApiError:
        return ApiError(
            409,
            DUPLICATE_CLUSTER_NAME,
            f"Project '{project}' already has a cluster named '{name}'. Pick another name.",
            ["/name"],
        )

    def _create_missing_volumes(self, cluster_id: str) -> None:
        """Create the volumes recorded without a handle, and record their handles."""
        with self.store.read() as session:
            cluster = queries.cluster_by_id(session, cluster_id)
            assert cluster is not None
            missing = [v for v in queries.volumes(session, cluster_id) if v.handle is None]
        specs = [
            (
                v.id,
                VolumeSpec(
                    cluster.project_id, cluster.id, cluster.name, v.region, v.member, cluster.disk_size_gb
                ),
            )
            for v in missing
        ]
        results = self._map(lambda item: self.driver.create_volume(item[1]), specs)
        created = [
            (volume_id, handle)
            for (volume_id, _), handle in zip(specs, results, strict=True)
            if isinstance(handle, str)
        ]
        if created:
            with self.store.write() as session:
                for volume_id, handle in created:
                    session.execute(update(Volume).where(Volume.id == volume_id).values(handle=handle))
        errors = [result for result in results if isinstance(result, Exception)]
        if errors:
            first = errors[0]
            raise first if isinstance(first, DriverError) else DriverError("VOLUME_CREATE_FAILED", str(first))

    def _undo_creation(self, cluster_id: str) -> None:
        with self.store.read() as session:
            handles = [v.handle for v in queries.volumes(session, cluster_id) if v.handle]
        self._map(self.driver.delete_volume, handles)
        with self.store.write() as session:
            session.execute(delete(Volume).where(Volume.cluster_id == cluster_id))
            session.execute(delete(Cluster).where(Cluster.id == cluster_id))

    def _finish_creation(self, cluster_id: str) -> SnapshotJob | None:
        """Mark a created cluster IDLE and, if backup was asked for, start its schedule with a snapshot."""
        with self.store.write() as session:
            cluster = queries.cluster_by_id(session, cluster_id)
            assert cluster is not None
            cluster.state = "IDLE"
            if cluster.backup_method == rules.CLOUD_PROVIDER_SNAPSHOTS and cluster.reference_time is None:
                return self._start_schedule(session, cluster)
        return None

    def _start_schedule(self, session: Session, cluster: Cluster) -> SnapshotJob:
        """R7: reference time = now; the first snapshot is the reference slot; the next is due 24 h later."""
        now = self.now()
        cluster.reference_time = now
        cluster.next_due_at = now + rules.SNAPSHOT_INTERVAL
        return self._queue_snapshot(
            session, cluster, snapshot_type="scheduled", slot_time=now, created_at=now
        )

    def _queue_snapshot(
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
        source = self._source_volume(volume_list or queries.volumes(session, cluster.id), region)
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
            owner=self.replica_id,
            expires_at=expires_at,
        )
        session.add(snapshot)
        events.emit(
            self, events.SNAPSHOT_QUEUED, snapshot=snapshot.id, cluster=cluster.name, type=snapshot_type
        )
        return SnapshotJob(
            snapshot.id, cluster.id, cluster.project_id, cluster.name, snapshot_type, region, source
        )

    @staticmethod
    def _source_volume(volume_list: Sequence[Volume], region: str) -> str:
        """R6: the snapshot is taken of the first member in the preferred region and stored there."""
        in_region = sorted(
            (v for v in volume_list if v.region == region and v.handle), key=lambda v: v.member
        )
        if not in_region:
            raise ApiError(409, STORAGE_ERROR, f"The cluster has no volume in its preferred region {region}.")
        return in_region[0].handle or ""

    def update_cluster(self, project_id: str, name: str, body: dict[str, Any]) -> Cluster:
        """PATCH: R11, region and disk rules first; then the volumes; then the new settings in one commit."""
        with self.work_lock:
            with self.store.read() as session:
                project = self._project(session, project_id)
                cluster = self._cluster(session, project_id, name, for_change=True)
                current_volumes = queries.volumes(session, cluster.id)
                others = queries.backup_methods_of_others(session, project_id, excluding=cluster.id)
            settings = body.get("providerSettings", {})
            new_shape = rules.ClusterShape(
                cluster.name,
                settings.get("providerName", cluster.provider_name),
                settings.get("instanceSizeName", cluster.instance_size),
                body.get("clusterType", cluster.cluster_type),
            )
            regions = (
                normalised_regions(body["replicationSpecs"][0]["regionsConfig"])
                if "replicationSpecs" in body
                else cluster.regions
            )
            disk = int(body.get("diskSizeGB", cluster.disk_size_gb))
            wants = body.get("providerBackupEnabled")
            enable = wants is True and cluster.backup_method != rules.CLOUD_PROVIDER_SNAPSHOTS
            disable = wants is False and cluster.backup_method is not None
            if disable:
                protection.check_disable_backup(cluster)
            refusals: list[rules.Refusal] = []
            if "replicationSpecs" in body or new_shape.provider_name != cluster.provider_name:
                refusals += rules.region_refusals(new_shape.provider_name, region_specs(regions))
            refusal = rules.disk_size_refusal(cluster.disk_size_gb, disk)
            if refusal:
                refusals.append(refusal)
            if enable:
                refusals += rules.enable_refusals(
                    new_shape,
                    rules.CLOUD_PROVIDER_SNAPSHOTS,
                    others,
                    project_name=project.name,
                    current=cluster.backup_method,
                )
            elif not disable:
                refusals += rules.change_refusals(new_shape, cluster.backup_method)
            if refusals:
                raise ApiError.from_refusals(refusals)

            wanted = set(members(regions))
            have = {(v.region, v.member): v for v in current_volumes}
            added = sorted(wanted - set(have))
            removed = [have[key] for key in sorted(set(have) - wanted)]
            kept = [have[key] for key in sorted(set(have) & wanted)]
            specs = [VolumeSpec(project_id, cluster.id, cluster.name, r, m, disk) for r, m in added]
            results = self._map(self.driver.create_volume, specs)
            failures = [r for r in results if isinstance(r, Exception)]
            if not failures and disk > cluster.disk_size_gb:
                grown = self._map(
                    lambda v: self.driver.resize_volume(v.handle or "", disk), [v for v in kept if v.handle]
                )
                failures = [r for r in grown if isinstance(r, Exception)]
            if failures:
                self._map(self.driver.delete_volume, [r for r in results if isinstance(r, str)])
                raise ApiError(
                    502, STORAGE_ERROR, f"Storage refused to change the cluster's volumes: {failures[0]}"
                )
            new_handles: dict[tuple[str, int], str] = {
                key: handle for key, handle in zip(added, results, strict=True) if isinstance(handle, str)
            }

            job: SnapshotJob | None = None
            try:
                with self.store.write() as session:
                    if enable:
                        # R4 again, in the transaction that writes, holding the project: another process
                        # may have enabled a method since the check above (which ran before storage).
                        self._check_method_lock(session, project_id, cluster.id, new_shape)
                    row = queries.cluster_by_id(session, cluster.id)
                    assert row is not None
                    row.provider_name, row.instance_size = new_shape.provider_name, new_shape.instance_size
                    row.cluster_type, row.regions, row.disk_size_gb = new_shape.cluster_type, regions, disk
                    if removed:
                        session.execute(delete(Volume).where(Volume.id.in_([v.id for v in removed])))
                    fresh = [
                        Volume(cluster_id=row.id, region=r, member=m, handle=h)
                        for (r, m), h in new_handles.items()
                    ]
                    session.add_all(fresh)
                    if "deletionProtection" in body:
                        row.deletion_protection = bool(body["deletionProtection"])
                    if disable:
                        self._stop_schedule(row)
                    if enable:
                        row.backup_method = rules.CLOUD_PROVIDER_SNAPSHOTS
                        session.flush()
                        job = self._start_schedule(session, row)
            except ApiError:
                # Refused by the late R4 check: the volumes this request added go again (a disk grown
                # meanwhile stays larger than recorded, which no rule minds).
                self._map(self.driver.delete_volume, list(new_handles.values()))
                raise
            self._map(self.driver.delete_volume, [v.handle for v in removed if v.handle])
            if job is not None:
                self._run_snapshots([job])
        if disable:
            # Outside the lock: a snapshot still running in the cloud is awaited without blocking others.
            self._purge_snapshots(cluster.id)
        return self.get_cluster(project_id, name)

    def _check_method_lock(
        self, session: Session, project_id: str, cluster_id: str, new: rules.ClusterShape
    ) -> None:
        """R4 under the project's lock, in the caller's write transaction: refuse if another cluster of the
        project already holds another method."""
        project = queries.lock_project(session, project_id)
        if project is None:
            raise ApiError(404, GROUP_NOT_FOUND, f"No project with ID {project_id}.")
        cluster = queries.cluster_by_id(session, cluster_id)
        if cluster is not None:
            self._refuse_while_purging(session, cluster)
        others = queries.backup_methods_of_others(session, project_id, excluding=cluster_id)
        refusals = rules.enable_refusals(
            new, rules.CLOUD_PROVIDER_SNAPSHOTS, others, project_name=project.name
        )
        if refusals:
            raise ApiError.from_refusals(refusals)

    def terminate_cluster(self, project_id: str, name: str) -> None:
        """R9: delete every snapshot from storage, then the volumes, then the cluster."""
        with self.work_lock, self.store.write() as session:
            cluster = self._cluster(session, project_id, name, for_change=True)
            protection.check_terminate(cluster)
            cluster.state = "DELETING"
            cluster.owner = self.replica_id
            self._stop_schedule(cluster)
        self._finish_termination(cluster.id)

    @staticmethod
    def _stop_schedule(cluster: Cluster) -> None:
        cluster.backup_method = None
        cluster.reference_time = None
        cluster.next_due_at = None

    def _finish_termination(self, cluster_id: str) -> None:
        self._purge_snapshots(cluster_id)
        with self.work_lock:
            self._delete_cluster_storage(cluster_id)

    def _delete_cluster_storage(self, cluster_id: str) -> None:
        with self.store.read() as session:
            handles = [v.handle for v in queries.volumes(session, cluster_id) if v.handle]
        failures = [r for r in self._map(self.driver.delete_volume, handles) if isinstance(r, Exception)]
        if failures:
            raise ApiError(
                502, STORAGE_ERROR, f"Storage refused to delete the cluster's volumes: {failures[0]}"
            )
        with self.store.write() as session:
            session.execute(
                update(RestoreJob)
                .where(RestoreJob.target_cluster_id == cluster_id)
                .values(target_cluster_id=None)
            )
            session.execute(delete(RestoreJob).where(RestoreJob.cluster_id == cluster_id))
            session.execute(delete(Volume).where(Volume.cluster_id == cluster_id))
            session.execute(delete(Cluster).where(Cluster.id == cluster_id))
        log.info("terminated cluster %s", cluster_id)

    # --- backup --------------------------------------------------------------------------------------

    def get_backup(self, project_id: str, name: str) -> Backup:
        with self.store.read() as session:
            cluster = self._cluster(session, project_id, name)
            fresh = freshness.of_clusters(session, [cluster.id])[cluster.id]
            ids = queries.completed_snapshot_ids(session, cluster.id)
            return Backup(cluster, ids, False, fresh, self.now())

    def enable_backup(
        self,
        project_id: str,
        name: str,
        method: str,
        *,
        dry_run: bool = False,
        deletion_protection: bool | None = None,
    ) -> tuple[Backup, bool]:
        """R1-R5 by the rules; the first snapshot is taken at once (R7); returns (backup, changed)."""
        with self.work_lock:
            job: SnapshotJob | None = None
            try:
                job = self._enable_in_one_transaction(project_id, name, method, dry_run, deletion_protection)
            except IntegrityError:
                # Another process took this cluster's slot at the same instant (unique (cluster, slot)).
                raise self._change_in_progress(name) from None
            if isinstance(job, Backup):
                return job, False
            events.emit(self, events.BACKUP_ENABLED, project=project_id, cluster=name, method=method)
            if job is not None:
                self._run_snapshots([job])
        return self.get_backup(project_id, name), True

    def _enable_in_one_transaction(
        self, project_id: str, name: str, method: str, dry_run: bool, deletion_protection: bool | None
    ) -> SnapshotJob | Backup | None:
        """enable_backup's checks and write, under the project's lock; a Backup when nothing changes."""
        job: SnapshotJob | None = None
        with self.store.write() as session:
            project = self._project(session, project_id, for_update=True)
            cluster = self._cluster(session, project_id, name, for_change=True)
            if deletion_protection is not None and not dry_run:
                cluster.backup_deletion_protection = deletion_protection
            if cluster.backup_method == method:
                fresh = freshness.of_clusters(session, [cluster.id])[cluster.id]
                ids = queries.completed_snapshot_ids(session, cluster.id)
                return Backup(cluster, ids, dry_run, fresh, self.now())
            others = queries.backup_methods_of_others(session, project_id, excluding=cluster.id)
            refusals = rules.enable_refusals(
                shape(cluster), method, others, project_name=project.name, current=cluster.backup_method
            )
            if refusals:
                raise ApiError.from_refusals(refusals)
            if not dry_run:
                self._refuse_while_purging(session, cluster)
            if dry_run:
                session.expunge(cluster)
                would_be = self._would_enable(cluster, method)
                return Backup(would_be, queries.completed_snapshot_ids(session, cluster.id), True)
            cluster.backup_method = method
            if method == rules.CLOUD_PROVIDER_SNAPSHOTS:
                job = self._start_schedule(session, cluster)
        return job

    def _refuse_while_purging(self, session: Session, cluster: Cluster) -> None:
        """A cluster whose backup is off but still has snapshots is being disabled (R9 deleting them, here or
        in another process): enabling now would mix the old snapshots with the new schedule's."""
        if cluster.backup_method is None and queries.snapshots_of(session, cluster.id):
            raise self._change_in_progress(cluster.name)

    @staticmethod
    def _change_in_progress(name: str) -> ApiError:
        return ApiError(
            409,
            BACKUP_CHANGE_IN_PROGRESS,
            f"Backup of cluster '{name}' is being disabled or enabled by another request right now (its "
            "snapshots are still being deleted or taken). Try again in a few seconds.",
        )

    def _would_enable(self, cluster: Cluster, method: str) -> Cluster:
        now = self.now()
        copy = Cluster(**{c.key: getattr(cluster, c.key) for c in Cluster.__table__.columns})
        copy.backup_method = method
        if method == rules.CLOUD_PROVIDER_SNAPSHOTS:
            copy.reference_time, copy.next_due_at = now, now + rules.SNAPSHOT_INTERVAL
        return copy

    def disable_backup(self, project_id: str, name: str) -> bool:
        """R9: stop the schedule and delete every snapshot of the cluster from storage; idempotent."""
        with self.work_lock, self.store.write() as session:
            cluster = self._cluster(session, project_id, name, for_change=True)
            protection.check_disable_backup(cluster)
            was = cluster.backup_method
            self._stop_schedule(cluster)
        if was is not None:
            events.emit(self, events.BACKUP_DISABLED, project=project_id, cluster=name, method=was)
        # Outside the lock: a snapshot still running in the cloud is awaited without blocking others.
        self._purge_snapshots(cluster.id)
        return was is not None

    def _purge_snapshots(self, cluster_id: str) -> None:
        """Delete every snapshot of a cluster, storage first; in-flight ones are awaited, then deleted."""
        while True:
            with self.work_lock:
                with self.store.read() as session:
                    cluster = queries.cluster_by_id(session, cluster_id)
                    if cluster is not None and cluster.backup_method == rules.CLOUD_PROVIDER_SNAPSHOTS:
                        # Enabled again once every old snapshot was gone (enable refuses before): what
                        # the cluster has now is the new schedule's.
                        return
                    rows = queries.snapshots_of(session, cluster_id)
                running = [s for s in rows if s.status == "inProgress"]
                if running:
                    self._poll_snapshots(running)
                    with self.store.read() as session:
                        rows = queries.snapshots_of(session, cluster_id)
                done = [s for s in rows if s.status != "inProgress"]
                deleted = self._delete_snapshots(done)
                if deleted:
                    events.emit(self, events.SNAPSHOT_DELETED, snapshots=deleted, why="backup disabled")
                if len(deleted) == len(rows):
                    return
                if len(done) == len(rows):
                    continue  # a row got its copy while being deleted: read it again at once
            time.sleep(self.poll_interval)

    def _delete_snapshots(self, rows: Sequence[Snapshot]) -> list[str]:
        """Storage first, then the rows whose storage is gone; returns the ids deleted."""
        stored = [s for s in rows if s.handle]
        results = self._map(lambda s: self.driver.delete_snapshot(s.handle or ""), stored)
        failed = {s.id for s, r in zip(stored, results, strict=True) if isinstance(r, Exception)}
        for s, r in zip(stored, results, strict=True):
            if isinstance(r, Exception):
                log.warning("could not delete snapshot %s from storage (kept for a retry): %s", s.id, r)
        gone = [s.id for s in rows if s.id not in failed and s.handle]
        # A row read without a copy may have got one since (taken by another request or process): it
        # stays, and is found again by the caller's next read.
        uncopied = [s.id for s in rows if not s.handle]
        if gone or uncopied:
            with self.store.write() as session:
                queries.delete_snapshot_rows(session, gone)
                queries.delete_uncopied_snapshot_rows(session, uncopied)
                gone += list(set(uncopied) - queries.existing_snapshot_ids(session, uncopied))
        if failed:
            raise ApiError(
                502, STORAGE_ERROR, f"Storage refused to delete {len(failed)} snapshot(s); try again."
            )
        return gone

    # --- snapshots -----------------------------------------------------------------------------------

    def list_snapshots(
        self, project_id: str, name: str, *, offset: int, limit: int
    ) -> tuple[Any, list[Any], int]:
        """(cluster id and name, a page of snapshot rows, total): the API's hottest path, so one Core
        statement outside any transaction in the common case."""
        with self.store.statements() as conn:
            listed = queries.snapshot_listing(conn, project_id, name, offset=offset, limit=limit)
            cluster, rows, total = listed
            if cluster is None:
                if not queries.project_exists(conn, project_id):
                    raise ApiError(404, GROUP_NOT_FOUND, f"No project with ID {project_id}.")
                raise ApiError(404, CLUSTER_NOT_FOUND, f"No cluster named '{name}' in project {project_id}.")
            return cluster, rows, total

    def get_snapshot(self, project_id: str, name: str, snapshot_id: str) -> tuple[Cluster, Snapshot]:
        with self.store.read() as session:
            cluster = self._cluster(session, project_id, name)
            return cluster, self._snapshot(session, cluster, snapshot_id)

    @staticmethod
    def _snapshot(session: Session, cluster: Cluster, snapshot_id: str) -> Snapshot:
        row = queries.snapshot(session, cluster.id, snapshot_id)
        if row is None:
            raise ApiError(
                404, SNAPSHOT_NOT_FOUND, f"No snapshot with ID {snapshot_id} for cluster '{cluster.name}'."
            )
        return row

    def take_snapshot(
        self, project_id: str, name: str, description: str | None, *, retention_days: int | None = None
    ) -> tuple[Cluster, Snapshot]:
        """An on-demand snapshot: kept `retention_days` days if given, else until deleted (or by R9)."""
        with self.work_lock:
            with self.store.write() as session:
                cluster = self._cluster(session, project_id, name, for_change=True)
                if cluster.backup_method != rules.CLOUD_PROVIDER_SNAPSHOTS:
                    now_method = cluster.backup_method or "no backup"
                    raise ApiError(
                        400,
                        BACKUP_NOT_ENABLED,
                        f"Cluster '{name}' has {now_method} enabled, and on-demand snapshots need cloud "
                        f"provider snapshots. Enable them first: PUT .../clusters/{name}/backup "
                        f'{{"method": "CLOUD_PROVIDER_SNAPSHOTS"}}.',
                    )
                job = self._queue_snapshot(
                    session,
                    cluster,
                    snapshot_type="onDemand",
                    slot_time=None,
                    created_at=self.now(),
                    description=description,
                    expires_at=self.now() + timedelta(days=retention_days) if retention_days else None,
                )
            self._run_snapshots([job])
        return self.get_snapshot(project_id, name, job.snapshot_id)

    def delete_snapshot(self, project_id: str, name: str, snapshot_id: str) -> None:
        with self.work_lock:
            with self.store.read() as session:
                cluster = self._cluster(session, project_id, name, for_change=True)
                row = self._snapshot(session, cluster, snapshot_id)
            if row.status in ("queued", "inProgress"):
                raise ApiError(
                    409,
                    SNAPSHOT_IN_PROGRESS,
                    f"Snapshot {snapshot_id} is {row.status}; delete it once it finished.",
                )
            self._delete_snapshots([row])
            events.emit(self, events.SNAPSHOT_DELETED, snapshots=[snapshot_id], why="deleted by request")

    # --- running snapshots -----------------------------------------------------------------------------

    def _run_snapshots(
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
        tasks += [functools.partial(self.driver.delete_snapshot, s.handle or "") for s in stored]
        results = self._map(_call, tasks)
        outcomes, deletions = results[: len(jobs)], results[len(jobs) :]
        now = self.now()
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
        with self.store.write() as session:
            queries.update_snapshots(session, changes)
            queries.delete_snapshot_rows(session, gone)
            copied = [c["id"] for c in changes if c.get("handle")]
            alive = queries.existing_snapshot_ids(session, copied) if copied else set()
        self._forget_operations([c.get("op_token") for c in changes if c["status"] != "inProgress"])
        # A row deleted while its copy ran (backup disabled by another request or process, R9): the
        # copy has no row to account for it, so it goes at once rather than at the next reconciliation.
        orphans = [c["handle"] for c in changes if c.get("handle") and c["id"] not in alive]
        if orphans:
            log.info("deleting %d snapshot(s) whose record was deleted while they were taken", len(orphans))
            self._map(self.driver.delete_snapshot, orphans)
        events.snapshots_finished(self, changes)
        if gone:
            events.emit(self, events.RETENTION_DELETED, snapshots=gone)
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
            return token, self.driver.poll(token)
        except Exception as error:
            return token, error

    def _start_one(self, job: SnapshotJob) -> str:
        if self.snapshot_delay and self.snapshot_delay[0] == "before":
            time.sleep(self.snapshot_delay[1])
        token = self.driver.start_snapshot(
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
        events.emit(self, events.SNAPSHOT_STARTED, snapshot=job.snapshot_id, cluster=job.cluster_name)
        if self.snapshot_delay and self.snapshot_delay[0] == "after":
            time.sleep(self.snapshot_delay[1])
        return token

    def _forget_operations(self, tokens: Sequence[str | None]) -> None:
        """Tell the driver these operations' results are in the database (drivers that keep records of
        finished operations, as the local one does, delete them); a failure here only leaves a record."""
        forget = getattr(self.driver, "forget_operation", None)
        if forget is None:
            return
        for token in tokens:
            if not token:
                continue
            try:
                forget(token)
            except (OSError, ValueError) as error:
                log.warning("could not forget operation %s: %s", token, error)

    @staticmethod
    def _failure(snapshot_id: str, error: Exception, now: datetime) -> dict[str, Any]:
        if isinstance(error, DriverError):
            reason = f"{error.code}: {error.message}"
        else:
            log.error("snapshot %s: the driver raised %r", snapshot_id, error)
            reason = f"DRIVER_ERROR: {error}"
        return {"id": snapshot_id, "status": "failed", "failure_reason": reason, "finished_at": now}

    def _poll_snapshots(self, rows: Sequence[Snapshot]) -> None:
        self._poll_tokens(
            [(s.id, s.op_token or "", s.cluster_id, s.snapshot_type) for s in rows if s.op_token]
        )

    def _poll_tokens(self, items: Sequence[tuple[str, str, str, str]]) -> int:
        """Poll (snapshot id, token, cluster id, type) operations; record the finished; count the rest."""
        if not items:
            return 0
        statuses = self._map(lambda item: self.driver.poll(item[1]), items)
        now = self.now()
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
            with self.store.write() as session:
                queries.update_snapshots(session, changes)
            events.snapshots_finished(self, changes)
            finished = {change["id"] for change in changes}
            self._forget_operations([token for sid, token, _c, _k in items if sid in finished])
        if retention:
            self._apply_retention(sorted(retention))
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

    def _apply_retention(self, cluster_ids: Sequence[str]) -> None:
        """R8 for these clusters: storage first, then the rows."""
        self._delete_expired(self._expired(cluster_ids))

    def _expired(self, cluster_ids: Sequence[str]) -> list[Snapshot]:
        """The snapshots of these clusters that retention (R8) deletes, as they stand now."""
        if not cluster_ids:
            return []
        with self.store.read() as session:
            facts = queries.retention_facts(session, cluster_ids)
        expired: list[Snapshot] = []
        for items in facts.values():
            doomed = set(rules.expired_snapshots([fact for fact, _ in items]))
            expired += [Snapshot(id=fact.id, handle=handle) for fact, handle in items if fact.id in doomed]
        return expired

    def _delete_expired_on_demand(self) -> None:
        """On-demand snapshots whose retentionInDays ran out: storage first, then the rows."""
        with self.work_lock:
            with self.store.read() as session:
                rows = [Snapshot(id=s.id, handle=s.handle) for s in on_demand.expired(session, self.now())]
            if rows:
                self._delete_expired(rows)

    def _delete_expired(self, expired: Sequence[Snapshot]) -> None:
        if expired:
            try:
                events.emit(self, events.RETENTION_DELETED, snapshots=self._delete_snapshots(expired))
            except ApiError as error:
                log.warning("retention: %s", error.detail)

    # --- restores ------------------------------------------------------------------------------------

    def list_restore_jobs(
        self, project_id: str, name: str, *, offset: int, limit: int
    ) -> tuple[list[RestoreJob], int]:
        with self.store.read() as session:
            cluster = self._cluster(session, project_id, name)
            return queries.restore_jobs_page(session, cluster.id, offset=offset, limit=limit)

    def get_restore_job(self, project_id: str, name: str, job_id: str) -> RestoreJob:
        with self.store.read() as session:
            cluster = self._cluster(session, project_id, name)
            job = queries.restore_job(session, cluster.id, job_id)
            if job is None:
                raise ApiError(
                    404, RESTORE_JOB_NOT_FOUND, f"No restore job with ID {job_id} for cluster '{name}'."
                )
            return job

    def create_restore_job(
        self, project_id: str, name: str, body: dict[str, Any], *, can_reach: Callable[[str], bool]
    ) -> RestoreJob:
        """R10: a completed snapshot onto every member volume of the target cluster (all its regions)."""
        target_project_id = body.get("targetGroupId", project_id)
        target_name = body["targetClusterName"]
        if not can_reach(target_project_id):
            raise ApiError(
                404, GROUP_NOT_FOUND, f"No project with ID {target_project_id}.", ["/targetGroupId"]
            )
        with self.work_lock:
            with self.store.write() as session:
                cluster = self._cluster(session, project_id, name, for_change=True)
                snapshot = queries.snapshot(session, cluster.id, body["snapshotId"])
                if snapshot is None:
                    raise ApiError(
                        404,
                        SNAPSHOT_NOT_FOUND,
                        f"No snapshot with ID {body['snapshotId']} for cluster '{name}'.",
                        ["/snapshotId"],
                    )
                if queries.project(session, target_project_id) is None:
                    raise ApiError(
                        404, GROUP_NOT_FOUND, f"No project with ID {target_project_id}.", ["/targetGroupId"]
                    )
                target = queries.cluster(session, target_project_id, target_name)
                if target is None or target.state == "DELETING":
                    raise ApiError(
                        404,
                        CLUSTER_NOT_FOUND,
                        f"No cluster named '{target_name}' in project {target_project_id}.",
                        ["/targetClusterName"],
                    )
                refusals = rules.restore_refusals(
                    snapshot_id=snapshot.id,
                    snapshot_status=snapshot.status,
                    snapshot_disk_bytes=snapshot.disk_size_bytes,
                    target=shape(target),
                    target_disk_gb=target.disk_size_gb,
                )
                target_volumes = [v for v in queries.volumes(session, target.id) if v.handle]
                # Refused up front where storage is regional, rather than failing half-way in the cloud.
                region_refusal = rules.restore_region_refusal(
                    snapshot.region,
                    [v.region for v in target_volumes],
                    self.driver.cross_region_restore,
                    target_name=target.name,
                )
                if region_refusal is not None:
                    refusals.append(region_refusal)
                if refusals:
                    raise ApiError.from_refusals(refusals)
                operations = [
                    {
                        "volumeId": v.id,
                        "region": v.region,
                        "volumeHandle": v.handle,
                        "token": None,
                        "state": "queued",
                    }
                    for v in target_volumes
                ]
                job = RestoreJob(
                    id=new_id(),
                    project_id=project_id,
                    cluster_id=cluster.id,
                    snapshot_id=snapshot.id,
                    target_project_id=target_project_id,
                    target_cluster_id=target.id,
                    target_cluster_name=target.name,
                    status="queued",
                    operations=operations,
                    created_at=self.now(),
                    owner=self.replica_id,
                )
                session.add(job)
                target.state = "RESTORING"
            self._run_restore(job.id)
        return self.get_restore_job(project_id, name, job.id)

    def _run_restore(self, job_id: str) -> None:
        """Start every volume's restore (a queued job, also one restarted after a crash), then poll."""
        with self.store.read() as session:
            job = session.get(RestoreJob, job_id)
            assert job is not None
            snapshot = session.get(Snapshot, job.snapshot_id)
        if snapshot is None or not snapshot.handle:
            self._finish_restore(
                job_id, job.operations, "SNAPSHOT_GONE: the snapshot was deleted before the restore ran"
            )
            return
        ops = [dict(op) for op in job.operations]
        results = self._map(
            lambda op: self.driver.start_restore(
                snapshot_handle=snapshot.handle or "",
                target_volume_handle=op["volumeHandle"],
                region=op["region"],
                expected_checksum=snapshot.checksum,
            ),
            ops,
        )
        failure: str | None = None
        for op, result in zip(ops, results, strict=True):
            if isinstance(result, str):
                op["token"], op["state"] = result, "inProgress"
            else:
                op["state"], op["error"] = "failed", self._reason(result)
                failure = failure or op["error"]
        with self.store.write() as session:
            session.execute(
                update(RestoreJob).where(RestoreJob.id == job_id).values(operations=ops, status="inProgress")
            )
        events.emit(
            self, events.RESTORE_STARTED, job=job_id, snapshot=job.snapshot_id, target=job.target_cluster_name
        )
        if failure and not any(op["state"] == "inProgress" for op in ops):
            self._finish_restore(job_id, ops, failure)
            return
        self._poll_restore(job_id)

    @staticmethod
    def _reason(error: Exception) -> str:
        return (
            f"{error.code}: {error.message}" if isinstance(error, DriverError) else f"DRIVER_ERROR: {error}"
        )

    def _poll_restore(self, job_id: str) -> bool:
        """Poll a running restore's operations; finish the job when all did. True while it still runs."""
        with self.store.read() as session:
            job = session.get(RestoreJob, job_id)
            if job is None or job.status != "inProgress":
                return False
            ops = [dict(op) for op in job.operations]
        waiting = [op for op in ops if op["state"] == "inProgress" and op.get("token")]
        statuses = self._map(lambda op: self.driver.poll(op["token"]), waiting)
        for op, status in zip(waiting, statuses, strict=True):
            if isinstance(status, Exception):
                if isinstance(status, DriverError):
                    op["state"], op["error"] = "failed", self._reason(status)
                continue
            if status.state == "succeeded":
                op["state"] = "succeeded"
                op["volumeHandle"] = str(status.result.get("volumeHandle") or op["volumeHandle"])
                op["checksum"] = status.result.get("checksum")
            elif status.state == "failed":
                op["state"] = "failed"
                op["error"] = (
                    f"{status.error_code or 'RESTORE_FAILED'}: {status.error_message or 'no reason given'}"
                )
        if any(op["state"] in ("queued", "inProgress") for op in ops):
            with self.store.write() as session:
                session.execute(update(RestoreJob).where(RestoreJob.id == job_id).values(operations=ops))
            return True
        failure = next((op.get("error") or "RESTORE_FAILED" for op in ops if op["state"] == "failed"), None)
        self._finish_restore(job_id, ops, failure)
        return False

    def _finish_restore(self, job_id: str, ops: list[dict[str, Any]], failure: str | None) -> None:
        with self.store.write() as session:
            job = session.get(RestoreJob, job_id)
            if job is None:
                return
            for op in ops:
                if op.get("state") == "succeeded" and op.get("volumeHandle"):
                    session.execute(
                        update(Volume).where(Volume.id == op["volumeId"]).values(handle=op["volumeHandle"])
                    )
            job.operations = ops
            job.status = "failed" if failure else "completed"
            job.failure_reason = failure
            job.finished_at = self.now()
            if job.target_cluster_id:
                target = session.get(Cluster, job.target_cluster_id)
                if target is not None and target.state == "RESTORING":
                    target.state = "IDLE"
            took = (job.finished_at - job.created_at).total_seconds()
        events.emit(
            self, events.RESTORE_FINISHED, job=job_id, status=job.status, durationSeconds=took, reason=failure
        )
        self._forget_operations([op["token"] for op in ops if op.get("token")])
        if failure:
            log.warning("restore job %s failed: %s", job_id, failure)

    # --- the schedule (R7) -----------------------------------------------------------------------------

    def tick(self) -> int:
        """One scheduler pass at the clock's now: due slots (one catch-up each), then running operations.

        Returns the number of snapshots started. Skipped while a manual-clock advance runs.
        """
        if not self.advance_lock.acquire(blocking=False):
            return 0
        try:
            started = 0
            if self.replica_id is not None and time.monotonic() >= self._next_adoption:
                with self.work_lock:
                    self._adopt_and_resume()
            with self.store.statements() as conn:
                pending = queries.pending_work(conn)
            earliest = pending.earliest_due
            doomed: list[Snapshot] = []
            while earliest is not None and earliest <= self.now():
                with self.work_lock:
                    jobs = self._claim_due(self.now(), walk=False)
                    doomed = self._run_snapshots(jobs, expired=doomed, defer_retention=True)
                started += len(jobs)
                if len(jobs) < self.batch_size:
                    break
            if doomed:
                with self.work_lock:
                    self._run_snapshots([], expired=doomed)
            if started or pending.snapshots_running or pending.restores_running:
                with self.work_lock:
                    self._poll_running()
            expiry = pending.earliest_expiry
            if expiry is not None and expiry <= self.now():
                self._delete_expired_on_demand()
            return started
        finally:
            self.advance_lock.release()

    def advance(self, seconds: int) -> datetime:
        """Move a manual clock as if the shim had been running all along, and return once that work is done.

        Every slot due by the target is taken in order, at its own time: batches of the earliest due
        slots (one per cluster per batch, so each cluster's slots stay in order), each awaited, its
        retention applied while the next batch copies (the last batch's after it); then the clock is
        set to the target.
        """
        if not isinstance(self.clock, ManualClock):
            raise RuntimeError("only a manual clock can be advanced")
        # One advance at a time: in this process without waiting, across processes by a database lease.
        if not self._advancing.acquire(blocking=False):
            raise clock_advance.in_progress()
        try:
            with self.store.write() as session:
                lease = clock_advance.take(session)
            try:
                return self._walk(seconds, lease)
            finally:
                with self.store.write() as session:
                    clock_advance.release(session, lease)
        finally:
            self._advancing.release()

    def _walk(self, seconds: int, lease: str) -> datetime:
        # Each step (one batch) is its own transactions and holds work_lock only while it claims and
        # copies, so requests are answered between steps.
        renewed = time.monotonic()
        with self.advance_lock:
            target = self.clock.now() + timedelta(seconds=seconds)
            doomed: list[Snapshot] = []
            pending = self._publish_step(target)
            while True:
                # Until no slot is due by the target: with other replicas claiming too, a batch may
                # come back empty (all taken by them) while slots remain.
                with self.work_lock:
                    jobs = self._claim_due(target, walk=True) if pending else []
                    # The next step is published before this batch copies: other replicas take from it
                    # meanwhile.
                    pending = pending and self._publish_step(target)
                    doomed = self._run_snapshots(jobs, expired=doomed, defer_retention=bool(jobs))
                self._await_running()
                if not pending and not jobs:
                    break
                if self.snapshot_delay and self.snapshot_delay[0] == "step":
                    time.sleep(self.snapshot_delay[1])
                if self.stopping.is_set():
                    # SIGTERM: end at this step, its retention applied, rather than walking on for minutes.
                    with self.work_lock:
                        self._run_snapshots([], expired=doomed)
                    raise ApiError(
                        503,
                        SHUTTING_DOWN,
                        f"The shim is stopping: the clock stands at {format_time(self.clock.now())}, every "
                        "slot up to then taken. Advance the rest once it is back.",
                    )
                if time.monotonic() - renewed > clock_advance.LEASE_SECONDS / 4:
                    with self.store.write() as session:
                        clock_advance.renew(session, lease)
                    renewed = time.monotonic()
            self._await_other_replicas(target)
            self.clock.set(target)
            with self.store.write() as session:
                self._save_clock(session)
            self._delete_expired_on_demand()
            return self.clock.now()

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
            with self.store.read() as session:
                if session.execute(unfinished).first() is None:
                    return
            with self.work_lock:
                if self.replica_id is not None and time.monotonic() >= self._next_adoption:
                    self._adopt_and_resume()
                self._poll_running()
            time.sleep(delay)
            delay = min(delay * 2, self.poll_interval)

    def _publish_step(self, target: datetime) -> bool:
        """Move the shared clock over the next batch's slots before claiming them, so that the other
        replicas' schedulers take part of them: never more than one slot per cluster (less than an
        interval past the earliest), so their catch-up rule (R7) takes the same slot a walk would."""
        with self.store.write() as session:
            due = queries.due_clusters(session, target, self.batch_size)
            if not due:
                return False
            window_end = due[0].next_due_at + rules.SNAPSHOT_INTERVAL - timedelta(seconds=1)
            self.clock.set(min(due[-1].next_due_at, window_end, target))
            self._save_clock(session)
            return True

    def _claim_due(self, now: datetime, *, walk: bool) -> list[SnapshotJob]:
        """Claim the next batch of due slots and commit their `queued` snapshots (the intent).

        A claim is a compare-and-set of next_due_at; the unique (cluster, slot) of snapshots backs it,
        so two ticks racing, or a restart, never take two snapshots for one slot. `walk` takes each
        cluster's next slot itself (a manual clock passing it); otherwise due_slot picks the latest
        missed slot: one catch-up after downtime, never a burst.
        """
        # One executemany for the batch where the database reports its row count, else one by one.
        batched = self.store.engine.dialect.supports_sane_multi_rowcount
        try:
            return self._claim_batch(now, walk=walk, one_by_one=not batched)
        except (IntegrityError, _ClaimConflict):
            return self._claim_batch(now, walk=walk, one_by_one=True)

    def _claim_batch(self, now: datetime, *, walk: bool, one_by_one: bool) -> list[SnapshotJob]:
        jobs: list[SnapshotJob] = []
        with self.store.write() as session:
            due = queries.due_clusters(session, now, self.batch_size)
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
                    source = self._source_volume(vols[row.id], region)
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
                sid = new_id()
                rows.append(
                    {
                        "id": sid,
                        "cluster_id": row.id,
                        "project_id": row.project_id,
                        "snapshot_type": "scheduled",
                        "slot_time": slot,
                        "status": "queued",
                        "region": region,
                        "volume_handle": source,
                        "created_at": taken_at,
                        "owner": self.replica_id,
                    }
                )
                jobs.append(SnapshotJob(sid, row.id, row.project_id, row.name, "scheduled", region, source))
            if not one_by_one and claims and not queries.claim_slots(session, claims):
                # Someone else moved a slot meanwhile (or the database cannot say): claim one by one.
                raise _ClaimConflict
            if rows:
                session.execute(Snapshot.__table__.insert(), rows)
            if walk and latest is not None and isinstance(self.clock, ManualClock):
                self.clock.set(latest)
                self._save_clock(session)
        events.emit_queued(self, jobs)
        return jobs

    def _poll_running(self) -> int:
        """Poll every inProgress snapshot and restore job once; returns how many are still running."""
        with self.store.read() as session:
            running = queries.snapshots_in_status(session, "inProgress", owner=self.replica_id)
            restores = [
                job.id
                for job in queries.restore_jobs_in_status(session, ["inProgress"], owner=self.replica_id)
            ]
        still = self._poll_tokens(
            [(s.id, s.op_token or "", s.cluster_id, s.snapshot_type) for s in running if s.op_token]
        )
        still += sum(1 for job_id in restores if self._poll_restore(job_id))
        return still

    def _await_running(self) -> None:
        delay = 0.01
        while True:
            with self.work_lock:
                if not self._poll_running():
                    return
            time.sleep(delay)
            delay = min(delay * 2, self.poll_interval)

    # --- reconciliation, at start and periodically ----------------------------------------------------------

    def reconcile(self) -> None:
        """Finish what a crash interrupted, make storage and the rows agree, and catch up (R7)."""
        with self.work_lock:
            # What no live replica owns is ours from here (a crash of this machine's last run included).
            self._adopt()
            self._finish_cluster_operations()
            self._purge_unbacked()
            with self.store.read() as session:
                running = queries.snapshots_in_status(session, "inProgress", owner=self.replica_id)
            self._poll_snapshots(running)
            self._reconcile_storage()
            self._restart_queued()
            # A stop between a step's results and its retention (a long advance, a tick) left a cluster
            # with more than three: R8 is part of the reconciliation, so it holds after any stop.
            self._retain_all()
            with self.store.read() as session:
                restores = queries.restore_jobs_in_status(
                    session, ["queued", "inProgress"], owner=self.replica_id
                )
            for job in restores:
                log.info("reconcile: resuming restore job %s (%s)", job.id, job.status)
                events.emit(self, events.RECONCILE_FINDING, finding="restore resumed", job=job.id)
                if job.status == "queued":
                    self._run_restore(job.id)
                else:
                    self._poll_restore(job.id)
        caught_up = self.tick()
        if caught_up:
            log.info("reconcile: %d catch-up snapshot(s) after downtime", caught_up)

    def _retain_all(self) -> None:
        """R8 over every cluster that has more scheduled snapshots than it keeps."""
        with self.store.read() as session:
            over = queries.clusters_over_retention(session, rules.RETENTION_COUNT)
        if over:
            log.info("reconcile: applying retention to %d cluster(s)", len(over))
            self._apply_retention(over)

    def _adopt(self) -> leases.Adopted:
        """Own the unfinished operations of replicas whose lease expired (and of none)."""
        self._next_adoption = time.monotonic() + self.lease_seconds / 2
        with self.store.write() as session:
            return leases.adopt_orphans(session, self.replica_id or "")

    def _finish_cluster_operations(self) -> None:
        """Finish the creations and terminations this replica owns and no longer runs (a crash cut them
        short, or they were adopted from a dead replica). Those of live replicas are theirs to finish."""
        with self.store.read() as session:
            mine = select(Cluster.id).where(Cluster.owner == self.replica_id).order_by(Cluster.created_at)
            creating = list(session.execute(mine.where(Cluster.state == "CREATING")).scalars())
            deleting = list(session.execute(mine.where(Cluster.state == "DELETING")).scalars())
        for cluster_id in creating:
            log.info("reconcile: finishing the creation of cluster %s", cluster_id)
            self._create_missing_volumes(cluster_id)
            job = self._finish_creation(cluster_id)
            if job is not None:
                self._run_snapshots([job])
        for cluster_id in deleting:
            log.info("reconcile: finishing the termination of cluster %s", cluster_id)
            self._finish_termination(cluster_id)

    def _adopt_and_resume(self) -> None:
        """While serving: a dead replica's cluster operations are finished, its queued snapshots started
        again, its restores resumed; its inProgress operations are polled by this replica's ticks."""
        adopted = self._adopt()
        if adopted.clusters:
            self._finish_cluster_operations()
        if adopted.snapshots:
            self._restart_queued()
        for job_id in adopted.restore_jobs:
            with self.store.read() as session:
                job = session.get(RestoreJob, job_id)
            if job is not None and job.status == "queued":
                self._run_restore(job_id)

    def _purge_unbacked(self) -> None:
        """R9 finished: a cluster without cloud provider snapshots keeps no snapshot (a crash mid-disable)."""
        with self.store.read() as session:
            rows = session.execute(
                select(Snapshot.cluster_id)
                .join(Cluster, Cluster.id == Snapshot.cluster_id)
                .where(
                    (Cluster.backup_method.is_(None))
                    | (Cluster.backup_method != rules.CLOUD_PROVIDER_SNAPSHOTS)
                )
                .distinct()
            ).scalars()
            cluster_ids = list(rows)
        for cluster_id in cluster_ids:
            log.info("reconcile: deleting the snapshots of cluster %s, whose backup is disabled", cluster_id)
            self._purge_snapshots(cluster_id)

    def reconcile_storage(self) -> None:
        """The periodic reconciliation while serving (the scheduler calls it): storage against the rows.

        A stored snapshot of ours without a row, or whose row failed, is deleted; a completed row whose
        stored snapshot vanished (deleted behind our back) is marked failed. Work in flight is left alone.
        A disable that another shim left half done (backup off, snapshots left) is finished too, so that
        enabling that cluster again is not refused until a restart.
        """
        self._purge_unbacked()
        self._reconcile_storage()

    def _reconcile_storage(self) -> None:
        # Listed before the rows are read (and outside the lock: a cloud lists slowly): a snapshot started
        # meanwhile already has its row, and one deleted meanwhile is deleted again harmlessly.
        stored = self.driver.list_snapshots()
        with self.work_lock:
            self._sweep_storage(stored)
            self._fail_vanished(stored)

    def _sweep_storage(self, stored: Sequence[StoredSnapshot]) -> None:
        """Delete every stored snapshot that no row accounts for, or whose row failed.

        A `queued` row's snapshot is kept: while serving it may be starting this very moment, and at start
        _restart_queued starts it again, which finishes with the copy storage holds (drivers never copy
        one snapshot id twice). So is an unfinished copy for a queued or inProgress row: another replica
        may be writing it now, and one a crash cut short is taken again over it.
        """
        if not stored:
            return
        live = ("queued", "inProgress", "completed")
        ids = [s.snapshot_id or s.unfinished_id for s in stored if s.snapshot_id or s.unfinished_id]
        with self.store.read() as session:
            rows = {s.id: s for s in queries.snapshots_by_ids(session, ids)}
            handles = set(
                session.execute(select(Snapshot.handle).where(Snapshot.handle.is_not(None))).scalars()
            )
        for item in stored:
            row = rows.get(item.snapshot_id or "")
            if row is not None and row.status in live:
                continue
            if item.snapshot_id is None and item.handle in handles:
                continue
            taking = rows.get(item.unfinished_id or "")
            if item.snapshot_id is None and taking is not None and taking.status in leases.UNFINISHED:
                continue
            why = "no record" if row is None else f"its record is {row.status}"
            events.emit(
                self, events.RECONCILE_FINDING, finding="stray stored snapshot", handle=item.handle, why=why
            )
            log.warning("reconcile: deleting stored snapshot %s (%s): %s", item.handle, item.snapshot_id, why)
            try:
                self.driver.delete_snapshot(item.handle)
            except DriverError as error:
                log.error("reconcile: could not delete %s: %s", item.handle, error)

    def _fail_vanished(self, stored: Sequence[StoredSnapshot]) -> None:
        """A completed row whose snapshot is no longer in storage is marked failed, saying so."""
        listed = {s.snapshot_id for s in stored if s.snapshot_id}
        with self.store.read() as session:
            completed = session.execute(
                select(Snapshot.id, Snapshot.handle, Snapshot.cluster_id).where(
                    Snapshot.status == "completed"
                )
            ).all()
        # Not listed may just be newer than the listing: ask storage about each before failing it.
        unlisted = [row for row in completed if row.id not in listed]
        if not unlisted:
            return
        exists = self._map(lambda row: self.driver.snapshot_exists(row.handle or ""), unlisted)
        vanished = [row for row, found in zip(unlisted, exists, strict=True) if found is False]
        for row, found in zip(unlisted, exists, strict=True):
            if isinstance(found, Exception):
                log.warning("reconcile: could not look for snapshot %s in storage: %s", row.id, found)
        if not vanished:
            return
        now = self.now()
        with self.store.write() as session:
            for row in vanished:
                events.emit(self, events.RECONCILE_FINDING, finding="snapshot vanished", snapshot=row.id)
                log.warning(
                    "reconcile: snapshot %s of cluster %s is no longer in storage (%s): marked failed",
                    row.id,
                    row.cluster_id,
                    row.handle,
                )
                session.execute(
                    update(Snapshot)
                    .where(Snapshot.id == row.id, Snapshot.status == "completed")
                    .values(
                        status="failed",
                        failure_reason=(
                            f"SNAPSHOT_VANISHED: the stored snapshot {row.handle} was found missing from "
                            f"storage on {format_time(now)} (deleted outside cloudbackup); it cannot be "
                            "restored"
                        ),
                    )
                )

    def _restart_queued(self) -> None:
        """A `queued` snapshot never reached the driver (or its token was lost): start it again.

        Restarting rather than failing keeps the slot it claimed; a start that reached storage before
        the crash is finished with the copy storage holds, not taken twice.
        """
        while True:
            with self.store.read() as session:
                queued = queries.snapshots_in_status(
                    session, "queued", limit=self.batch_size, owner=self.replica_id
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
                    self, events.RECONCILE_FINDING, finding="queued snapshot restarted", snapshot=s.id
                )
                jobs.append(
                    SnapshotJob(
                        s.id,
                        s.cluster_id,
                        s.project_id,
                        cluster.name,
                        s.snapshot_type,
                        s.region,
                        s.volume_handle,
                    )
                )
            # One line per batch: each snapshot has its own reconcile.finding event already.
            log.info("reconcile: restarting %d queued snapshot(s)", len(jobs))
            orphans = [s.id for s in queued if s.cluster_id not in clusters or not s.volume_handle]
            if orphans:
                with self.store.write() as session:
                    queries.delete_snapshot_rows(session, orphans)
            self._run_snapshots(jobs)


def _call(task: Callable[[], T]) -> T:
    return task()


class _ClaimConflict(Exception):
    """A batch claim found a slot already moved; the batch is claimed again one cluster at a time."""
