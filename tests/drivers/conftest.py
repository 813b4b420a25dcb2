"""Fixtures of the driver suite: `driver`, parametrized over every driver kind, and its `storage` harness."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from driverkit import LocalStorage, StorageHarness

from shim.drivers.base import Driver
from shim.drivers.local import LocalDriver

# The azure driver's harness (an ARM-speaking HTTPS server and its side channel) lives with its own tests.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "azure"))
from azure_harness import AzureStorage

# Each name needs a fixture `<name>_storage` yielding a StorageHarness for a fresh, empty storage.
DRIVER_NAMES = ["local", "azure"]


@pytest.fixture
def local_storage(tmp_path: Path) -> Iterator[LocalStorage]:
    storage = LocalStorage(tmp_path / "data")
    yield storage
    storage.close()


@pytest.fixture
def azure_storage() -> Iterator[AzureStorage]:
    storage = AzureStorage()
    yield storage
    storage.close()


@pytest.fixture(params=DRIVER_NAMES)
def driver(request: pytest.FixtureRequest) -> Driver:
    """A driver of each kind on empty storage; the behavioural tests use only the Driver interface."""
    storage: StorageHarness = request.getfixturevalue(f"{request.param}_storage")
    return storage.driver


@pytest.fixture
def storage(request: pytest.FixtureRequest, driver: Driver) -> StorageHarness:
    """The harness of the storage behind `driver` (the same instance the driver fixture used)."""
    return request.getfixturevalue(f"{driver.name}_storage")


@pytest.fixture
def local_dir(tmp_path: Path) -> Path:
    """A data directory for the local driver's own tests."""
    return tmp_path / "data"


@pytest.fixture
def local_driver(local_dir: Path) -> Iterator[LocalDriver]:
    driver = LocalDriver(local_dir)
    yield driver
    driver.close()
