"""100 clusters due at once on the azure driver, against the ARM test server with 1 s of operation latency."""

from __future__ import annotations

import argparse
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "azure"))

from arm_server import ArmServer
from azure_harness import RESOURCE_GROUP, fast_settings, wait_for

from shim.drivers.azure import AzureDriver
from shim.drivers.base import VolumeSpec


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--volumes", type=int, default=100)
    parser.add_argument("--latency", type=float, default=1.0, help="seconds each Azure operation takes")
    parser.add_argument("--polling-interval", type=float, default=0.2)
    parser.add_argument("--max-workers", type=int, default=16)
    args = parser.parse_args()

    with ArmServer() as arm:
        arm.add_resource_group(RESOURCE_GROUP)
        driver = AzureDriver(
            fast_settings(arm, polling_interval=args.polling_interval, max_workers=args.max_workers)
        )
        try:
            disks = [
                driver.create_volume(VolumeSpec("bench", f"cluster{i:03d}", f"c{i}", "eastus2", 0, 10))
                for i in range(args.volumes)
            ]
            arm.latency = args.latency

            # One snapshot alone: what each of them costs when taken one after another.
            started = time.monotonic()
            wait_for(
                driver,
                driver.start_snapshot(volume_handle=disks[0], region="eastus2", snapshot_id="solo", tags={}),
            )
            one = time.monotonic() - started

            arm.max_in_flight = 0
            started = time.monotonic()
            tokens = [
                driver.start_snapshot(volume_handle=disk, region="eastus2", snapshot_id=f"due-{i}", tags={})
                for i, disk in enumerate(disks)
            ]
            statuses = [wait_for(driver, token, timeout=120) for token in tokens]
            elapsed = time.monotonic() - started
            threads = len([t for t in threading.enumerate() if t.name.startswith("azure-driver")])
        finally:
            driver.close()

    failed = [s for s in statuses if s.state != "succeeded"]
    serial = args.volumes * args.latency
    print(f"{args.volumes} snapshots due at once, {args.latency:g} s of Azure latency each")
    print(f"  all finished in {elapsed:.2f} s (target <= 5 s); failed: {len(failed)}")
    print(f"  serial time {serial:.0f} s: ratio {elapsed / serial:.3f} ({serial / elapsed:.1f}x faster)")
    print(f"  one snapshot alone took {one:.2f} s; {args.volumes} x that = {args.volumes * one:.0f} s")
    print(f"  operations in flight at once in Azure: {arm.max_in_flight}; driver threads: {threads}")
    print(f"  requests answered by the server: {len(arm.requests)}")


if __name__ == "__main__":
    main()
