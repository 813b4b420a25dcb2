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
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fleet import START, Database, insert_fleet, set_manual_clock

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
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="cloudbackup-api-", dir=args.dir))
    database = Database(args.database)
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
    log = open(work / "serve.log", "w")  # noqa: SIM115 - closed after the server stops
    server = subprocess.Popen(
        [*cloudbackup(), "serve", "--port", "0", "--data-dir", str(data_dir), "--manual-clock"]
        + (["--database", url] if database.url() else [])
        + (["--threads", str(args.server_threads)] if args.server_threads else []),
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
    )
    try:
        host, port = wait_for_listening(server)
        client = DigestClient(host, port, keys["publicKey"], keys["privateKey"])
        path = prepare(client)
        listed = client.request("GET", path)
        count = len(json.loads(listed[1])["results"])
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
                    host,
                    port,
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
            for _ in range(args.connections)
        ]
        for process in clients:
            process.start()
        for _ in clients:  # each has started, connected and been challenged: the load begins together
            ready.get(timeout=300)
        start_at.value = time.time() + 0.2
        go.set()
        # The server's CPU time over the measured window (/proc, Linux): where the shared cores went.
        time.sleep(max(0.0, start_at.value + args.warmup - time.time()))
        server_cpu_before = cpu_seconds(server.pid)
        load_before = os.getloadavg()[0]
        time.sleep(args.seconds)
        server_cpu = cpu_seconds(server.pid) - server_cpu_before
        load_after = os.getloadavg()[0]
        results = [done.get(timeout=300) for _ in clients]
        for process in clients:
            process.join()
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()

    latencies = sorted(value for result in results for value in result["latencies"])
    errors: dict[int, int] = {}
    for result in results:
        for status, number in result["errors"].items():
            errors[status] = errors.get(status, 0) + number
    elapsed = max(result["elapsed"] for result in results)
    rps = len(latencies) / elapsed
    p50 = statistics.median(latencies)
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    print(
        f"api_throughput: GET {BASE}/groups/{{id}}/clusters/{{name}}/backup/snapshots ({count} snapshots "
        f"listed), HTTP Digest (MD5, qop=auth) on every request"
    )
    print(
        f"  server: `cloudbackup serve --manual-clock` (waitress, its default threads, local driver) with "
        f"{args.fleet} other backed-up clusters in its {database.kind} database"
    )
    print(
        f"  client: {args.connections} processes, one keep-alive connection each, closed loop, "
        f"{args.warmup:g} s warm-up then {args.seconds:g} s measured; client and server share the "
        f"{os.cpu_count()} cores of this machine (1-minute load average {load_before:.1f} before the "
        f"measured window, {load_after:.1f} after)"
    )
    print(f"  {len(latencies)} requests answered 200 in {elapsed:.2f} s; other answers: {errors or 'none'}")
    print(f"  {rps:.0f} requests/s   p50 {p50:.2f} ms   p99 {p99:.2f} ms   max {latencies[-1]:.2f} ms")
    client_cpu = sum(result["cpu"] for result in results)
    print(
        f"  CPU per request: server {server_cpu / len(latencies) * 1e6:.0f} us, load generator "
        f"{client_cpu / len(latencies) * 1e6:.0f} us ({server_cpu / elapsed:.2f} and "
        f"{client_cpu / elapsed:.2f} of the {os.cpu_count()} cores)"
    )
    met = rps >= TARGET_RPS and p99 <= TARGET_P99_MS
    print(
        f"  ratios to the targets: throughput {rps / TARGET_RPS:.2f} (>= 1 wanted), "
        f"p99 {p99 / TARGET_P99_MS:.2f} (<= 1 wanted): {'met' if met else 'NOT met'}"
    )
    return 0 if not errors else 1


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
