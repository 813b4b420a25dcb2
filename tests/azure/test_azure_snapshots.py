"""Snapshots: full copies in the given region, traced by tags, through Azure's long-running operations."""

from __future__ import annotations

import dataclasses
import threading
import time

import pytest
from arm_server import GIB, ArmServer
from azure.core.exceptions import HttpResponseError
from azure.mgmt.compute import ComputeManagementClient
from azure_harness import RESOURCE_GROUP, fast_settings, wait_for

from shim.drivers.azure import AzureDriver, AzureSettings
from shim.drivers.base import DriverError, VolumeSpec

SNAPSHOTS = "/providers/Microsoft.Compute/snapshots/"


def _disk(
    driver: AzureDriver, arm: ArmServer, region: str = "eastus2", member: int = 0, content: bytes = b""
) -> str:
    handle = driver.create_volume(VolumeSpec("proj-1", "clu-1", "orders", region, member, 10))
    if content:
        arm.write_disk(handle, content)
    return handle


def _snapshot_id(arm: ArmServer, name: str) -> str:
    return f"/subscriptions/{arm.subscription_id}/resourceGroups/{RESOURCE_GROUP}{SNAPSHOTS}{name}"


def test_a_snapshot_is_a_full_copy_in_the_given_region_tagged_with_its_record(
    azure_driver: AzureDriver, arm: ArmServer
) -> None:
    disk = _disk(azure_driver, arm, content=b"member data")

    token = azure_driver.start_snapshot(
        volume_handle=disk,
        region="eastus2",
        snapshot_id="snap-1",
        tags={"cloudbackup-snapshot-type": "scheduled", "origin": "test"},
    )
    status = wait_for(azure_driver, token)

    assert status.state == "succeeded", status
    handle = _snapshot_id(arm, "cb-snap-snap-1")
    assert status.result == {
        "handle": handle,
        "storageSizeBytes": 10 * GIB,
        "diskSizeBytes": 10 * GIB,
        "checksum": None,
    }
    snapshot = arm.resource(handle)
    assert snapshot is not None
    assert snapshot["location"] == "eastus2"
    assert snapshot["properties"]["incremental"] is False
    assert snapshot["properties"]["creationData"] == {"createOption": "Copy", "sourceResourceId": disk}
    assert snapshot["tags"] == {
        "cloudbackup-managed": "true",
        "cloudbackup-project-id": "proj-1",
        "cloudbackup-cluster-id": "clu-1",
        "cloudbackup-cluster-name": "orders",
        "cloudbackup-snapshot-type": "scheduled",
        "cloudbackup-origin": "test",
        "cloudbackup-snapshot-id": "snap-1",
    }
    assert arm.fingerprint(handle) == arm.fingerprint(disk)


def test_starting_a_snapshot_returns_once_azure_accepted_it_and_poll_follows_the_operation(
    azure_driver: AzureDriver, arm: ArmServer
) -> None:
    disk = _disk(azure_driver, arm)
    arm.latency = 0.5

    started = time.monotonic()
    token = azure_driver.start_snapshot(volume_handle=disk, region="eastus2", snapshot_id="s", tags={})
    start_seconds = time.monotonic() - started
    # Azure holds the snapshot already: a token recorded now always names something to find after a crash.
    assert len(arm.requests_matching("PUT", SNAPSHOTS)) == 1
    assert arm.resource(_snapshot_id(arm, "cb-snap-s"))["properties"]["provisioningState"] == "Creating"
    assert azure_driver.poll(token).state in ("queued", "inProgress")
    while azure_driver.poll(token).state in ("queued", "inProgress"):
        time.sleep(0.02)
    # Starting took a small part of the whole operation (Azure's 0.5 s): it did not wait for the copy.
    assert start_seconds < (time.monotonic() - started) / 2

    assert wait_for(azure_driver, token).state == "succeeded"


def test_a_driver_stopped_right_after_the_start_leaves_an_operation_a_new_one_finishes(
    arm: ArmServer, settings: AzureSettings
) -> None:
    before = AzureDriver(settings)
    disk = _disk(before, arm)
    arm.latency = 0.2
    token = before.start_snapshot(volume_handle=disk, region="eastus2", snapshot_id="s-stop", tags={})
    before.close()  # no time for the runner to step the operation: the process stopped at once
    after = AzureDriver(settings)
    try:
        assert wait_for(after, token).state == "succeeded"
    finally:
        after.close()


def test_starting_the_same_snapshot_twice_starts_one_operation(
    azure_driver: AzureDriver, arm: ArmServer
) -> None:
    disk = _disk(azure_driver, arm)
    arm.latency = 0.2
    first = azure_driver.start_snapshot(volume_handle=disk, region="eastus2", snapshot_id="s", tags={})
    second = azure_driver.start_snapshot(volume_handle=disk, region="eastus2", snapshot_id="s", tags={})

    assert first == second
    assert wait_for(azure_driver, first).state == "succeeded"
    assert len(arm.requests_matching("PUT", SNAPSHOTS)) == 1


def test_a_429_with_retry_after_is_retried_after_the_time_azure_asked_for(
    azure_driver: AzureDriver, arm: ArmServer
) -> None:
    disk = _disk(azure_driver, arm)
    arm.inject_fault("PUT", SNAPSHOTS, 429, count=1, retry_after=1)

    status = wait_for(
        azure_driver,
        azure_driver.start_snapshot(volume_handle=disk, region="eastus2", snapshot_id="s", tags={}),
    )

    assert status.state == "succeeded"
    throttled, accepted = arm.requests_matching("PUT", SNAPSHOTS)
    assert (throttled.status, accepted.status) == (429, 202)
    assert accepted.at - throttled.at >= 0.95


def test_500s_on_the_request_and_on_the_status_polls_are_retried(
    azure_driver: AzureDriver, arm: ArmServer
) -> None:
    disk = _disk(azure_driver, arm)
    arm.latency = 0.1
    since = len(arm.requests)
    arm.inject_fault("PUT", SNAPSHOTS, 500, count=2)
    arm.inject_fault("GET", "/DiskOperations/", 500, count=2)
    arm.inject_fault("GET", "/DiskOperations/", 503, count=1, retry_after=0)

    status = wait_for(
        azure_driver,
        azure_driver.start_snapshot(volume_handle=disk, region="eastus2", snapshot_id="s", tags={}),
    )

    assert status.state == "succeeded"
    assert [r.status for r in arm.requests_matching("PUT", SNAPSHOTS)] == [500, 500, 202]
    assert [r.status for r in arm.requests_matching("GET", "/DiskOperations/", since)][:4] == [
        500,
        500,
        503,
        200,
    ]


def test_throttling_that_outlasts_the_retries_fails_with_azures_code(arm: ArmServer) -> None:
    driver = AzureDriver(fast_settings(arm, retry_total=2))
    try:
        disk = _disk(driver, arm)
        arm.inject_fault("PUT", SNAPSHOTS, 429, count=10, message="Too many snapshot requests.")
        status = wait_for(
            driver, driver.start_snapshot(volume_handle=disk, region="eastus2", snapshot_id="s", tags={})
        )
    finally:
        driver.close()

    assert (status.state, status.error_code, status.error_message) == (
        "failed",
        "TooManyRequests",
        "Too many snapshot requests.",
    )
    assert len(arm.requests_matching("PUT", SNAPSHOTS)) == 3


def test_a_permanent_failure_surfaces_azures_code_and_message_and_leaves_nothing(
    azure_driver: AzureDriver, arm: ArmServer
) -> None:
    disk = _disk(azure_driver, arm)
    arm.latency = 0.1
    arm.fail_operations(
        "snapshots", "doomed", "OperationNotAllowed", "The snapshot quota of the region is exhausted."
    )

    status = wait_for(
        azure_driver,
        azure_driver.start_snapshot(volume_handle=disk, region="eastus2", snapshot_id="doomed", tags={}),
    )

    assert status.state == "failed"
    assert status.error_code == "OperationNotAllowed"
    assert status.error_message == "The snapshot quota of the region is exhausted."
    assert arm.requests_matching("DELETE", "cb-snap-doomed$"), "the failed snapshot is removed"
    _until(lambda: arm.names("snapshots") == [])  # the removal is itself an operation of 0.1 s


def test_a_snapshot_in_another_region_than_its_disk_fails_naming_both(
    azure_driver: AzureDriver, arm: ArmServer
) -> None:
    disk = _disk(azure_driver, arm, region="eastus2")

    status = wait_for(
        azure_driver,
        azure_driver.start_snapshot(volume_handle=disk, region="westus", snapshot_id="s", tags={}),
    )

    assert (status.state, status.error_code) == ("failed", "RegionMismatch")
    assert "eastus2" in (status.error_message or "") and "westus" in (status.error_message or "")
    assert not arm.requests_matching("PUT", SNAPSHOTS)


def test_a_snapshot_of_a_missing_disk_fails_with_resource_not_found(
    azure_driver: AzureDriver, arm: ArmServer
) -> None:
    disk = _disk(azure_driver, arm).replace("/disks/", "/disks/missing-")

    status = wait_for(
        azure_driver,
        azure_driver.start_snapshot(volume_handle=disk, region="eastus2", snapshot_id="s", tags={}),
    )

    assert (status.state, status.error_code) == ("failed", "ResourceNotFound")
    assert "disks/missing-" in (status.error_message or "")


def test_after_a_restart_poll_derives_the_state_from_azure(arm: ArmServer, settings: AzureSettings) -> None:
    before = AzureDriver(settings)
    disk = _disk(before, arm, content=b"abc")
    arm.latency = 0.6
    token = before.start_snapshot(volume_handle=disk, region="eastus2", snapshot_id="s-restart", tags={})
    _until(lambda: arm.requests_matching("PUT", SNAPSHOTS))
    before.close()  # the process stops; Azure goes on

    after = AzureDriver(settings)
    try:
        assert after.poll(token).state == "inProgress"
        status = wait_for(after, token)
    finally:
        after.close()

    assert status.state == "succeeded"
    assert status.result == {
        "handle": _snapshot_id(arm, "cb-snap-s-restart"),
        "storageSizeBytes": 10 * GIB,
        "diskSizeBytes": 10 * GIB,
        "checksum": None,
    }


def test_after_a_restart_a_snapshot_that_never_reached_azure_is_failed(
    arm: ArmServer, settings: AzureSettings
) -> None:
    driver = AzureDriver(settings)
    missing_disk = _disk(driver, arm).replace("/disks/", "/disks/missing-")
    token = driver.start_snapshot(volume_handle=missing_disk, region="eastus2", snapshot_id="lost", tags={})
    wait_for(driver, token)  # it stopped before its PUT
    driver.close()

    after = AzureDriver(settings)
    try:
        status = after.poll(token)
    finally:
        after.close()
    assert (status.state, status.error_code) == ("failed", "ResourceNotFound")
    assert "cb-snap-lost" in (status.error_message or "")


def test_after_a_restart_a_snapshot_azure_failed_is_reported_failed(
    arm: ArmServer, settings: AzureSettings, compute: ComputeManagementClient
) -> None:
    driver = AzureDriver(settings)
    disk = _disk(driver, arm)
    missing_disk = disk.replace("/disks/", "/disks/missing-")
    token = driver.start_snapshot(volume_handle=missing_disk, region="eastus2", snapshot_id="broken", tags={})
    wait_for(driver, token)
    driver.close()
    # Azure holds a snapshot of that name in state Failed (as a crash before its removal would leave it).
    arm.fail_operations("snapshots", "broken", "InternalDiskManagementError", "boom")
    body = {
        "location": "eastus2",
        "properties": {"creationData": {"createOption": "Copy", "sourceResourceId": disk}},
    }
    with pytest.raises(HttpResponseError):
        compute.snapshots.begin_create_or_update(RESOURCE_GROUP, "cb-snap-broken", body).result()

    after = AzureDriver(settings)
    try:
        status = after.poll(token)
    finally:
        after.close()
    assert (status.state, status.error_code) == ("failed", "ProvisioningFailed")
    assert status.error_message == "snapshot cb-snap-broken has provisioningState Failed in Azure"


def test_list_snapshots_follows_next_link_and_keeps_only_ours(
    azure_driver: AzureDriver, arm: ArmServer, compute: ComputeManagementClient
) -> None:
    disk = _disk(azure_driver, arm)
    tokens = [
        azure_driver.start_snapshot(volume_handle=disk, region="eastus2", snapshot_id=f"s{i}", tags={})
        for i in range(5)
    ]
    for token in tokens:
        wait_for(azure_driver, token)
    foreign = {
        "location": "eastus2",
        "properties": {"creationData": {"createOption": "Copy", "sourceResourceId": disk}},
    }
    compute.snapshots.begin_create_or_update(RESOURCE_GROUP, "someone-elses", foreign).result()

    found = azure_driver.list_snapshots()

    assert sorted((s.snapshot_id, s.region) for s in found) == [(f"s{i}", "eastus2") for i in range(5)]
    assert {s.handle for s in found} == {_snapshot_id(arm, f"cb-snap-s{i}") for i in range(5)}
    pages = arm.requests_matching("GET", r"/snapshots$")
    assert len(pages) >= 1 + 3  # the start check, then 6 snapshots in pages of 2
    assert any("$skiptoken" in r.query for r in pages)


def test_a_deleted_snapshot_no_longer_exists_and_deleting_it_again_is_fine(
    azure_driver: AzureDriver, arm: ArmServer
) -> None:
    disk = _disk(azure_driver, arm)
    handle = str(
        wait_for(
            azure_driver,
            azure_driver.start_snapshot(volume_handle=disk, region="eastus2", snapshot_id="d", tags={}),
        ).result["handle"]
    )
    assert azure_driver.snapshot_exists(handle)
    arm.latency = 0.1

    azure_driver.delete_snapshot(handle)

    assert not azure_driver.snapshot_exists(handle)
    assert arm.names("snapshots") == []
    azure_driver.delete_snapshot(handle)


def test_many_snapshots_are_in_flight_at_once_on_a_bounded_pool(
    azure_driver: AzureDriver, arm: ArmServer
) -> None:
    disks = [_disk(azure_driver, arm, member=i) for i in range(20)]
    arm.latency = 0.5
    arm.max_in_flight = 0
    tokens: list[str] = []
    lock = threading.Lock()

    def start(chunk: list[tuple[int, str]]) -> None:  # callers on several threads, as scheduler and API are
        for i, disk in chunk:
            token = azure_driver.start_snapshot(
                volume_handle=disk, region="eastus2", snapshot_id=f"c{i}", tags={}
            )
            with lock:
                tokens.append(token)

    numbered = list(enumerate(disks))
    starters = [threading.Thread(target=start, args=(numbered[k::4],)) for k in range(4)]
    for thread in starters:
        thread.start()
    for thread in starters:
        thread.join()
    statuses = [wait_for(azure_driver, token) for token in tokens]

    assert len(tokens) == 20
    assert all(s.state == "succeeded" for s in statuses)
    assert arm.max_in_flight == 20, "all twenty operations ran in Azure at the same time"
    workers = [t for t in threading.enumerate() if t.name.startswith("azure-driver")]
    assert len(workers) <= azure_driver.settings.max_workers + 1  # the pool and its timer thread


def _until(condition: object, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.01)


def test_after_a_restart_azure_being_unavailable_is_no_verdict_on_the_operation(
    arm: ArmServer, settings: AzureSettings
) -> None:
    driver = AzureDriver(settings)
    disk = _disk(driver, arm)
    token = driver.start_snapshot(volume_handle=disk, region="eastus2", snapshot_id="s", tags={})
    wait_for(driver, token)
    driver.close()
    after = AzureDriver(dataclasses.replace(settings, retry_total=1))
    arm.inject_fault("GET", "/snapshots/cb-snap-s$", 503, count=2)
    try:
        with pytest.raises(HttpResponseError) as err:
            after.poll(token)
        assert not isinstance(err.value, DriverError)
        assert after.poll(token).state == "succeeded"  # the next poll, once Azure answers again
    finally:
        after.close()
