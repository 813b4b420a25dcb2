"""What the behavioural driver suite needs: a storage harness per driver kind, and pure helpers."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Protocol

from shim.drivers.base import Driver, OperationStatus, VolumeSpec
from shim.drivers.digest import BLOCK_SIZE, content_digest, format_digest, zero_digest
from shim.drivers.local import SNAPSHOTS, LocalDriver

GIB = 1024**3
REGION = "eastus2"
OTHER_REGION = "westeurope"


class StorageHarness(Protocol):
    """One driver under test plus the back doors a test needs into its storage.

    Each driver kind implements this for its own storage (files for local, the fake ARM server for azure);
    the tests use nothing else, so they hold for every driver.
    """

    driver: Driver
    # Whether the driver digests content (result `checksum`, `expected_checksum` checked on restore).
    checksums: bool

    def restarted(self) -> Driver:
        """A new driver on the same storage, as after the shim restarted."""

    def wait(self, token: str, driver: Driver | None = None) -> OperationStatus:
        """The operation's final status (the local driver finishes at once; a cloud is polled)."""

    def write_volume(self, handle: str, offset: int, data: bytes) -> None:
        """Write bytes into a volume, as the database on that member would."""

    def volume_digest(self, handle: str) -> str:
        """The content digest (shim.drivers.digest) of a volume's whole logical size."""

    def corrupt_snapshot(self, handle: str) -> None:
        """Change a stored snapshot's content behind the driver's back (bit rot, a stray write)."""

    def leave_unfinished_snapshot(self, region: str, snapshot_id: str) -> None:
        """Leave in storage what a snapshot cut short by a crash leaves."""

    def close(self) -> None:
        """Close every driver made."""


class LocalStorage:
    """The local driver's harness: its storage is the data directory."""

    checksums = True

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.driver: Driver = LocalDriver(data_dir)
        self._drivers: list[Driver] = [self.driver]

    def restarted(self) -> Driver:
        driver = LocalDriver(self.data_dir)
        self._drivers.append(driver)
        return driver

    def wait(self, token: str, driver: Driver | None = None) -> OperationStatus:
        status = (driver or self.driver).poll(token)
        assert status.finished, f"the local driver left {token} {status.state}"
        return status

    def write_volume(self, handle: str, offset: int, data: bytes) -> None:
        fd = os.open(self.data_dir / handle, os.O_WRONLY)
        try:
            assert os.pwrite(fd, data, offset) == len(data)
        finally:
            os.close(fd)

    def volume_digest(self, handle: str) -> str:
        return content_digest(self.data_dir / handle)

    def corrupt_snapshot(self, handle: str) -> None:
        path = self.data_dir / handle
        with path.open("r+b") as file:
            file.seek(BLOCK_SIZE + 7)
            byte = file.read(1)
            file.seek(BLOCK_SIZE + 7)
            file.write(bytes([byte[0] ^ 0xFF]))

    def leave_unfinished_snapshot(self, region: str, snapshot_id: str) -> None:
        directory = self.data_dir / SNAPSHOTS / region
        directory.mkdir(parents=True, exist_ok=True)
        (directory / f"{snapshot_id}.snap.partial").write_bytes(b"half a copy")

    def close(self) -> None:
        for driver in self._drivers:
            driver.close()


def volume_spec(
    cluster: str = "c1", member: int = 0, size_gb: int = 1, region: str = REGION, project: str = "p1"
) -> VolumeSpec:
    return VolumeSpec(
        project_id=project,
        cluster_id=cluster,
        cluster_name=f"cluster-{cluster}",
        region=region,
        member=member,
        size_gb=size_gb,
    )


def snapshot_tags(snapshot_id: str, cluster: str = "c1", project: str = "p1") -> dict[str, str]:
    return {"project": project, "cluster": cluster, "snapshot": snapshot_id}


def expected_digest(size: int, writes: Iterable[tuple[int, bytes]] = ()) -> str:
    """The digest of `size` bytes of zeros with `writes` applied, computed in memory block by block."""
    touched: dict[int, bytearray] = {}
    for offset, data in writes:
        assert offset + len(data) <= size, "a write beyond the volume"
        position = offset
        while position < offset + len(data):
            block = position // BLOCK_SIZE
            start = block * BLOCK_SIZE
            content = touched.setdefault(block, bytearray(min(BLOCK_SIZE, size - start)))
            take = min(start + BLOCK_SIZE, offset + len(data)) - position
            content[position - start : position - start + take] = data[
                position - offset : position - offset + take
            ]
            position += take
    count = (size + BLOCK_SIZE - 1) // BLOCK_SIZE
    return format_digest(
        hashlib.sha256(touched[block]).digest()
        if block in touched
        else zero_digest(min(BLOCK_SIZE, size - block * BLOCK_SIZE))
        for block in range(count)
    )
