"""Helpers shared by the azure tests, the behavioural driver suite and the benchmark."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from arm_server import PAGE_SIZE, ArmServer

from shim.drivers.azure import AzureDriver, AzureSettings
from shim.drivers.base import Driver, OperationStatus
from shim.drivers.digest import BLOCK_SIZE, block_count, format_digest, zero_digest

RESOURCE_GROUP = "cloudbackup-test"


def fast_settings(server: ArmServer, resource_group: str = RESOURCE_GROUP, **changes: Any) -> AzureSettings:
    """Settings for `server`: its CA, its token, quick polls and quick retries."""
    values: dict[str, Any] = {
        "subscription_id": server.subscription_id,
        "resource_group": resource_group,
        "endpoint": server.url,
        "access_token": server.token,
        "connection_verify": str(server.ca_path),
        "polling_interval": 0.02,
        "retry_backoff_factor": 0.01,
        "retry_backoff_max": 0.1,
    }
    values.update(changes)
    return AzureSettings(**values)


@contextmanager
def azure_test_driver(**knobs: Any) -> Iterator[tuple[AzureDriver, ArmServer]]:
    """A started ARM server (its knobs set from `knobs`) and an azure driver pointed at it."""
    with ArmServer(**knobs) as server:
        server.add_resource_group(RESOURCE_GROUP)
        driver = AzureDriver(fast_settings(server))
        try:
            yield driver, server
        finally:
            driver.close()


def wait_for(driver: Driver, token: str, timeout: float = 15.0) -> OperationStatus:
    """Poll an operation until it finished (the operation runs in Azure, not on an injected clock)."""
    deadline = time.monotonic() + timeout
    while True:
        status = driver.poll(token)
        if status.finished:
            return status
        if time.monotonic() > deadline:
            raise AssertionError(f"operation {token} still {status.state} after {timeout} s")
        time.sleep(0.01)


def content_digest(arm: ArmServer, handle: str) -> str:
    """The content digest (shim.drivers.digest's format) of a disk or snapshot, from the server's pages."""
    size = arm.size_bytes(handle)
    pages = arm.pages(handle)
    per_block = BLOCK_SIZE // PAGE_SIZE
    digests = []
    for block in range(block_count(size)):
        length = min(BLOCK_SIZE, size - block * BLOCK_SIZE)
        indexes = range(block * per_block, block * per_block + per_block)
        if not any(index in pages for index in indexes):
            digests.append(zero_digest(length))
            continue
        content = b"".join(pages.get(index, bytes(PAGE_SIZE)) for index in indexes)
        digests.append(hashlib.sha256(content[:length]).digest())
    return format_digest(digests)


class AzureStorage:
    """The behavioural suite's harness for the azure driver: its storage is the ARM test server.

    Content goes in and out through the server's side channel (Azure has no API for a disk's bytes);
    the volume digest is computed here, in shim.drivers.digest's format, from the server's pages.
    """

    checksums = False  # Azure exposes no digest of a disk's or a snapshot's content

    def __init__(self, **knobs: Any) -> None:
        knobs.setdefault("latency", 0.05)  # every operation is seen in progress at least once
        self.arm = ArmServer(**knobs).start()
        self.arm.add_resource_group(RESOURCE_GROUP)
        self.settings = fast_settings(self.arm)
        self.driver: AzureDriver = AzureDriver(self.settings)
        self._drivers: list[AzureDriver] = [self.driver]

    def restarted(self) -> AzureDriver:
        driver = AzureDriver(self.settings)
        self._drivers.append(driver)
        return driver

    def wait(self, token: str, driver: Driver | None = None) -> OperationStatus:
        return wait_for(driver or self.driver, token)

    def write_volume(self, handle: str, offset: int, data: bytes) -> None:
        self.arm.write_disk(handle, data, offset)

    def volume_digest(self, handle: str) -> str:
        return content_digest(self.arm, handle)

    def corrupt_snapshot(self, handle: str) -> None:
        page = self.arm.pages(handle).get(0, bytes(PAGE_SIZE))
        self.arm.tamper(handle, bytes([page[7] ^ 0xFF]), 7)

    def leave_unfinished_snapshot(self, region: str, snapshot_id: str) -> None:
        """What a crash leaves in Azure: a snapshot of ours whose creation Failed and was never removed."""
        tags = {"cloudbackup-managed": "true", "cloudbackup-snapshot-id": snapshot_id}
        self.arm.put_snapshot(RESOURCE_GROUP, f"cb-snap-{snapshot_id}", region, 1, tags, state="Failed")

    def close(self) -> None:
        for driver in self._drivers:
            driver.close()
        self.arm.stop()
