"""The database tables: projects, clusters and their volumes, snapshots, restore jobs, API keys, settings."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from shim.store.types import UTCDateTime


class Base(DeclarativeBase):
    """The declarative base every table hangs off."""


class Setting(Base):
    """A named value the process keeps across restarts (the nonce key, the manual clock's now)."""

    __tablename__ = "settings"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class Project(Base):
    """A project (an Atlas group); its backup method is derived from its clusters."""

    __tablename__ = "projects"

    id: Mapped[str] = mapped_column(String(24), primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Cluster(Base):
    """A replica set and its backup settings; `next_due_at` is set while cloud provider snapshots run."""

    __tablename__ = "clusters"
    __table_args__ = (UniqueConstraint("project_id", "name", name="uq_clusters_project_name"),)

    id: Mapped[str] = mapped_column(String(24), primary_key=True)
    project_id: Mapped[str] = mapped_column(String(24), ForeignKey("projects.id"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    provider_name: Mapped[str] = mapped_column(String(16))
    instance_size: Mapped[str] = mapped_column(String(8))
    cluster_type: Mapped[str] = mapped_column(String(16))
    # Region name -> {"priority": int, "electableNodes": int}, in the order the user gave them.
    regions: Mapped[dict[str, Any]] = mapped_column(JSON)
    disk_size_gb: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(16))
    backup_method: Mapped[str | None] = mapped_column(String(32), nullable=True)
    reference_time: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    next_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True, index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # While set, terminating the cluster is refused (DELETION_PROTECTED), as is disabling its backup for
    # `backup_deletion_protection`: both would delete every snapshot at once (R9).
    deletion_protection: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    backup_deletion_protection: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # The replica that began the cluster's creation or termination (Replica.id); while it is CREATING or
    # DELETING another replica leaves it alone until that replica's lease ends, then finishes it.
    owner: Mapped[str | None] = mapped_column(String(32), nullable=True)


class Volume(Base):
    """One member's volume of a cluster, in one of its regions."""

    __tablename__ = "volumes"
    __table_args__ = (UniqueConstraint("cluster_id", "region", "member", name="uq_volumes_member"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    cluster_id: Mapped[str] = mapped_column(String(24), ForeignKey("clusters.id"), index=True)
    region: Mapped[str] = mapped_column(String(64))
    member: Mapped[int] = mapped_column(Integer)
    handle: Mapped[str | None] = mapped_column(String(1024), nullable=True)


class Snapshot(Base):
    """A snapshot: its intent (queued), its driver operation (inProgress) and its result."""

    __tablename__ = "snapshots"
    __table_args__ = (
        # One slot never gets two snapshots, even across a restart or two racing ticks.
        UniqueConstraint("cluster_id", "slot_time", name="uq_snapshots_slot"),
        # A page of a cluster's snapshots, newest first, read straight off this index (backwards).
        Index("ix_snapshots_cluster_created", "cluster_id", "created_at", "id"),
    )

    id: Mapped[str] = mapped_column(String(24), primary_key=True)
    cluster_id: Mapped[str] = mapped_column(String(24), ForeignKey("clusters.id"))
    project_id: Mapped[str] = mapped_column(String(24))
    snapshot_type: Mapped[str] = mapped_column(String(16))
    slot_time: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    status: Mapped[str] = mapped_column(String(16), index=True)
    region: Mapped[str] = mapped_column(String(64))
    volume_handle: Mapped[str | None] = mapped_column(String(1024), nullable=True)
    op_token: Mapped[str | None] = mapped_column(Text, nullable=True)
    handle: Mapped[str | None] = mapped_column(String(1024), nullable=True)
    storage_size_bytes: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    disk_size_bytes: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    checksum: Mapped[str | None] = mapped_column(String(128), nullable=True)
    failure_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    description: Mapped[str | None] = mapped_column(String(256), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # The replica executing the snapshot's driver operation (Replica.id); another replica leaves it alone
    # while that replica's lease lives.
    owner: Mapped[str | None] = mapped_column(String(32), nullable=True)
    # An on-demand snapshot taken with retentionInDays is deleted once this moment passes. Indexed: every
    # scheduler tick reads the earliest one.
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True, index=True)


class SnapshotCount(Base):
    """How many snapshot rows a cluster has: the exact totalCount of its listing, read in one lookup.

    Kept by database triggers (revision 0003) in the transaction that inserts or deletes the snapshots,
    so every writer keeps it exact; a separate table, so that its row locks never meet the claims' locks
    on clusters.
    """

    __tablename__ = "snapshot_counts"

    cluster_id: Mapped[str] = mapped_column(String(24), primary_key=True)
    total: Mapped[int] = mapped_column(BigInteger)


class RestoreJob(Base):
    """A restore of one snapshot onto every member volume of a target cluster."""

    __tablename__ = "restore_jobs"
    __table_args__ = (Index("ix_restore_jobs_cluster_created", "cluster_id", "created_at"),)

    id: Mapped[str] = mapped_column(String(24), primary_key=True)
    project_id: Mapped[str] = mapped_column(String(24))
    cluster_id: Mapped[str] = mapped_column(String(24), ForeignKey("clusters.id"))
    snapshot_id: Mapped[str] = mapped_column(String(24))
    target_project_id: Mapped[str] = mapped_column(String(24))
    target_cluster_id: Mapped[str | None] = mapped_column(String(24), nullable=True)
    target_cluster_name: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), index=True)
    # One entry per target volume: {"volumeId", "region", "token", "state", "volumeHandle"}.
    operations: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    failure_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    owner: Mapped[str | None] = mapped_column(String(32), nullable=True)


class Replica(Base):
    """A running `serve` process on this database; its lease, renewed while it lives, covers the
    operations it owns (by the wall clock, never the manual one)."""

    __tablename__ = "replicas"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    description: Mapped[str] = mapped_column(String(256))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    lease_until: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class ApiKey(Base):
    """An API key pair. Digest needs only HA1 = H(public:realm:private), kept instead of the private key."""

    __tablename__ = "api_keys"

    public_key: Mapped[str] = mapped_column(String(32), primary_key=True)
    ha1_md5: Mapped[str] = mapped_column(String(32))
    ha1_sha256: Mapped[str] = mapped_column(String(64))
    project_id: Mapped[str | None] = mapped_column(String(24), nullable=True, index=True)
    read_only: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # When a request last authenticated with the key (`cloudbackup keys list`); written at most once a minute.
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True, default=None)


class DigestNonceUse(Base):
    """A (nonce, nc) pair a Digest request was accepted with: the unique key refuses its replay in every
    process on the database. Rows are pruned once the nonce has expired (expired nonces are refused)."""

    __tablename__ = "digest_nonce_uses"

    nonce: Mapped[str] = mapped_column(String(64), primary_key=True)
    nc: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
