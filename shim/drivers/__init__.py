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
        from shim.drivers.azure import AzureDriver, AzureSettings

        # Flags (config.azure_*, already merged with their variables by Config.with_environment) win; the
        # credential (CLOUDBACKUP_AZURE_ACCESS_TOKEN), REQUESTS_CA_BUNDLE and the polling interval come from
        # the environment. Raises AzureConfigurationError naming what is missing or refused.
        settings = AzureSettings.from_env_and_flags(
            subscription_id=config.azure_subscription_id,
            resource_group=config.azure_resource_group,
            endpoint=config.azure_endpoint,
        )
        return AzureDriver(settings)
    raise ValueError(f"unknown driver {config.driver!r}; use one of {', '.join(DRIVERS)}")
