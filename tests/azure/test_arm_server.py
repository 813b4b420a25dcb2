"""The test server answers the real azure-mgmt-compute SDK as Azure Resource Manager does."""

from __future__ import annotations

import time

import pytest
import requests
from arm_server import GIB, ArmServer
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.mgmt.compute import ComputeManagementClient
from azure_harness import RESOURCE_GROUP

EMPTY_DISK = {
    "location": "eastus2",
    "properties": {"creationData": {"createOption": "Empty"}, "diskSizeGB": 4},
}


def _raw(arm: ArmServer, method: str, path: str, **kwargs: object) -> requests.Response:
    headers = {"Authorization": f"Bearer {arm.token}"}
    return requests.request(
        method, arm.url + path, headers=headers, verify=str(arm.ca_path), timeout=5, **kwargs
    )


def _disk_path(arm: ArmServer, name: str) -> str:
    group = f"/subscriptions/{arm.subscription_id}/resourceGroups/{RESOURCE_GROUP}"
    return f"{group}/providers/Microsoft.Compute/disks/{name}"


@pytest.mark.parametrize("put_status", [200, 202])
def test_a_put_is_a_long_running_operation_the_sdk_follows_to_the_end(
    arm: ArmServer, compute: ComputeManagementClient, put_status: int
) -> None:
    arm.put_status, arm.latency = put_status, 0.1

    disk = compute.disks.begin_create_or_update(RESOURCE_GROUP, "d1", EMPTY_DISK).result()

    assert disk.properties.provisioning_state == "Succeeded"
    assert disk.properties.disk_size_bytes == 4 * GIB
    put = arm.requests_matching("PUT", "/disks/d1$")[0]
    assert put.status == put_status


def test_an_accepted_put_names_its_status_monitors_and_the_status_goes_in_progress_then_succeeded(
    arm: ArmServer,
) -> None:
    # Long enough that the two GETs below come before the end even on a loaded machine.
    arm.latency = 1.0
    answer = _raw(arm, "PUT", _disk_path(arm, "d") + "?api-version=2019-07-01", json=EMPTY_DISK)

    assert answer.status_code == 202
    assert answer.json()["properties"]["provisioningState"] == "Creating"
    monitor = answer.headers["Azure-AsyncOperation"]
    assert monitor.startswith(
        f"{arm.url}/subscriptions/{arm.subscription_id}/providers/Microsoft.Compute/locations/"
    )
    assert "api-version=2019-07-01" in monitor
    assert answer.headers["Location"].endswith("&monitor=true")
    assert _raw(arm, "GET", monitor.removeprefix(arm.url)).json()["status"] == "InProgress"
    assert _raw(arm, "GET", answer.headers["Location"].removeprefix(arm.url)).status_code == 202
    deadline = time.monotonic() + 60  # a bound against hanging, not a speed check
    while (finished := _raw(arm, "GET", monitor.removeprefix(arm.url)).json())["status"] == "InProgress":
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert finished["status"] == "Succeeded"
    assert finished["startTime"] < finished["endTime"]
    assert finished["properties"]["output"]["name"] == "d"
    assert _raw(arm, "GET", answer.headers["Location"].removeprefix(arm.url)).status_code == 200


def test_a_failed_operation_carries_an_error_body_the_sdk_raises(
    arm: ArmServer, compute: ComputeManagementClient
) -> None:
    arm.fail_operations(
        "disks", "^bad", "QuotaExceeded", "Operation results in exceeding quota limits of Disk."
    )

    with pytest.raises(HttpResponseError) as err:
        compute.disks.begin_create_or_update(RESOURCE_GROUP, "bad-disk", EMPTY_DISK).result()

    assert err.value.error is not None
    assert (err.value.error.code, err.value.error.message) == (
        "QuotaExceeded",
        "Operation results in exceeding quota limits of Disk.",
    )
    assert compute.disks.get(RESOURCE_GROUP, "bad-disk").properties.provisioning_state == "Failed"


def test_a_missing_resource_is_404_resource_not_found(
    arm: ArmServer, compute: ComputeManagementClient
) -> None:
    with pytest.raises(ResourceNotFoundError) as err:
        compute.snapshots.get(RESOURCE_GROUP, "nothing")
    assert err.value.error is not None and err.value.error.code == "ResourceNotFound"


@pytest.mark.parametrize("delete_status", [200, 202, 204])
def test_delete_answers_200_202_or_204_and_the_resource_is_gone(
    arm: ArmServer, compute: ComputeManagementClient, delete_status: int
) -> None:
    compute.disks.begin_create_or_update(RESOURCE_GROUP, "d", EMPTY_DISK).result()
    arm.delete_status, arm.latency = delete_status, 0.05

    compute.disks.begin_delete(RESOURCE_GROUP, "d").result()

    assert arm.requests_matching("DELETE", "/disks/d$")[0].status == delete_status
    assert arm.names("disks") == []


def test_lists_are_paged_with_an_absolute_next_link(arm: ArmServer, compute: ComputeManagementClient) -> None:
    for i in range(5):
        compute.disks.begin_create_or_update(RESOURCE_GROUP, f"d{i}", EMPTY_DISK).result()

    first = _raw(
        arm,
        "GET",
        f"/subscriptions/{arm.subscription_id}/resourceGroups/{RESOURCE_GROUP}"
        "/providers/Microsoft.Compute/disks?api-version=2024-03-02",
    ).json()
    assert len(first["value"]) == 2
    assert first["nextLink"].startswith(arm.url + "/subscriptions/")
    assert "api-version=2024-03-02" in first["nextLink"]
    assert [d.name for d in compute.disks.list_by_resource_group(RESOURCE_GROUP)] == [
        f"d{i}" for i in range(5)
    ]


def test_any_api_version_is_answered_but_one_is_required(arm: ArmServer) -> None:
    path = _disk_path(arm, "x")
    assert _raw(arm, "GET", path + "?api-version=2016-04-30-preview").status_code == 404
    missing = _raw(arm, "GET", path)
    assert missing.status_code == 400
    assert missing.json()["error"]["code"] == "MissingApiVersionParameter"


def test_requests_without_the_token_are_refused_401(arm: ArmServer) -> None:
    answer = requests.get(
        arm.url + _disk_path(arm, "x") + "?api-version=1", verify=str(arm.ca_path), timeout=5
    )
    assert answer.status_code == 401
    assert answer.json()["error"]["code"] == "InvalidAuthenticationToken"


def test_injected_faults_answer_the_next_matching_requests_then_stop(arm: ArmServer) -> None:
    arm.inject_fault("GET", "/disks/x$", 429, count=2, retry_after=7)
    path = _disk_path(arm, "x") + "?api-version=1"

    answers = [_raw(arm, "GET", path) for _ in range(3)]

    assert [a.status_code for a in answers] == [429, 429, 404]
    assert answers[0].headers["Retry-After"] == "7"
    assert answers[0].json()["error"]["code"] == "TooManyRequests"


def test_a_snapshot_copies_its_disks_content_at_that_moment_and_a_disk_from_it_gets_it(
    arm: ArmServer, compute: ComputeManagementClient
) -> None:
    disk = compute.disks.begin_create_or_update(RESOURCE_GROUP, "d", EMPTY_DISK).result()
    arm.write_disk(disk.id, b"v1")
    copy = {
        "location": "eastus2",
        "properties": {"creationData": {"createOption": "Copy", "sourceResourceId": disk.id}},
    }
    snapshot = compute.snapshots.begin_create_or_update(RESOURCE_GROUP, "s", copy).result()
    arm.write_disk(disk.id, b"v2")
    from_snapshot = {
        "location": "eastus2",
        "properties": {"creationData": {"createOption": "Copy", "sourceResourceId": snapshot.id}},
    }
    restored = compute.disks.begin_create_or_update(RESOURCE_GROUP, "r", from_snapshot).result()

    assert arm.fingerprint(snapshot.id) == arm.fingerprint(restored.id) != arm.fingerprint(disk.id)
    assert restored.properties.disk_size_gb == 4


def test_a_copy_into_another_region_is_refused(arm: ArmServer, compute: ComputeManagementClient) -> None:
    disk = compute.disks.begin_create_or_update(RESOURCE_GROUP, "d", EMPTY_DISK).result()
    copy = {
        "location": "westus",
        "properties": {"creationData": {"createOption": "Copy", "sourceResourceId": disk.id}},
    }

    with pytest.raises(HttpResponseError) as err:
        compute.snapshots.begin_create_or_update(RESOURCE_GROUP, "s", copy)

    assert err.value.status_code == 400
    assert "eastus2" in str(err.value) and "westus" in str(err.value)
