"""Benchmark: a scheduler tick with nothing due at 10,000 backed-up clusters: median and p99 against 5 ms."""

from __future__ import annotations

import argparse
import gc
import os
import shutil
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fleet import START, Database, filesystem, insert_fleet

from contract import rules
from shim.app import create_app, shutdown
from shim.clock import ManualClock
from shim.config import Config
from shim.service import Service

TARGET_MS = 5.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clusters", type=int, default=10_000, help="clusters with backup (default 10000)")
    parser.add_argument("--ticks", type=int, default=5_000, help="ticks timed (default 5000)")
    parser.add_argument(
        "--pause-ms",
        type=float,
        default=1.0,
        help="sleep between ticks, as the scheduler thread does (it ticks once a second); default 1 ms",
    )
    parser.add_argument("--dir", type=Path, default=None, help="where to work (default: a temporary dir)")
    parser.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="cloudbackup-tick-", dir=args.dir))
    try:
        database = Database(args.database)
        try:
            return run(work, args.clusters, args.ticks, args.pause_ms / 1000, database)
        finally:
            database.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)


def run(work: Path, count: int, ticks: int, pause: float, database: Database) -> int:
    app = create_app(
        Config(
            data_dir=work / "data", database_url=database.url(), manual_clock=True, clock=ManualClock(START)
        )
    )
    service: Service = app.extensions["cloudbackup"].service
    try:
        # Due times spread over the coming day, none of them by now; three completed snapshots each, so
        # the snapshot table is the size of a fleet in its steady state.
        step = rules.SNAPSHOT_INTERVAL / count
        dues = [START + timedelta(minutes=1) + step * index for index in range(count)]
        insert_fleet(service.store, count, next_due_at=dues, completed_snapshots=rules.RETENTION_COUNT)
        for _ in range(100):  # warm the connection pool and the statement cache
            service.tick()
        times: list[float] = []
        started_total = 0
        gc.collect()
        load_before = os.getloadavg()[0]
        for _ in range(ticks):
            time.sleep(pause)
            started = time.perf_counter()
            started_total += service.tick()
            times.append((time.perf_counter() - started) * 1000)
        load_after = os.getloadavg()[0]
    finally:
        shutdown(app)

    times.sort()
    median = statistics.median(times)
    p99 = times[min(len(times) - 1, int(len(times) * 0.99))]
    print(
        f"idle_tick: Service.tick() with nothing due, {count} clusters with backup and "
        f"{count * rules.RETENTION_COUNT} snapshot rows, {database.kind} on {filesystem(work)}, "
        f"{ticks} ticks {pause * 1000:g} ms apart"
    )
    print(
        f"  machine: {os.cpu_count()} CPUs, 1-minute load average {load_before:.1f} before and "
        f"{load_after:.1f} after (other work on the machine shows in p99)"
    )
    print(f"  snapshots started by these ticks: {started_total} (must be 0)")
    print(f"  median {median:.3f} ms  p99 {p99:.3f} ms  max {times[-1]:.3f} ms")
    verdict = "met" if p99 <= TARGET_MS else "NOT met"
    print(
        f"  ratio to the {TARGET_MS:g} ms target: median {median / TARGET_MS:.3f}, p99 {p99 / TARGET_MS:.3f} "
        f"(target <= 1: {verdict})"
    )
    return 0 if started_total == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
