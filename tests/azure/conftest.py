"""Fixtures for the azure driver's tests: an ARM-speaking HTTPS server and a driver pointed at it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from arm_server import ArmServer
from azure.mgmt.compute import ComputeManagementClient
from azure_harness import RESOURCE_GROUP, fast_settings

from shim.drivers.azure import AzureDriver, AzureSettings
from shim.drivers.azure_settings import StaticTokenCredential


@pytest.fixture
def arm() -> Iterator[ArmServer]:
    with ArmServer() as server:
        server.add_resource_group(RESOURCE_GROUP)
        yield server


@pytest.fixture
def settings(arm: ArmServer) -> AzureSettings:
    return fast_settings(arm)


@pytest.fixture
def azure_driver(settings: AzureSettings) -> Iterator[AzureDriver]:
    driver = AzureDriver(settings)
    yield driver
    driver.close()


@pytest.fixture
def compute(arm: ArmServer, settings: AzureSettings) -> Iterator[ComputeManagementClient]:
    """The real SDK client against the test server, for setting scenes the driver would not make."""
    client = ComputeManagementClient(
        StaticTokenCredential(arm.token or ""),
        arm.subscription_id,
        base_url=arm.url,
        connection_verify=str(arm.ca_path),
        polling_interval=0.01,
        retry_backoff_factor=0.01,
    )
    yield client
    client.close()
