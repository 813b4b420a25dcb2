"""Benchmark: advancing the manual clock 24 h at 10,000 backed-up clusters (local driver, durable) takes every
snapshot and applies retention, on `cloudbackup serve` processes sharing one database and data directory:
the time against the 60 s target, 2 replicas against 1, and the files left against the rows."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from api_throughput import BASE, DigestClient, cloudbackup, cpu_seconds, postgres_cpu, wait_for_listening
from fleet import (
    MIB,
    REGIONS,
    START,
    Database,
    filesystem,
    insert_fleet,
    set_manual_clock,
    stop_servers,
    write_volumes,
)
from sqlalchemy import func, select

from contract import rules
from shim.store import Store, default_url
from shim.store.models import Snapshot

TARGET_SECONDS = 60.0
DAY = 24 * 3600


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clusters", type=int, default=10_000, help="clusters with backup (default 10000)")
    parser.add_argument("--volume-mib", type=int, default=1, help="volume size and data (default 1 MiB)")
    parser.add_argument("--dir", type=Path, default=None, help="where to work (default: a temporary dir)")
    parser.add_argument("--keep", action="store_true", help="keep the work directory afterwards")
    parser.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument(
        "--replicas",
        type=int,
        default=1,
        help="`cloudbackup serve` processes on the database (more than 1: PostgreSQL); the advance is "
        "asked of the first, the others' schedulers take slots as the shared clock moves",
    )
    args = parser.parse_args()
    if args.replicas > 1 and args.database == "sqlite":
        parser.error("replicas share a PostgreSQL database: add --database postgresql")

    work = Path(tempfile.mkdtemp(prefix="cloudbackup-schedule-", dir=args.dir))
    try:
        database = Database(args.database)
        try:
            return run(work, args.clusters, args.volume_mib * MIB, database, args.replicas)
        finally:
            database.close()
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


def run(work: Path, count: int, volume_size: int, database: Database, replicas: int) -> int:
    data_dir = work / "data"
    data_dir.mkdir(parents=True)
    url = database.url() or default_url(data_dir)
    where = ["--database", url] if database.url() else []
    store = Store(url, pool_size=2)
    servers: list[subprocess.Popen[str]] = []
    logs = []
    try:
        started = time.perf_counter()
        store.migrate()
        set_manual_clock(store, START)
        # The first slot is the clock's now: the first replica's scheduler starts on it as it comes up.
        members = insert_fleet(store, count, next_due_at=START)
        write_volumes(data_dir, members, volume_size)
        setup = time.perf_counter() - started
        keys = json.loads(
            subprocess.run(
                [*cloudbackup(), "keys", "create", *(where or ["--data-dir", str(data_dir)])],
                check=True,
                capture_output=True,
                text=True,
            ).stdout
        )
        addresses = []
        for index in range(replicas):
            log = open(work / f"serve-{index}.log", "w")  # noqa: SIM115 - closed after the server stops
            logs.append(log)
            server = subprocess.Popen(
                [
                    *cloudbackup(),
                    "serve",
                    "--port",
                    "0",
                    "--data-dir",
                    str(data_dir),
                    "--manual-clock",
                    *where,
                ],
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
            )
            servers.append(server)
            addresses.append(wait_for_listening(server, timeout=600))
        client = DigestClient(*addresses[0], keys["publicKey"], keys["privateKey"])
        client.connection.timeout = 3600  # one request walks the whole day

        def advance(seconds: int) -> float:
            began = time.perf_counter()
            status, body = client.request("POST", f"{BASE}/admin/clock", {"advanceSeconds": seconds})
            assert status == 200, body
            return time.perf_counter() - began

        # Day 0 (taken as the replicas start) and days 1-2 fill every cluster's retention (3 scheduled
        # snapshots each); day 3, the one timed, takes a fourth and so deletes the first: the steady state
        # of a fleet that has been running for a while.
        warmup = [advance(seconds) for seconds in (0, DAY, DAY)]
        before = census(store, data_dir)
        cpu_before = [cpu_seconds(server.pid) for server in servers]
        database_cpu_before = postgres_cpu(database.server)
        load_before = os.getloadavg()[0]
        began = time.perf_counter()
        returned = advance(DAY)
        # The advance returns once every slot is taken; the other replicas apply retention to the slots they
        # took just after (at the end of their tick), so the figure is until every cluster keeps three.
        while retained(store) != {rules.RETENTION_COUNT: count} and time.perf_counter() - began < 300:
            time.sleep(0.05)
        elapsed = time.perf_counter() - began
        load_after = os.getloadavg()[0]
        cpu = [cpu_seconds(server.pid) - was for server, was in zip(servers, cpu_before, strict=True)]
        database_used = postgres_cpu(database.server) - database_cpu_before
        after = census(store, data_dir)
        measured_slot = START + timedelta(days=3)
        with store.connect() as conn:
            by_owner = dict(
                conn.execute(
                    select(Snapshot.owner, func.count())
                    .where(Snapshot.slot_time == measured_slot)
                    .group_by(Snapshot.owner)
                ).all()
            )
        client.close()
    finally:
        stop_servers(servers, logs, timeout=60)
        store.close()

    new_rows = sum(by_owner.values())
    deleted = before["rows"] + new_rows - after["rows"]
    print(
        f"schedule_10k: {count} clusters with cloud provider snapshots, each one volume of "
        f"{volume_size // MIB} MiB of random data, in {len(REGIONS)} regions"
    )
    print(
        f"  {replicas} `cloudbackup serve --manual-clock` process(es), local driver (durable: data, sidecars "
        f"and directories fsynced), {database.kind}"
        + (" (fsync off, on tmpfs)" if database.url() else "")
        + f", {os.cpu_count()} CPUs, {work} on {filesystem(work)}; setup by bulk inserts, {setup:.1f} s"
    )
    print("  warm-up, days 0-2 (no retention yet): " + ", ".join(f"{value:.1f} s" for value in warmup))
    print(
        f"  measured: POST /admin/clock advanceSeconds=86400 took {new_rows} snapshots and deleted {deleted} "
        f"by retention (R8): the request returned after {returned:.2f} s, every cluster kept three after "
        f"{elapsed:.2f} s"
    )
    shares = ", ".join(f"{share}" for share in sorted(by_owner.values(), reverse=True))
    print(f"  snapshots taken per replica: {shares}")
    print(
        "  CPU over the measured advance: "
        + ", ".join(f"replica {i + 1} {used:.1f} s" for i, used in enumerate(cpu))
        + (f", PostgreSQL {database_used:.1f} s" if database.url() else "")
        + f" ({(sum(cpu) + database_used) / elapsed:.2f} of the {os.cpu_count()} cores)"
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


def retained(store: Store) -> dict[int, int]:
    """How many clusters keep how many completed scheduled snapshots."""
    with store.connect() as conn:
        per_cluster = conn.execute(
            select(Snapshot.cluster_id, func.count())
            .where(Snapshot.status == "completed", Snapshot.snapshot_type == "scheduled")
            .group_by(Snapshot.cluster_id)
        ).all()
    return dict(Counter(number for _cid, number in per_cluster))


def census(store: Store, data_dir: Path) -> dict[str, Any]:
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
    with store.connect() as conn:
        statuses = dict(conn.execute(select(Snapshot.status, func.count()).group_by(Snapshot.status)).all())
    return {
        "files": files,
        "sidecars": sidecars,
        "leftovers": leftovers,
        "operations": operations,
        "rows": sum(statuses.values()),
        "completed": statuses.get("completed", 0),
        "kept": retained(store),
    }


if __name__ == "__main__":
    sys.exit(main())
