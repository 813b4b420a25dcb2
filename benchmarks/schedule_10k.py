"""Benchmark: advancing the manual clock 24 h at 10,000 backed-up clusters (local driver, durable) takes every
snapshot and applies retention; the time against the 60 s target, and the files left against the rows."""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fleet import MIB, REGIONS, START, Database, filesystem, insert_fleet, write_volumes
from sqlalchemy import func, select

from contract import rules
from shim.app import create_app, shutdown
from shim.clock import ManualClock
from shim.config import Config
from shim.drivers.local import LocalDriver
from shim.service import Service
from shim.store.models import Snapshot

TARGET_SECONDS = 60.0
DAY = 24 * 3600


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clusters", type=int, default=10_000, help="clusters with backup (default 10000)")
    parser.add_argument("--volume-mib", type=int, default=1, help="volume size and data (default 1 MiB)")
    parser.add_argument("--dir", type=Path, default=None, help="where to work (default: a temporary dir)")
    parser.add_argument(
        "--driver-workers", type=int, default=None, help="the service's driver pool (default: serve's)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the work directory afterwards")
    parser.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument(
        "--replicas",
        type=int,
        default=1,
        help="shims on the database; the others tick while the first advances (threads of this process)",
    )
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="cloudbackup-schedule-", dir=args.dir))
    try:
        database = Database(args.database)
        try:
            return run(
                work, args.clusters, args.volume_mib * MIB, args.driver_workers, database, args.replicas
            )
        finally:
            database.close()
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


def run(
    work: Path, count: int, volume_size: int, driver_workers: int | None, database: Database, replicas: int
) -> int:
    data_dir = work / "data"
    config = Config(
        data_dir=data_dir,
        database_url=database.url(),
        manual_clock=True,
        clock=ManualClock(START),
        # The only benchmark-only setting: one "GB" of size_gb is `volume_size` bytes, so diskSizeGB 1 makes a
        # volume of that size. Everything else is what `cloudbackup serve --manual-clock` runs with.
        driver_factory=lambda c: LocalDriver(c.data_dir, durable=True, bytes_per_gb=volume_size),
    )
    if driver_workers:
        config.driver_workers = driver_workers
    app = create_app(config)
    service: Service = app.extensions["cloudbackup"].service
    others = [
        create_app(Config(**{**config.__dict__, "clock": ManualClock(START)})) for _ in range(replicas - 1)
    ]
    stop = threading.Event()

    def keep_ticking(other: Any) -> None:
        # A serving replica's scheduler, ticking as often as it can while the first one advances.
        while not stop.is_set():
            other.extensions["cloudbackup"].service.tick()
            time.sleep(0.05)

    tickers = [threading.Thread(target=keep_ticking, args=(other,)) for other in others]
    try:
        started = time.perf_counter()
        members = insert_fleet(service.store, count, next_due_at=START)
        write_volumes(data_dir, members, volume_size)
        setup = time.perf_counter() - started
        for ticker in tickers:  # once the volumes exist
            ticker.start()

        # Days 1-3 fill every cluster's retention (3 scheduled snapshots each); day 4, the one timed, takes
        # a fourth and so deletes the first: the steady state of a fleet that has been running for a while.
        warmup: list[float] = []
        for seconds in (0, DAY, DAY):
            started = time.perf_counter()
            service.advance(seconds)
            warmup.append(time.perf_counter() - started)
        before = census(service, data_dir)
        moment = service.now()

        load_before = os.getloadavg()[0]
        started = time.perf_counter()
        service.advance(DAY)
        elapsed = time.perf_counter() - started
        load_after = os.getloadavg()[0]
        after = census(service, data_dir)
        with service.store.connect() as conn:
            new_rows = conn.execute(
                select(func.count()).select_from(Snapshot).where(Snapshot.created_at > moment)
            ).scalar_one()
    finally:
        stop.set()
        for ticker in tickers:
            if ticker.is_alive():
                ticker.join()
        for other in others:
            shutdown(other)
        shutdown(app)

    deleted = before["rows"] + new_rows - after["rows"]
    print(
        f"schedule_10k: {count} clusters with cloud provider snapshots, each one volume of "
        f"{volume_size // MIB} MiB of random data, in {len(REGIONS)} regions"
    )
    print(
        f"  local driver, durable (data, sidecars and directories fsynced), {database.kind}, "
        f"{replicas} replica(s), "
        f"{os.cpu_count()} CPUs, {work} on {filesystem(work)}"
    )
    print(
        f"  benchmark-only setting: bytes_per_gb = {volume_size // MIB} MiB (diskSizeGB 1 makes a "
        f"{volume_size // MIB} MiB volume); setup by bulk inserts, {setup:.1f} s"
    )
    print(
        "  warm-up, days 1-3 through the same Service.advance (no retention yet): "
        + ", ".join(f"{value:.1f} s" for value in warmup)
    )
    print(
        f"  measured: Service.advance(24 h) took {new_rows} snapshots and deleted {deleted} by retention "
        f"(R8) in {elapsed:.2f} s"
    )
    print(f"  machine load (1-minute average): {load_before:.1f} at the start, {load_after:.1f} at the end")
    verdict = "met" if elapsed <= TARGET_SECONDS else "NOT met"
    ratio = elapsed / TARGET_SECONDS
    print(f"  ratio to the {TARGET_SECONDS:.0f} s target: {ratio:.2f} (target <= 1: {verdict})")
    print(
        f"  throughput: {new_rows / elapsed:.0f} snapshots/s "
        f"({volume_size * new_rows / MIB / elapsed:.0f} MiB/s copied, digested and synced)"
    )
    equal = after["files"] == after["rows"] == after["sidecars"]
    print(
        f"  afterwards: {after['files']} snapshot files, {after['sidecars']} sidecars, "
        f"{after['rows']} snapshot rows ({after['completed']} completed), "
        f"{after['leftovers']} partial files, {after['operations']} operation files: "
        f"files and rows {'equal' if equal else 'DIFFER'}"
    )
    print(
        f"  every cluster keeps {rules.RETENTION_COUNT} scheduled snapshots: "
        f"{'yes' if after['kept'] == {rules.RETENTION_COUNT: count} else 'NO: ' + str(after['kept'])}"
    )
    return 0 if equal and new_rows == count and deleted == count else 1


def census(service: Service, data_dir: Path) -> dict[str, Any]:
    """Snapshot files and rows: what storage holds against what the database says."""
    files = sidecars = leftovers = 0
    for region in (data_dir / "snapshots").iterdir():
        for entry in os.scandir(region):
            if entry.name.endswith(".snap"):
                files += 1
            elif entry.name.endswith(".json"):
                sidecars += 1
            else:
                leftovers += 1
    operations = len(os.listdir(data_dir / "operations")) if (data_dir / "operations").is_dir() else 0
    with service.store.connect() as conn:
        statuses = dict(conn.execute(select(Snapshot.status, func.count()).group_by(Snapshot.status)).all())
        per_cluster = conn.execute(
            select(Snapshot.cluster_id, func.count())
            .where(Snapshot.status == "completed", Snapshot.snapshot_type == "scheduled")
            .group_by(Snapshot.cluster_id)
        ).all()
    kept = Counter(number for _cid, number in per_cluster)
    return {
        "files": files,
        "sidecars": sidecars,
        "leftovers": leftovers,
        "operations": operations,
        "rows": sum(statuses.values()),
        "completed": statuses.get("completed", 0),
        "kept": dict(kept),
    }


if __name__ == "__main__":
    sys.exit(main())
