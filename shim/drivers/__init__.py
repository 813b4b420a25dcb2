"""Snapshot drivers, and the factory that makes the one the settings name."""

from __future__ import annotations

from typing import TYPE_CHECKING

from shim.drivers.base import Driver, DriverError, OperationStatus, StoredSnapshot, VolumeSpec

if TYPE_CHECKING:
    from shim.config import Config

DRIVERS = ("local", "azure")

__all__ = [
    "DRIVERS",
    "Driver",
    "DriverError",
    "OperationStatus",
    "StoredSnapshot",
    "VolumeSpec",
    "make_driver",
]


def make_driver(config: Config) -> Driver:
    """The driver `config.driver` names: "local" (files under the data directory) or "azure"."""
    if config.driver_factory is not None:
        return config.driver_factory(config)
    if config.driver == "local":
        from shim.drivers.local import LocalDriver

        return LocalDriver(config.data_dir)
    if config.driver == "azure":
        # Imported here so the local driver works without the Azure SDK loaded.
        from shim.drivers import azure

        # TODO(azure driver): wire the settings into the driver's constructor. The flags and variables
        # arrive here as config.azure_subscription_id (AZURE_SUBSCRIPTION_ID), config.azure_resource_group
        # (CLOUDBACKUP_AZURE_RESOURCE_GROUP) and config.azure_endpoint (CLOUDBACKUP_AZURE_ENDPOINT);
        # CLOUDBACKUP_AZURE_ACCESS_TOKEN and REQUESTS_CA_BUNDLE are for the driver to read itself.
        return azure.AzureDriver(  # type: ignore[attr-defined]
            subscription_id=config.azure_subscription_id,
            resource_group=config.azure_resource_group,
            endpoint=config.azure_endpoint,
        )
    raise ValueError(f"unknown driver {config.driver!r}; use one of {', '.join(DRIVERS)}")
