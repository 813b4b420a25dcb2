"""A `cloudbackup serve` process for tests: both pipes read by threads from the start, its URLs parsed."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import IO

# `listening on URL` and `metrics on URL`: what serve prints on stdout once it accepts requests.
_ANNOUNCED = re.compile(r"(listening|metrics) on (http://\S+)\n")


def cloudbackup() -> list[str]:
    """The installed `cloudbackup` console script beside this Python, else the module."""
    script = Path(sys.executable).parent / "cloudbackup"
    return [str(script)] if script.exists() else [sys.executable, "-m", "cloudbackup.cli"]


def create_key(where: Path | str, *args: str) -> tuple[str, str]:
    """`cloudbackup keys create` in a data directory, or in a database given by its URL: (public, private)."""
    place = ["--data-dir", str(where)] if isinstance(where, Path) else ["--database", where]
    output = subprocess.run(
        [*cloudbackup(), "keys", "create", *place, *args],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    key = json.loads(output)
    assert set(key) == {"publicKey", "privateKey"}
    return key["publicKey"], key["privateKey"]


class Serve:
    """One `cloudbackup serve --port 0` process on a data directory.

    serve logs a line per request and per lifecycle event, a reconciliation at start included: a pipe
    nobody reads fills up and stalls the process, so both pipes are read as they come, from the start,
    and kept (`out`, `err`). Line by line on a thread: a select on a buffered pipe would hide a second
    line that came in the same chunk as the first.
    """

    def __init__(
        self,
        data_dir: Path,
        *extra: str,
        env: dict[str, str] | None = None,
        command: list[str] | None = None,
        timeout: float = 30.0,
    ) -> None:
        self.data_dir = data_dir
        self.process = subprocess.Popen(
            [*(command or cloudbackup()), "serve", "--port", "0", "--data-dir", str(data_dir), *extra],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, **(env or {})},
        )
        self.out: list[str] = []
        self.err: list[str] = []
        self.urls: dict[str, str] = {}
        self._listening = threading.Event()
        self._readers = [
            threading.Thread(target=self._read, args=(self.process.stdout, self.out), daemon=True),
            threading.Thread(target=self._read, args=(self.process.stderr, self.err), daemon=True),
        ]
        for reader in self._readers:
            reader.start()
        if not self._listening.wait(timeout) or "listening" not in self.urls:
            ended = self.process.poll() is not None
            self.kill()
            what = "serve exited early" if ended else "serve did not print `listening on` in time"
            raise AssertionError(f"{what}: {''.join(self.out)}{''.join(self.err)}")
        self.url = self.urls["listening"]

    def _read(self, stream: IO[str], lines: list[str]) -> None:
        for line in stream:
            lines.append(line)
            announced = _ANNOUNCED.fullmatch(line)
            if announced:
                self.urls[announced.group(1)] = announced.group(2)
                if announced.group(1) == "listening":
                    self._listening.set()
        self._listening.set()  # the process ended

    def stop(self, signum: int = signal.SIGTERM, timeout: float = 20.0) -> tuple[int, str]:
        """Send `signum`, wait for the exit; (exit code, everything written on stderr)."""
        self.process.send_signal(signum)
        try:
            code = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise
        self._join()
        return code, "".join(self.err)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(20)
        self._join()

    def _join(self) -> None:
        for reader in self._readers:
            reader.join(10)
