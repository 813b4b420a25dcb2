"""The storage behind a shim under test, per driver kind: what the API tests look at to see storage itself."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from shimkit import FlakyDriver, content_fingerprint, stored_snapshot_files

from shim.drivers.base import Driver
from shim.drivers.digest import content_digest
from shim.drivers.local import LocalDriver

if TYPE_CHECKING:
    from shim.config import Config

DRIVER_KINDS = ("local", "azure")
TAG_SNAPSHOT = "cloudbackup-snapshot-id"


class ShimStorage(Protocol):
    """One driver kind's storage as the API tests see it: the same questions, each kind's own answers."""

    kind: str
    # Whether the driver digests content (a snapshot's `checksum`, checked again on restore).
    checksums: bool

    def driver_factory(self, config: Config) -> Driver:
        """Config.driver_factory: a new driver on this storage (also after a restart)."""

    def stored_by_region(self) -> dict[str, set[str]]:
        """Region -> ids of the snapshots really in storage."""

    def volumes_by_region(self) -> dict[str, set[str]]:
        """Region -> handles of the member volumes really in storage."""

    def volume_size(self, handle: str) -> int:
        """A volume's size in bytes."""

    def write(self, handle: str, data: bytes, offset: int = 0) -> None:
        """Write into a volume, as the database on that member would."""

    def read(self, handle: str, offset: int, length: int) -> bytes:
        """Bytes of a volume or a stored snapshot."""

    def fingerprint(self, handle: str) -> str:
        """A digest of a volume's or snapshot's data: equal exactly when their contents are."""

    def content_digest(self, handle: str) -> str:
        """shim.drivers.digest's digest of a volume's or snapshot's whole content (what a checksum holds)."""

    def fail_next_snapshots(self, count: int = 1, *, at_start: bool = False) -> None:
        """The next snapshots fail with `InternalDiskError: injected failure` (at start: refused at once,
        `OperationNotAllowed: injected failure at start`)."""

    def snapshots_started(self) -> int:
        """How many snapshots storage was asked to take."""

    def close(self) -> None:
        """Release the storage (stop the test server)."""


def stored_ids(storage: ShimStorage) -> set[str]:
    return {sid for ids in storage.stored_by_region().values() for sid in ids}


def volume_handles(storage: ShimStorage) -> set[str]:
    return {handle for handles in storage.volumes_by_region().values() for handle in handles}


class LocalShimStorage:
    """The local driver (no fsync: test data) behind FlakyDriver; storage is the data directory."""

    kind = "local"
    checksums = True

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.drivers: list[FlakyDriver] = []

    def driver_factory(self, config: Config) -> Driver:
        driver = FlakyDriver(LocalDriver(config.data_dir, durable=False))
        self.drivers.append(driver)
        return driver

    def stored_by_region(self) -> dict[str, set[str]]:
        return stored_snapshot_files(self.data_dir)

    def volumes_by_region(self) -> dict[str, set[str]]:
        found: dict[str, set[str]] = {}
        for path in (self.data_dir / "volumes").rglob("*.img"):
            handle = path.relative_to(self.data_dir)
            found.setdefault(handle.parts[1], set()).add(str(handle))
        return found

    def volume_size(self, handle: str) -> int:
        return (self.data_dir / handle).stat().st_size

    def write(self, handle: str, data: bytes, offset: int = 0) -> None:
        with open(self.data_dir / handle, "r+b") as volume:
            volume.seek(offset)
            volume.write(data)

    def read(self, handle: str, offset: int, length: int) -> bytes:
        with open(self.data_dir / handle, "rb") as file:
            file.seek(offset)
            return file.read(length)

    def fingerprint(self, handle: str) -> str:
        return content_fingerprint(self.data_dir / handle)[1]

    def content_digest(self, handle: str) -> str:
        return content_digest(self.data_dir / handle)

    def fail_next_snapshots(self, count: int = 1, *, at_start: bool = False) -> None:
        driver = self.drivers[-1]
        driver.fail_snapshots, driver.fail_at_start = count, at_start

    def snapshots_started(self) -> int:
        return sum(len(driver.started) for driver in self.drivers)

    def close(self) -> None:
        pass


class AzureShimStorage:
    """The azure driver against the ARM test server (no latency, quick polls); storage is the server."""

    kind = "azure"
    checksums = False  # Azure exposes no digest of a disk's or a snapshot's content

    def __init__(self, **knobs: Any) -> None:
        # The server and its harness live with the azure driver's own tests; the SDK loads only when asked.
        sys.path.insert(0, str(Path(__file__).resolve().parent / "azure"))
        from arm_server import PAGE_SIZE, ArmServer
        from azure_harness import RESOURCE_GROUP, fast_settings

        self.page_size = PAGE_SIZE
        self.arm = ArmServer(**knobs).start()
        self.arm.add_resource_group(RESOURCE_GROUP)
        self.resource_group = RESOURCE_GROUP
        self.settings = fast_settings(self.arm, polling_interval=0.01)

    def driver_factory(self, config: Config) -> Driver:
        from shim.drivers.azure import AzureDriver

        return AzureDriver(self.settings)

    def environment(self) -> dict[str, str]:
        """The variables a `cloudbackup serve --driver azure` process needs to use this server."""
        return {
            "AZURE_SUBSCRIPTION_ID": self.arm.subscription_id,
            "CLOUDBACKUP_AZURE_RESOURCE_GROUP": self.resource_group,
            "CLOUDBACKUP_AZURE_ENDPOINT": self.arm.url,
            "CLOUDBACKUP_AZURE_ACCESS_TOKEN": self.arm.token or "",
            "REQUESTS_CA_BUNDLE": str(self.arm.ca_path),
            "CLOUDBACKUP_AZURE_POLLING_INTERVAL": "0.05",
        }

    def snapshots(self) -> list[dict[str, Any]]:
        return self.arm.bodies("snapshots")

    def stored_by_region(self) -> dict[str, set[str]]:
        found: dict[str, set[str]] = {}
        for body in self.snapshots():
            sid = body["tags"].get(TAG_SNAPSHOT) or body["name"]
            found.setdefault(body["location"].replace(" ", "").lower(), set()).add(sid)
        return found

    def volumes_by_region(self) -> dict[str, set[str]]:
        found: dict[str, set[str]] = {}
        for body in self.arm.bodies("disks"):
            found.setdefault(body["location"].replace(" ", "").lower(), set()).add(body["id"])
        return found

    def volume_size(self, handle: str) -> int:
        return self.arm.size_bytes(handle)

    def write(self, handle: str, data: bytes, offset: int = 0) -> None:
        self.arm.write_disk(handle, data, offset)

    def read(self, handle: str, offset: int, length: int) -> bytes:
        pages = self.arm.pages(handle)
        first, last = offset // self.page_size, (offset + length - 1) // self.page_size
        content = b"".join(pages.get(i, bytes(self.page_size)) for i in range(first, last + 1))
        start = offset - first * self.page_size
        return content[start : start + length]

    def fingerprint(self, handle: str) -> str:
        return self.arm.fingerprint(handle)

    def content_digest(self, handle: str) -> str:
        from azure_harness import content_digest as arm_content_digest

        return arm_content_digest(self.arm, handle)

    def fail_next_snapshots(self, count: int = 1, *, at_start: bool = False) -> None:
        if at_start:
            self.arm.inject_fault(
                "PUT",
                r"/snapshots/[^/]+$",
                409,
                count=count,
                code="OperationNotAllowed",
                message="injected failure at start",
            )
        else:
            self.arm.fail_operations("snapshots", ".", "InternalDiskError", "injected failure", count=count)

    def snapshots_started(self) -> int:
        return len(self.arm.requests_matching("PUT", r"/snapshots/[^/]+$"))

    def close(self) -> None:
        self.arm.stop()


def make_storage(kind: str, data_dir: Path) -> ShimStorage:
    if kind == "local":
        return LocalShimStorage(data_dir)
    if kind == "azure":
        return AzureShimStorage()
    raise ValueError(f"no storage harness for driver {kind!r}")
