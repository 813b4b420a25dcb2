"""Benchmark: /healthz and an authenticated GET with 1,000 idle or slow-loris connections held: 100 ms."""

from __future__ import annotations

import argparse
import json
import re
import select
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

import requests
from requests.auth import HTTPDigestAuth

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from shim.serving import raise_open_file_limit

TARGET_MS = 100.0
BASE = "/api/atlas/v1.0"


def cloudbackup() -> list[str]:
    script = Path(sys.executable).parent / "cloudbackup"
    return [str(script)] if script.exists() else [sys.executable, "-m", "cloudbackup.cli"]


def start(data_dir: Path) -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        [*cloudbackup(), "serve", "--port", "0", "--data-dir", str(data_dir), "--manual-clock"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert process.stdout is not None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if select.select([process.stdout], [], [], 0.1)[0]:
            match = re.fullmatch(r"listening on (http://\S+)\n", process.stdout.readline())
            if match:
                return process, match.group(1)
    process.kill()
    raise SystemExit("serve did not start")


def timed(url: str, key: tuple[str, str], rounds: int) -> tuple[list[float], list[float]]:
    """Milliseconds of /healthz and of an authenticated GET (Digest handshake included), new clients each."""
    health: list[float] = []
    authed: list[float] = []
    for _ in range(rounds):
        started = time.perf_counter()
        assert requests.get(url + "/healthz", timeout=300).status_code == 200
        health.append((time.perf_counter() - started) * 1000)
        with requests.Session() as session:
            session.auth = HTTPDigestAuth(*key)
            started = time.perf_counter()
            assert session.get(url + BASE + "/groups", timeout=300).status_code == 200
            authed.append((time.perf_counter() - started) * 1000)
    return health, authed


def figures(name: str, values: list[float]) -> str:
    p95 = statistics.quantiles(values, n=20)[-1]
    return f"{name}: median {statistics.median(values):.1f} ms, p95 {p95:.1f} ms"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--idle", type=int, default=1000, help="connections held open (default 1000)")
    parser.add_argument("--slow", type=int, default=200, help="of them, slow-loris ones (default 200)")
    parser.add_argument("--rounds", type=int, default=40, help="requests of each kind timed (default 40)")
    args = parser.parse_args()
    raise_open_file_limit(4 * args.idle)

    work = Path(tempfile.mkdtemp(prefix="cloudbackup-idle-"))
    process = None
    held: list[socket.socket] = []
    try:
        key = json.loads(
            subprocess.run(
                [*cloudbackup(), "keys", "create", "--data-dir", str(work)],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
        )
        key_pair = (key["publicKey"], key["privateKey"])
        process, url = start(work)
        timed(url, key_pair, 5)
        idle_health, idle_authed = timed(url, key_pair, args.rounds)

        address = urlsplit(url)
        for _ in range(args.idle):
            held.append(socket.create_connection((address.hostname, address.port), timeout=30))
        for sock in held[: args.slow]:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: cloudbackup\r\nX-Slow: ")
        health, authed = [], []
        for _ in range(4):
            h, a = timed(url, key_pair, args.rounds // 4)
            health += h
            authed += a
            for sock in held[: args.slow]:
                sock.sendall(b"a")  # a slow-loris byte between rounds

        print(
            f"without load: {figures('/healthz', idle_health)}; {figures('authenticated GET', idle_authed)}"
        )
        print(
            f"with {args.idle} connections held ({args.slow} slow-loris): {figures('/healthz', health)}; "
            f"{figures('authenticated GET', authed)}"
        )
        worst = max(statistics.median(health), statistics.median(authed))
        health_ratio = statistics.median(health) / statistics.median(idle_health)
        authed_ratio = statistics.median(authed) / statistics.median(idle_authed)
        print(
            f"ratio to no load (medians): /healthz {health_ratio:.1f}x, authenticated {authed_ratio:.1f}x; "
            f"target: under {TARGET_MS:.0f} ms: {'met' if worst < TARGET_MS else 'MISSED'}"
        )
        return 0 if worst < TARGET_MS else 1
    finally:
        for sock in held:
            sock.close()
        if process is not None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
