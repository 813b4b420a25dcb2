"""The shim's settings, from command-line flags, the environment and test code."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from shim.clock import Clock
    from shim.drivers.base import Driver


@dataclass
class Config:
    """Everything create_app needs; the defaults are those of `cloudbackup serve`."""

    data_dir: Path = field(default_factory=lambda: Path(".cloudbackup"))
    database_url: str | None = None  # None: SQLite in the data directory
    # Replicas on one database: how long a replica's operations stay its own after it stops renewing.
    lease_seconds: float = 30.0
    # Upgrade a database whose schema is behind at start (an empty one is always created at head).
    upgrade_db: bool = False
    driver: str = "local"
    manual_clock: bool = False
    host: str = "127.0.0.1"
    port: int = 8080
    # Run the scheduler thread (serve does; the test client drives the schedule through /admin/clock).
    scheduler: bool = False
    tick_seconds: float = 1.0
    # Reconcile the database with storage at start (unfinished work, catch-up, orphaned snapshots).
    reconcile: bool = True
    # Seconds between the scheduler's reconciliations of the snapshot rows with storage while serving
    # (stored snapshots without a live row deleted, rows whose stored snapshot vanished failed); 0: never.
    reconcile_interval_seconds: float = 900.0
    # Clusters handled per scheduler batch, and driver calls run at once.
    batch_size: int = 500
    # Many at once: the local driver waits on fsync and a cloud driver on the network, not on the CPU.
    driver_workers: int = 32
    # How long a Digest nonce stays valid; an older one is answered with stale=true.
    nonce_ttl_seconds: int = 300
    azure_subscription_id: str | None = None
    azure_resource_group: str | None = None
    azure_endpoint: str | None = None
    # Test hook for crash tests: "before:SECONDS" or "after:SECONDS" sleeps around each snapshot's driver
    # start (env CLOUDBACKUP_TEST_SNAPSHOT_DELAY), so a test can kill the process in that window;
    # "step:SECONDS" sleeps after each step of a clock advance (results recorded, retention not yet applied).
    test_snapshot_delay: str | None = None
    # Test hooks: a driver or clock to use instead of the ones the settings above would make.
    driver_factory: Callable[[Config], Driver] | None = None
    clock: Clock | None = None

    def __post_init__(self) -> None:
        self.data_dir = Path(self.data_dir)

    @classmethod
    def with_environment(cls, **values: Any) -> Config:
        """Flags given as values; the azure settings not given fall back to the contract's variables."""
        config = cls(**values)
        config.azure_subscription_id = config.azure_subscription_id or os.environ.get("AZURE_SUBSCRIPTION_ID")
        config.azure_resource_group = config.azure_resource_group or os.environ.get(
            "CLOUDBACKUP_AZURE_RESOURCE_GROUP"
        )
        config.azure_endpoint = config.azure_endpoint or os.environ.get("CLOUDBACKUP_AZURE_ENDPOINT")
        config.test_snapshot_delay = config.test_snapshot_delay or os.environ.get(
            "CLOUDBACKUP_TEST_SNAPSHOT_DELAY"
        )
        return config

    def snapshot_delay(self) -> tuple[str, float] | None:
        """The crash-test hook parsed: (when, seconds)."""
        if not self.test_snapshot_delay:
            return None
        when, _, seconds = self.test_snapshot_delay.partition(":")
        if when not in ("before", "after", "step"):
            raise ValueError(
                "CLOUDBACKUP_TEST_SNAPSHOT_DELAY is before:SECONDS, after:SECONDS or step:SECONDS"
            )
        return when, float(seconds)
