"""Benchmark: GET .../backup/snapshots on `cloudbackup serve` (waitress) from a loopback load generator of its
own processes, signing every request with HTTP Digest: requests/s against 500, p99 latency against 50 ms."""

from __future__ import annotations

import argparse
import hashlib
import http.client
import json
import multiprocessing
import os
import re
import secrets
import select
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fleet import START, Database, insert_fleet, set_manual_clock, stop_servers

from shim.store import Store, default_url

TARGET_RPS = 500.0
TARGET_P99_MS = 50.0
BASE = "/api/atlas/v1.0"
DAY = 24 * 3600


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--connections", type=int, default=4, help="client processes, one keep-alive each")
    parser.add_argument("--seconds", type=float, default=10.0, help="measured time (default 10 s)")
    parser.add_argument("--warmup", type=float, default=1.0, help="unmeasured time first (default 1 s)")
    parser.add_argument("--max-requests", type=int, default=200_000, help="cap per connection")
    parser.add_argument(
        "--server-threads", type=int, default=None, help="waitress threads (default: serve's)"
    )
    parser.add_argument("--fleet", type=int, default=10_000, help="other backed-up clusters in the database")
    parser.add_argument("--dir", type=Path, default=None, help="where to work (default: a temporary dir)")
    parser.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument(
        "--replicas",
        type=lambda text: [int(n) for n in text.split(",")],
        default=[1],
        help="serve processes, one measured window each, e.g. 1,2 (more than 1: PostgreSQL); default 1",
    )
    args = parser.parse_args()
    if max(args.replicas) > 1 and args.database == "sqlite":
        parser.error("replicas share a PostgreSQL database: add --database postgresql")

    work = Path(tempfile.mkdtemp(prefix="cloudbackup-api-", dir=args.dir))
    database = Database(args.database)
    args.database_server = database.server
    try:
        return run(work, args, database)
    finally:
        database.close()
        shutil.rmtree(work, ignore_errors=True)


def cloudbackup() -> list[str]:
    script = Path(sys.executable).parent / "cloudbackup"
    return [str(script)] if script.exists() else [sys.executable, "-m", "cloudbackup.cli"]


def run(work: Path, args: argparse.Namespace, database: Database) -> int:
    data_dir = work / "data"
    data_dir.mkdir(parents=True)
    # The database a fleet in its steady state would have: the listed cluster is one among many.
    url = database.url() or default_url(data_dir)
    where = ["--database", url] if database.url() else ["--data-dir", str(data_dir)]
    store = Store(url, pool_size=1)
    try:
        store.migrate()
        set_manual_clock(store, START)
        dues = [START + timedelta(days=4, seconds=5 * index) for index in range(args.fleet)]
        # Rows only (no volume files): nothing reads them, and their next slots are days away. No snapshot
        # rows for them either: the reconciliation at start would find their files missing and fail them.
        insert_fleet(store, args.fleet, next_due_at=dues)
    finally:
        store.close()
    keys = json.loads(
        subprocess.run(
            [*cloudbackup(), "keys", "create", *where],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    )
    measured: list[dict[str, Any]] = []
    path = ""
    for replicas in args.replicas:
        servers, logs = start_servers(work, data_dir, database, args, replicas)
        try:
            addresses = [wait_for_listening(server) for server in servers]
            if not path:
                client = DigestClient(*addresses[0], keys["publicKey"], keys["privateKey"])
                path = prepare(client)
                client.close()
            measured.append(measure(args, keys, path, servers, addresses))
        finally:
            stop_servers(servers, logs, timeout=30)

    first = measured[0]
    print(
        f"api_throughput: GET {BASE}/groups/{{id}}/clusters/{{name}}/backup/snapshots ({first['count']} "
        f"snapshots listed), HTTP Digest (MD5, qop=auth) on every request"
    )
    print(
        f"  server: `cloudbackup serve --manual-clock` (waitress, its default threads, local driver) with "
        f"{args.fleet} other backed-up clusters in its {database.kind} database"
    )
    print(
        f"  client: {args.connections} processes, one keep-alive connection each (spread over the replicas), "
        f"closed loop, {args.warmup:g} s warm-up then {args.seconds:g} s measured; client and server share "
        f"the {os.cpu_count()} cores of this machine"
    )
    met = True
    for result in measured:
        latencies = result["latencies"]
        rps = len(latencies) / result["elapsed"]
        result["rps"] = rps
        p50 = statistics.median(latencies)
        p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
        print(
            f"  {result['replicas']} replica(s): {len(latencies)} requests answered 200 in "
            f"{result['elapsed']:.2f} s; other answers: {result['errors'] or 'none'}; 1-minute load average "
            f"{result['load'][0]:.1f} before the measured window, {result['load'][1]:.1f} after"
        )
        print(f"    {rps:.0f} requests/s   p50 {p50:.2f} ms   p99 {p99:.2f} ms   max {latencies[-1]:.2f} ms")
        per_request = len(latencies)
        print(
            f"    CPU per request: servers {result['server_cpu'] / per_request * 1e6:.0f} us, "
            + (f"PostgreSQL {result['database_cpu'] / per_request * 1e6:.0f} us, " if database.url() else "")
            + f"load generator {result['client_cpu'] / per_request * 1e6:.0f} us "
            f"({result['server_cpu'] / result['elapsed']:.2f}, "
            + (f"{result['database_cpu'] / result['elapsed']:.2f}, " if database.url() else "")
            + f"{result['client_cpu'] / result['elapsed']:.2f} of the {os.cpu_count()} cores)"
        )
        if result["replicas"] == 1:
            ok = rps >= TARGET_RPS and p99 <= TARGET_P99_MS
            met = met and ok
            print(
                f"    ratios to the targets: throughput {rps / TARGET_RPS:.2f} (>= 1 wanted), "
                f"p99 {p99 / TARGET_P99_MS:.2f} (<= 1 wanted): {'met' if ok else 'NOT met'}"
            )
    if len(measured) > 1:
        base = measured[0]
        for result in measured[1:]:
            print(
                f"  {result['replicas']} replicas against {base['replicas']}: "
                f"{result['rps'] / base['rps']:.2f}x the requests/s"
            )
    errors = any(result["errors"] for result in measured)
    return 0 if not errors else 1


def start_servers(
    work: Path, data_dir: Path, database: Database, args: argparse.Namespace, replicas: int
) -> tuple[list[subprocess.Popen[str]], list[Any]]:
    servers: list[subprocess.Popen[str]] = []
    logs: list[Any] = []
    for index in range(replicas):
        log = open(work / f"serve-{replicas}-{index}.log", "w")  # noqa: SIM115 - closed after it stops
        logs.append(log)
        servers.append(
            subprocess.Popen(
                [*cloudbackup(), "serve", "--port", "0", "--data-dir", str(data_dir), "--manual-clock"]
                + (["--database", database.url() or ""] if database.url() else [])
                + (["--threads", str(args.server_threads)] if args.server_threads else []),
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
            )
        )
    return servers, logs


def measure(
    args: argparse.Namespace,
    keys: dict[str, str],
    path: str,
    servers: list[subprocess.Popen[str]],
    addresses: list[tuple[str, int]],
) -> dict[str, Any]:
    """One measured window of closed-loop load, its connections spread over `addresses`."""
    client = DigestClient(*addresses[0], keys["publicKey"], keys["privateKey"])
    count = len(json.loads(client.request("GET", path)[1])["results"])
    client.close()
    context = multiprocessing.get_context("spawn")
    ready: Any = context.Queue()
    done: Any = context.Queue()
    go: Any = context.Event()
    start_at: Any = context.Value("d", 0.0)
    settings = (args.warmup, args.seconds, args.max_requests)
    clients = [
        context.Process(
            target=load,
            args=(
                *addresses[index % len(addresses)],
                keys["publicKey"],
                keys["privateKey"],
                path,
                settings,
                ready,
                go,
                start_at,
                done,
            ),
            daemon=True,
        )
        for index in range(args.connections)
    ]
    for process in clients:
        process.start()
    for _ in clients:  # each has started, connected and been challenged: the load begins together
        ready.get(timeout=300)
    start_at.value = time.time() + 0.2
    go.set()
    # The servers' CPU time over the measured window (/proc, Linux): where the shared cores went.
    time.sleep(max(0.0, start_at.value + args.warmup - time.time()))
    server_cpu_before = sum(cpu_seconds(server.pid) for server in servers)
    database_cpu_before = postgres_cpu(args.database_server)
    load_before = os.getloadavg()[0]
    time.sleep(args.seconds)
    server_cpu = sum(cpu_seconds(server.pid) for server in servers) - server_cpu_before
    database_cpu = postgres_cpu(args.database_server) - database_cpu_before
    load_after = os.getloadavg()[0]
    results = [done.get(timeout=300) for _ in clients]
    for process in clients:
        process.join()
    errors: dict[int, int] = {}
    for result in results:
        for status, number in result["errors"].items():
            errors[status] = errors.get(status, 0) + number
    return {
        "replicas": len(servers),
        "count": count,
        "latencies": sorted(value for result in results for value in result["latencies"]),
        "errors": errors,
        "elapsed": max(result["elapsed"] for result in results),
        "server_cpu": server_cpu,
        "database_cpu": database_cpu,
        "client_cpu": sum(result["cpu"] for result in results),
        "load": (load_before, load_after),
    }


def postgres_cpu(server: Any) -> float:
    """CPU time so far of a PostgreSQL server and its backends (0 without one)."""
    if server is None:
        return 0.0
    postmaster = int((server.data / "postmaster.pid").read_text().split()[0])
    used = cpu_seconds(postmaster)
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                parent = int(Path(f"/proc/{entry.name}/stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            if parent == postmaster:
                used += cpu_seconds(int(entry.name))
    return used


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of a process so far, from /proc (0 where there is none)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_for_listening(server: subprocess.Popen[str], timeout: float = 60.0) -> tuple[str, int]:
    assert server.stdout is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([server.stdout], [], [], 0.1)
        if ready:
            match = re.fullmatch(r"listening on http://([^:]+):(\d+)\n", server.stdout.readline())
            if match:
                return match.group(1), int(match.group(2))
        if server.poll() is not None:
            break
    raise SystemExit("cloudbackup serve did not start; see its log")


def prepare(client: DigestClient) -> str:
    """A project with a backed-up cluster that has run three days: three scheduled snapshots retained."""
    status, body = client.request("POST", f"{BASE}/groups", {"name": "api-bench"})
    assert status == 201, body
    project_id = json.loads(body)["id"]
    cluster = {
        "name": "bench",
        "providerSettings": {"providerName": "AZURE", "instanceSizeName": "M10"},
        "replicationSpecs": [{"regionsConfig": {"eastus2": {"priority": 7, "electableNodes": 3}}}],
        "diskSizeGB": 1,
        "providerBackupEnabled": True,
    }
    status, body = client.request("POST", f"{BASE}/groups/{project_id}/clusters", cluster)
    assert status == 201, body
    status, body = client.request("POST", f"{BASE}/admin/clock", {"advanceSeconds": 3 * DAY})
    assert status == 200, body
    return f"{BASE}/groups/{project_id}/clusters/bench/backup/snapshots"


class DigestClient:
    """One keep-alive connection answering the server's Digest challenge (MD5, qop=auth)."""

    def __init__(self, host: str, port: int, user: str, password: str) -> None:
        self.connection = http.client.HTTPConnection(host, port, timeout=30)
        self.user = user
        self.ha1 = md5(f"{user}:cloudbackup:{password}")
        self.nonce = ""
        self.opaque = ""
        self.count = 0
        self.cnonce = secrets.token_hex(8)

    def challenge(self) -> None:
        self.connection.request("GET", f"{BASE}/groups")
        response = self.connection.getresponse()
        response.read()
        header = next(v for v in response.headers.get_all("WWW-Authenticate") or [] if "MD5" in v)
        params = dict(re.findall(r'(\w+)="?([^",]+)"?', header))
        self.nonce, self.opaque = params["nonce"], params["opaque"]
        self.count = 0

    def authorization(self, method: str, path: str, ha2: str | None = None) -> str:
        """A fresh response (next nonce count) to the last challenge; the server keeps no nonce state."""
        self.count += 1
        nc = f"{self.count:08x}"
        ha2 = ha2 or md5(f"{method}:{path}")
        response = md5(f"{self.ha1}:{self.nonce}:{nc}:{self.cnonce}:auth:{ha2}")
        return (
            f'Digest username="{self.user}", realm="cloudbackup", nonce="{self.nonce}", uri="{path}", '
            f'algorithm=MD5, qop=auth, nc={nc}, cnonce="{self.cnonce}", response="{response}", '
            f'opaque="{self.opaque}"'
        )

    def request(self, method: str, path: str, body: Any = None) -> tuple[int, bytes]:
        if not self.nonce:
            self.challenge()
        headers = {"Authorization": self.authorization(method, path)}
        payload = None
        if body is not None:
            payload = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        self.connection.request(method, path, body=payload, headers=headers)
        response = self.connection.getresponse()
        return response.status, response.read()

    def close(self) -> None:
        self.connection.close()


def md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


def load(
    host: str,
    port: int,
    user: str,
    password: str,
    path: str,
    settings: tuple[float, float, int],
    ready: Any,
    go: Any,
    start_at: Any,
    done: Any,
) -> None:
    """One client process: GET `path` in a closed loop; latencies (ms) of the measured window's 200s."""
    warmup, seconds, max_requests = settings
    client = DigestClient(host, port, user, password)
    client.challenge()
    ha2 = md5(f"GET:{path}")
    connection = client.connection
    ready.put(os.getpid())
    go.wait()
    time.sleep(max(0.0, start_at.value - time.time()))
    clock = time.perf_counter
    measure_from = clock() + warmup
    cpu_from: float | None = None
    stop_at = measure_from + seconds
    latencies: list[float] = []
    errors: dict[int, int] = {}
    sent = 0
    now = clock()
    while now < stop_at and sent < max_requests:
        headers = {"Authorization": client.authorization("GET", path, ha2)}
        began = clock()
        connection.request("GET", path, headers=headers)
        response = connection.getresponse()
        response.read()
        now = clock()
        sent += 1
        if began < measure_from:
            continue
        if cpu_from is None:
            cpu_from = time.process_time()
        if response.status == 200:
            latencies.append((now - began) * 1000)
        else:
            errors[response.status] = errors.get(response.status, 0) + 1
    cpu = time.process_time() - (cpu_from or time.process_time())
    client.close()
    done.put(
        {"latencies": latencies, "errors": errors, "elapsed": min(now, stop_at) - measure_from, "cpu": cpu}
    )


if __name__ == "__main__":
    sys.exit(main())
