"""What the schedule and API benchmarks share: a fleet of backed-up clusters inserted in bulk, its volumes."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

from contract import rules
from shim.drivers.base import VolumeSpec
from shim.drivers.local import LocalDriver
from shim.service import new_id
from shim.store import Store
from shim.store.models import Cluster, Project, Setting, Snapshot, Volume

MIB = 1024 * 1024
START = datetime(2024, 1, 1, 12, 0, tzinfo=UTC)
# Spread over a few regions, as a real fleet is: each region is a snapshot directory of its own.
REGIONS = ("eastus2", "westeurope", "southeastasia", "australiaeast")
CLUSTERS_PER_PROJECT = 100


@dataclass(frozen=True)
class Member:
    """The one electable member of a fleet cluster, whose volume the schedule snapshots."""

    project_id: str
    cluster_id: str
    cluster_name: str
    region: str


def insert_fleet(
    store: Store,
    count: int,
    *,
    next_due_at: Sequence[datetime] | datetime,
    volume_handles: bool = True,
    completed_snapshots: int = 0,
) -> list[Member]:
    """Insert `count` Azure M10 replica sets with cloud provider snapshots on, as enable_backup leaves them.

    Each has one electable member in one region (so every volume in the fleet is one snapshot source).
    `next_due_at` is one time for all or one per cluster; the reference time is the slot of the first
    snapshot taken (a day before it, or before the completed ones).
    `completed_snapshots` scheduled snapshot rows per cluster are inserted too (rows only, no files).
    """
    dues = [next_due_at] * count if isinstance(next_due_at, datetime) else list(next_due_at)
    projects: list[dict[str, object]] = []
    clusters: list[dict[str, object]] = []
    volumes: list[dict[str, object]] = []
    snapshots: list[dict[str, object]] = []
    members: list[Member] = []
    project_id = ""
    for index in range(count):
        if index % CLUSTERS_PER_PROJECT == 0:
            project_id = new_id()
            number = index // CLUSTERS_PER_PROJECT
            projects.append({"id": project_id, "name": f"fleet-{number:04d}", "created_at": START})
        cluster_id = new_id()
        region = REGIONS[index % len(REGIONS)]
        name = f"rs{index:05d}"
        due = dues[index]
        clusters.append(
            {
                "id": cluster_id,
                "project_id": project_id,
                "name": name,
                "provider_name": "AZURE",
                "instance_size": "M10",
                "cluster_type": "REPLICASET",
                "regions": {region: {"priority": 7, "electableNodes": 1}},
                "disk_size_gb": 1,
                "state": "IDLE",
                "backup_method": rules.CLOUD_PROVIDER_SNAPSHOTS,
                "reference_time": due - rules.SNAPSHOT_INTERVAL * max(1, completed_snapshots),
                "next_due_at": due,
                "created_at": START - timedelta(days=30),
            }
        )
        handle = f"volumes/{region}/{project_id}/{cluster_id}/member-0.img" if volume_handles else None
        volumes.append({"cluster_id": cluster_id, "region": region, "member": 0, "handle": handle})
        for day in range(completed_snapshots):
            taken = due - rules.SNAPSHOT_INTERVAL * (completed_snapshots - day)
            sid = new_id()
            snapshots.append(
                {
                    "id": sid,
                    "cluster_id": cluster_id,
                    "project_id": project_id,
                    "snapshot_type": "scheduled",
                    "slot_time": taken,
                    "status": "completed",
                    "region": region,
                    "volume_handle": handle,
                    "op_token": f"snapshot:{region}/{sid}",
                    "handle": f"snapshots/{region}/{sid}.snap",
                    "storage_size_bytes": MIB,
                    "disk_size_bytes": MIB,
                    "checksum": "sha256-4m:" + "0" * 64,
                    "created_at": taken,
                    "finished_at": taken,
                }
            )
        members.append(Member(project_id, cluster_id, name, region))
    with store.engine.execution_options(cloudbackup_write=True).begin() as conn:
        conn.execute(Project.__table__.insert(), projects)
        conn.execute(Cluster.__table__.insert(), clusters)
        conn.execute(Volume.__table__.insert(), volumes)
        if snapshots:
            conn.execute(Snapshot.__table__.insert(), snapshots)
    return members


def set_manual_clock(store: Store, now: datetime) -> None:
    """Where a `--manual-clock` shim started on this database will find its clock."""
    with store.write() as session:
        session.merge(Setting(key="manual_clock_now", value=now.isoformat()))


def write_volumes(data_dir: Path, members: Sequence[Member], size: int) -> None:
    """Create each member's volume file where the local driver keeps it, full of random bytes, then sync.

    The files are created through the local driver's own create_volume (so the layout is its own), without
    fsync one by one: a single sync at the end puts the whole setup on disk before anything is timed.
    """
    driver = LocalDriver(data_dir, durable=False, bytes_per_gb=size)
    stream = _random_stream()
    for member in members:
        handle = driver.create_volume(
            VolumeSpec(member.project_id, member.cluster_id, member.cluster_name, member.region, 0, 1)
        )
        fd = os.open(data_dir / handle, os.O_WRONLY)
        try:
            data = stream(size)
            written = 0
            while written < size:
                written += os.pwrite(fd, data[written:], written)
        finally:
            os.close(fd)
    os.sync()


def _random_stream() -> Callable[[int], bytes]:
    """Random bytes fast: an AES-CTR keystream under a random key (os.urandom where that is unavailable)."""
    try:
        from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
    except ImportError:
        return os.urandom
    encryptor = Cipher(algorithms.AES(os.urandom(32)), modes.CTR(os.urandom(16))).encryptor()

    def take(size: int) -> bytes:
        return encryptor.update(bytes(size))

    return take


def filesystem(path: Path) -> str:
    """The type of the file system holding `path`, from /proc/mounts (Linux), else "unknown"."""
    try:
        mounts = [line.split() for line in Path("/proc/mounts").read_text().splitlines()]
    except OSError:
        return "unknown"
    best = ("", "unknown")
    resolved = str(path.resolve())
    for fields in mounts:
        mount_point, fs_type = fields[1], fields[2]
        if (resolved == mount_point or resolved.startswith(mount_point.rstrip("/") + "/")) and len(
            mount_point
        ) > len(best[0]):
            best = (mount_point, fs_type)
    return best[1]


class Database:
    """The database a benchmark runs on: SQLite in the data directory, or a throw-away PostgreSQL server."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.server = None
        if kind == "postgresql":
            import sys

            sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
            from pgserver import PostgresServer

            self.server = PostgresServer()
            self.server.start()
            with self.server.admin() as conn:
                conn.execute("CREATE DATABASE bench")

    def url(self) -> str | None:
        """None: SQLite in the data directory."""
        return self.server.url("bench") if self.server is not None else None

    def close(self) -> None:
        if self.server is not None:
            self.server.stop()


def stop_servers(servers: Sequence[subprocess.Popen[Any]], logs: Sequence[IO[Any]], timeout: float) -> None:
    """SIGTERM every `cloudbackup serve` at once, wait for each (killing one that outlasts `timeout`), then
    close their log files: no benchmark leaves a server behind."""
    for server in servers:
        server.send_signal(signal.SIGTERM)
    for server in servers:
        try:
            server.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    for log in logs:
        log.close()
