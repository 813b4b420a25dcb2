"""Benchmark: 100 backed-up clusters due at once through the whole control plane on the azure driver (the ARM
test server with 1 s of operation latency): the time for every snapshot to complete, against serial."""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "azure"))

from arm_server import ArmServer
from azure_harness import RESOURCE_GROUP, fast_settings
from sqlalchemy import func, select

from shim.app import create_app, shutdown
from shim.clock import ManualClock
from shim.config import Config
from shim.drivers.azure import AzureDriver
from shim.store.models import Snapshot

START = datetime(2024, 1, 1, 12, tzinfo=UTC)
TARGET_SECONDS = 5.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clusters", type=int, default=100)
    parser.add_argument("--latency", type=float, default=1.0, help="seconds each Azure operation takes")
    parser.add_argument("--polling-interval", type=float, default=0.2)
    args = parser.parse_args()

    with ArmServer() as arm, tempfile.TemporaryDirectory(prefix="cloudbackup-azure-bench-") as work:
        arm.add_resource_group(RESOURCE_GROUP)
        settings = fast_settings(arm, polling_interval=args.polling_interval)
        clock = ManualClock(START)
        config = Config(
            data_dir=Path(work),
            manual_clock=True,
            clock=clock,
            driver_factory=lambda c: AzureDriver(settings),
        )
        app = create_app(config)
        try:
            service = app.extensions["cloudbackup"].service
            project = service.create_project("bench")
            body = {
                "providerSettings": {"providerName": "AZURE", "instanceSizeName": "M10"},
                "replicationSpecs": [{"regionsConfig": {"eastus2": {"priority": 7, "electableNodes": 1}}}],
                "diskSizeGB": 10,
                "providerBackupEnabled": True,
            }
            for i in range(args.clusters):
                service.create_cluster(project.id, {**body, "name": f"c{i:03d}"})
            service.advance(0)  # every first snapshot done: the schedule starts from here

            arm.latency = args.latency
            arm.max_in_flight = 0
            started = time.monotonic()
            service.advance(int(timedelta(days=1).total_seconds()))  # all due at once; returns when done
            elapsed = time.monotonic() - started
            with service.store.read() as session:
                counts = dict(
                    session.execute(select(Snapshot.status, func.count()).group_by(Snapshot.status)).all()
                )
        finally:
            shutdown(app)

    serial = args.clusters * args.latency
    print(f"{args.clusters} clusters due at once through the control plane, {args.latency:g} s Azure latency")
    print(f"  all snapshots completed in {elapsed:.2f} s (target <= {TARGET_SECONDS:g} s); rows: {counts}")
    print(f"  serial time {serial:.0f} s: ratio {elapsed / serial:.3f} ({serial / elapsed:.1f}x faster)")
    print(f"  operations in flight at once in Azure: {arm.max_in_flight}")
    return 0 if elapsed <= TARGET_SECONDS and counts == {"completed": 2 * args.clusters} else 1


if __name__ == "__main__":
    sys.exit(main())
