"""Restores: a new disk from the snapshot replaces the member's disk, all or nothing."""

from __future__ import annotations

import time

from arm_server import ArmServer
from azure_harness import wait_for

from shim.drivers.azure import AzureDriver, AzureSettings, restored_disk_name
from shim.drivers.base import VolumeSpec

DISKS = "/providers/Microsoft.Compute/disks/"


def _member(
    driver: AzureDriver, arm: ArmServer, cluster: str, region: str = "eastus2", size: int = 10
) -> str:
    return driver.create_volume(VolumeSpec("proj", cluster, cluster, region, 0, size))


def _snapshot(driver: AzureDriver, disk: str, snapshot_id: str, region: str = "eastus2") -> str:
    status = wait_for(
        driver, driver.start_snapshot(volume_handle=disk, region=region, snapshot_id=snapshot_id, tags={})
    )
    assert status.state == "succeeded", status
    return str(status.result["handle"])


def _restore(driver: AzureDriver, snapshot: str, target: str, region: str = "eastus2") -> str:
    return driver.start_restore(
        snapshot_handle=snapshot, target_volume_handle=target, region=region, expected_checksum=None
    )


def test_a_restore_replaces_the_members_disk_with_one_made_from_the_snapshot(
    azure_driver: AzureDriver, arm: ArmServer
) -> None:
    source = _member(azure_driver, arm, "src")
    arm.write_disk(source, b"the data at snapshot time")
    snapshot = _snapshot(azure_driver, source, "snap-7")
    arm.write_disk(source, b"later writes are not in the snapshot")
    target = _member(azure_driver, arm, "dst", size=20)
    arm.write_disk(target, b"the target's own data")
    arm.latency = 0.1

    status = wait_for(azure_driver, _restore(azure_driver, snapshot, target))

    assert status.state == "succeeded", status
    new = str(status.result["volumeHandle"])
    assert status.result == {"volumeHandle": new, "checksum": None}
    assert new.rsplit("/", 1)[1] == restored_disk_name("cb-dst-eastus2-m0", "cb-snap-snap-7")
    assert arm.fingerprint(new) == arm.fingerprint(snapshot) != arm.fingerprint(source)
    assert arm.resource(target) is None, "the old disk was deleted"
    disk = arm.resource(new)
    assert disk is not None
    assert disk["location"] == "eastus2"
    assert disk["properties"]["creationData"] == {"createOption": "Copy", "sourceResourceId": snapshot}
    assert disk["properties"]["diskSizeGB"] == 20, "a larger target keeps its size"
    assert disk["tags"]["cloudbackup-cluster-id"] == "dst"
    assert disk["tags"]["cloudbackup-restored-from"] == "snap-7"
    created = arm.requests_matching("PUT", DISKS + new.rsplit("/", 1)[1])[0]
    deleted = arm.requests_matching("DELETE", DISKS + "cb-dst-eastus2-m0$")[0]
    assert deleted.at > created.at


def test_restoring_twice_onto_the_same_member_keeps_names_short_and_distinct(
    azure_driver: AzureDriver, arm: ArmServer
) -> None:
    disk = _member(azure_driver, arm, "c")
    snapshot = _snapshot(azure_driver, disk, "s")

    first = str(wait_for(azure_driver, _restore(azure_driver, snapshot, disk)).result["volumeHandle"])
    second = str(wait_for(azure_driver, _restore(azure_driver, snapshot, first)).result["volumeHandle"])

    assert len({disk, first, second}) == 3
    assert second.rsplit("/", 1)[1].startswith("cb-c-eastus2-m0-r")
    assert len(second.rsplit("/", 1)[1]) == len(first.rsplit("/", 1)[1])
    assert arm.names("disks") == [second.rsplit("/", 1)[1]]


def test_a_snapshot_in_another_region_is_refused_naming_both_regions(
    azure_driver: AzureDriver, arm: ArmServer
) -> None:
    snapshot = _snapshot(azure_driver, _member(azure_driver, arm, "east"), "s")
    target = _member(azure_driver, arm, "west", region="westus")
    since = len(arm.requests)

    status = wait_for(azure_driver, _restore(azure_driver, snapshot, target, region="westus"))

    assert (status.state, status.error_code) == ("failed", "CrossRegionRestoreNotSupported")
    assert "stored in eastus2" in (status.error_message or "")
    assert "in westus" in (status.error_message or "")
    assert arm.resource(target) is not None
    assert not arm.requests_matching("PUT", DISKS, since)


def test_a_target_smaller_than_the_snapshot_is_refused(azure_driver: AzureDriver, arm: ArmServer) -> None:
    snapshot = _snapshot(azure_driver, _member(azure_driver, arm, "big", size=64), "s")
    target = _member(azure_driver, arm, "small", size=32)

    status = wait_for(azure_driver, _restore(azure_driver, snapshot, target))

    assert (status.state, status.error_code) == ("failed", "TargetTooSmall")
    assert "32 GiB" in (status.error_message or "") and "64 GiB" in (status.error_message or "")
    assert arm.names("disks") == ["cb-big-eastus2-m0", "cb-small-eastus2-m0"]


def test_a_failed_new_disk_leaves_the_member_on_its_old_disk(
    azure_driver: AzureDriver, arm: ArmServer
) -> None:
    disk = _member(azure_driver, arm, "c")
    snapshot = _snapshot(azure_driver, disk, "s")
    arm.fail_operations(
        "disks", "-r[0-9a-f]{8}$", "ZonalAllocationFailed", "No capacity for this disk in the zone."
    )

    status = wait_for(azure_driver, _restore(azure_driver, snapshot, disk))

    assert (status.state, status.error_code, status.error_message) == (
        "failed",
        "ZonalAllocationFailed",
        "No capacity for this disk in the zone.",
    )
    assert arm.names("disks") == ["cb-c-eastus2-m0"]


def test_when_azure_refuses_to_delete_the_old_disk_the_new_one_is_dropped(
    azure_driver: AzureDriver, arm: ArmServer
) -> None:
    disk = _member(azure_driver, arm, "c")
    snapshot = _snapshot(azure_driver, disk, "s")
    arm.inject_fault(
        "DELETE",
        DISKS + "cb-c-eastus2-m0$",
        409,
        code="OperationNotAllowed",
        message="Disk is attached to a VM.",
    )

    status = wait_for(azure_driver, _restore(azure_driver, snapshot, disk))

    assert (status.state, status.error_code, status.error_message) == (
        "failed",
        "OperationNotAllowed",
        "Disk is attached to a VM.",
    )
    assert arm.names("disks") == ["cb-c-eastus2-m0"]


def test_after_a_restart_between_the_new_disk_and_the_old_ones_deletion_the_restore_completes(
    arm: ArmServer, settings: AzureSettings
) -> None:
    before = AzureDriver(settings)
    disk = _member(before, arm, "c")
    snapshot = _snapshot(before, disk, "s")
    arm.latency = 0.4
    token = _restore(before, snapshot, disk)
    _until(lambda: arm.requests_matching("DELETE", DISKS + "cb-c-eastus2-m0$"))
    before.close()  # the process stops while Azure deletes the old disk

    after = AzureDriver(settings)
    try:
        assert after.poll(token).state in ("queued", "inProgress")
        status = wait_for(after, token)
    finally:
        after.close()

    assert status.state == "succeeded", status
    assert arm.names("disks") == [str(status.result["volumeHandle"]).rsplit("/", 1)[1]]


def test_a_restore_started_again_after_azure_accepted_it_finishes_with_the_disk_already_made(
    arm: ArmServer, settings: AzureSettings
) -> None:
    before = AzureDriver(settings)
    disk = _member(before, arm, "c")
    snapshot = _snapshot(before, disk, "s")
    arm.latency = 0.3
    _restore(before, snapshot, disk)
    new_name = restored_disk_name("cb-c-eastus2-m0", "cb-snap-s")
    assert len(arm.requests_matching("PUT", DISKS + new_name)) == 1  # accepted before start returned
    before.close()  # the process died before the control plane recorded the token: it starts again

    after = AzureDriver(settings)
    try:
        status = wait_for(after, _restore(after, snapshot, disk))
    finally:
        after.close()

    assert status.state == "succeeded", status
    assert len(arm.requests_matching("PUT", DISKS + new_name)) == 1, "the disk was not asked for twice"
    assert arm.names("disks") == [new_name]
    assert arm.fingerprint(str(status.result["volumeHandle"])) == arm.fingerprint(snapshot)


def test_after_a_restart_a_restore_that_never_reached_azure_is_failed_and_the_disk_kept(
    arm: ArmServer, settings: AzureSettings
) -> None:
    before = AzureDriver(settings)
    disk = _member(before, arm, "c")
    snapshot_handle = _snapshot(before, disk, "s")
    token = _restore(before, snapshot_handle.replace("cb-snap-s", "cb-snap-missing"), disk)
    assert wait_for(before, token).error_code == "ResourceNotFound"  # stopped before creating anything
    before.close()

    after = AzureDriver(settings)
    try:
        status = after.poll(token)
    finally:
        after.close()

    assert (status.state, status.error_code) == ("failed", "ResourceNotFound")
    assert "left as it was" in (status.error_message or "")
    assert arm.resource(disk) is not None


def test_a_restore_started_again_after_it_completed_reports_the_same_disk(
    azure_driver: AzureDriver, arm: ArmServer
) -> None:
    disk = _member(azure_driver, arm, "c")
    snapshot = _snapshot(azure_driver, disk, "s")
    first = wait_for(azure_driver, _restore(azure_driver, snapshot, disk))

    # The control plane crashed before recording the result and starts the same restore again.
    again = AzureDriver(azure_driver.settings)
    try:
        second = wait_for(again, _restore(again, snapshot, disk))
    finally:
        again.close()

    assert second.state == "succeeded"
    assert second.result == first.result


def _until(condition: object, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.01)
