"""Clusters: create with their member volumes, change (regions, disk, backup), terminate (R9)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError

from contract import rules
from shim import plain_fields, protection
from shim.drivers.base import DriverError, VolumeSpec
from shim.errors import DUPLICATE_CLUSTER_NAME, STORAGE_ERROR, ApiError
from shim.service import lookups
from shim.service.common import SnapshotJob, members, new_id, normalised_regions, region_specs
from shim.service.context import Context, Job
from shim.store import queries
from shim.store.models import Cluster, RestoreJob, Volume

if TYPE_CHECKING:
    from shim.service.backups import Backups
    from shim.service.engine import Engine

log = logging.getLogger(__name__)


class Clusters(Job):
    """The clusters of a project and their volumes."""

    def __init__(self, ctx: Context, engine: Engine, backups: Backups) -> None:
        super().__init__(ctx)
        self.engine = engine
        self.backups = backups

    def list_clusters(self, project_id: str, *, offset: int, limit: int) -> tuple[list[Cluster], int]:
        with self.ctx.store.read() as session:
            lookups.project(session, project_id)
            return queries.clusters_page(session, project_id, offset=offset, limit=limit)

    def get_cluster(self, project_id: str, name: str) -> Cluster:
        with self.ctx.store.read() as session:
            return lookups.cluster(session, project_id, name)

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
        with self.ctx.work_lock:
            try:
                with self.ctx.store.write() as session:
                    project = lookups.project(session, project_id, for_update=True)
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
                        created_at=self.ctx.now(),
                        owner=self.ctx.replica_id,
                    )
                    # Fields without rules of their own (deletionProtection), as the schema names them, a
                    # field it adds too; left out, the column's default.
                    plain_fields.apply(cluster, body)
                    session.add(cluster)
                    session.flush()
                    session.add_all(
                        Volume(cluster_id=cluster.id, region=region, member=member)
                        for region, member in members(regions)
                    )
            except IntegrityError:
                raise self._duplicate_cluster(new_shape.name, project_id) from None
            try:
                self.create_missing_volumes(cluster.id)
            except DriverError as error:
                self._undo_creation(cluster.id)
                raise ApiError(
                    502, STORAGE_ERROR, f"Storage refused to create the cluster's volumes: {error.message}"
                ) from None
            job = self.finish_creation(cluster.id)
            if job is not None:
                self.engine.run_snapshots([job])
        return self.get_cluster(project_id, new_shape.name)

    @staticmethod
    def _duplicate_cluster(name: str, project: str) -> ApiError:
        return ApiError(
            409,
            DUPLICATE_CLUSTER_NAME,
            f"Project '{project}' already has a cluster named '{name}'. Pick another name.",
            ["/name"],
        )

    def create_missing_volumes(self, cluster_id: str) -> None:
        """Create the volumes recorded without a handle, and record their handles."""
        with self.ctx.store.read() as session:
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
        results = self.ctx.map(lambda item: self.ctx.driver.create_volume(item[1]), specs)
        created = [
            (volume_id, handle)
            for (volume_id, _), handle in zip(specs, results, strict=True)
            if isinstance(handle, str)
        ]
        if created:
            with self.ctx.store.write() as session:
                for volume_id, handle in created:
                    session.execute(update(Volume).where(Volume.id == volume_id).values(handle=handle))
        errors = [result for result in results if isinstance(result, Exception)]
        if errors:
            first = errors[0]
            raise first if isinstance(first, DriverError) else DriverError("VOLUME_CREATE_FAILED", str(first))

    def _undo_creation(self, cluster_id: str) -> None:
        with self.ctx.store.read() as session:
            handles = [v.handle for v in queries.volumes(session, cluster_id) if v.handle]
        self.ctx.map(self.ctx.driver.delete_volume, handles)
        with self.ctx.store.write() as session:
            session.execute(delete(Volume).where(Volume.cluster_id == cluster_id))
            session.execute(delete(Cluster).where(Cluster.id == cluster_id))

    def finish_creation(self, cluster_id: str) -> SnapshotJob | None:
        """Mark a created cluster IDLE and, if backup was asked for, start its schedule with a snapshot."""
        with self.ctx.store.write() as session:
            cluster = queries.cluster_by_id(session, cluster_id)
            assert cluster is not None
            cluster.state = "IDLE"
            if cluster.backup_method == rules.CLOUD_PROVIDER_SNAPSHOTS and cluster.reference_time is None:
                return self.backups.start_schedule(session, cluster)
        return None

    def update_cluster(self, project_id: str, name: str, body: dict[str, Any]) -> Cluster:
        """PATCH: R11, region and disk rules first; then the volumes; then the new settings in one commit."""
        with self.ctx.work_lock:
            with self.ctx.store.read() as session:
                project = lookups.project(session, project_id)
                cluster = lookups.cluster(session, project_id, name, for_change=True)
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
            results = self.ctx.map(self.ctx.driver.create_volume, specs)
            failures = [r for r in results if isinstance(r, Exception)]
            if not failures and disk > cluster.disk_size_gb:
                grown = self.ctx.map(
                    lambda v: self.ctx.driver.resize_volume(v.handle or "", disk),
                    [v for v in kept if v.handle],
                )
                failures = [r for r in grown if isinstance(r, Exception)]
            if failures:
                self.ctx.map(self.ctx.driver.delete_volume, [r for r in results if isinstance(r, str)])
                raise ApiError(
                    502, STORAGE_ERROR, f"Storage refused to change the cluster's volumes: {failures[0]}"
                )
            new_handles: dict[tuple[str, int], str] = {
                key: handle for key, handle in zip(added, results, strict=True) if isinstance(handle, str)
            }

            job: SnapshotJob | None = None
            try:
                with self.ctx.store.write() as session:
                    if enable:
                        # R4 again, in the transaction that writes, holding the project: another process
                        # may have enabled a method since the check above (which ran before storage).
                        self.backups.check_method_lock(session, project_id, cluster.id, new_shape)
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
                    # deletionProtection among them: a field without rules of its own.
                    plain_fields.apply(row, body)
                    if disable:
                        self.backups.stop_schedule(row)
                    if enable:
                        row.backup_method = rules.CLOUD_PROVIDER_SNAPSHOTS
                        session.flush()
                        job = self.backups.start_schedule(session, row)
            except ApiError:
                # Refused by the late R4 check: the volumes this request added go again (a disk grown
                # meanwhile stays larger than recorded, which no rule minds).
                self.ctx.map(self.ctx.driver.delete_volume, list(new_handles.values()))
                raise
            self.ctx.map(self.ctx.driver.delete_volume, [v.handle for v in removed if v.handle])
            if job is not None:
                self.engine.run_snapshots([job])
        if disable:
            # Outside the lock: a snapshot still running in the cloud is awaited without blocking others.
            self.backups.purge_snapshots(cluster.id)
        return self.get_cluster(project_id, name)

    def terminate_cluster(self, project_id: str, name: str) -> None:
        """R9: delete every snapshot from storage, then the volumes, then the cluster."""
        with self.ctx.work_lock, self.ctx.store.write() as session:
            cluster = lookups.cluster(session, project_id, name, for_change=True)
            protection.check_terminate(cluster)
            cluster.state = "DELETING"
            cluster.owner = self.ctx.replica_id
            self.backups.stop_schedule(cluster)
        self.finish_termination(cluster.id)

    def finish_adopted(self, cluster_ids: Sequence[str]) -> None:
        """Finish the creations and terminations just adopted (from a dead replica, or this machine's run
        that crashed). Only those: one this replica has under way in a request is that request's to finish."""
        if not cluster_ids:
            return
        with self.ctx.store.read() as session:
            adopted = select(Cluster.id).where(Cluster.id.in_(cluster_ids)).order_by(Cluster.created_at)
            creating = list(session.execute(adopted.where(Cluster.state == "CREATING")).scalars())
            deleting = list(session.execute(adopted.where(Cluster.state == "DELETING")).scalars())
        for cluster_id in creating:
            log.info("reconcile: finishing the creation of cluster %s", cluster_id)
            self.create_missing_volumes(cluster_id)
            job = self.finish_creation(cluster_id)
            if job is not None:
                self.engine.run_snapshots([job])
        for cluster_id in deleting:
            log.info("reconcile: finishing the termination of cluster %s", cluster_id)
            self.finish_termination(cluster_id)

    def finish_termination(self, cluster_id: str) -> None:
        self.backups.purge_snapshots(cluster_id)
        with self.ctx.work_lock:
            self._delete_cluster_storage(cluster_id)

    def _delete_cluster_storage(self, cluster_id: str) -> None:
        with self.ctx.store.read() as session:
            handles = [v.handle for v in queries.volumes(session, cluster_id) if v.handle]
        failures = [
            r for r in self.ctx.map(self.ctx.driver.delete_volume, handles) if isinstance(r, Exception)
        ]
        if failures:
            raise ApiError(
                502, STORAGE_ERROR, f"Storage refused to delete the cluster's volumes: {failures[0]}"
            )
        with self.ctx.store.write() as session:
            session.execute(
                update(RestoreJob)
                .where(RestoreJob.target_cluster_id == cluster_id)
                .values(target_cluster_id=None)
            )
            session.execute(delete(RestoreJob).where(RestoreJob.cluster_id == cluster_id))
            session.execute(delete(Volume).where(Volume.cluster_id == cluster_id))
            session.execute(delete(Cluster).where(Cluster.id == cluster_id))
        log.info("terminated cluster %s", cluster_id)
