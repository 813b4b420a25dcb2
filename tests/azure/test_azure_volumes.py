"""Members' managed disks: created empty, grown, deleted."""

from __future__ import annotations

import pytest
from arm_server import GIB, ArmServer
from azure.core.exceptions import HttpResponseError
from azure_harness import fast_settings

from shim.drivers.azure import AzureDriver
from shim.drivers.base import DriverError, VolumeSpec

SPEC = VolumeSpec(
    project_id="p-1", cluster_id="c0ffee", cluster_name="orders", region="East US 2", member=1, size_gb=32
)


def test_a_volume_is_an_empty_managed_disk_named_and_tagged_for_its_member(
    azure_driver: AzureDriver, arm: ArmServer
) -> None:
    handle = azure_driver.create_volume(SPEC)

    assert handle == (
        f"/subscriptions/{arm.subscription_id}/resourceGroups/cloudbackup-test"
        "/providers/Microsoft.Compute/disks/cb-c0ffee-eastus2-m1"
    )
    disk = arm.resource(handle)
    assert disk is not None
    assert disk["location"] == "eastus2"
    assert disk["properties"]["creationData"] == {"createOption": "Empty"}
    assert disk["properties"]["diskSizeGB"] == 32
    assert disk["properties"]["provisioningState"] == "Succeeded"
    assert disk["sku"]["name"] == "Premium_LRS"
    assert disk["tags"] == {
        "cloudbackup-managed": "true",
        "cloudbackup-project-id": "p-1",
        "cloudbackup-cluster-id": "c0ffee",
        "cloudbackup-cluster-name": "orders",
        "cloudbackup-member": "1",
    }


def test_creating_a_volume_waits_for_azures_long_running_operation(
    azure_driver: AzureDriver, arm: ArmServer
) -> None:
    arm.latency = 0.2
    handle = azure_driver.create_volume(SPEC)

    assert arm.resource(handle)["properties"]["provisioningState"] == "Succeeded"  # type: ignore[index]
    assert arm.requests_matching("GET", "/DiskOperations/"), "the driver followed Azure-AsyncOperation"


def test_creating_the_same_volume_again_is_harmless(azure_driver: AzureDriver, arm: ArmServer) -> None:
    first = azure_driver.create_volume(SPEC)
    assert azure_driver.create_volume(SPEC) == first
    assert arm.names("disks") == ["cb-c0ffee-eastus2-m1"]


def test_resizing_a_volume_grows_the_disk(azure_driver: AzureDriver, arm: ArmServer) -> None:
    handle = azure_driver.create_volume(SPEC)
    arm.latency = 0.1

    azure_driver.resize_volume(handle, 64)

    disk = arm.resource(handle)
    assert disk is not None
    assert disk["properties"]["diskSizeGB"] == 64
    assert disk["properties"]["diskSizeBytes"] == 64 * GIB
    assert arm.requests_matching("PATCH", "/disks/cb-c0ffee-eastus2-m1$")


def test_shrinking_a_volume_is_refused_with_azures_error(azure_driver: AzureDriver) -> None:
    handle = azure_driver.create_volume(SPEC)
    with pytest.raises(DriverError) as err:
        azure_driver.resize_volume(handle, 8)
    assert err.value.code == "BadRequest"
    assert "can only grow" in err.value.message


@pytest.mark.parametrize("delete_status", [200, 202, 204])
def test_deleting_a_volume_removes_the_disk(
    azure_driver: AzureDriver, arm: ArmServer, delete_status: int
) -> None:
    handle = azure_driver.create_volume(SPEC)
    arm.delete_status, arm.latency = delete_status, 0.1

    azure_driver.delete_volume(handle)

    assert arm.resource(handle) is None


@pytest.mark.parametrize("missing_status", [204, 404])
def test_deleting_a_volume_that_is_gone_is_fine(
    azure_driver: AzureDriver, arm: ArmServer, missing_status: int
) -> None:
    kept = azure_driver.create_volume(SPEC)
    arm.delete_missing_status = missing_status
    group = f"/subscriptions/{arm.subscription_id}/resourceGroups/cloudbackup-test"
    gone = f"{group}/providers/Microsoft.Compute/disks/gone"

    azure_driver.delete_volume(gone)  # raises nothing: the volume is gone, as wanted

    # Azure was asked (the driver did not skip the call), answered that status, and nothing else went.
    (delete,) = arm.requests_matching("DELETE", "/disks/gone$")
    assert delete.status == missing_status
    assert arm.resource(kept) is not None


def test_a_handle_that_is_not_a_disks_arm_id_is_refused(azure_driver: AzureDriver) -> None:
    with pytest.raises(DriverError) as err:
        azure_driver.delete_volume("/var/lib/cloudbackup/volumes/x.img")
    assert err.value.code == "InvalidHandle"


def test_long_cluster_ids_still_give_valid_azure_names(azure_driver: AzureDriver, arm: ArmServer) -> None:
    spec = VolumeSpec("p", "c" * 90, "n", "westeurope", 0, 1)
    handle = azure_driver.create_volume(spec)
    name = handle.rsplit("/", 1)[1]
    assert len(name) <= 80
    assert azure_driver.create_volume(spec) == handle


def test_a_volume_call_that_keeps_meeting_5xx_raises_azures_error_not_a_verdict(arm: ArmServer) -> None:
    driver = AzureDriver(fast_settings(arm, retry_total=1))
    try:
        arm.inject_fault("PUT", "/disks/", 500, count=2)
        with pytest.raises(HttpResponseError) as err:
            driver.create_volume(SPEC)
        assert not isinstance(err.value, DriverError)
        assert err.value.status_code == 500
        assert driver.create_volume(SPEC).endswith("/disks/cb-c0ffee-eastus2-m1")
    finally:
        driver.close()
