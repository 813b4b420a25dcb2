"""Service: the one object the API, the CLI, the scheduler and the tests call; each call goes to its job."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

from shim.clock import Clock
from shim.drivers.base import Driver
from shim.service.adoption import Adoption
from shim.service.backups import Backup, Backups
from shim.service.clusters import Clusters
from shim.service.context import Context
from shim.service.engine import Engine
from shim.service.projects import Projects
from shim.service.reconcile import Reconcile
from shim.service.restores import Restores
from shim.service.schedule import Schedule
from shim.service.snapshots import Snapshots
from shim.store import Store
from shim.store.models import Cluster, Project, RestoreJob, Snapshot


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
        self.context = Context(
            store,
            driver,
            clock,
            source=self,
            batch_size=batch_size,
            driver_workers=driver_workers,
            poll_interval=poll_interval,
            snapshot_delay=snapshot_delay,
        )
        ctx = self.context
        self.engine = Engine(ctx)
        self.projects = Projects(ctx)
        self.backups = Backups(ctx, self.engine)
        self.clusters = Clusters(ctx, self.engine, self.backups)
        self.snapshots = Snapshots(ctx, self.engine)
        self.restores = Restores(ctx)
        self.adoption = Adoption(ctx, self.engine, self.clusters, self.restores)
        self.schedule = Schedule(ctx, self.engine, self.restores, self.adoption)
        self.reconciler = Reconcile(
            ctx, self.engine, self.clusters, self.backups, self.restores, self.adoption, self.schedule
        )

    # --- what the callers read and set of the shared context --------------------------------------------

    @property
    def store(self) -> Store:
        return self.context.store

    @property
    def driver(self) -> Driver:
        return self.context.driver

    @property
    def clock(self) -> Clock:
        return self.context.clock

    @property
    def pool(self) -> ThreadPoolExecutor:
        return self.context.pool

    @property
    def work_lock(self) -> threading.RLock:
        return self.context.work_lock

    @property
    def advance_lock(self) -> threading.Lock:
        return self.context.advance_lock

    @property
    def stopping(self) -> threading.Event:
        return self.context.stopping

    @property
    def batch_size(self) -> int:
        return self.context.batch_size

    @property
    def poll_interval(self) -> float:
        return self.context.poll_interval

    @property
    def snapshot_delay(self) -> tuple[str, float] | None:
        return self.context.snapshot_delay

    @property
    def replica_id(self) -> str | None:
        return self.context.replica_id

    @replica_id.setter
    def replica_id(self, value: str | None) -> None:
        self.context.replica_id = value

    @property
    def lease_seconds(self) -> float:
        return self.context.lease_seconds

    @lease_seconds.setter
    def lease_seconds(self, value: float) -> None:
        self.context.lease_seconds = value

    @property
    def _next_adoption(self) -> float:
        """When (time.monotonic) the scheduler next looks for a dead replica's operations."""
        return self.context.next_adoption

    @_next_adoption.setter
    def _next_adoption(self, value: float) -> None:
        self.context.next_adoption = value

    # --- plumbing ------------------------------------------------------------------------------------

    def close(self) -> None:
        self.context.close()

    def now(self) -> datetime:
        return self.context.now()

    def load_manual_clock(self) -> None:
        self.context.load_manual_clock()

    # --- projects ------------------------------------------------------------------------------------

    def list_projects(self, *, only: str | None, offset: int, limit: int) -> tuple[list[Project], int]:
        return self.projects.list_projects(only=only, offset=offset, limit=limit)

    def project_summaries(self, project_ids: Iterable[str]) -> dict[str, tuple[str | None, int]]:
        return self.projects.project_summaries(project_ids)

    def get_project(self, project_id: str) -> Project:
        return self.projects.get_project(project_id)

    def create_project(self, name: str) -> Project:
        return self.projects.create_project(name)

    def delete_project(self, project_id: str) -> None:
        self.projects.delete_project(project_id)

    # --- clusters ------------------------------------------------------------------------------------

    def list_clusters(self, project_id: str, *, offset: int, limit: int) -> tuple[list[Cluster], int]:
        return self.clusters.list_clusters(project_id, offset=offset, limit=limit)

    def get_cluster(self, project_id: str, name: str) -> Cluster:
        return self.clusters.get_cluster(project_id, name)

    def create_cluster(self, project_id: str, body: dict[str, Any]) -> Cluster:
        return self.clusters.create_cluster(project_id, body)

    def update_cluster(self, project_id: str, name: str, body: dict[str, Any]) -> Cluster:
        return self.clusters.update_cluster(project_id, name, body)

    def terminate_cluster(self, project_id: str, name: str) -> None:
        self.clusters.terminate_cluster(project_id, name)

    # --- backup --------------------------------------------------------------------------------------

    def get_backup(self, project_id: str, name: str) -> Backup:
        return self.backups.get_backup(project_id, name)

    def enable_backup(
        self,
        project_id: str,
        name: str,
        method: str,
        *,
        dry_run: bool = False,
        deletion_protection: bool | None = None,
    ) -> tuple[Backup, bool]:
        return self.backups.enable_backup(
            project_id, name, method, dry_run=dry_run, deletion_protection=deletion_protection
        )

    def disable_backup(self, project_id: str, name: str) -> bool:
        return self.backups.disable_backup(project_id, name)

    # --- snapshots -----------------------------------------------------------------------------------

    def list_snapshots(
        self, project_id: str, name: str, *, offset: int, limit: int
    ) -> tuple[Any, list[Any], int]:
        return self.snapshots.list_snapshots(project_id, name, offset=offset, limit=limit)

    def get_snapshot(self, project_id: str, name: str, snapshot_id: str) -> tuple[Cluster, Snapshot]:
        return self.snapshots.get_snapshot(project_id, name, snapshot_id)

    def take_snapshot(
        self, project_id: str, name: str, description: str | None, *, retention_days: int | None = None
    ) -> tuple[Cluster, Snapshot]:
        return self.snapshots.take_snapshot(project_id, name, description, retention_days=retention_days)

    def delete_snapshot(self, project_id: str, name: str, snapshot_id: str) -> None:
        self.snapshots.delete_snapshot(project_id, name, snapshot_id)

    # --- restores ------------------------------------------------------------------------------------

    def list_restore_jobs(
        self, project_id: str, name: str, *, offset: int, limit: int
    ) -> tuple[list[RestoreJob], int]:
        return self.restores.list_restore_jobs(project_id, name, offset=offset, limit=limit)

    def get_restore_job(self, project_id: str, name: str, job_id: str) -> RestoreJob:
        return self.restores.get_restore_job(project_id, name, job_id)

    def create_restore_job(
        self, project_id: str, name: str, body: dict[str, Any], *, can_reach: Callable[[str], bool]
    ) -> RestoreJob:
        return self.restores.create_restore_job(project_id, name, body, can_reach=can_reach)

    # --- the schedule and reconciliation ---------------------------------------------------------------

    def tick(self) -> int:
        return self.schedule.tick()

    def advance(self, seconds: int) -> datetime:
        return self.schedule.advance(seconds)

    def reconcile(self) -> None:
        self.reconciler.reconcile()

    def reconcile_storage(self) -> None:
        self.reconciler.reconcile_storage()
